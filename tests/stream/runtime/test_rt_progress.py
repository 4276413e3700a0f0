"""How much of the input a run has read, and the ETA of the live table (issue 19)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from codekiln.stream.config import InputConfig, config_from_dict
from codekiln.stream.metrics import InputProgress, RunMetrics
from codekiln.stream.readers import InputSet
from codekiln.stream.readers.base import Item
from codekiln.stream.record import Record
from codekiln.stream.runtime.builtin import NoopStage
from codekiln.stream.runtime.job import JobSpec, run_job
from codekiln.stream.runtime.pipeline import Pipeline, PipelineOptions
from codekiln.stream.runtime.progress import duration, metrics_table
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from codekiln.shards import write_objects
from tests.stream.procs import run_captured


def _lines(n: int, width: int = 40, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [
        json.dumps({"text": f"{i} " + rng.randbytes(width // 2).hex()}).encode() + b"\n"
        for i in range(n)
    ]


def _inputs(*paths: Path, **cfg: Any) -> InputSet:
    inputs = InputSet([str(p) for p in paths], InputConfig(**cfg))
    inputs.measure_input()
    return inputs


def _take(items: Iterator[Item], n: int) -> list[Item]:
    return [next(items) for _ in range(n)]


def _render(metrics: RunMetrics, elapsed_s: float, now: float) -> str:
    out = io.StringIO()
    Console(file=out, width=120).print(metrics_table(metrics, elapsed_s, now=now))
    return out.getvalue()


class TestReadFraction:
    def test_plain_jsonl_is_exact_halfway_and_at_the_end(self, tmp_path: Path) -> None:
        """Read halfway, the fraction is the bytes of the lines read over the file's size."""
        lines = _lines(100)
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"".join(lines))
        inputs = _inputs(path)
        items = inputs.items(None)
        _take(items, 50)
        assert inputs.read_fraction() == len(b"".join(lines[:50])) / path.stat().st_size
        assert len(list(items)) == 50
        assert inputs.read_fraction() == 1.0

    def test_zst_grows_monotonically_to_one(self, tmp_path: Path) -> None:
        """A .jsonl.zst counts its compressed bytes: never backwards, 1.0 once read."""
        path = tmp_path / "a.jsonl.zst"
        write_objects(path, [json.loads(line) for line in _lines(20_000, width=100)])
        inputs = _inputs(path)
        items = inputs.items(None)
        seen = []
        for _ in range(40):
            _take(items, 500)
            seen.append(inputs.read_fraction())
        assert list(items) == []
        seen.append(inputs.read_fraction())
        assert seen == sorted(seen)
        assert 0 < seen[0] < 1
        assert seen[-1] == 1.0

    def test_file_tree_counts_the_sizes_of_the_files_read(self, tmp_path: Path) -> None:
        """A source tree: the sizes of the files read (in walk order) over the tree's total."""
        root = tmp_path / "src"
        (root / "c").mkdir(parents=True)
        for name, size in (("a.py", 10), ("b.py", 20), ("c/d.py", 30), ("e.py", 40)):
            (root / name).write_text("x" * size)
        (root / "empty.py").write_text("")
        inputs = _inputs(root)
        items = inputs.items(None)
        assert [r.path for _, r in _take(items, 2)] == ["a.py", "b.py"]
        assert inputs.read_fraction() == 30 / 100
        list(items)
        assert inputs.read_fraction() == 1.0

    def test_parquet_counts_rows_read(self, tmp_path: Path) -> None:
        """Parquet: the rows read (per chunk of 1024) as a fraction of the file's rows."""
        path = tmp_path / "a.parquet"
        table = pa.table({"text": [f"row {i}" for i in range(4000)]})
        pq.write_table(table, path, row_group_size=2000)
        size = path.stat().st_size
        inputs = _inputs(path)
        items = inputs.items(None)
        _take(items, 1)
        assert inputs.read_fraction() == pytest.approx(1024 / 4000, abs=1 / size)
        _take(items, 1999)
        assert inputs.read_fraction() == pytest.approx(0.5, abs=1 / size)
        list(items)
        assert inputs.read_fraction() == 1.0

    def test_resume_counts_what_was_read_before(self, tmp_path: Path) -> None:
        """Resumed inside the second input, the first input and the lines before count."""
        first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        first.write_bytes(b"".join(_lines(7, seed=1)))
        lines = _lines(10, seed=2)
        second.write_bytes(b"".join(lines))
        inputs = _inputs(first, second)
        items = inputs.items((1, 0, 3))
        assert _take(items, 1)[0][0] == (1, 0, 4)
        total = first.stat().st_size + second.stat().st_size
        done = first.stat().st_size + len(b"".join(lines[:4]))
        assert inputs.read_fraction() == done / total

    def test_resume_in_a_folder_counts_the_shards_before(self, tmp_path: Path) -> None:
        """Resumed in the second shard of a folder, the first shard counts whole."""
        folder = tmp_path / "shards"
        folder.mkdir()
        (folder / "1.jsonl").write_bytes(b"".join(_lines(5, seed=1)))
        lines = _lines(6, seed=2)
        (folder / "2.jsonl").write_bytes(b"".join(lines))
        inputs = _inputs(folder)
        items = inputs.items((0, 1, 2))
        _take(items, 1)
        sizes = [(folder / n).stat().st_size for n in ("1.jsonl", "2.jsonl")]
        assert inputs.read_fraction() == (sizes[0] + len(b"".join(lines[:3]))) / sum(sizes)

    def test_resume_in_a_tree_counts_the_files_before(self, tmp_path: Path) -> None:
        """Resumed after the second file of a tree, the two files before count."""
        root = tmp_path / "src"
        root.mkdir()
        for name, size in (("a.py", 10), ("b.py", 20), ("c.py", 30), ("d.py", 40)):
            (root / name).write_text("x" * size)
        inputs = _inputs(root)
        items = inputs.items((0, 1))
        _take(items, 1)
        assert inputs.read_fraction() == 60 / 100

    def test_unknown_until_measured(self, tmp_path: Path) -> None:
        """Before the size is measured the fraction is None, never a guess."""
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"".join(_lines(4)))
        inputs = InputSet([str(path)], InputConfig())
        items = inputs.items(None)
        _take(items, 2)
        assert inputs.read_fraction() is None

    def test_a_cap_nearer_than_the_end_sets_the_fraction(self, tmp_path: Path) -> None:
        """With --max-files 4 of 8 files, 2 files read is half the run."""
        root = tmp_path / "src"
        root.mkdir()
        for i in range(8):
            (root / f"{i}.py").write_text("x" * 10)
        inputs = _inputs(root, max_files=4)
        items = inputs.items(None)
        _take(items, 2)
        assert inputs.read_fraction() == 0.5


class TestHostileInput:
    @pytest.mark.parametrize("change", ["grows", "shrinks"])
    def test_a_file_changed_while_read_stays_within_zero_and_one(
        self, tmp_path: Path, change: str
    ) -> None:
        """A file that grows or is cut short after the measure: no exception, the fraction
        stays within [0, 1], 1.0 at the end."""
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"".join(_lines(2_000)))
        inputs = _inputs(path)
        items = inputs.items(None)
        _take(items, 5)
        if change == "grows":
            with path.open("ab") as fh:
                fh.write(b"".join(_lines(500, seed=3)))
        else:
            os.truncate(path, 100)
        seen = [inputs.read_fraction() for _ in items]
        seen.append(inputs.read_fraction())
        assert all(f is not None and 0 <= f <= 1 for f in seen)
        assert seen[-1] == 1.0

    def test_an_empty_input_has_no_fraction(self, tmp_path: Path) -> None:
        """An empty file has no size to measure by: unknown, and '-' in the table."""
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"")
        inputs = _inputs(path)
        list(inputs.items(None))
        assert inputs.read_fraction() is None
        metrics = RunMetrics(["source", "sink"])
        metrics.input.update(inputs.read_fraction(), 0.0)
        assert "input -  ETA -" in _render(metrics, 1.0, now=1.0)

    @given(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.floats(-2, 3, allow_nan=False)),
                st.floats(0, 1e6, allow_nan=False),
            ),
            max_size=20,
        ),
        st.booleans(),
    )
    def test_progress_never_goes_back_past_one_or_below_zero(
        self, updates: list[tuple[float | None, float]], fresh: bool
    ) -> None:
        """Whatever the reader says, the fraction only grows within [0, 1]; the ETA is >= 0."""
        progress = InputProgress()
        if fresh:
            progress.start(0.0)
        last = 0.0
        for fraction, now in updates:
            progress.update(fraction, now)
            if progress.fraction is not None:
                assert last <= progress.fraction <= 1.0
                last = progress.fraction
            eta = progress.eta_s(now)
            assert eta is None or eta >= 0


class TestTable:
    def test_the_title_shows_fraction_and_eta(self) -> None:
        """A quarter read in 10 s of a fresh run: 25.0% and 30 s to go."""
        metrics = RunMetrics(["source", "sink"])
        metrics.input.start(100.0)
        metrics.input.update(0.25, 110.0)
        text = _render(metrics, 10.0, now=110.0)
        assert "input 25.0%  ETA 30s" in text

    def test_a_resumed_run_uses_only_this_process_rate(self) -> None:
        """Resumed at 50%, 25% more in 10 s: the last 25% takes 10 s more."""
        metrics = RunMetrics(["source", "sink"])
        metrics.input.update(0.5, 100.0)
        metrics.input.update(0.75, 110.0)
        assert "input 75.0%  ETA 10s" in _render(metrics, 10.0, now=110.0)

    def test_no_eta_when_the_input_size_is_unknown(self) -> None:
        """A stream or a worker's queue: '-', not an ETA."""
        text = _render(RunMetrics(["source", "sink"]), 10.0, now=110.0)
        assert "input -  ETA -" in text

    def test_durations_read_like_a_clock(self) -> None:
        """Seconds, then minutes and seconds, then hours and minutes."""
        assert [duration(s) for s in (0, 5.4, 65, 3599.6, 3725, -3)] == [
            "0s",
            "5s",
            "1m05s",
            "1h00m",
            "1h02m",
            "0s",
        ]


class _Sink:
    def write(self, live: list[Record], dropped: list[Record]) -> None:
        pass

    def commit(self) -> dict[str, Any]:
        return {}

    def abort(self) -> None:
        pass


async def _pipeline_run(inputs: InputSet, measure_after_s: float) -> RunMetrics:
    metrics = RunMetrics(Pipeline.step_keys(["noop"]))
    options = PipelineOptions(batch_size=8, measure_input_after_s=measure_after_s)
    pipeline = Pipeline(inputs, [("noop", NoopStage())], _Sink(), options=options, metrics=metrics)
    await pipeline.run()
    return metrics


class TestRun:
    async def test_the_pipeline_measures_the_input_beside_the_reading(
        self, tmp_path: Path, no_blocking: Any
    ) -> None:
        """Measured in a thread (nothing blocks the event loop); the run ends at 1.0."""
        path = tmp_path / "a.jsonl"
        await asyncio.to_thread(path.write_bytes, b"".join(_lines(100)))
        inputs = await asyncio.to_thread(InputSet, [str(path)], InputConfig())
        metrics = await _pipeline_run(inputs, measure_after_s=0)
        assert await asyncio.to_thread(inputs.read_fraction) == 1.0
        assert metrics.input.fraction == 1.0

    async def test_a_run_over_before_the_delay_does_not_measure(self, tmp_path: Path) -> None:
        """A run that reads its input within measure_input_after_s never walks it again."""
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"".join(_lines(100)))
        inputs = InputSet([str(path)], InputConfig())
        metrics = await _pipeline_run(inputs, measure_after_s=3600)
        assert inputs.read_fraction() is None
        assert metrics.input.fraction == 1.0

    async def test_a_run_ends_with_its_input_read_whole(
        self, tmp_path: Path, no_blocking: Any
    ) -> None:
        """run_job over a JSONL file: measured beside the reading, 100% read at the end."""
        path = tmp_path / "a.jsonl"
        await asyncio.to_thread(path.write_bytes, b"".join(_lines(300)))
        seen: list[RunMetrics] = []

        async def display(metrics: RunMetrics) -> None:
            seen.append(metrics)

        spec = JobSpec(
            inputs=(str(path),),
            out_dir=tmp_path / "out",
            config=config_from_dict({"stages": ["noop"]}),
        )
        await run_job(spec, on_metrics=display)
        assert seen[0].input.fraction == 1.0
        assert "input 100.0%  ETA 0s" in _render(seen[0], 1.0, now=1e9)

    def test_the_cli_table_shows_the_eta_on_a_terminal(
        self, tmp_path: Path, cli_env: dict[str, str]
    ) -> None:
        """codekiln-stream run on a (forced) terminal draws the input fraction and ETA."""
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"".join(_lines(50)))
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text("stages: [noop]\n")
        proc = run_captured(
            [sys.executable, "-m", "codekiln.stream.cli", "run", str(path),
             "--out", str(tmp_path / "out"), "--config", str(cfg)],
            env={**cli_env, "FORCE_COLOR": "1"}, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        # A run this short ends before the first redraw (0.5 s): the first frame says "-".
        assert re.search(r"codekiln stream  \d+s  input (-|\d+\.\d%)  ETA ", proc.stderr)
