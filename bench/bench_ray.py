"""Ray executor throughput: 1 and 2 Ray workers against the single-machine pipeline, one run.

On a fixed corpus (the first ``--mb`` MiB of this Python's standard library and site-packages,
copied to a temp folder, plus exact copies of a tenth of it so dedup has work), the same config
(the default RefineCode pipeline as far as it exists) runs:

1. the single-machine runtime, process pool of 2 (the baseline);
2. ``--executor ray`` on a local Ray instance with 1 CPU (one Ray worker);
3. ``--executor ray`` on a local Ray instance with 2 CPUs (two Ray workers).

The full default pipeline, stage 1 alone (preprocess, exact and fuzzy dedup) and a
concurrency probe (a stage that only sleeps, so it shows whether shards run side by side even
when other jobs hold the cores) are measured. Each figure is MB/s of input (and records/s),
with its ratio to the baseline and the 2-vs-1 worker scaling. Wall time on a shared,
oversubscribed machine says little, so the CPU seconds the run consumed are printed too (this
process and every descendant: the local pool, or Ray's raylet, GCS and workers, overhead
included), and MB per CPU-second is the per-core rate docs/ray.md extrapolates from. Per-step
wall and task CPU times of the Ray runs show where the time goes. Ray's start-up is timed apart
(it is paid once per cluster, not per run). The surviving ids of the three runs are compared: a
speed figure of a wrong result would be worthless.

    python bench/bench_ray.py [--mb 12] [--shard-files 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import psutil
import zstandard
from codekiln.stream.config import config_from_dict
from codekiln.stream.ray import RayOptions, run_ray_job
from codekiln.stream.ray._cluster import LOOPBACK_ENV
from codekiln.stream.record import Record
from codekiln.stream.runtime.job import JobResult, JobSpec, run_job
from codekiln.stream.stage import BatchStage

SUFFIXES = (".py", ".pyi", ".c", ".h", ".js", ".json", ".txt", ".md", ".rst", ".cfg", ".toml")


def build_corpus(dest: Path, budget: int) -> tuple[int, int]:
    """Copy source files (sorted walk of stdlib then site-packages) until ``budget`` bytes."""
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"])]
    total = files = 0
    for i, root in enumerate(roots):
        for path in sorted(root.rglob("*")):
            if total >= budget:
                break
            if not path.is_file() or path.suffix not in SUFFIXES or "__pycache__" in path.parts:
                continue
            size = path.stat().st_size
            if size == 0 or size > 500_000:
                continue
            target = dest / f"root{i}" / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            total += size
            files += 1
    # Vendored copies: every tenth file again under another folder (exact duplicates).
    copied = sorted(p for p in dest.rglob("*") if p.is_file())
    for path in copied[::10]:
        target = dest / "vendored" / path.relative_to(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        total += path.stat().st_size
        files += 1
    return total, files


def corpus_ids(out: Path) -> set[str]:
    ids = set()
    for shard in sorted((out / "corpus").glob("*.jsonl.zst")):
        with open(shard, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        ids.update(json.loads(line)["id"] for line in data.splitlines())
    return ids


class TreeCpu:
    """CPU seconds used by this process and all its descendants (pool workers, Ray's raylet,
    GCS and workers) while measuring: per-process deltas, sampled every 0.1 s so processes
    that exit (a shut-down pool) are counted up to their last sample."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        for proc in [me, *me.children(recursive=True)]:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            used = t.user + t.system
            first, _ = self._seen.get(proc.pid, (used, used))
            self._seen[proc.pid] = (first, used)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def __enter__(self) -> TreeCpu:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(last - first for first, last in self._seen.values())


def run_local(spec: JobSpec) -> tuple[float, float, JobResult]:
    with TreeCpu() as cpu:
        start = time.perf_counter()
        result = asyncio.run(run_job(spec))
        secs = time.perf_counter() - start
    return secs, cpu.seconds, result


def start_ray(cpus: int) -> float:
    import ray

    os.environ[LOOPBACK_ENV] = "0"  # bind the local instance to 127.0.0.1
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    start = time.perf_counter()
    ray.init(
        num_cpus=cpus,
        object_store_memory=300 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
    )
    return time.perf_counter() - start


def run_ray(spec: JobSpec, args: argparse.Namespace) -> tuple[float, float, JobResult]:
    options = RayOptions(shard_files=args.shard_files, partitions=args.partitions)
    with TreeCpu() as cpu:
        start = time.perf_counter()
        result = asyncio.run(run_ray_job(spec, options))
        secs = time.perf_counter() - start
    return secs, cpu.seconds, result


PIPELINES: dict[str, dict[str, Any]] = {
    # The default pipeline, with the filters' per-signal time budgets lifted: on a loaded
    # machine a budget overrun drops a record, and the three runs would differ by load alone.
    "full (default pipeline)": {
        "stages": [
            "preprocess",
            "exact_dedup",
            "minhash",
            "fuzzy_dedup",
            "copyright",
            {"name": "filters", "options": {"signal_budget_s": 600.0, "doc_budget_s": 600.0}},
            "downsample",
            "anneal_route",
        ],
        "runtime": {"workers": 2},
    },
    "stage 1 (preprocess + exact + fuzzy dedup)": {
        "stages": ["preprocess", "exact_dedup", "minhash", "fuzzy_dedup"],
        "runtime": {"workers": 2},
    },
    # Waits, uses no CPU: shows whether shards really run side by side, which CPU-bound runs
    # cannot show on a machine whose cores other jobs are using.
    "concurrency probe (a stage that sleeps 0.1 s per batch of 64)": {
        "stages": [{"name": "bench_ray:SleepStage", "options": {"delay_s": 0.1}}],
        "runtime": {"workers": 2, "batch_size": 64},
    },
}


class SleepStage(BatchStage):
    """Sleeps ``delay_s`` per batch and passes it on (importable by Ray and pool workers, whose
    path holds this script's folder)."""

    name: ClassVar[str] = "sleep"
    cpu_bound: ClassVar[bool] = True

    def __init__(self, delay_s: float = 0.1) -> None:
        self.delay_s = delay_s

    def process_batch(self, batch: list[Record]) -> list[Record]:
        time.sleep(self.delay_s)
        return batch


def report(title: str, mb: float, rows: list[tuple[str, float, JobResult, Any]]) -> None:
    local_s, local = rows[0][1], rows[0][2]
    records = local.manifest["source"]["records"]
    base_ids = corpus_ids(local.out_dir)
    print(f"\n## {title}")
    print(f"stages: {', '.join(s['key'] for s in local.manifest['stages'])}")
    print(f"corpus out: {len(base_ids):,} of {records:,} records")
    print(
        f"{'run':<28}{'wall s':>8}{'MB/s':>8}{'rec/s':>9}{'vs local':>10}"
        f"{'CPU s':>8}{'MB/CPU-s':>10}  same ids"
    )
    for name, secs, result, init_s in rows:
        ids = corpus_ids(result.out_dir)
        same = "True" if ids == base_ids else f"False ({len(ids ^ base_ids)} ids differ)"
        cpu = result.manifest["cpu_s"]
        line = (
            f"{name:<28}{secs:>8.2f}{mb / secs:>8.2f}{records / secs:>9.0f}"
            f"{local_s / secs:>9.2f}x{cpu:>8.1f}{mb / cpu:>10.2f}  {same}"
        )
        if init_s is not None:
            line += f"   (ray.init {init_s:.1f} s, not counted)"
        print(line)
    one, two = rows[1][1], rows[2][1]
    print(f"ray 2 workers vs 1 worker: {one / two:.2f}x (ideal 2.00x)")
    print(
        f"per-core rate: ray 2 workers {mb / two / 2:.2f} MB/s/core, ray 1 worker "
        f"{mb / one:.2f} MB/s/core; single machine (baseline) {mb / local_s / 2:.2f} MB/s/core"
    )
    print("ray 2 workers, per step: wall time, task CPU time, MB of input per task CPU-second")
    for step in rows[2][2].manifest["executor"]["steps"]:
        what = step.get("stage") or (", ".join(step["stages"]) or "apply + write")
        cpu = step.get("cpu_s")
        cpu_text = f"{cpu:>7.2f} s CPU {mb / cpu:>8.1f} MB/CPU-s" if cpu else "  (shuffle tasks)"
        print(f"  {step['kind']:<7}{what:<44}{step['wall_s']:>7.2f} s{cpu_text}")


def main() -> int:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=12.0, help="MiB of source files to copy")
    parser.add_argument("--shard-files", type=int, default=150)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    # Pool and Ray worker processes inherit this: the filters' top-n-gram signal breaks count
    # ties by Python's string hash order, so without a fixed seed a record on a threshold can
    # be kept in one process and dropped in another (seen: one id in 2,000).
    os.environ["PYTHONHASHSEED"] = "0"

    work = Path(tempfile.mkdtemp(prefix="codekiln-bench-ray-"))
    try:
        size, files = build_corpus(work / "in", int(args.mb * 2**20))
        mb = size / 1e6
        print(f"corpus: {files:,} files, {mb:.1f} MB (incl. exact copies of a tenth)")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        rows: dict[str, list[tuple[str, float, JobResult, Any]]] = {}
        for title, raw in PIPELINES.items():
            config = config_from_dict(raw)
            spec = JobSpec((str(work / "in"),), work / f"local-{len(rows)}", config)
            secs, cpu, result = run_local(spec)
            result.manifest["cpu_s"] = cpu
            rows[title] = [("single machine, pool of 2", secs, result, None)]
        for cpus in (1, 2):
            init_s = start_ray(cpus)
            try:
                for i, (title, raw) in enumerate(PIPELINES.items()):
                    config = config_from_dict(raw)
                    spec = JobSpec((str(work / "in"),), work / f"ray{cpus}-{i}", config)
                    secs, cpu, result = run_ray(spec, args)
                    result.manifest["cpu_s"] = cpu
                    name = f"ray, {cpus} worker{'s' if cpus > 1 else ''}"
                    rows[title].append((name, secs, result, init_s))
            finally:
                ray.shutdown()
        for title, r in rows.items():
            report(title, mb, r)
        print(f"\nload average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
