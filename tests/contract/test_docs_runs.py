"""Issue 19: the pages' examples that need a service, run for real (the docs walk's other half,
test_docs_walk.py, parses and checks every block and runs the cheap commands).

- docs/synth.md's LLM client example against two fake OpenAI servers;
- docs/sandbox.md's quick start (image, token, service) and its two client examples;
- docs/stream.md's config example given to ``codekiln-stream run``;
- the ``vllm serve`` lines by vLLM's own parser (.venv-vllm);
- the ``codekiln-synth run`` lines (docs/synth.md with its configuration block, docs/vllm.md),
  docs/eval.md's ``evaluate`` line and the ``codekiln-eval run`` lines, against the real sandbox
  and a fake LLM, with the environment their page exports;
- k8s/README.md's stream worker with the config the pods mount;
- docs/synth.md's set-up block: ``make run`` with an LLM writes the synthesis report.

What a run changes from the page (a free port, one warm container, ``--limit 2``, a small
source tree instead of ``--default-input``) is said at the run, with why.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from codekiln import shards
from tests.contract.docblocks import REPO, Block, blocks, spans
from tests.contract.test_docs_walk import (
    EXTERNAL,
    MAINS,
    _argv,
    _commands,
    _layout,
    _lines,
    _make_run,
    _prepare,
    _python_records,
    _train_yaml,
)
from tests.fixtures.sandbox import stop_process

if TYPE_CHECKING:
    from tests.fakes.openai_server import FakeOpenAIServer

# -- the LLM client block of docs/synth.md, against two fake OpenAI servers -------------------


async def test_llm_client_block_of_docs_synth_runs() -> None:
    """docs/synth.md's LLMClient example runs as shown, its two endpoints two real aiohttp
    servers speaking vLLM's protocol; what its comments promise holds."""
    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    [block] = [b for b in blocks("python") if "LLMClient(LLMConfig(" in b.text]
    judged = Reply("YES", top_logprobs=[{"YES": -0.1, "NO": -2.4}])
    async with FakeOpenAIServer(model="coder") as a, FakeOpenAIServer(model="coder") as b:
        text = block.text
        for placeholder, server in (("http://a:8000", a), ("http://b:8000", b)):
            assert f'"{placeholder}"' in text, f"{block.where}: the example's endpoints changed"
            text = text.replace(f'"{placeholder}"', repr(server.url))
            server.route("Is this code", judged)
        code = compile(text, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        names: dict[str, Any] = {
            "messages": [{"role": "user", "content": "Is this code correct? YES or NO"}]
        }
        coroutine = eval(code, names)  # the page's own example
        if coroutine is not None:
            await coroutine
        a.assert_clean()
        b.assert_clean()
    assert len(names["out"].texts(prompt_index=1)) == 4  # "the 4 samples of p2"
    assert names["chat"].choices[0].logprobs[0].top == {"YES": -0.1, "NO": -2.4}
    assert a.served + b.served >= 2  # both calls answered (balanced over the endpoints)


# -- docs/sandbox.md's quick start, against the real service ----------------------------------


async def _run_block(block: Block, text: str, names: dict[str, Any]) -> None:
    """Execute a page's Python (top-level ``await`` allowed); its last bare expression is
    kept in ``names["_"]``, as a reader at a prompt would see it."""
    tree = ast.parse(text, filename=block.where)
    body = tree.body
    for node in ast.walk(tree):  # the last bare expression of the outermost block, or inside
        if isinstance(node, (ast.AsyncWith, ast.With)):
            body = node.body
    if body and isinstance(body[-1], ast.Expr):
        target = ast.Name("_", ast.Store())
        body[-1] = ast.copy_location(ast.Assign([target], body[-1].value), body[-1])
        ast.fix_missing_locations(tree)
    code = compile(tree, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    coroutine = eval(code, names)  # the page's own example
    if coroutine is not None:
        await coroutine


#: What the walk changes in the quick start to run it in CI: a free port instead of 8080 (the
#: service says which in its ready file), one warm container instead of four (2 CPUs), and a
#: list of requests for the ``[...]`` a reader fills.
QUICK_START_SUBSTITUTIONS = {
    "--port 8080": "--port 0",
    "4": "1",
    "[...]": '[RunRequest(language="python", code="print(1)")] * 3',
}


@pytest.mark.docker
@pytest.mark.slow
def test_sandbox_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/sandbox.md's quick start as typed: the image (built if missing), the token, the
    service, then the client example and the SandboxFusion client example against it."""
    [shell] = [b for b in blocks("bash") if b.page == "docs/sandbox.md"]
    client, fusion = [b for b in blocks("python") if b.page == "docs/sandbox.md"]
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "CODEKILN_LOG_DIR": str(tmp_path / "logs")}
    build, token_line, serve = _lines(shell)
    argv = _argv(build)
    assert argv[:3] == ["codekiln-sandbox", "image", "build"], build
    subprocess.run([sys.executable, "-m", MAINS[argv[0]], *argv[1:]], check=True, env=env)
    subprocess.run(["bash", "-c", token_line], check=True)
    typed = serve.replace("--port 8080", QUICK_START_SUBSTITUTIONS["--port 8080"])
    argv = [QUICK_START_SUBSTITUTIONS.get(w, w) if w == "4" else w for w in _argv(typed)]
    extra = ["--ready-file", "ready", "--instance", f"docs-walk-{os.getpid()}"]
    with (tmp_path / "service.log").open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", MAINS[argv[0]], *argv[1:], *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300  # as tests/fixtures/sandbox.py: a first image build
        while not (tmp_path / "ready").exists():
            assert service.poll() is None, (tmp_path / "service.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "service.log").read_text()[-3000:]
            time.sleep(0.1)
        url = (tmp_path / "ready").read_text().strip()
        text = client.text.replace('"http://127.0.0.1:8080"', repr(url))
        text = text.replace("[...]", QUICK_START_SUBSTITUTIONS["[...]"])
        names: dict[str, Any] = {}
        asyncio.run(_run_block(client, text, names))
        assert names["r"].status == "passed", names["r"]
        assert [t.name for t in names["r"].tests] == ["line 1: assert f(1) == 2"]
        assert [r.status for r in names["rs"]] == ["passed"] * 3
        token = (tmp_path / "token").read_text().strip()
        fusion_names: dict[str, Any] = {"token": token}
        text = fusion.text.replace("http://127.0.0.1:8080", url)
        asyncio.run(_run_block(fusion, text, fusion_names))
        assert fusion_names["_"].run_result.stdout == "1\n", fusion_names["_"]
    finally:
        stop_process(service)


# -- docs/stream.md's config example, run ------------------------------------------------------


@pytest.mark.slow
def test_stream_config_example_fails_fast_on_its_unreachable_llm(tmp_path: Path) -> None:
    """docs/stream.md's config example, given to ``codekiln-stream run`` with nothing listening
    at its ``synth.llm_url``: one line naming the key, exit 2, and no work started (the page:
    "An unreachable endpoint or an invalid launch fails in seconds, not after the run").
    Its ``mypkg.stages:MyStage`` step, a reader's own stage, is left out."""
    [block] = [b for b in blocks("yaml") if b.page == "docs/stream.md"]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    assert "llm_url: http://127.0.0.1:8000/v1" in block.text, block.where
    text = block.text.replace("http://127.0.0.1:8000/v1", closed)
    text = "".join(line for line in text.splitlines(True) if "mypkg." not in line)
    (tmp_path / "stream.yaml").write_text(text)
    _train_yaml(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text(_python_records(1)[0]["text"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEKILN_")}
    env["CODEKILN_LOG_DIR"] = str(tmp_path / "logs")
    proc = subprocess.run(
        [sys.executable, "-m", MAINS["codekiln-stream"], "run", "src", "--out", "out/run",
         "--config", "stream.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"codekiln-stream: error: config: synth.llm_url: cannot reach {closed}"
    )
    assert not (tmp_path / "out" / "run" / "corpus").exists()


# -- the pages' `vllm serve` lines, by real vLLM's own parser ---------------------------------


@pytest.mark.vllm
@pytest.mark.slow
def test_documented_vllm_serve_is_accepted_by_vllm() -> None:
    """Every ``vllm serve`` line of the pages (docs/vllm.md's GPU and CPU recipes) parses with
    ``vllm serve``'s own parser and validation, in the vLLM venv ``make vllm`` installs
    (tests/vllm/parse_serve_args.py, the oracle tests/vllm/test_serve_args.py uses)."""
    from tests.fixtures.vllm import VLLM_BIN, vllm_unavailable

    reason = vllm_unavailable()
    if reason or not (VLLM_BIN / "python").is_file():
        pytest.skip(reason or "no .venv-vllm here (make vllm)")
    commands = [(block.where, _argv(command)) for block, command in _commands()]
    lines = {where: argv for where, argv in commands if argv[:1] and argv[0] in EXTERNAL}
    assert all(argv[1] == "serve" for argv in lines.values()), lines
    assert len(lines) >= 2, lines  # docs/vllm.md: the GPU line and the CPU recipe
    proc = subprocess.run(
        [str(VLLM_BIN / "python"), str(REPO / "tests" / "vllm" / "parse_serve_args.py")],
        input=json.dumps([argv[2:] for argv in lines.values()]),
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    results = dict(zip(lines, rows, strict=False))
    assert len(results) == len(lines), proc.stdout[-2000:]
    refused = {where: r.get("error") for where, r in results.items() if not r["ok"]}
    assert refused == {}
    assert {r["model"] for r in results.values()} == {"out/model"}


# -- docs/synth.md's synthesis run, with its configuration block -------------------------------


def _instructions(folder: Path) -> list[str]:
    """Small files for the ``--instructions evol.jsonl infinity.jsonl mceval.jsonl`` shown."""
    rows: list[dict[str, Any]] = [
        {"instruction": "Write a Python function to reverse a string.",
         "output": "```python\ndef rev(s):\n    return s[::-1]\n```"},
        {"conversations": [{"from": "human", "value": "Sort a list in Python?"},
                           {"from": "gpt", "value": "Use sorted(xs)."}]},
    ]  # fmt: skip
    names = ["evol.jsonl", "infinity.jsonl", "mceval.jsonl"]
    for name in names:
        shards.write_objects(folder / name, rows)
    return names


SYNTH_RUNS = [
    pytest.param(c, id=b.where) for b, c in _commands() if c.startswith("codekiln-synth run --")
]


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("line", SYNTH_RUNS)
async def test_synth_run_of_the_pages(
    line: str, tmp_path: Path, data_dir: Path, sandbox_service: Any
) -> None:
    """The ``codekiln-synth run`` lines: docs/synth.md's, every option given, with its
    configuration block as ``synth.yaml``, and docs/vllm.md's, settings from the variables the
    pages export. The LLM is the fake OpenAI server answering every synth prompt
    (tests/synth/scripted.py), the sandbox the real service; every output docs/synth.md lists."""
    from tests.fakes.openai_server import FakeOpenAIServer
    from tests.synth import scripted

    [config] = [b for b in blocks("yaml") if b.page == "docs/synth.md" and "synth:" in b.text]
    cwd = tmp_path / "user"
    cwd.mkdir()
    _prepare(cwd, data_dir)  # ../shared/data
    seeds = [  # code seeds and a prose page within the config's seed_min_chars/max_chars
        {"id": f"{i:032x}", "lang": "Python", "path": f"m{i}.py",
         "text": f"def f{i}(x):\n    '''Double x.'''\n" + "    x = x + x\n" * 20 + "    return x\n"}
        for i in range(6)
    ] + [{"id": "f" * 32, "lang": "Markdown", "path": "README.md",
          "text": "Heaps are tree-based structures used for priority queues in schedulers "
                  "and in graph algorithms such as Dijkstra's shortest paths. " * 3}]  # fmt: skip
    shards.write_objects(cwd / "out" / "run" / "corpus" / "part-00000.jsonl.zst", seeds)
    (cwd / "synth.yaml").write_text(config.text)
    (cwd / "token").write_text(sandbox_service.token)
    if "--instructions" in line:
        assert _instructions(cwd) == [w for w in _argv(line) if w.endswith(".jsonl")]
    async with FakeOpenAIServer(model="coder") as llm:
        scripted.install(llm)
        here = {
            "http://127.0.0.1:8000": llm.url,
            "http://gpu-host:8000": llm.url,
            "http://127.0.0.1:8080": sandbox_service.url,
        }  # ../shared/data is there: _prepare
        env = _shell_env(line, here) | {"CODEKILN_LOG_DIR": str(tmp_path / "logs")}
        words = {"http://gpu:8000": llm.url, "http://127.0.0.1:8080": sandbox_service.url}
        argv = [words.get(w, w) for w in _argv(line)]
        err = await _run_documented(argv, llm, cwd, env)
    assert b"Traceback" not in err, err.decode()[-3000:]
    synth = cwd / "out" / "synth"
    _layout("docs/synth.md", "out/synth")(cwd, "")  # every path of the page's Output table
    for stage in ("stage1", "stage2"):
        assert list(shards.read_objects(synth / "sft" / stage)), f"sft/{stage} is empty"


# -- docs/eval.md's evaluate line, on two MBPP+ tasks ------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_evaluate_of_docs_eval(tmp_path: Path, data_dir: Path, sandbox_service: Any) -> None:
    """docs/eval.md's ``codekiln-eval evaluate samples.jsonl --dataset mbpp+ --out out/mbpp``
    as typed, the sandbox and data from the variables the pages export, on a samples file of
    two tasks' canonical solutions (all pass) and one wrong one: pass@1 over those tasks."""
    from codekiln.eval.data import load_dataset

    [line] = [c for _, c in _commands() if c.startswith("codekiln-eval evaluate")]
    tasks = list(load_dataset("mbpp+", data_dir).tasks.values())[:3]
    samples = [{"task_id": t.task_id, "solution": t.canonical} for t in tasks]
    samples[2]["solution"] = "def nothing():\n    return None\n"
    shards.write_objects(tmp_path / "samples.jsonl", samples)
    (tmp_path / "token").write_text(sandbox_service.token)
    here = {"http://127.0.0.1:8080": sandbox_service.url, "../shared/data": str(data_dir)}
    env = _shell_env(line, here) | {"CODEKILN_LOG_DIR": str(tmp_path / "logs")}
    argv = _argv(line)
    proc = subprocess.run(
        [sys.executable, "-m", MAINS[argv[0]], *argv[1:]],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "mbpp" / "eval_results.json").read_text())
    for part in ("base", "plus"):
        assert results["pass_at_k"][part]["pass@1"] == pytest.approx(200 / 3), results
    # what it prints has the shape of the page's sample output (another dataset, other scores)
    [sample] = [b for b in blocks() if b.page == "docs/eval.md" and b.text.startswith("humaneval+")]
    printed = proc.stdout.splitlines()
    for shown in sample.text.splitlines():
        pattern = re.escape(shown).replace(re.escape("humaneval+ v0.1.10"), r"mbpp\+ v[\d.]+")
        pattern = re.sub(r"\d+\\\.\d+$", r"[\\d.]+", pattern)
        assert any(re.fullmatch(pattern, line) for line in printed), (shown, printed)


async def _run_documented(
    argv: list[str], llm: FakeOpenAIServer, cwd: Path, env: dict[str, str]
) -> bytes:
    """Run a documented command line (its program's module by MAINS) in ``cwd``; assert that it
    exits 0 and that ``llm`` answered every request cleanly. Its stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", MAINS[argv[0]], *argv[1:], cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 600)
    llm.assert_clean()
    assert proc.returncode == 0, err.decode()[-3000:]
    return err


def _shell_env(line: str, here: dict[str, str]) -> dict[str, str]:
    """The environment a reader has when typing ``line``: the ``export`` lines above it in its
    block, else (a block that sets none) those of docs/synth.md's set-up block, the one place
    the pages set them all; each value mapped through ``here`` (an endpoint to the one this
    test serves, ``../shared/data`` to the data). Nothing else of codekiln's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEKILN_")}
    holder = next(b for b, c in _commands() if c == line)
    exports = [c for b, c in _commands() if b == holder and c.startswith("export ")]
    exports = exports[: [c for b, c in _commands() if b == holder].index(line)]
    if not exports:
        [setup] = [b for b in blocks() if b.page == "docs/synth.md" and "export " in b.text]
        exports = [c for b, c in _commands() if b == setup and c.startswith("export ")]
    for export in exports:
        name, _, value = _argv(export)[1].partition("=")
        env[name] = here.get(value, value)
    return env


EVAL_RUNS = [
    pytest.param(c, id=b.where)
    for b, c in _commands()
    if c.startswith("codekiln-eval run --endpoint http://127.0.0.1:8000")
]


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("line", EVAL_RUNS)
async def test_eval_run_of_the_pages(
    line: str, tmp_path: Path, data_dir: Path, sandbox_service: Any
) -> None:
    """The ``codekiln-eval run`` lines of docs/eval.md and docs/vllm.md (generate, then
    evaluate) with every option they show, plus ``--limit 2`` (docs/eval.md's smoke run),
    against a fake OpenAI server at their endpoint that completes the first task's prompt
    with its canonical body and the second with a wrong one: pass@1 50."""
    from codekiln.eval.data import load_dataset

    from tests.fakes.openai_server import FakeOpenAIServer

    right, wrong = list(load_dataset("humaneval+", data_dir).tasks.values())[:2]
    (tmp_path / "token").write_text(sandbox_service.token)
    async with FakeOpenAIServer(model="my-coder") as llm:
        here = {
            "http://127.0.0.1:8000": llm.url,
            "http://gpu-host:8000": llm.url,
            "http://127.0.0.1:8080": sandbox_service.url,
            "../shared/data": str(data_dir),
        }
        env = _shell_env(line, here) | {"CODEKILN_LOG_DIR": str(tmp_path / "logs")}
        body = right.canonical.removeprefix(right.prompt.strip())
        llm.route(right.prompt.strip(), body)
        llm.route(wrong.prompt.strip(), "    return None\n")
        argv = [w.replace("http://127.0.0.1:8000", llm.url) for w in _argv(line)]
        await _run_documented([*argv, "--limit", "2"], llm, tmp_path, env)
    out = tmp_path / argv[argv.index("--out") + 1]
    results = json.loads((out / "eval_results.json").read_text())
    assert results["pass_at_k"]["base"]["pass@1"] == pytest.approx(50.0), results["pass_at_k"]


# -- the stream worker of k8s/README.md, with the config its pods mount --------------------------


@pytest.mark.slow
def test_stream_worker_with_the_k8s_config(tmp_path: Path) -> None:
    """k8s/README.md's ``codekiln-stream worker --config /etc/codekiln/stream.yaml --worker-id
    <pod name>``, with the file mounted there (k8s/base/stream/stream.yaml), here: its pod paths
    and port replaced by docs/stream.md's overrides (``--watch-dir``, ``--out``,
    ``--metrics-port 0``) and ``--once``; a published shard comes out with run's layout."""
    [line] = [s.text for s in spans() if s.text.startswith("codekiln-stream worker --config /")]
    argv = _argv(line.replace("<pod name>", "pod-0"))
    config = REPO / "k8s" / "base" / "stream" / "stream.yaml"
    argv[argv.index("--config") + 1] = str(config)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    records = [
        {"id": name, "text": (REPO / "codekiln" / name).read_text(), "lang": "Python",
         "path": name}
        for name in ("units.py", "shards.py", "progress.py")
    ]  # fmt: skip
    shards.write_objects(incoming / ".a.jsonl", records)  # hidden while written
    (incoming / ".a.jsonl").rename(incoming / "a.jsonl")  # then published, as the page says
    here = ["--watch-dir", "incoming", "--out", "out", "--metrics-port", "0", "--once"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEKILN_")}
    env["CODEKILN_LOG_DIR"] = str(tmp_path / "logs")
    proc = subprocess.run(
        [sys.executable, "-m", MAINS[argv[0]], *argv[1:], *here],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (incoming / ".done" / "a.jsonl").is_file(), sorted(incoming.rglob("*"))
    _layout("docs/stream.md", "out/a")(tmp_path, "")  # out_dir/<shard name, no extension>/
    manifest = json.loads((tmp_path / "out" / "a" / "manifest.json").read_text())
    assert manifest["corpus"]["records"] >= 1, manifest["corpus"]


@pytest.mark.docker
@pytest.mark.slow
async def test_make_run_with_an_llm_writes_the_synthesis_report(
    tmp_path: Path, data_dir: Path, sandbox_service: Any
) -> None:
    """docs/synth.md's set-up block: with its exports, ``make run`` (the Makefile's recipe, on
    a small source tree instead of --default-input) runs synthesis after the pipeline and
    writes ``out/run/synth/report.md``, as the block's last comment says."""
    from tests.fakes.openai_server import FakeOpenAIServer
    from tests.synth import scripted

    [line] = [c for b, c in _commands() if b.page == "docs/synth.md" and c.startswith("make run")]
    promised = line.split("->", 1)[1].strip()
    cwd = tmp_path / "user"
    cwd.mkdir()
    _prepare(cwd, data_dir)  # src/, ../shared/data
    (cwd / "token").write_text(sandbox_service.token)
    argv = shlex.split(_make_run())
    argv[argv.index("--default-input")] = "src"
    async with FakeOpenAIServer(model="coder") as llm:
        scripted.install(llm)
        here = {"http://gpu-host:8000": llm.url, "http://127.0.0.1:8080": sandbox_service.url}
        env = _shell_env(line, here) | {"CODEKILN_LOG_DIR": str(tmp_path / "logs")}
        await _run_documented(argv, llm, cwd, env)
    assert (cwd / promised).is_file(), sorted((cwd / "out").rglob("*"))
    assert llm.served > 0
