"""The Ray executor against the single-machine runtime, on one local Ray instance."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.stream.config import load_config
from codekiln.stream.ray import RayOptions, run_ray_job
from codekiln.stream.ray._cluster import RayError
from codekiln.stream.runtime.job import JobResult, JobSpec, run_job
from codekiln.stream.sharded.files import read_json

from tests.stream.ray.conftest import REPO, outcome, read_folder, write_config
from tests.stream.ray.corpus import write_hostile_jsonl, write_jsonl, write_tree

pytestmark = pytest.mark.usefixtures("ray_cluster")

SLOW = "tests.stream.ray.ray_stages:SlowStage"


def run_local(inputs: list[Path], config: Path, out: Path) -> JobResult:
    spec = JobSpec(tuple(str(p) for p in inputs), out, load_config(config))
    return asyncio.run(run_job(spec))


def run_ray(inputs: list[Path], config: Path, out: Path, **options: Any) -> JobResult:
    spec = JobSpec(tuple(str(p) for p in inputs), out, load_config(config))
    opts = {"shard_files": 7, "partitions": 3, "task_timeout_s": 120.0, **options}
    return asyncio.run(run_ray_job(spec, RayOptions(**opts)))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray")


@pytest.fixture(scope="module")
def tree(work: Path) -> Path:
    return write_tree(work / "tree")


@pytest.fixture(scope="module")
def config(work: Path) -> Path:
    return write_config(work / "config.yaml")


@pytest.fixture(scope="module")
def local_tree(tree: Path, config: Path, work: Path) -> JobResult:
    """The single-machine run every Ray run on ``tree`` is compared with."""
    return run_local([tree], config, work / "local-tree")


@pytest.fixture(scope="module")
def ray_tree(tree: Path, config: Path, work: Path) -> JobResult:
    return run_ray([tree], config, work / "ray-tree")


def _stage_report(result: JobResult, key: str) -> dict[str, Any]:
    return next(s["report"] for s in result.manifest["stages"] if s["key"] == key)


class TestSameResult:
    def test_tree_same_survivors_and_rejects(self, local_tree: JobResult, ray_tree: JobResult):
        """A directory tree: same corpus ids and same reject ids and reasons as the local run."""
        assert outcome(ray_tree.out_dir) == outcome(local_tree.out_dir)

    def test_tree_corpus_has_planted_duplicates_removed(self, ray_tree: JobResult):
        """The comparison is not vacuous: exact and near copies and bad files were rejected."""
        _, rejects = outcome(ray_tree.out_dir)
        reasons = set(rejects.values())
        assert {"exact_dedup:duplicate", "fuzzy_dedup:duplicate", "reader:binary"} <= reasons
        assert ray_tree.manifest["executor"]["shards"] >= 8

    def test_stage_reports_match(self, local_tree: JobResult, ray_tree: JobResult):
        """Dedup, serial and per-shard stateful stages report what the local stages report."""
        for key, fields in {
            "exact_dedup": ("records_in", "unique", "duplicates", "clusters", "cluster_sizes"),
            "fuzzy_dedup": ("records_held", "kept", "duplicates", "clusters", "cluster_sizes"),
        }.items():
            local, ray = _stage_report(local_tree, key), _stage_report(ray_tree, key)
            assert {f: ray[f] for f in fields} == {f: local[f] for f in fields}
        for key in ("downsample", "anneal_route"):
            assert _stage_report(ray_tree, key) == _stage_report(local_tree, key)
        assert _stage_report(ray_tree, "anneal_route")["records_seen"] > 0

    def test_step_kinds(self, ray_tree: JobResult):
        """The budgeted downsample runs serially; anneal_route runs per shard in a map step."""
        steps = ray_tree.manifest["executor"]["steps"]
        assert [s["stage"] for s in steps if s["kind"] == "serial"] == ["downsample"]
        assert any("anneal_route" in s.get("stages", []) for s in steps)

    def test_stage_counts_match(self, local_tree: JobResult, ray_tree: JobResult):
        """Every stage's in / out / dropped counters equal the local run's."""

        def counts(result: JobResult) -> list[tuple[Any, ...]]:
            return [(s["key"], s["in"], s["out"], s["dropped"]) for s in result.manifest["stages"]]

        assert counts(ray_tree) == counts(local_tree)

    def test_jsonl_priority_by_stars(self, work: Path):
        """JSONL shards (one per file, malformed lines quarantined): same result as local."""
        data = write_jsonl(work / "jsonl")
        config = write_config(work / "jsonl.yaml", input_format="jsonl")
        local = run_local([data], config, work / "local-jsonl")
        ray = run_ray([data], config, work / "ray-jsonl", partitions=1)
        assert outcome(ray.out_dir) == outcome(local.out_dir)
        assert ray.manifest["executor"]["shards"] == 4
        assert local.manifest["rejects"]["reasons"].get("reader:malformed_json") == 4

    def test_filter_report_matches(self, work: Path):
        """Heuristic filters on Ray: the same drops, the same per-rule and per-language report."""
        tree = work / "filters-tree"
        for i in range(48):
            words = [f"name{i}x{k}" for k in range(40)]
            if i % 4 == 0:
                text = "".join(f"print '{w}'\n" for w in words)  # Python 2: unparseable
            elif i % 4 == 1:
                text = "".join(f"print({w!r})\n" for w in words)  # no variable at all
            else:
                text = "".join(
                    f"def {w}(a, b):\n    c = a * b + {k}\n    for j in range(c):\n"
                    f"        c += j\n    return c - a\n\n\n"
                    for k, w in enumerate(words[:12])
                )
            path = tree / f"repo{i % 3}" / f"m{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        config = work / "filters.yaml"
        config.write_text(
            yaml.safe_dump(
                {"stages": ["preprocess", "filters"], "runtime": {"batch_size": 8, "workers": 1}}
            )
        )
        local = run_local([tree], config, work / "local-filters")
        ray = run_ray([tree], config, work / "ray-filters")
        assert outcome(ray.out_dir) == outcome(local.out_dir)
        report = _stage_report(local, "filters")
        assert report["docs_in"] == 48
        assert {"unparseable", "py_cate_no_var"} <= set(report["drops_by_rule"])
        assert _stage_report(ray, "filters") == report

    def test_parquet_shards(self, work: Path):
        """Parquet input, one shard per file: same result as local."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from tests.stream.ray.corpus import documents

        data = work / "parquet"
        data.mkdir()
        docs = documents(5, 45)
        for f in range(3):
            part = docs[f::3]
            table = {
                "id": [f"p{f}-{i}" for i in range(len(part))],
                "text": [t for _, _, t in part],
                "repo": [r for r, _, _ in part],
                "path": [p for _, p, _ in part],
            }
            pq.write_table(pa.table(table), data / f"part-{f}.parquet")
        config = write_config(work / "parquet.yaml", input_format="parquet")
        local = run_local([data], config, work / "local-parquet")
        ray = run_ray([data], config, work / "ray-parquet")
        assert outcome(ray.out_dir) == outcome(local.out_dir)
        assert ray.manifest["executor"]["shards"] == 3

    def test_repository_level_fuzzy_dedup(self, work: Path, tree: Path):
        """Repository level (a repository copied with one file edited): same result as local."""
        import shutil

        import yaml

        data = work / "repos"
        shutil.copytree(tree, data)
        shutil.copytree(data / "repo2", data / "repo2-fork")
        edited = sorted((data / "repo2-fork").rglob("*.py"))[0]
        edited.write_text(edited.read_text() + "\nextra = 1\n")
        fuzzy = {"preset": "t0.8", "level": "repository"}
        config = work / "repos.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "stages": [
                        "preprocess",
                        {"name": "minhash", "options": fuzzy},
                        {"name": "fuzzy_dedup", "options": fuzzy},
                    ],
                    "runtime": {"batch_size": 8, "workers": 1},
                }
            )
        )
        local = run_local([data], config, work / "local-repos")
        ray = run_ray([data], config, work / "ray-repos")
        assert outcome(ray.out_dir) == outcome(local.out_dir)
        assert "fuzzy_dedup:duplicate_repository" in set(outcome(ray.out_dir)[1].values())
        assert _stage_report(ray, "fuzzy_dedup")["clusters"] == 1

    def test_completed_run_is_not_run_again(self, ray_tree: JobResult, tree: Path, config: Path):
        """The same command on a finished output only refreshes the manifest and report."""
        again = run_ray([tree], config, ray_tree.out_dir)
        assert again.already_complete
        assert outcome(again.out_dir) == outcome(ray_tree.out_dir)


class TestFailures:
    def test_killed_worker_task_is_retried(self, tree: Path, work: Path, local_tree: JobResult):
        """kill -9 of a worker running a shard: Ray retries it; output as if nothing happened."""
        pids = work / "pids-worker"
        pids.mkdir()
        config = write_config(
            work / "slow.yaml",
            first=[{"name": SLOW, "options": {"delay_s": 0.8, "pid_dir": str(pids)}}],
        )
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                result["ok"] = run_ray([tree], config, work / "ray-killed-worker")
            except BaseException as exc:
                result["error"] = exc

        thread = threading.Thread(target=target)
        thread.start()
        victim = _wait_for_pid(pids, timeout_s=60)
        os.kill(victim, signal.SIGKILL)
        thread.join(timeout=240)
        assert not thread.is_alive()
        assert "error" not in result, result.get("error")
        out = result["ok"].out_dir
        assert outcome(out) == outcome(local_tree.out_dir)
        layout = out / ".codekiln" / "ray" / "steps" / "00"
        assert victim not in {read_json(m)["pid"] for m in layout.glob("done-s*.json")}

    def test_driver_killed_then_resumed(
        self, ray_cluster: str, tree: Path, work: Path, local_tree: JobResult
    ):
        """kill -9 of the driver, same command again: done shards are kept, output exactly-once."""
        pids = work / "pids-driver"
        pids.mkdir()
        config = write_config(
            work / "slow-driver.yaml",
            first=[{"name": SLOW, "options": {"delay_s": 0.4, "pid_dir": str(pids)}}],
        )
        out = work / "ray-killed-driver"
        cmd = [
            sys.executable,
            "-m",
            "codekiln.stream.cli",
            "run",
            str(tree),
            "--out",
            str(out),
            "--config",
            str(config),
            "--executor",
            "ray",
            "--address",
            ray_cluster,
            "--shard-files",
            "7",
            "--partitions",
            "3",
            "--no-progress",
        ]
        markers = out / ".codekiln" / "ray" / "steps" / "00"
        driver = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 120
            while len(list(markers.glob("done-s*.json"))) < 2:
                assert driver.poll() is None, "the driver ended before it could be killed"
                assert time.monotonic() < deadline, "no shard finished in time"
                time.sleep(0.05)
        finally:
            driver.kill()
            driver.wait(timeout=30)
        before = {m.name: m.read_bytes() for m in markers.glob("done-s*.json")}
        again = subprocess.run(
            cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=240
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert outcome(out) == outcome(local_tree.out_dir)
        for name, data in before.items():  # not redone: the first start's markers stand
            assert (markers / name).read_bytes() == data
        shards = len(list(markers.glob("done-s*.json")))
        assert 2 <= len(before) < shards
        manifest = read_json(out / "manifest.json")
        assert manifest["starts"] == 2
        corpus_ids = [r["id"] for r in read_folder(out / "corpus")]  # exactly once
        assert len(corpus_ids) == len(set(corpus_ids)) == manifest["corpus"]["records"]

    def test_stuck_task_times_out(self, tree: Path, work: Path):
        """A task that makes no progress within task_timeout_s stops the run with a clear error."""
        config = write_config(
            work / "stuck.yaml", first=[{"name": SLOW, "options": {"delay_s": 30.0}}]
        )
        with pytest.raises(RayError, match="no task finished within"):
            run_ray([tree], config, work / "ray-stuck", task_timeout_s=1.0)


def _wait_for_pid(folder: Path, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in folder.iterdir():
            pid = int(entry.name)
            if pid != os.getpid():
                return pid
        time.sleep(0.02)
    raise AssertionError("no worker ran the slow stage")


HOSTILE = "tests.stream.ray.ray_stages:HostileStage"


@pytest.fixture(scope="module")
def hostile_runs(work: Path) -> tuple[JobResult, JobResult]:
    """(local, Ray) runs of the hostile corpus (see :class:`TestHostileInput`)."""
    from tests.stream.ray.corpus import LATE_UNPICKLABLE, UNHASHABLE, UNPICKLABLE

    data = write_hostile_jsonl(work / "hostile")
    late = {"unpicklable": LATE_UNPICKLABLE, "unhashable": UNHASHABLE}
    stages = [
        {"name": HOSTILE, "options": {"unpicklable": UNPICKLABLE, "unhashable": "-"}},
        "exact_dedup",
        {"name": HOSTILE, "options": late},
        # No minhash stage: fuzzy dedup computes the MinHash itself (and quarantines a record
        # whose MinHash fails).
        {"name": "fuzzy_dedup", "options": {"preset": "t0.8"}},
    ]
    cfg = {
        "input": {"format": "jsonl"},
        "stages": stages,
        "runtime": {"batch_size": 4, "workers": 1},
    }
    config = work / "hostile.yaml"
    config.write_text(yaml.safe_dump(cfg))
    local = run_local([data], config, work / "local-hostile")
    ray = run_ray([data], config, work / "ray-hostile", partitions=2)
    return local, ray


class TestHostileInput:
    """Hostile records through the local runtime and the Ray executor: the dedup stages'
    per-record quarantines (MinHash that fails, fields that cannot be pickled) happen on both,
    by the stages' own code, with the same reasons; nothing is lost and both runs finish."""

    def test_same_corpus_and_rejects(self, hostile_runs: tuple[JobResult, JobResult]):
        """Every corpus and reject record, byte for byte as JSON (id order), is the same."""
        local, ray = hostile_runs
        for folder in ("corpus", "rejects"):
            ours = sorted(read_folder(local.out_dir / folder), key=lambda r: r["id"])
            theirs = sorted(read_folder(ray.out_dir / folder), key=lambda r: r["id"])
            assert theirs == ours, folder
        assert ray.manifest["executor"]["shards"] == 3

    def test_every_hostile_kind_was_met(self, hostile_runs: tuple[JobResult, JobResult]):
        """Not vacuous: each quarantine happened, with the stage's reason and error."""
        local, _ = hostile_runs
        rejects = {r["id"]: r for r in read_folder(local.out_dir / "rejects")}
        reasons = [r["reason"] for r in rejects.values()]
        assert reasons.count("exact_dedup:error:TypeError") == 2  # the unpicklable pair
        assert reasons.count("fuzzy_dedup:error:TypeError") == 1  # unpicklable after exact
        assert reasons.count("fuzzy_dedup:error:UnicodeError") == 1  # MinHash fails
        assert {"exact_dedup:duplicate", "fuzzy_dedup:duplicate"} <= set(reasons)
        assert reasons.count("reader:malformed_json") == 3
        errors = {r["meta"].get("error") for r in rejects.values()}
        assert {"Opaque cannot be pickled", "Unhashable has no bytes"} <= errors
        handles = [r for r in rejects.values() if "handle" in r["meta"]]
        assert [r["meta"]["handle"] for r in handles] == ["handle-1"] * 3

    def test_same_counts_and_reports(self, hostile_runs: tuple[JobResult, JobResult]):
        """Stage counters and the dedup reports equal the local run's."""
        local, ray = hostile_runs

        def counts(result: JobResult) -> list[tuple[Any, ...]]:
            return [(s["key"], s["in"], s["out"], s["dropped"]) for s in result.manifest["stages"]]

        assert counts(ray) == counts(local)
        for key in ("exact_dedup", "fuzzy_dedup"):
            ours = {k: v for k, v in _stage_report(local, key).items() if k != "spilled"}
            assert _stage_report(ray, key) == ours
        assert _stage_report(local, "fuzzy_dedup")["signatures_computed_here"] > 0
