"""codekiln.flow: the combined config checked whole before any work, and the steps after the
corpus commits (synthesis, launch) composed above the stream engine."""

from __future__ import annotations

import asyncio
import importlib.machinery
import json
import re
import socket
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.stream import cli
from codekiln.stream.runtime.errors import ConfigError

from codekiln.flow import FlowEnv, flow_from_dict, load_flow
from tests.fakes.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]

TRAIN = {
    "model": {"preset": "opencoder-1.5b"},
    "data": {"tokenizer_path": "/data/tokenizer/tokenizer.json"},
    "batch": {"global_batch": 1024, "micro_batch": 4},
}


def _src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.py").write_text("def a():\n    return 1\n")
    (root / "b.py").write_text("def b():\n    return 2\n")
    return root


def _cfg(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> None:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attrs.items():
        setattr(mod, key, value)
    monkeypatch.setitem(sys.modules, name, mod)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _run(tmp_path: Path, raw: dict[str, Any]) -> int:
    config = str(_cfg(tmp_path, raw))
    out = str(tmp_path / "out")
    return cli.main(["run", str(_src(tmp_path)), "--out", out, "--config", config, "--no-progress"])


def _errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [
        line.removeprefix("codekiln-stream: error: ")
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("codekiln-stream: error: ")
    ]


def _keys(errors: list[str]) -> list[str]:
    """What each ``config: <key>: <problem>`` line names (the problem too, where a colon does
    not follow the key)."""
    return [e.split(":")[1].strip() for e in errors]


#: The keys that a bad runtime.batch_size, synth.max_seeds and launch section give, in order.
BAD_SECTIONS = ["runtime.batch_size", "synth.max_seeds must be an integer >= 0, got -1", "launch"]


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    """A real fake OpenAI server on port 0, served from its own thread (the CLI under test
    runs its own event loop)."""
    server = FakeOpenAIServer(model="fake-coder")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


class TestCheckedBeforeWork:
    def test_invalid_launch_section_fails_before_the_run(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """docs' `launch: {preset: anneal}` is refused up front: exit 2, one line, no output."""
        assert _run(tmp_path, {"stages": ["noop"], "launch": {"preset": "anneal"}}) == 2
        errors = _errors(capsys)
        assert len(errors) == 1
        assert errors[0].startswith("config: launch: ")
        assert "preset" in errors[0]
        assert not (tmp_path / "out").exists()

    def test_unreachable_llm_url_fails_before_the_run(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An LLM URL nobody listens on is one clear line and exit 2, before any output."""
        monkeypatch.setenv("CODEKILN_DATA_DIR", str(tmp_path))
        url = f"http://127.0.0.1:{_closed_port()}/v1"
        assert _run(tmp_path, {"stages": ["noop"], "synth": {"llm_url": url}}) == 2
        errors = _errors(capsys)
        assert len(errors) == 1
        assert errors[0].startswith(f"config: synth.llm_url: cannot reach {url}: ")
        assert not (tmp_path / "out").exists()

    def test_every_problem_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problems in several sections are all reported at once, one line each."""
        raw = {
            "runtime": {"batch_size": 0},
            "synth": {"max_seeds": -1},
            "launch": {"image": "reg/codekiln:1", "train": {"config": TRAIN}, "colour": 1},
        }
        assert _run(tmp_path, raw) == 2
        errors = _errors(capsys)
        assert _keys(errors) == BAD_SECTIONS
        assert "colour" in errors[2]

    def test_stream_sections_report_every_problem(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Two bad stream keys are two lines, not only the first one found."""
        raw = {"runtime": {"batch_size": 0}, "output": {"format": "csv"}}
        assert _run(tmp_path, raw) == 2
        assert _errors(capsys) == [
            "config: runtime.batch_size: must be >= 1, got 0",
            "config: output.format: expected one of jsonl.zst, parquet, got str 'csv'",
        ]
        assert not (tmp_path / "out").exists()

    def test_every_bad_stage_and_option_is_a_line(self) -> None:
        """Each bad step of stages: and each bad option of a step is reported, in order."""
        from codekiln.stream.config import config_from_dict

        with pytest.raises(ConfigError) as info:
            config_from_dict(
                {
                    "bogus": 1,
                    "stages": ["nope", {"name": "noop", "options": {"x": 1, "y": 2}}],
                    "input": {"format": "xml", "max_files": 0},
                }
            )
        lines = str(info.value).splitlines()
        assert [line.split(": ")[1] for line in lines] == [
            "unknown key 'bogus' (known",
            "input.format",
            "input.max_files",
            "stages[0]",
            "stages[1].options",
            "stages[1].options",
        ]

    def test_endpoints_are_checked_while_sections_have_problems(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Bad stream and launch: sections do not hide an unreachable LLM: one pass, all lines."""
        monkeypatch.setenv("CODEKILN_DATA_DIR", str(tmp_path))
        url = f"http://127.0.0.1:{_closed_port()}/v1"
        raw = {
            "runtime": {"batch_size": 0},
            "synth": {"llm_url": url, "max_seeds": -1},
            "launch": {"preset": "anneal"},
        }
        assert _run(tmp_path, raw) == 2
        errors = _errors(capsys)
        assert _keys(errors) == [*BAD_SECTIONS, "synth.llm_url"]
        assert errors[3].startswith(f"config: synth.llm_url: cannot reach {url}: ")

    def test_malformed_llm_url_is_not_probed(self, tmp_path: Path) -> None:
        """A URL that is no string is one line; no reachability line is made up for it."""
        cfg = _cfg(tmp_path, {"synth": {"llm_url": 5}, "runtime": {"batch_size": 0}})
        with pytest.raises(ConfigError) as info:
            load_flow(cfg, FlowEnv(data_dir=str(tmp_path)))
        assert str(info.value).splitlines() == [
            "config: runtime.batch_size: must be >= 1, got 0",
            "config: synth.llm_url: expected a non-empty string, got 5",
        ]

    def test_launch_problem_has_one_prefix(self) -> None:
        """The launcher's key path is the prefix (config: launch.image), never repeated."""
        with pytest.raises(ConfigError) as info:
            flow_from_dict({"launch": {"train": {"config": TRAIN}}})
        assert str(info.value) == ("config: launch.image: the codekiln container image is required")
        with pytest.raises(ConfigError) as info:
            flow_from_dict({"launch": {"image": "reg/codekiln:1", "train": {}}})
        assert str(info.value) == (
            "config: launch.train.config: a training config (file path or mapping) is required"
        )
        with pytest.raises(ConfigError) as info:
            flow_from_dict({"launch": {"preset": "anneal"}})
        assert str(info.value).startswith("config: launch: unknown key(s) preset (known: ")

    def test_synth_without_data_dir_fails_before_the_run(self) -> None:
        """Synthesis needs the decontamination data: without it the config is refused."""
        with pytest.raises(ConfigError) as info:
            flow_from_dict({"synth": {"llm_url": "http://127.0.0.1:9/v1"}}, FlowEnv())
        assert str(info.value) == (
            "config: synth.data_dir: synthesis needs the benchmark files for "
            "decontamination; set synth.data_dir or CODEKILN_DATA_DIR"
        )

    def test_synth_section_takes_the_synthesis_options(self, tmp_path: Path) -> None:
        """docs/synth.md's options (generators, max_seeds, ...) are valid in a stream config."""
        flow = flow_from_dict(
            {"synth": {"generators": ["textbook"], "max_seeds": 3, "data_dir": str(tmp_path)}}
        )
        assert flow.synth == {"generators": ["textbook"], "max_seeds": 3, "data_dir": str(tmp_path)}
        with pytest.raises(ConfigError) as info:
            flow_from_dict({"synth": {"generatorz": ["textbook"]}})
        assert str(info.value).startswith("config: synth: unknown key(s) ['generatorz']")

    def test_launch_without_launcher_module_is_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A launch: section needs the launcher module; without it the config is refused."""
        import codekiln.flow as flow_mod

        monkeypatch.setattr(flow_mod, "LAUNCHER_MODULE", "codekiln_absent.launcher")
        with pytest.raises(ConfigError) as info:
            flow_from_dict({"launch": {"job": "anneal"}})
        assert str(info.value) == (
            "config: launch: launching jobs needs codekiln_absent.launcher:on_corpus_committed, "
            "but it is not installed; remove the 'launch' key or install codekiln[train]"
        )

    def test_relative_export_dir_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """checkpoint.export_dir must be a pod path, like data.* and checkpoint.dir."""
        from codekiln.train.launcher import train_launch_main

        cfg = {
            **TRAIN,
            "data": {**TRAIN["data"], "corpus_dir": "/data/corpus"},
            "checkpoint": {"dir": "/checkpoints/t", "export_dir": "model"},
        }
        path = tmp_path / "train.yaml"
        path.write_text(yaml.safe_dump(cfg))
        argv = ["--name", "t", "--image", "reg/codekiln:1", "--config", str(path), "--dry-run"]
        assert train_launch_main(argv) == 2
        assert (
            "checkpoint.export_dir must be an absolute path inside the pod, got 'model'"
            in capsys.readouterr().err
        )


class TestEndpoints:
    def test_reachable_llm_passes_the_check(
        self, fake_llm: FakeOpenAIServer, tmp_path: Path
    ) -> None:
        """A listening OpenAI-compatible server passes; the check asked it for its models."""
        cfg = _cfg(tmp_path, {"synth": {"llm_url": fake_llm.url + "/v1"}})
        flow = load_flow(cfg, FlowEnv(data_dir=str(tmp_path)))
        assert flow.llm_url == fake_llm.url + "/v1"
        assert [r.path for r in fake_llm.requests] == ["/v1/models"]

    def test_llm_that_is_down_is_one_line(self, fake_llm: FakeOpenAIServer, tmp_path: Path) -> None:
        """An endpoint that answers 500 is reported with its status."""
        url = fake_llm.mode_url("fail")
        cfg = _cfg(tmp_path, {"synth": {"llm_url": url}})
        with pytest.raises(ConfigError) as info:
            load_flow(cfg, FlowEnv(data_dir=str(tmp_path)))
        assert re.fullmatch(
            r"config: synth\.llm_url: \S+/v1/models answered HTTP 500 "
            r"\(not an OpenAI-compatible server\?\)",
            str(info.value),
        )

    @pytest.mark.docker
    def test_wrong_sandbox_token_is_refused(
        self, fake_llm: FakeOpenAIServer, sandbox_service: Any, tmp_path: Path
    ) -> None:
        """A sandbox token the real service refuses fails the check (healthz needs none)."""
        raw = {"synth": {"llm_url": fake_llm.url, "sandbox_url": sandbox_service.url}}
        cfg = _cfg(tmp_path, raw)
        with pytest.raises(ConfigError) as info:
            load_flow(cfg, FlowEnv(data_dir=str(tmp_path), sandbox_token="wrong"))
        assert str(info.value) == (
            f"config: synth.sandbox_url: {sandbox_service.url} refused the token (HTTP 401); "
            "set CODEKILN_SANDBOX_TOKEN_FILE (or CODEKILN_SANDBOX_TOKEN) to its token"
        )
        ok = load_flow(cfg, FlowEnv(data_dir=str(tmp_path), sandbox_token=sandbox_service.token))
        assert ok.sandbox_url == sandbox_service.url


class TestAfterCommit:
    def test_llm_url_calls_synthesis_with_the_synth_options(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_llm: FakeOpenAIServer
    ) -> None:
        """With an LLM endpoint, run_synthesis gets the corpus and the synth: options, and its
        result is in the manifest and the report."""
        calls: list[dict[str, Any]] = []

        def run_synthesis(**kwargs: Any) -> dict[str, Any]:
            calls.append(kwargs)
            return {"generated": 7, "passed": 5}

        _fake_module(monkeypatch, "codekiln.synth.job", run_synthesis=run_synthesis)
        monkeypatch.setenv("CODEKILN_LLM_URL", fake_llm.url + "/v1")
        monkeypatch.setenv("CODEKILN_DATA_DIR", str(tmp_path))
        raw = {"stages": ["noop"], "synth": {"max_seeds": 3, "generators": ["textbook"]}}
        assert _run(tmp_path, raw) == 0
        out = tmp_path / "out"
        assert len(calls) == 1
        config = calls[0].pop("config")
        assert (config.max_seeds, config.generators) == (3, ("textbook",))
        assert calls[0] == {
            "corpus_dir": out / "corpus",
            "out_dir": out / "synth",
            "llm_url": fake_llm.url + "/v1",
            "sandbox_url": None,
            "data_dir": str(tmp_path),
        }
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["synth"]["result"] == {"generated": 7, "passed": 5}
        assert manifest["config"]["synth"]["max_seeds"] == 3
        assert '"generated": 7' in (out / "report.md").read_text()
        # A rerun re-reports the saved result and does not call the step again.
        assert cli.main(["run", str(tmp_path / "src"), "--out", str(out), "--config",
                         str(tmp_path / "cfg.yaml"), "--no-progress"]) == 0  # fmt: skip
        assert len(calls) == 1

    def test_launch_step_gets_the_committed_manifest(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A launch: section is checked first, then on_corpus_committed(manifest_path, config)
        runs after the commit and its result is recorded."""
        checked: list[dict[str, Any]] = []
        calls: list[tuple[Path, dict[str, Any]]] = []

        def on_corpus_committed(manifest_path: Path, launch: dict[str, Any]) -> dict[str, Any]:
            assert json.loads(manifest_path.read_text())["complete"] is True
            calls.append((manifest_path, launch))
            return {"job": "anneal-1", "status": "submitted"}

        _fake_module(
            monkeypatch,
            "codekiln.train.launcher",
            on_corpus_committed=on_corpus_committed,
            validate_launch_config=checked.append,
        )
        assert _run(tmp_path, {"stages": ["noop"], "launch": {"job": "anneal"}}) == 0
        out = tmp_path / "out"
        assert checked == [{"job": "anneal"}]
        assert calls == [(out / "manifest.json", {"job": "anneal"})]
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["launch"] == {"job": "anneal-1", "status": "submitted"}
        assert "anneal-1" in (out / "report.md").read_text()

    def test_failed_launch_after_the_commit_is_one_line(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The launcher's own failure (codekiln.train.LaunchError) is one line and exit 1, not
        an internal error; its config error is a config line and exit 2."""
        from codekiln.train import ConfigError as TrainConfigError
        from codekiln.train import LaunchError

        raised: list[Exception] = [LaunchError("the cluster refused the job: forbidden")]

        def on_corpus_committed(manifest_path: Path, launch: dict[str, Any]) -> dict[str, Any]:
            raise raised[0]

        _fake_module(
            monkeypatch,
            "codekiln.train.launcher",
            on_corpus_committed=on_corpus_committed,
            validate_launch_config=lambda launch: None,
        )
        assert _run(tmp_path, {"stages": ["noop"], "launch": {"job": "anneal"}}) == 1
        assert _errors(capsys) == [
            "launch: LaunchError: the cluster refused the job: forbidden",
        ]
        raised[0] = TrainConfigError("launch.train.config: cannot read t.yaml: gone")
        again = tmp_path / "again"
        again.mkdir()
        assert _run(again, {"stages": ["noop"], "launch": {"job": "anneal"}}) == 2
        assert _errors(capsys) == ["config: launch.train.config: cannot read t.yaml: gone"]

    def test_failed_synthesis_after_the_commit_is_one_line(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        fake_llm: FakeOpenAIServer,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """An LLM failure during synthesis (codekiln.synth's LLMError) is one line, exit 1."""
        from codekiln.synth.errors import LLMError

        def run_synthesis(**kwargs: Any) -> dict[str, Any]:
            raise LLMError("no request was answered: 3 x HTTP 500")

        _fake_module(monkeypatch, "codekiln.synth.job", run_synthesis=run_synthesis)
        monkeypatch.setenv("CODEKILN_DATA_DIR", str(tmp_path))
        raw = {"stages": ["noop"], "synth": {"llm_url": fake_llm.url}}
        assert _run(tmp_path, raw) == 1
        assert _errors(capsys) == ["synth: LLMError: no request was answered: 3 x HTTP 500"]


def test_engine_names_no_layer_above_it() -> None:
    """stream/runtime, stream/config.py and stream/report.py name neither synth, train nor
    eval: what follows a committed corpus is composed in codekiln.flow."""
    files = [*sorted((REPO / "stream" / "runtime").glob("*.py"))]
    files += [REPO / "stream" / "config.py", REPO / "stream" / "report.py"]
    word = re.compile(r"\b(synth\w*|train\w*|eval|launch\w*)\b", re.IGNORECASE)
    found = [
        f"{path.relative_to(REPO)}:{n}: {m.group(0)}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in word.finditer(line)
    ]
    assert found == []


@pytest.mark.slow
def test_stream_run_synthesises_with_the_synth_options(
    tmp_path: Path, fake_llm: FakeOpenAIServer, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """codekiln-stream run with a synth: section runs the real synthesis job on the committed
    corpus (fake LLM, no sandbox) with the section's options: only the textbook generator."""
    from tests.synth import scripted

    scripted.install(fake_llm)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        body = f"def f{i}(x):\n    '''Double x.'''\n" + "    x = x + x\n" * 20 + "    return x\n"
        (src / f"m{i}.py").write_text(body)
    raw = {
        "stages": ["preprocess"],
        "synth": {
            "llm_url": fake_llm.url,
            "data_dir": str(data_dir),
            "generators": ["textbook"],
            "max_seeds": 2,
        },
    }
    out = tmp_path / "out"
    monkeypatch.delenv("CODEKILN_SANDBOX_URL", raising=False)
    code = cli.main(
        ["run", str(src), "--out", str(out), "--config", str(_cfg(tmp_path, raw)), "--no-progress"]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    result = manifest["synth"]["result"]
    assert result["seeds"]["code"] == 2  # max_seeds
    assert set(result["generators"]) == {"textbook"}
    assert result["annealing"]["records"] > 0
    assert (out / "synth" / "report.json").is_file()
    fake_llm.assert_clean()


@pytest.mark.slow
def test_synthesis_config_error_after_the_pipeline_is_a_config_error(
    tmp_path: Path,
    fake_llm: FakeOpenAIServer,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A config error synthesis finds only once it starts (a served context shorter than a
    prompt's max_tokens) is one config line and exit 2, not an internal error."""
    from tests.fakes import openai_server

    monkeypatch.setattr(openai_server, "MAX_MODEL_LEN", 16)
    monkeypatch.delenv("CODEKILN_SANDBOX_URL", raising=False)
    raw = {
        "stages": ["noop"],
        "synth": {"llm_url": fake_llm.url, "data_dir": str(data_dir), "max_seeds": 1},
    }
    assert _run(tmp_path, raw) == 2
    errors = _errors(capsys)
    assert len(errors) == 1
    assert errors[0].startswith("config: synth: the server's context is max_model_len=16 tokens")
    assert "internal error" not in errors[0]
