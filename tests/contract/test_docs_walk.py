"""Issue 19: README.md, every docs/*.md page, k8s/README.md and sandbox/THREAT_MODEL.md,
walked as a new user would.

Every fenced block is classified and checked, and a block nobody checks fails the walk:

- a ``codekiln-*`` command (or ``torchrun -m codekiln...``) is parsed by that CLI's own
  argument parser, synopsis brackets opened and placeholders filled (a renamed flag, a
  removed subcommand or a bad choice fails); the cheap ones in :data:`RUN` are run for real
  on small inputs (an LLM, where one is needed, is the fake OpenAI server), and their results
  checked; the rest need a GPU, a cluster, a real model or minutes;
- ``make X`` needs a Makefile target X; ``export NAME=...`` (or ``NAME=... prog``) needs code
  that reads NAME; ``python -m pytest FILES`` needs the files; the shell lines in
  :data:`SHELL` run;
- a YAML block is validated by what it configures (the whole stream + flow config, a
  training config, a ``launch:`` section, a ``synth:`` section; pipeline steps are built in
  test_doc_configs.py); docs/train.md's tiny config trains for real and is exported;
- a Python block must compile and its imports must resolve.

The examples that need a service (an LLM, the sandbox, vLLM's parser) run in
test_docs_runs.py: the Python blocks, the quick start, the synth and eval runs, the worker.

Commands named in the prose (inline code) are checked too: a subcommand and the options shown
exist, a make target, a kustomize folder, a bench script's options, a package extra; and the
repository paths the prose names exist.

What is shown but not run (output samples, diagrams, comments) is in :data:`NOT_RUN`, each
with its reason: the one table the walk and a reader of this file share.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import importlib.util
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from codekiln import shards
from tests.contract.docblocks import REPO, Block, blocks, spans, stage_entries

#: Lines shown in a block that are not commands for a reader to type into codekiln.
NOT_RUN = {
    "humaneval+ v0.1.10": "sample output of codekiln-eval (its shape: test_evaluate_of_docs_eval)",
    "pass@1:": "sample output of codekiln-eval (its shape: test_evaluate_of_docs_eval)",
    "map[": "a diagram of the Ray plan",
    "-> map[": "a diagram of the Ray plan",
    "preprocess ->": "a diagram of the pipeline",
    "corpus (codekiln-stream)": "a diagram of synthesis",
    "instruction files": "a diagram of synthesis",
    "installed packages": "a diagram of synthesis",
    "#": "a comment",
}

#: Programs that are not codekiln's, shown to be run as they are: each with what the walk
#: checks instead of running it (they need a model, a GPU or minutes to start).
EXTERNAL = {
    "vllm": "the vLLM server: installed by `make vllm` (the target exists; `serve` lines are "
    "parsed by vLLM's own parser in test_documented_vllm_serve_is_accepted_by_vllm)",
    ".venv-vllm/bin/vllm": "the vLLM server `make vllm` installs (as `vllm`)",
}

#: Block languages that hold no commands: ``text`` blocks are diagrams.
NOT_RUN_LANGS = {"text": "a diagram"}

#: Placeholders of synopsis lines -> a value the parser accepts.
FILL = {
    "INPUT": "src",
    "DIR": "out/dir",
    "FILE": "file.yaml",
    "N": "2",
    "G": "1",
    "NAME": "job-1",
    "IMAGE": "registry.example.com/codekiln:0.1.0",
}

#: The command-line entry of each CLI (what its console script calls).
MAINS = {
    "codekiln-stream": "codekiln.stream.cli",
    "codekiln-sandbox": "codekiln.sandbox.cli",
    "codekiln-synth": "codekiln.synth.cli",
    "codekiln-train": "codekiln.train.cli",
    "codekiln-eval": "codekiln.eval.cli",
}


def _lines(block: Block) -> list[str]:
    """The block's commands: ``\\`` continuations joined, and an indented line that starts
    with an option (``[--x ...]``, ``--x``) joined to the synopsis above it."""
    out: list[str] = []
    for line in block.text.replace("\\\n", " ").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if out and line[:1].isspace() and stripped.startswith(("[-", "--")):
            out[-1] += " " + stripped
        else:
            out.append(stripped)
    return out


def _commands() -> list[tuple[Block, str]]:
    """Every command line of every non-YAML, non-Python block."""
    return [
        (block, command)
        for block in blocks()
        if block.lang not in ("yaml", "python", *NOT_RUN_LANGS)
        for command in _lines(block)
    ]


def _not_run(command: str) -> str | None:
    return next((why for start, why in NOT_RUN.items() if command.startswith(start)), None)


def _argv(command: str) -> list[str]:
    """A synopsis as an argument list: [optional] groups opened, a|b -> a, placeholders filled."""
    words: list[str] = []
    for raw in shlex.split(command, comments=True):
        word = raw.strip("[]").removesuffix("...")
        if not word:
            continue
        if "|" in word and "://" not in word:
            word = word.split("|")[0]
        words.append(FILL.get(word, word))
    return words


class _Parsed(BaseException):
    """Raised by the patched parse_args: the command line parsed; nothing runs."""


def _parse_only(module: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    main: Callable[[list[str]], int] = importlib.import_module(module).main
    with pytest.raises(_Parsed):
        main(argv)


@functools.cache
def _env_read() -> frozenset[str]:
    """The CODEKILN_* variables codekiln's own code reads (named in its sources)."""
    names: set[str] = set()
    for top in REPO.iterdir():
        if top.is_dir() and (top / "__init__.py").is_file() and top.name != "tests":
            for path in top.rglob("*.py"):
                names.update(re.findall(r"[\"'](CODEKILN_[A-Z0-9_]+)[\"']", path.read_text()))
    return frozenset(names)


def _token_file(folder: Path) -> None:
    """docs/sandbox.md's token one-liner, run in ``folder``: a 0600 file the service accepts."""
    from codekiln.sandbox.config import SandboxConfig

    [command] = [c for _, c in _commands() if c.startswith("head -c")]
    subprocess.run(["bash", "-c", command], cwd=folder, check=True, timeout=30)
    token = folder / "token"
    assert token.stat().st_mode & 0o777 == 0o600
    assert len(SandboxConfig.from_token_file(token).token) >= 32


#: Shell lines run as typed (coreutils) -> what checks their result.
SHELL: dict[str, Callable[[Path], None]] = {
    "head -c 32 /dev/urandom | base64 > token && chmod 600 token": _token_file,
}

COMMANDS = [
    pytest.param(block, command, id=f"{block.where}:{command[:50]}")
    for block, command in _commands()
    if _not_run(command) is None
]


@pytest.mark.parametrize(("block", "command"), COMMANDS)
def test_documented_command_is_understood(
    block: Block,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command's program exists and parses this command line (or the make target exists)."""
    names, argv = _environment(_argv(command))
    if argv[0] in PYTHONS:  # python -m pytest ..., python bench/x.py ...: as in the prose
        _check_python(["python", *argv[1:]], monkeypatch, capsys, names)
        return
    for name in names:
        assert name in _env_read(), f"{block.where}: no code reads ${name} ({command!r})"
    if argv[0] == "make":
        makefile = (REPO / "Makefile").read_text()
        for target in argv[1:]:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make target {target}"
        return
    if argv[0] in EXTERNAL:
        assert re.search(r"^vllm:", (REPO / "Makefile").read_text(), re.M), EXTERNAL[argv[0]]
        return
    if argv[0] == "export":
        name = argv[1].partition("=")[0]
        assert name in _env_read(), f"{block.where}: no code reads ${name} ({command!r})"
        return
    if command in SHELL:
        SHELL[command](tmp_path)
        return
    if argv[0] == "torchrun":
        argv = ["codekiln-train", *argv[argv.index("codekiln.train.cli") + 1 :]]
    assert argv[0] in MAINS, f"{block.where}: unknown program in {command!r}"
    if "--help" in argv:
        return  # run for real in test_cheap_commands_run
    _parse_only(MAINS[argv[0]], argv[1:], monkeypatch)


#: How the pages spell the Python interpreter (the project's virtual environment's included).
PYTHONS = ("python", ".venv/bin/python")


def _environment(argv: list[str]) -> tuple[list[str], list[str]]:
    """The variables a command line sets before its program (``A=1 B=2 prog ...``), and the rest."""
    names = []
    while len(argv) > 1 and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
        names.append(argv[0].partition("=")[0])
        argv = argv[1:]
    return names, argv


def test_the_walk_sees_the_pages() -> None:
    """The extractor finds the commands of every CLI (a broken one would check nothing)."""
    programs = {_argv(c)[0] for _, c in _commands() if _not_run(c) is None}
    assert {"make", "torchrun", *MAINS} <= programs


# -- commands named in the prose (inline code), k8s/README.md and THREAT_MODEL.md included ----

#: How an inline span starts when it is a command a reader may type.
INLINE_PROGRAMS = (*MAINS, "make", "kubectl", "torchrun", *PYTHONS, "pip install")

#: Repository folders whose files the prose names (a path there must exist).
REPO_DIRS = ("bench/", "docs/", "k8s/", "tests/", "stream/", "sandbox/", "synth/", "train/",
             "eval/", "codekiln/")  # fmt: skip


def _inline_commands() -> list[tuple[Block, str]]:
    out = []
    for span in spans():
        first = span.text.split(" ", 1)[0]
        if span.text.startswith(INLINE_PROGRAMS[-1]) or first in INLINE_PROGRAMS:
            out.append((span, span.text))
    return out


def _alternatives(argv: list[str], raw: str) -> list[list[str]]:
    """Every command a synopsis' ``a|b|c`` words stand for (``_argv`` keeps only the first)."""
    words = [w.strip("[]") for w in shlex.split(raw)]
    out = [argv]
    for i, word in enumerate(words[: len(argv)]):
        if "|" in word and "://" not in word and not word.startswith("-"):
            out += [[*argv[:i], alt, *argv[i + 1 :]] for alt in word.split("|")[1:]]
    return out


def _parse_exit(
    module: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int | None, str]:
    """None when ``argv`` parses, else argparse's exit status; and what it printed."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        original(self, args, namespace)
        raise _Parsed

    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
        main: Callable[[list[str]], int] = importlib.import_module(module).main
        try:
            main(argv)
        except _Parsed:
            code = None
        except SystemExit as exc:
            code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def _check_codekiln(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole command parses; a command named without its required arguments (``codekiln-eval
    run``) is a real subcommand whose help lists every option the span shows."""
    module = MAINS[argv[0]]
    code, text = _parse_exit(module, argv[1:], monkeypatch, capsys)
    if code is None:
        return
    assert code == 2, f"{argv}: {text[-500:]}"
    assert "required" in text, f"{argv}: {text[-500:]}"
    words = [w for w in argv[1:] if not w.startswith("-")]
    options = [w.split("=")[0] for w in argv[1:] if w.startswith("-")]
    for n in range(len(words), -1, -1):  # the longest run of words that names a subcommand
        code, text = _parse_exit(module, [*words[:n], "--help"], monkeypatch, capsys)
        if code == 0:
            break
    assert code == 0, f"{argv}: no such subcommand\n{text[-500:]}"
    for option in options:
        assert option in text.split(), f"{argv}: {option} is not an option of it"


def _check_python(
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    names: list[str] | None = None,
) -> None:
    """``python bench/x.py [options]``: the script parses them; ``python -m m``: m exists;
    ``python -m pytest ... FILES``: the files exist and read the variables set before it."""
    if len(argv) == 1:
        return  # the word alone
    if argv[1:3] == ["-m", "pytest"]:
        files = [REPO / a.split("::")[0] for a in argv[3:] if a.startswith("tests/")]
        assert files, f"{argv}: runs no test file of the repository"
        for path in files:
            assert path.exists(), f"{argv}: no {path.relative_to(REPO)}"
        sources = "".join(f.read_text() for f in files if f.is_file())
        for name in names or []:
            assert name in sources, f"{argv}: the tests it runs do not read ${name}"
        return
    for name in names or []:
        assert name in _env_read(), f"{argv}: no code reads ${name}"
    if argv[1] == "-m":
        if argv[2].split(".")[0] in EXTERNAL:
            return  # vllm's own server module: in .venv-vllm (`make vllm`), checked above
        assert importlib.util.find_spec(argv[2]) is not None, f"no module {argv[2]}"
        if argv[3:] and argv[2].startswith("tests."):
            script = REPO / (argv[2].replace(".", "/") + ".py")
        else:
            return
    else:
        script = REPO / argv[1]
        assert script.is_file(), f"no script {argv[1]}"
    options = argv[3:] if argv[1] == "-m" else argv[2:]
    if "argparse" not in script.read_text():  # a script reading sys.argv itself
        for option in options:
            assert f'"{option}"' in script.read_text(), f"{argv}: {script.name} takes no {option}"
        return
    monkeypatch.setattr(sys, "argv", [str(script), *options])
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    monkeypatch.syspath_prepend(str(script.parent))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except _Parsed:
        return
    except SystemExit as exc:
        raise AssertionError(f"{argv}: {capsys.readouterr().err[-500:]}") from exc
    raise AssertionError(f"{argv}: {script.name} ran without parsing its arguments")


def _check_kubectl(argv: list[str], command: str) -> None:
    """``kubectl apply|kustomize -k DIR``: DIR holds a kustomization; a secret's name is one
    the manifests mount."""
    if "create" in argv and "secret" in argv:
        name = argv[argv.index("generic") + 1]
        manifests = "".join(p.read_text() for p in (REPO / "k8s").rglob("*.yaml"))
        assert name in manifests, f"no manifest uses the secret {name}"
        return
    folder = argv[-1]
    if command.endswith((" DIR", "kustomize", "kubectl")):
        return  # the generic form, no folder named
    assert (REPO / folder / "kustomization.yaml").is_file(), f"no kustomization in {folder}"


def _check_pip(command: str) -> None:
    """``pip install 'codekiln[extra]'`` (or ``'.[extra]'``): the extra exists."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    named = re.findall(r"(?:codekiln|\.)\[([\w,-]+)\]", command)
    assert named, f"{command!r}: installs no extra of codekiln"
    for extra in ",".join(named).split(","):
        assert extra in extras, f"no extra [{extra}] in pyproject.toml"


INLINE = [
    pytest.param(span, command, id=f"{span.where}:{command[:50]}")
    for span, command in _inline_commands()
]


@pytest.mark.parametrize(("span", "command"), INLINE)
def test_inline_command_is_understood(
    span: Block,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A command named in the prose exists as shown: its subcommand and options, its make
    target, its kustomize folder, its bench script's options, its package extra."""
    if command == "pip install":
        return  # the word alone
    argv = _argv(command.replace("<pod name>", "pod-0"))
    for alternative in _alternatives(argv, command):
        if alternative[0] in MAINS:
            _check_codekiln(alternative, monkeypatch, capsys)
        elif alternative[0] == "make":
            for target in alternative[1:]:
                makefile = (REPO / "Makefile").read_text()
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no target {target}"
        elif alternative[0] == "torchrun":
            if "codekiln.train.cli" in alternative:
                rest = alternative[alternative.index("codekiln.train.cli") + 1 :]
                _check_codekiln(["codekiln-train", *rest], monkeypatch, capsys)
        elif alternative[0] in PYTHONS:
            _check_python(alternative, monkeypatch, capsys)
        elif alternative[0] == "kubectl":
            _check_kubectl(alternative, command)
        else:
            _check_pip(command)


def test_inline_paths_exist() -> None:
    """Every repository file or folder the prose names (``bench/...``, ``tests/...``) exists."""
    missing = [
        f"{span.where}: {span.text}"
        for span in spans()
        if re.fullmatch(r"[\w./-]+", span.text)
        and span.text.startswith(REPO_DIRS)
        and not (REPO / span.text.split("::")[0]).exists()
    ]
    assert not missing, missing


# -- commands run for real, on small inputs -------------------------------------------------


def _python_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(i),
            "text": "".join(f"print('step {j}')\n" for j in range(i % 4 * 3))
            + f"def add_{i}(a, b):\n    return a + b + {i}\n",
            "lang": "Python",
            "path": f"m{i}.py",
        }
        for i in range(n)
    ]


def _web_pages() -> list[dict[str, Any]]:
    """Labelled pages for docs/stream-stage2.md's webclf commands: code on dev*, prose on news*."""
    code = [
        "def add(a, b):\n    return a + b\n",
        "for (int i = 0; i < n; i++) { x[i] = 0; }",
        "import numpy as np\nx = np.zeros(3)",
        "public static void main(String[] args) {}",
    ]
    prose = [
        "The weather today is sunny and warm in the city.",
        "Buy cheap shoes online, free shipping on all orders.",
        "Our team won the football match last night.",
        "Mix flour, sugar and eggs, then bake for an hour.",
    ]
    return [
        {"text": f"{t} v{i}", "label": label, "url": f"https://{host}{i % 3}.example.com/p{i}"}
        for i in range(10)
        for texts, label, host in ((code, "code", "dev"), (prose, "other", "news"))
        for t in texts
    ]


def _prepare(cwd: Path, data_dir: Path) -> None:
    """The files a reader of the pages would have: a corpus, a source tree, the data dir,
    the inputs the commands of docs/stream-stage2.md name, a training config."""
    shards.write_objects(cwd / "corpus.jsonl", _python_records(40))
    (cwd / "out" / "run" / "corpus").mkdir(parents=True)
    shards.write_objects(
        cwd / "out" / "run" / "corpus" / "part-00000.jsonl.zst", _python_records(20)
    )
    (cwd / "src").mkdir()  # a source tree: real modules, which the default filters keep
    for name in ("units.py", "shards.py", "progress.py"):
        (cwd / "src" / name).write_text((REPO / "codekiln" / name).read_text())
    (cwd.parent / "shared").mkdir(exist_ok=True)
    link = cwd.parent / "shared" / "data"
    if not link.exists():
        link.symlink_to(data_dir)  # the pages' ../shared/data, seen from this folder
    records = _python_records(10)
    shards.write_objects(cwd / "synth.jsonl", [{**r, "id": f"s{r['id']}"} for r in records])
    shards.write_objects(cwd / "books.jsonl", [{**r, "id": f"b{r['id']}"} for r in records])
    pages = _web_pages()
    shards.write_objects(cwd / "labelled.jsonl", pages)
    shards.write_objects(cwd / "heldout.jsonl", pages[::5])
    shards.write_objects(cwd / "code_pages.jsonl", [p for p in pages if p["label"] == "code"])
    shards.write_objects(cwd / "web_pages.jsonl", [p for p in pages if p["label"] == "other"])
    shards.write_objects(cwd / "pages.jsonl", [{"text": p["text"], "url": p["url"]} for p in pages])
    shards.write_objects(cwd / "seeds.jsonl", pages[:20] + pages[-20:])
    shards.write_objects(cwd / "records.jsonl", _python_records(5))
    config = yaml.safe_load(_train_yaml(cwd).read_text())
    (cwd / "file.yaml").write_text(yaml.safe_dump({**config, "deepspeed": {"zero_stage": 2}}))
    for folder, name, version, n in (
        ("he", "humaneval+", "v0.1.10", 164),
        ("mbpp", "mbpp+", "v0.2.0", 378),
    ):
        (cwd / "out" / folder).mkdir()
        results = {  # what eval/evaluate.py writes, the fields compare reads
            "model": "my-coder",
            "dataset": {"name": name, "variant": "full", "version": version, "n_tasks": n},
            "pass_at_k": {"base": {"pass@1": 70.0}, "plus": {"pass@1": 65.0}},
        }
        (cwd / "out" / folder / "eval_results.json").write_text(json.dumps(results))


def _output_table(page: str) -> list[str]:
    """The paths in the first column of a page's ``## Output`` table (``a``, ``b`` split), as
    glob patterns (``NNNNN`` -> ``*``)."""
    text = (REPO / page).read_text(encoding="utf-8").split("## Output", 1)[1]
    rows = [line for line in text.split("\n## ", 1)[0].splitlines() if line.startswith("| `")]
    paths = [path for row in rows for path in re.findall(r"`([^`]+)`", row.split("|")[1])]
    return [path.replace("NNNNN", "*").rstrip("/") for path in paths]


def _layout(page: str, folder: str) -> Callable[[Path, str], None]:
    """A run's result: every path of ``page``'s output table is in ``folder``."""

    def check(cwd: Path, stdout: str) -> None:
        listed = _output_table(page)
        assert len(listed) >= 4, listed
        for pattern in listed:
            assert list((cwd / folder).glob(pattern)), (pattern, sorted((cwd / folder).rglob("*")))

    return check


def _json_out(key: str) -> Callable[[Path, str], None]:
    def check(cwd: Path, stdout: str) -> None:
        assert key in json.loads(stdout), stdout[-500:]

    return check


def _files(*names: str) -> Callable[[Path, str], None]:
    def check(cwd: Path, stdout: str) -> None:
        for name in names:
            assert (cwd / name).is_file(), name
            assert (cwd / name).stat().st_size, name

    return check


def _scores(cwd: Path, stdout: str) -> None:
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [line["score"] for line in lines] == [1.0] * 5, stdout[-500:]  # every answer YES


def _stream_run(cwd: Path, stdout: str) -> None:
    _layout("docs/stream.md", "out/dir")(cwd, stdout)  # every path of the page's layout
    manifest = json.loads((cwd / "out" / "dir" / "manifest.json").read_text())
    assert manifest["corpus"]["records"] >= 1, manifest["corpus"]  # not an empty corpus


def _ray_run(cwd: Path, stdout: str) -> None:
    manifest = json.loads((cwd / "out" / "ray" / "manifest.json").read_text())
    assert manifest["complete"], manifest
    assert manifest["executor"]["kind"] == "ray", manifest["executor"]
    shards_named = [p.name for p in (cwd / "out" / "ray" / "corpus").iterdir()]
    assert shards_named, "no corpus shard"
    assert all(re.fullmatch(r"part-s\d{5}-\d{5}\.jsonl\.zst", n) for n in shards_named), (
        shards_named  # docs/ray.md: part-sNNNNN-MMMMM.jsonl.zst
    )


def _pytorchjob(cwd: Path, stdout: str) -> None:
    kinds = {doc["kind"] for doc in yaml.safe_load_all(stdout) if doc}
    assert "PyTorchJob" in kinds, kinds


def _mixture(cwd: Path, stdout: str) -> None:
    streams = {r["meta"]["mix_stream"] for r in shards.read_objects(cwd / "anneal.jsonl.zst")}
    assert {"original", "synthetic", "textbooks"} <= streams, streams


#: Commands run for real: a prefix of the page's command -> the exit code it must give and
#: what checks its result (None: the exit code and no traceback).
RUN: dict[str, tuple[int, Callable[[Path, str], None] | None]] = {
    "codekiln-synth prompts": (0, None),
    "codekiln-eval launch --help": (0, None),
    "codekiln-stream tune corpus.jsonl": (0, None),
    "codekiln-synth decontam out/run/corpus": (0, None),
    "codekiln-stream run INPUT... --out DIR": (0, _stream_run),
    "codekiln-train deepspeed-config": (0, _json_out("zero_optimization")),
    "codekiln-train launch --name": (0, _pytorchjob),  # --dry-run: renders, submits nothing
    # no --dry-run and no cluster here (KUBECONFIG names no file): one line, exit 1
    "codekiln-eval launch --name": (1, None),
    "codekiln-stream anneal-mix": (0, _mixture),
    "codekiln-stream webclf train --data": (0, _files("model.bin")),
    "codekiln-stream webclf train --positive": (0, _files("model.bin")),
    "codekiln-stream webclf evaluate": (0, None),
    "codekiln-stream webclf score": (0, _files("scored.jsonl")),
    "codekiln-stream webclf domains": (0, _files("domains.json")),
    "codekiln-stream webclf iterate": (0, _files("model.bin")),
    "codekiln-eval compare": (0, _files("report/compare.md", "report/compare.png")),
    "codekiln-synth score": (0, _scores),  # the LLM: a fake OpenAI server answering YES
    # docs/ray.md's local Ray instance (the lines with --address need a cluster): whole line
    "codekiln-stream run /data/raw --out /data/refinecode --executor ray$": (0, _ray_run),
}

#: Words of a synopsis replaced where the generic fill does not fit a real run.
RUN_WORDS = {
    "out.json": "tune.json",  # tune's --json FILE beside the corpus
    "OUT/corpus": "out/run/corpus",  # anneal-mix: a run's corpus folder
    "/data/raw": "src",  # docs/ray.md's input and output, here
    "/data/refinecode": "out/ray",
}
#: Option values replaced in a run: anneal-mix's --total N counts characters, 2 would write
#: nothing; --rounds 3 of webclf iterate are kept.
RUN_VALUES = {"--total": "4000"}


def _runs(command: str, key: str) -> bool:
    """A key of RUN is a prefix of the commands it runs, or with a final ``$`` the whole line."""
    return command == key[:-1] if key.endswith("$") else command.startswith(key)


@pytest.mark.slow
def test_cheap_commands_run(tmp_path: Path, data_dir: Path) -> None:
    """The pages' cheap commands run as typed (placeholders filled) in a fresh folder."""
    cwd = tmp_path / "user"
    cwd.mkdir()
    _prepare(cwd, data_dir)
    ran: set[str] = set()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEKILN_")}
    env["CODEKILN_LOG_DIR"] = str(tmp_path / "logs")
    env["KUBECONFIG"] = str(tmp_path / "no-kubeconfig")  # no cluster, whatever the host has
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--text", "YES"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    ) as llm:  # fmt: skip
        try:
            assert llm.stdout is not None
            ready = llm.stdout.readline().split()
            assert ready[:1] == ["READY"], ready
            _run_commands(cwd, env, {**RUN_WORDS, "http://gpu:8000": ready[1]}, ran)
        finally:
            llm.terminate()
    assert ran == set(RUN), f"documented commands no longer on the pages: {set(RUN) - ran}"


def _run_commands(cwd: Path, env: dict[str, str], words: dict[str, str], ran: set[str]) -> None:
    for block, command in _commands():
        prefix = next((p for p in RUN if _runs(command, p)), None)
        if prefix is None:
            continue
        argv = [words.get(a, a) for a in _argv(command)]
        for i, word in enumerate(argv[:-1]):
            argv[i + 1] = RUN_VALUES.get(word, argv[i + 1])
        if argv[:2] == ["codekiln-stream", "run"] and "--config" in argv:
            i = argv.index("--config")  # a synopsis' optional config: the default pipeline
            del argv[i : i + 2]
        proc = subprocess.run(
            [sys.executable, "-m", MAINS[argv[0]], *argv[1:]],
            cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        code, check = RUN[prefix]
        assert proc.returncode == code, f"{block.where}: {command}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, proc.stderr
        if code:  # a failure a user can act on: one line
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        if check is not None:
            check(cwd, proc.stdout)
        ran.add(prefix)


# -- YAML and Python blocks -------------------------------------------------------------------


def _yaml_blocks() -> list[Any]:
    return [pytest.param(b, id=b.where) for b in blocks("yaml")]


def _train_yaml(folder: Path) -> Path:
    """A training config for the pages' ``train: {config: train.yaml}`` (fits 8 or 16 GPUs)."""
    path = folder / "train.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "stage": "pretrain",
                "model": {"preset": "tiny"},
                "data": {"corpus_dir": "/data/corpus", "tokenizer_path": "/data/tok.json"},
                "batch": {"global_batch": 256, "micro_batch": 4},
                "checkpoint": {"dir": "/ckpt", "export_dir": "/ckpt/export"},
            }
        )
    )
    return path


@pytest.mark.parametrize("block", _yaml_blocks())
def test_documented_yaml_is_valid(
    block: Block, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each YAML block validates as what it configures (endpoints are not contacted)."""
    data = yaml.safe_load(block.text)
    if stage_entries(block) and (isinstance(data, list) or set(data) == {"stages"}):
        return  # pipeline steps: built one by one in test_doc_configs.py
    assert isinstance(data, dict), f"{block.where}: neither steps nor a mapping"
    monkeypatch.chdir(tmp_path)
    _train_yaml(tmp_path)
    if set(data) == {"launch"}:
        from codekiln.train.launcher import validate_launch_config

        validate_launch_config(data["launch"])
    elif "model" in data or "optim" in data:
        from codekiln.train.config import TrainConfig

        TrainConfig.from_dict(data).validate(1)
    else:
        from codekiln.flow import FlowEnv, flow_from_dict

        stages = [s for s in data.get("stages") or [] if "mypkg." not in str(s)]
        raw = {**data, "stages": stages} if "stages" in data else data
        env = FlowEnv.from_environ({"CODEKILN_DATA_DIR": str(data_dir)})
        flow_from_dict(raw, env)


PY = [pytest.param(b, id=b.where) for b in blocks("python")]


@pytest.mark.parametrize("block", PY)
def test_documented_python_compiles_and_imports(block: Block) -> None:
    """Each Python block compiles, and what it imports from codekiln exists."""
    tree = ast.parse(block.text, filename=block.where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("codekiln"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{block.where}: {node.module}.{alias.name}"


def test_every_block_is_walked() -> None:
    """No block escapes the walk: each is a command, YAML, Python, or named in NOT_RUN."""
    for block, command in _commands():
        if _not_run(command) is None:
            program = _environment(_argv(command))[1][0]
            known = {"make", "torchrun", "export", *PYTHONS, *MAINS, *EXTERNAL}
            if command in SHELL:
                continue
            assert program in known, f"{block.where}: {command!r}"


# -- the tiny training run of docs/train.md ---------------------------------------------------


@pytest.mark.slow
def test_tiny_training_run_of_docs_train(tmp_path: Path) -> None:
    """docs/train.md's tiny.yaml trains for real (two steps) on a corpus and a tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    [block] = [b for b in blocks("yaml") if b.text.startswith("# tiny.yaml")]
    cwd = tmp_path / "user"
    (cwd / "out" / "run" / "corpus").mkdir(parents=True)
    texts = [r["text"] for r in _python_records(200)]
    shards.write_objects(cwd / "out/run/corpus/part-00000.jsonl.zst", [{"text": t} for t in texts])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    (cwd / "tok").mkdir()
    tok.save(str(cwd / "tok" / "tokenizer.json"))
    (cwd / "tiny.yaml").write_text(block.text)
    proc = subprocess.run(
        [sys.executable, "-m", "codekiln.train.cli", "run", "--config", "tiny.yaml",
         "--stop-at-step", "2"],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done["event"] == "done"
    assert done["steps"] == 2
    assert (cwd / "out" / "ckpt" / "metrics.jsonl").is_file()
    # then the synopsis' export line, on that run: a model folder vLLM can serve (docs/vllm.md)
    [export] = [c for _, c in _commands() if c.startswith("codekiln-train export")]
    argv = [{"FILE": "tiny.yaml", "DIR": "out/model"}.get(w, w) for w in shlex.split(export)]
    argv = [w for w in argv if not w.startswith("[")][: argv.index("--out") + 2]
    proc = subprocess.run(
        [sys.executable, "-m", MAINS[argv[0]], *argv[1:]],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = cwd / "out" / "model"
    config = json.loads((model / "config.json").read_text())
    assert config["model_type"] == "llama", config
    assert (model / "tokenizer.json").is_file(), sorted(p.name for p in model.iterdir())
    assert list(model.glob("*.safetensors")), sorted(p.name for p in model.iterdir())


# -- diagrams and what make run does -----------------------------------------------------------


def test_diagrams_name_real_modules() -> None:
    """The diagrams (``text`` blocks: README's architecture) name modules and files that exist:
    every ``codekiln.x`` module is found, every ``*.py`` is a file (``codekiln/`` or the
    repository's root, for a bare name beside one with its folder)."""
    diagrams = [b for b in blocks() if b.lang in NOT_RUN_LANGS]
    assert diagrams, "no diagram found"
    for block in diagrams:
        modules = set(re.findall(r"\bcodekiln(?:\.\w+)+", block.text))
        files = set(re.findall(r"[\w/]+\.py\b", block.text))
        assert modules or files, f"{block.where}: names nothing to check"
        for module in modules:
            assert importlib.util.find_spec(module) is not None, f"{block.where}: {module}"
        for name in files:
            assert (REPO / name).is_file() or (REPO / "codekiln" / name).is_file(), (
                f"{block.where}: {name}"
            )


def _make_run() -> str:
    """The command ``make run`` runs, its variables expanded (``$(BIN)/`` is the venv's)."""
    makefile = (REPO / "Makefile").read_text()
    [recipe] = re.findall(r"^run:.*\n\t(.+)", makefile, re.M)
    variables = dict(re.findall(r"^(\w+) \?= (.+)$", makefile, re.M))
    recipe = recipe.replace("$(BIN)/", "")
    return re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], recipe)


def test_what_make_run_does_is_what_the_pages_say() -> None:
    """A line the pages mark ``# what `make run` does`` is the Makefile's run recipe; a path
    marked ``# what `make run` writes`` is under its --out."""
    recipe = _make_run()
    out = shlex.split(recipe)[shlex.split(recipe).index("--out") + 1]
    marked = 0
    for block in blocks():
        for line in block.text.splitlines():
            code, _, comment = line.partition("#")
            if "what `make run` does" in comment:
                assert code.strip() == recipe, f"{block.where}: {code.strip()!r} != {recipe!r}"
                marked += 1
            elif "what `make run` writes" in comment:
                path = code.split(":", 1)[-1].strip()
                assert path.startswith(out + "/"), f"{block.where}: {path} is not under {out}"
                marked += 1
    assert marked >= 2, "the pages no longer say what make run does"


# -- commands the pages say k8s/ runs ----------------------------------------------------------


def _manifest_commands() -> list[list[str]]:
    """Every command line a manifest under k8s/ runs: containers' command + args, a RayJob's
    entrypoint, the ``exec`` line of a shell script."""
    found: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("entrypoint"), str):
                found.append(shlex.split(node["entrypoint"]))
            if isinstance(node.get("command"), list):
                argv = [str(a) for a in node["command"] + node.get("args", [])]
                found.append(argv)
                for line in " ".join(argv).replace("\\\n", " ").splitlines():
                    if line.strip().startswith("exec "):
                        found.append(shlex.split(line.strip())[1:])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((REPO / "k8s").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            walk(doc)
    return found


#: A page's placeholder -> what the manifest puts there.
K8S_FILL = {"<pod name>": "$(WORKER_POD)"}


def test_commands_the_pages_say_k8s_runs() -> None:
    """A command of the pages that reads its config from /etc/codekiln (where the manifests
    mount it) is one a manifest under k8s/ runs, word for word."""
    shown = [c for _, c in _commands()] + [s.text for s in spans()]
    shown = [c for c in shown if "/etc/codekiln/" in c and c.split()[0] in (*MAINS, "torchrun")]
    assert len(shown) >= 3, shown  # the RayJob, the stream worker, the PyTorchJob
    run = _manifest_commands()
    for command in shown:
        filled = command
        for placeholder, value in K8S_FILL.items():
            filled = filled.replace(placeholder, value)
        assert shlex.split(filled) in run, f"no manifest under k8s/ runs {command!r}"


def test_the_configs_k8s_mounts_are_valid(data_dir: Path) -> None:
    """The pipeline and worker configs the k8s/ ConfigMaps mount (k8s/ray/pipeline.yaml,
    k8s/base/stream/stream.yaml) load with the flow's own loader, as the pods would."""
    from codekiln.flow import FlowEnv, flow_from_dict

    env = FlowEnv.from_environ({"CODEKILN_DATA_DIR": str(data_dir)})
    for path in (REPO / "k8s" / "ray" / "pipeline.yaml", REPO / "k8s/base/stream/stream.yaml"):
        flow_from_dict(yaml.safe_load(path.read_text()), env)
