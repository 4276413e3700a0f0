"""Issue 19: long phases show count, rate and ETA on a terminal, and nothing in a pipe."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from codekiln import progress, shards


def test_track_draws_rate_and_eta_on_a_terminal() -> None:
    """On a terminal the bar shows done/total, the rate and the ETA; every item comes through."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    items = list(progress.track(range(50), description="phase", unit="docs", console=console))
    assert items == list(range(50))
    text = out.getvalue()
    assert "phase" in text
    assert "50/50" in text
    assert "ETA" in text


def test_track_is_silent_in_a_pipe() -> None:
    """Without a terminal (and no FORCE_COLOR) nothing is drawn."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    code = (
        "import sys\nfrom codekiln.progress import track\n"
        "assert list(track(range(3), description='x')) == [0, 1, 2]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stderr == ""


def test_tune_shows_its_phases(tmp_path: Path) -> None:
    """codekiln-stream tune draws its tokenizing and scoring phases on a (forced) terminal."""
    path = tmp_path / "c.jsonl"
    rows = [
        {"text": f"print({i})\ndef f{i}():\n    return {i}\n", "lang": "Python"} for i in range(20)
    ]
    shards.write_objects(path, rows)
    proc = subprocess.run(
        [sys.executable, "-m", "codekiln.stream.filters.tune", "tune", str(path),
         "--rule", "py_frac_lines_print"],
        capture_output=True, text=True, env={**os.environ, "FORCE_COLOR": "1"}, check=False,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "tune: scoring" in proc.stderr


def test_stream_run_table_shows_the_rate() -> None:
    """The live table of a stream run shows records per second for each step."""
    from codekiln.stream.metrics import RunMetrics
    from codekiln.stream.runtime.progress import metrics_table

    metrics = RunMetrics(["source", "sink"])
    metrics["source"].records_in = 1000
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=120).print(metrics_table(metrics, 4.0))
    text = out.getvalue()
    assert "rec/s" in text
    assert "250" in text


def test_tune_json_alone_is_the_whole_stdout(tmp_path: Path) -> None:
    """tune --json (no file) prints one JSON document on stdout and no text table."""
    import json

    path = tmp_path / "c.jsonl"
    code = "print({i})\ndef f{i}():\n    return {i}\n"
    shards.write_objects(path, [{"text": code.format(i=i), "lang": "Python"} for i in range(20)])
    proc = subprocess.run(
        [sys.executable, "-m", "codekiln.stream.cli", "tune", str(path),
         "--rule", "py_frac_lines_print", "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["python"]
    assert sum(row["configured"] for row in rows) == 1
