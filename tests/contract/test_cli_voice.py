"""Issue 19: the five CLIs speak one way (one-line user errors, help with defaults, exit codes)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import codekiln.sandbox.cli_base
import pytest

import codekiln.cli_common

CLIS = ["stream", "sandbox", "synth", "train", "eval"]


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, check=False, timeout=120
    )


def test_sandbox_serve_port_in_use_is_one_line(tmp_path: Path) -> None:
    """serve on a port another process listens on: exit 1, one line, before any container."""
    token = tmp_path / "token"
    token.write_text(secrets.token_urlsafe(32))
    token.chmod(0o600)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _run(
            "-m", "codekiln.sandbox.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--token-file", str(token),
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "another --port" in line


@pytest.mark.parametrize("cli", CLIS)
def test_bad_usage_exits_2(cli: str) -> None:
    """An unknown flag is a usage error, exit 2, for every CLI."""
    proc = _run("-m", f"codekiln.{cli}.cli", "--no-such-flag")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("cli", "argv"),
    [
        ("stream", ["run", "{missing}", "--out", "{tmp}/out"]),
        ("synth", ["decontam", "{missing}"]),
        ("eval", ["evaluate", "{missing}", "--dataset", "humaneval+", "--out", "{tmp}/o",
                  "--sandbox-url", "http://127.0.0.1:9"]),
        ("eval", ["evaluate", "{tmp}/s.jsonl", "--dataset", "humaneval+", "--out", "{tmp}/o",
                  "--data-dir", "{missing}", "--sandbox-url", "http://127.0.0.1:9"]),
        ("eval", ["compare", "{missing}"]),
        ("stream", ["tune", "{missing}", "--rule", "py_frac_lines_print"]),
        ("train", ["run", "--config", "{missing}"]),
        ("sandbox", ["serve", "--port", "0", "--token-file", "{missing}"]),
        ("sandbox", ["image", "load", "{missing}"]),
    ],
)  # fmt: skip
def test_missing_input_is_one_line(cli: str, argv: list[str], tmp_path: Path) -> None:
    """A missing input path (an input, samples, results, benchmark, config, token or image
    file): exit 2 as docs/cli.md says (some were 1), one line naming it, no traceback."""
    missing = str(tmp_path / "nope.jsonl")
    (tmp_path / "s.jsonl").write_text('{"task_id": "HumanEval/0", "solution": "x"}\n')
    args = [a.format(missing=missing, tmp=tmp_path) for a in argv]
    env = {**os.environ, "CODEKILN_LOG_DIR": str(tmp_path / "logs")}
    proc = _run("-m", f"codekiln.{cli}.cli", *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "nope.jsonl" in line


@pytest.mark.parametrize(
    ("module", "patched", "argv"),
    [
        ("synth", "_cmd_prompts", ["prompts"]),
        ("sandbox", "_image", ["image", "tag"]),
        ("train", "_run", ["run", "--config", "x.yaml"]),
        ("eval", "run_main", ["evaluate", "x.jsonl", "--dataset", "mbpp+", "--out", "o"]),
        ("stream", "cmd_run", ["run", "x.jsonl", "--out", "o"]),
    ],
)
def test_internal_error_is_one_line_and_logged(
    tmp_path: Path, module: str, patched: str, argv: list[str]
) -> None:
    """An unexpected exception: one line naming the log file, which holds the traceback (every
    CLI through one helper, codekiln.sandbox.cli_base.internal_error, the sandbox's too)."""
    logs = tmp_path / "logs"
    code = (
        "import sys\n"
        f"import codekiln.{module}.cli as cli\n"
        "def boom(args):\n"
        "    raise RuntimeError('kaboom')\n"
        f"cli.{patched} = boom\n"
        f"sys.exit(cli.main({argv!r}))\n"
    )
    env = {**os.environ, "CODEKILN_LOG_DIR": str(logs)}
    proc = _run("-c", code, env=env)
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    log = logs / f"codekiln-{module}.log"
    # word for word the shared handler's line, for every CLI
    assert line == f"codekiln-{module}: internal error: RuntimeError: kaboom (traceback: {log})"
    assert "Traceback" in log.read_text()


@pytest.mark.parametrize(
    ("module", "sub", "shown"),
    [
        ("stream.cli", "run", "(default: local)"),
        ("sandbox.cli", "serve", "(default: 8080)"),
        ("synth.cli", "decontam", "(default: text)"),
        ("eval.cli", "evaluate", "(default: 4)"),
        ("stream.cli", "tune", "(default: 0)"),
        # registered by another module, options without a help text
        ("stream.cli", "anneal-mix", "--original-share ORIGINAL_SHARE (default: 0.84)"),
        ("stream.cli", "webclf train", "--epoch EPOCH (default: 10)"),  # a nested subcommand
        # one contributed subcommand run alone (codekiln.stream.subcommand.standalone_main)
        ("stream.sampling.cli", "anneal-mix", "--max-repeat MAX_REPEAT (default: 4.0)"),
        ("stream.filters.tune", "tune", "(default: 0)"),
        ("eval.cli", "run", "--top-p TOP_P (default: 1.0)"),  # an option without a help text
        ("eval.cli", "launch", "--out-dir OUT_DIR (default: /data/eval)"),
        ("train.cli", "launch", "--nodes NODES (default: 1)"),
    ],
)
def test_help_shows_defaults(module: str, sub: str, shown: str) -> None:
    """--help of a subcommand shows the defaults of its options."""
    proc = _run("-m", f"codekiln.{module}", *sub.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert shown in " ".join(proc.stdout.split())


def test_one_copy_of_the_shared_voice() -> None:
    """codekiln.cli_common re-exports codekiln.sandbox.cli_base's names as the same objects: the
    sandbox deploys alone, so the one copy all five CLIs use lives there."""
    shared = codekiln.sandbox.cli_base.__all__
    assert set(shared) <= set(codekiln.cli_common.__all__)
    for name in shared:
        assert getattr(codekiln.cli_common, name) is getattr(codekiln.sandbox.cli_base, name)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_eval_run_checks_the_sandbox_before_generating(tmp_path: Path, data_dir: Path) -> None:
    """`codekiln-eval run` with a sandbox that is not there: exit 2 and one line at once, before
    any generation (it waited 120 s for the LLM, then generated, and only then found it)."""
    url = _closed_port_url()
    proc = _run(
        "-m", "codekiln.eval.cli", "run", "--endpoint", url, "--dataset", "humaneval+",
        "--data-dir", str(data_dir), "--out", str(tmp_path / "o"), "--sandbox-url", url,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"the sandbox at {url} is not usable" in line
    assert not (tmp_path / "o" / "samples.jsonl").exists()


async def test_eval_generation_says_an_unusable_llm_in_one_error(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An LLM that never becomes ready is an EvalError naming it (the CLI's exit 1, one line),
    not an internal error; the wait itself is reported on the log as it goes."""
    from codekiln.eval.data import load_dataset
    from codekiln.eval.errors import EvalError
    from codekiln.eval.generate import GenConfig, generate
    from codekiln.synth.llm import LLMClient

    real_wait = LLMClient.wait_ready

    async def short_wait(self: LLMClient, timeout_s: float = 60.0, **kwargs: object) -> list[str]:
        return await real_wait(self, 0.5, poll_s=0.1, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LLMClient, "wait_ready", short_wait)
    url = _closed_port_url()
    log = tmp_path / "log.txt"
    with log.open("w") as fh, pytest.raises(EvalError, match=f"the LLM at {url} is not usable"):
        await generate(load_dataset("humaneval+", data_dir), GenConfig(endpoint=url), tmp_path, fh)
    assert f"waiting for an LLM endpoint ({url})" in log.read_text()


def test_worker_once_on_a_missing_or_empty_folder(tmp_path: Path) -> None:
    """`codekiln-stream worker --once`: a watch folder that does not exist is exit 2 and one
    line (it watched nothing and exited 0); an empty one is exit 0 and says nothing was done."""
    config = tmp_path / "w.yaml"
    config.write_text("input: {format: jsonl}\n")
    base = ["-m", "codekiln.stream.cli", "worker", "--config", str(config), "--metrics-port", "0"]
    missing = _run(*base, "--watch-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                   "--once")  # fmt: skip
    assert missing.returncode == 2, missing.stderr
    [line] = missing.stderr.strip().splitlines()
    assert f"the watch folder {tmp_path / 'nope'} does not exist" in line
    (tmp_path / "empty").mkdir()
    empty = _run(*base, "--watch-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "o"),
                 "--once")  # fmt: skip
    assert empty.returncode == 0, empty.stderr
    assert f"no shard to claim in {tmp_path / 'empty'}: nothing done" in empty.stderr
