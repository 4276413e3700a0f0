"""Stream runtime benchmarks; each figure is printed beside a baseline measured in this run.

1. Overhead: records/s through 5 no-op stages (batched, bounded channels, one thread hop per
   stage and batch) vs a plain Python loop calling the same stages on the same batches.
   Goal: >= 200,000 records/s on one core.
2. Memory: peak RSS of a full run (JSONL reader -> 5 no-op stages -> JSONL.zst sink) at 1x and
   10x input, each in a fresh process. Goal: 10x input within 10% of 1x (bounded queues).

    python bench/bench_runtime.py [--records N] [--mem-records N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codekiln.stream.metrics import RunMetrics
from codekiln.stream.record import Record
from codekiln.stream.runtime.builtin import NoopStage
from codekiln.stream.runtime.pipeline import Pipeline, PipelineOptions

BATCH = 1024
TEXT = "def f(x):\n    return x + 1\n"


def records(n: int) -> Iterator[Record]:
    for i in range(n):
        yield Record(id=f"{i:012d}", text=TEXT, lang="python", path=f"f{i}.py")


class GenSource:
    def __init__(self, n: int) -> None:
        self.n = n

    def items(self, after: Any) -> Iterator[tuple[tuple[int, ...], Record]]:
        for i, r in enumerate(records(self.n)):
            yield (i,), r

    def state(self) -> dict[str, Any]:
        return {}


class CountSink:
    def __init__(self) -> None:
        self.n = 0

    def write(self, live: list[Record], dropped: list[Record]) -> None:
        self.n += len(live) + len(dropped)

    def commit(self) -> dict[str, Any]:
        return {}

    def abort(self) -> None:
        pass


def baseline_loop(n: int) -> float:
    """The same records and batches, the same 5 stages, called in a plain loop."""
    stages = [NoopStage() for _ in range(5)]
    start = time.perf_counter()
    batch: list[Record] = []
    count = 0
    for r in records(n):
        batch.append(r)
        if len(batch) == BATCH:
            for s in stages:
                batch = s.process(batch)
            count += len(batch)
            batch = []
    for s in stages:
        batch = s.process(batch)
    count += len(batch)
    assert count == n
    return time.perf_counter() - start


def pipeline_run(n: int) -> float:
    stages = [(f"noop{i}", NoopStage()) for i in range(5)]
    sink = CountSink()
    metrics = RunMetrics(Pipeline.step_keys([k for k, _ in stages]))
    pipe = Pipeline(
        GenSource(n),
        list(stages),  # type: ignore[arg-type]
        sink,
        options=PipelineOptions(batch_size=BATCH, checkpoint_every=10**9),
        metrics=metrics,
    )
    start = time.perf_counter()
    asyncio.run(pipe.run())
    elapsed = time.perf_counter() - start
    assert sink.n == n
    return elapsed


def overhead(n: int) -> None:
    base = min(baseline_loop(n) for _ in range(2))
    pipe = min(pipeline_run(n) for _ in range(2))
    base_rate, pipe_rate = n / base, n / pipe
    print(f"records/s through 5 no-op stages, batch {BATCH}, {n:,} records")
    print(f"  baseline (plain loop, same stages):  {base_rate:12,.0f} records/s")
    print(f"  pipeline (bounded channels, tasks):  {pipe_rate:12,.0f} records/s")
    print(f"  ratio pipeline/baseline:             {pipe_rate / base_rate:12.2f}")
    verdict = "meets" if pipe_rate >= 200_000 else "MISSES"
    print(f"  goal >= 200,000 records/s:           {verdict}")


def _child_peak_rss(jsonl: Path, out: Path, arenas: bool) -> int:
    code = (
        "import asyncio, resource, sys\n"
        "from pathlib import Path\n"
        "from codekiln.stream.runtime.malloc import limit_malloc_arenas\n"
        f"{'limit_malloc_arenas()' if arenas else 'pass'}\n"
        "from codekiln.stream.config import config_from_dict\n"
        "from codekiln.stream.runtime.job import JobSpec, run_job\n"
        "cfg = config_from_dict({'stages': ['noop'] * 5, 'input': {'format': 'jsonl'}})\n"
        "spec = JobSpec(inputs=(sys.argv[1],), out_dir=Path(sys.argv[2]), config=cfg)\n"
        "asyncio.run(run_job(spec))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(jsonl), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout.strip().splitlines()[-1])  # KiB on Linux


def memory(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for factor in (1, 10):
            paths[factor] = Path(tmp) / f"in{factor}.jsonl"
            with open(paths[factor], "w") as fh:
                for i in range(n * factor):
                    fh.write(json.dumps({"text": f"# doc {i}\n" + TEXT * 10}) + "\n")
        for arenas, label in (
            (True, "as the CLI runs (2 malloc arenas)"),
            (False, "glibc default arenas, for comparison"),
        ):
            print(f" {label}:")
            peaks = {}
            for factor in (1, 10):
                start = time.perf_counter()
                peaks[factor] = _child_peak_rss(
                    paths[factor], Path(tmp) / f"out{factor}{arenas}", arenas
                )
                took = time.perf_counter() - start
                size = paths[factor].stat().st_size / 2**20
                print(
                    f"  {factor:>2}x input ({n * factor:,} records, {size:,.0f} MiB): "
                    f"peak RSS {peaks[factor] / 1024:,.0f} MiB ({took:.1f} s)"
                )
            growth = peaks[10] / peaks[1] - 1
            verdict = "meets" if growth <= 0.10 else "misses"
            print(
                f"  peak RSS 10x vs 1x (the baseline): {100 * growth:+.1f}%  "
                f"(goal <= +10%: {verdict})"
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--mem-records", type=int, default=30_000)
    args = parser.parse_args()
    print(
        f"one event loop, stage threads share one GIL (one core); max RSS self "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB at start"
    )
    overhead(args.records)
    print("peak RSS of a full run (JSONL -> 5 no-op stages -> JSONL.zst), fresh process each:")
    memory(args.mem_records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
