"""The ``codekiln-stream`` command line: run layout, exit codes, plug-in subcommands."""

from __future__ import annotations

import asyncio
import importlib.machinery
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from codekiln.stream import cli
from codekiln.stream.writers import read_jsonl_zst

from tests.stream.procs import run_captured


def _src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("def a():\n    return 1\n")
    (root / "pkg" / "b.py").write_text("def a():\n    return 1\n")
    (root / "pkg" / "c.bin").write_bytes(b"\x00\x01")
    (root / "tool.sh").write_text("echo hi\n")
    return root


def _cfg(tmp_path: Path, text: str = "stages: [noop]\n") -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def _run_args(src: Path, out: Path, cfg: Path) -> list[str]:
    """``codekiln-stream`` arguments of a run of ``src`` into ``out``, without a progress bar."""
    return ["run", str(src), "--out", str(out), "--config", str(cfg), "--no-progress"]


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attrs.items():
        setattr(mod, key, value)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


class TestRun:
    def test_run_writes_corpus_rejects_manifest_and_report(
        self, tmp_path: Path, python: str, cli_env: dict[str, str]
    ) -> None:
        """The console entry writes the documented layout and prints the report path."""
        out = tmp_path / "out"
        args = _run_args(_src(tmp_path), out, _cfg(tmp_path))
        proc = run_captured([python, "-m", "codekiln.stream.cli", *args], cli_env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"report: {(out / 'report.md').resolve()}" in proc.stdout.replace("\n", "")
        corpus = [r for p in sorted((out / "corpus").iterdir()) for r in read_jsonl_zst(p)]
        rejects = [r for p in sorted((out / "rejects").iterdir()) for r in read_jsonl_zst(p)]
        assert sorted(r["path"] for r in corpus) == ["pkg/a.py", "pkg/b.py", "tool.sh"]
        assert all({"id", "text", "lang", "path", "repo"} <= r.keys() for r in corpus)
        assert [(r["path"], r["reason"]) for r in rejects] == [("pkg/c.bin", "reader:binary")]
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["complete"] is True
        assert manifest["corpus"]["records"] == 3
        report = (out / "report.md").read_text()
        assert "| `reader:binary` | 1 |" in report
        assert "LLM synthesis" in report
        assert "![language distribution](lang_distribution.svg)" in report
        chart = ElementTree.parse(out / "lang_distribution.svg").getroot()
        assert chart.tag == "{http://www.w3.org/2000/svg}svg"
        labels = {t.text for t in chart.iter("{http://www.w3.org/2000/svg}text")}
        assert manifest["langs"]
        assert set(manifest["langs"]) <= labels

    def test_summary_off_a_terminal_is_a_plain_table(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Printed to a pipe or file, the summary is plain aligned text with every count."""
        args = ["run", str(_src(tmp_path)), "--out", str(tmp_path / "out")]
        assert cli.main([*args, "--config", str(_cfg(tmp_path))]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[:4] == [
            "codekiln stream: summary",
            "step    in  out  dropped",
            "reader   4    3        1",
            "noop     3    3        0",
        ]
        assert "corpus: 3 records; rejects: 1" in lines
        assert f"report: {(tmp_path / 'out' / 'report.md').resolve()}" in lines

    def test_report_shows_stage_reports_and_counts(self, tmp_path: Path) -> None:
        """report.md renders each stage's report() dict and its in/out/dropped counts."""
        out = tmp_path / "out"
        cfg = _cfg(tmp_path, "stages: ['rt_stages:ExactDedupStage']\n")
        assert cli.main(_run_args(_src(tmp_path), out, cfg)) == 0
        report = (out / "report.md").read_text()
        assert "| ExactDedupStage | 3 | 2 | 1 |" in report
        assert "### ExactDedupStage" in report
        assert '"duplicates": 1' in report
        assert "| `dedup:exact` | 1 |" in report

    def test_same_input_gives_same_ids(self, tmp_path: Path) -> None:
        """Two runs over the same input into different folders give the same record ids."""
        src, cfg = _src(tmp_path), _cfg(tmp_path)
        ids = []
        for name in ("o1", "o2"):
            assert cli.main(_run_args(src, tmp_path / name, cfg)) == 0
            ids.append(
                [
                    r["id"]
                    for p in sorted((tmp_path / name / "corpus").iterdir())
                    for r in read_jsonl_zst(p)
                ]
            )
        assert ids[0] == ids[1]
        assert len(ids[0]) == 3

    def test_bad_config_exits_2_before_any_output(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An invalid config is reported on stderr with exit 2, and nothing is written."""
        cfg = _cfg(tmp_path, "runtime: {batch_size: -1}\n")
        code = cli.main(
            ["run", str(_src(tmp_path)), "--out", str(tmp_path / "out"), "--config", str(cfg)]
        )
        assert code == 2
        assert "config: runtime.batch_size: must be >= 1, got -1" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()

    def test_no_existing_input_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """When no INPUT exists the run is refused with a clear message."""
        code = cli.main(
            [
                "run",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "out"),
                "--config",
                str(_cfg(tmp_path)),
            ]
        )
        assert code == 2
        assert "no input exists" in capsys.readouterr().err

    def test_crashed_stage_exits_1_with_stage_name(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A stage crash is fatal: exit 1 and a message naming the stage."""
        cfg = _cfg(tmp_path, "stages: ['rt_stages:CrashStage']\n")
        code = cli.main(_run_args(_src(tmp_path), tmp_path / "out", cfg))
        assert code == 1
        assert (
            "stage 'CrashStage' crashed: process() raised RuntimeError: disk on fire"
            in capsys.readouterr().err
        )

    async def test_crash_with_progress_display_raises_the_stage_error(self, tmp_path: Path) -> None:
        """With a progress callback running beside it, a crash still surfaces as StageCrashed."""
        from codekiln.stream.config import config_from_dict
        from codekiln.stream.runtime.errors import StageCrashed
        from codekiln.stream.runtime.job import JobSpec, run_job

        async def display(metrics: Any) -> None:
            await asyncio.Event().wait()

        config = config_from_dict({"stages": ["rt_stages:CrashStage"]})
        spec = JobSpec(inputs=(str(_src(tmp_path)),), out_dir=tmp_path / "out", config=config)
        with pytest.raises(StageCrashed, match="disk on fire"):
            await run_job(spec, on_metrics=display)

    def test_default_input_reads_stdlib_first_under_a_reported_cap(self, tmp_path: Path) -> None:
        """--default-input reads this Python's stdlib then site-packages, and reports its cap."""
        from codekiln.stream.runtime.job import default_inputs

        out = tmp_path / "out"
        args = ["run", "--default-input", "--max-files", "30", "--out", str(out)]
        assert cli.main([*args, "--config", str(_cfg(tmp_path)), "--no-progress"]) == 0
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["inputs"] == default_inputs()
        assert manifest["source"]["budget"]["files"] == 30
        assert manifest["source"]["budget"]["not_read"] > 1000
        assert "site-packages" in manifest["config"]["input"]["exclude_dirs"]
        report = (out / "report.md").read_text()
        assert "files not read because of the cap" in report

    def test_parse_size_accepts_units(self) -> None:
        """--max-bytes takes plain bytes or k/M/G suffixes (powers of 1024)."""
        assert cli.parse_size("1048576") == 1 << 20
        assert cli.parse_size("64k") == 64 << 10
        assert cli.parse_size("160M") == 160 << 20
        assert cli.parse_size("2G") == 2 << 30


class TestPlugins:
    def test_contributed_subcommand_is_registered(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A module in SUBCOMMAND_MODULES adds its subcommand through register(subparsers)."""

        def register(sub: Any) -> None:
            p = sub.add_parser("hello")
            p.add_argument("--n", type=int, default=1)
            p.set_defaults(func=lambda args: args.n + 40)

        _fake_module(monkeypatch, "codekiln_test_plugin", register=register)
        monkeypatch.setattr(
            cli, "SUBCOMMAND_MODULES", ["codekiln_test_plugin", "codekiln_absent_plugin"]
        )
        assert cli.main(["hello", "--n", "2"]) == 42

    def test_broken_plugin_does_not_break_run(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A plug-in whose register() raises is skipped with a warning; `run` still works."""

        def register(sub: Any) -> None:
            raise RuntimeError("half-written")

        _fake_module(monkeypatch, "codekiln_broken_plugin", register=register)
        monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ["codekiln_broken_plugin"])
        code = cli.main(_run_args(_src(tmp_path), tmp_path / "o", _cfg(tmp_path)))
        assert code == 0
        assert (
            "subcommands of codekiln_broken_plugin are unavailable: RuntimeError: half-written"
            in capsys.readouterr().err
        )


# The after-commit steps (synthesis, launch) are tested with codekiln.flow: tests/flow/.


_THREADS_AFTER_NUMPY = """
import os, sys
from codekiln.stream.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
import numpy
print("threads:", os.environ["OPENBLAS_NUM_THREADS"], len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(("given", "want"), [(None, "1"), ("2", "2")])
def test_cli_loads_numpy_without_a_blas_thread_pool(given: str | None, want: str) -> None:
    """The CLI runs numpy on one OpenBLAS thread (a pool per process would only spin) unless
    the user chose a number; with one, numpy's import starts no thread."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_AFTER_NUMPY],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("threads:")[-1].split()  # fmt: skip
    assert out[0] == want
    if given is None:
        assert out[1] == "1"
