"""Exactly-once resume: crash or kill -9 at any moment, run again, same output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.stream.config import StreamConfig, config_from_dict
from codekiln.stream.runtime.errors import CheckpointError, StageCrashed
from codekiln.stream.runtime.job import JobSpec, run_job
from codekiln.stream.writers import read_jsonl_zst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stream.kill9 import kill_runs
from tests.stream.procs import run_captured


def make_input(folder: Path, shards: int = 3, lines: int = 1500, seed: int = 7) -> Path:
    """JSONL shards with duplicates (dedup state matters) and lines that get filtered."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for s in range(shards):
        with open(folder / f"shard-{s}.jsonl", "w") as fh:
            for _ in range(lines):
                n = rng.randrange(lines * shards // 2)  # about 1 in 3 lines is a duplicate
                text = f"def f{n}(): return {n}" + (" DROP" if n % 11 == 0 else "")
                fh.write(json.dumps({"text": text, "lang": "python"}) + "\n")
            fh.write("{not json\n")
    return folder


CONFIG: dict[str, Any] = {
    "input": {"format": "jsonl"},
    "stages": [
        {"name": "rt_stages:SlowStage", "options": {"delay_s": 0.015}},
        "rt_stages:ExactDedupStage",
        "rt_stages:HoldStage",
        "rt_stages:DropMarkedStage",
        "rt_stages:CpuDropStage",
    ],
    "runtime": {"batch_size": 40, "checkpoint_every_records": 400, "workers": 2},
    "output": {"shard_max_records": 700},
}


def output_of(out: Path) -> dict[str, Any]:
    """What must be identical between runs: shard files (bytes), ids, counts."""
    manifest = json.loads((out / "manifest.json").read_text())
    files = {}
    for sub in ("corpus", "rejects"):
        for p in sorted((out / sub).iterdir()):
            files[f"{sub}/{p.name}"] = p.read_bytes()
    ids = [r["id"] for p in sorted((out / "corpus").glob("*.zst")) for r in read_jsonl_zst(p)]
    return {
        "files": files,
        "ids": ids,
        "stages": [
            (s["key"], s["in"], s["out"], s["dropped"], s["report"]) for s in manifest["stages"]
        ],
        "langs": manifest["langs"],
        "reasons": manifest["rejects"]["reasons"],
        "complete": manifest["complete"],
    }


def _cli(python: str, inp: Path, out: Path, cfg: Path) -> list[str]:
    return [
        python,
        "-m",
        "codekiln.stream.cli",
        "run",
        str(inp),
        "--out",
        str(out),
        "--config",
        str(cfg),
        "--no-progress",
    ]


@pytest.mark.slow
def test_kill_9_then_rerun_gives_identical_output(
    tmp_path: Path, python: str, cli_env: dict[str, str]
) -> None:
    """SIGKILL the run at several moments, rerun each time: output equals an uninterrupted run."""
    inp = make_input(tmp_path / "in")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    ref = tmp_path / "ref"
    subprocess.run(
        _cli(python, inp, ref, cfg), env=cli_env, check=True, capture_output=True, timeout=240
    )
    expected = output_of(ref)
    assert len(expected["ids"]) > 1000
    assert len(set(expected["ids"])) == len(expected["ids"])

    out = tmp_path / "out"
    # Kill points: before any checkpoint exists, then at random moments after checkpoints
    # (which may fall during a shard commit, a checkpoint write, or stage finish()).
    kills = kill_runs(_cli(python, inp, out, cfg), out, cli_env, [0.2, None, None, None])
    assert kills >= 2, "the run finished before it could be killed; make the input bigger"
    done = run_captured(_cli(python, inp, out, cfg), cli_env, timeout=240)
    assert done.returncode == 0, done.stderr
    got = output_of(out)
    assert got["ids"] == expected["ids"]
    assert got == expected
    assert json.loads((out / "manifest.json").read_text())["starts"] >= 2


async def _run_then_change_stages(tmp_path: Path) -> tuple[Path, Path, StreamConfig]:
    """A complete run of one noop stage: its input, its output folder, and a config with
    other stages (two noops) to run again on it."""
    inp = make_input(tmp_path / "in", shards=1, lines=50)
    out = tmp_path / "out"
    await run_job(
        JobSpec(inputs=(str(inp),), out_dir=out, config=config_from_dict({"stages": ["noop"]}))
    )
    return inp, out, config_from_dict({"stages": ["noop", "noop"]})


class TestInProcessResume:
    async def test_crash_then_rerun_equals_uninterrupted_run(self, tmp_path: Path) -> None:
        """A stage crash mid-run, then the same job again: output equals an uninterrupted run."""
        inp = make_input(tmp_path / "in", shards=2, lines=600)
        flag = tmp_path / "crash-once"
        raw = {
            "input": {"format": "jsonl"},
            "stages": [
                "rt_stages:ExactDedupStage",
                "rt_stages:HoldStage",
                {
                    "name": "rt_stages:CrashOnceStage",
                    "options": {"flag_file": str(flag), "at": 300},
                },
            ],
            "runtime": {"batch_size": 50, "checkpoint_every_records": 200},
            "output": {"shard_max_records": 300},
        }
        config = config_from_dict(raw)
        await run_job(JobSpec(inputs=(str(inp),), out_dir=tmp_path / "ref", config=config))
        out = tmp_path / "out"
        flag.touch()
        with pytest.raises(StageCrashed, match="simulated crash"):
            await run_job(JobSpec(inputs=(str(inp),), out_dir=out, config=config))
        assert not flag.exists()
        result = await run_job(JobSpec(inputs=(str(inp),), out_dir=out, config=config))
        assert result.resumed
        assert output_of(out) == output_of(tmp_path / "ref")

    async def test_other_config_on_same_output_is_refused(self, tmp_path: Path) -> None:
        """Resuming with different stages fails with CheckpointError naming --overwrite."""
        inp, out, other = await _run_then_change_stages(tmp_path)
        with pytest.raises(CheckpointError, match="--overwrite"):
            await run_job(JobSpec(inputs=(str(inp),), out_dir=out, config=other))
        result = await run_job(
            JobSpec(inputs=(str(inp),), out_dir=out, config=other, overwrite=True)
        )
        assert [s["key"] for s in result.manifest["stages"]] == ["noop", "noop_2"]

    async def test_restart_on_change_replaces_a_foreign_run(self, tmp_path: Path) -> None:
        """With restart_on_change, a run made with other stages is replaced, not refused."""
        inp, out, other = await _run_then_change_stages(tmp_path)
        result = await run_job(
            JobSpec(inputs=(str(inp),), out_dir=out, config=other, restart_on_change=True)
        )
        assert not result.already_complete
        assert [s["key"] for s in result.manifest["stages"]] == ["noop", "noop_2"]
        assert result.manifest["starts"] == 1

    async def test_rerun_of_a_complete_run_changes_nothing(self, tmp_path: Path) -> None:
        """Running a finished job again rewrites only the report; shards stay as they are."""
        inp = make_input(tmp_path / "in", shards=1, lines=100)
        config = config_from_dict({"stages": ["rt_stages:ExactDedupStage"]})
        spec = JobSpec(inputs=(str(inp),), out_dir=tmp_path / "out", config=config)
        await run_job(spec)
        before = output_of(spec.out_dir)
        again = await run_job(spec)
        assert again.already_complete
        assert output_of(spec.out_dir) == before


async def test_whole_job_makes_no_blocking_call_in_the_event_loop(
    tmp_path: Path, no_blocking: Any
) -> None:
    """A full job (read, stages, process pool, write, checkpoint, report) keeps the loop free."""
    inp = await asyncio.to_thread(make_input, tmp_path / "in", 1, 300)
    config = config_from_dict(
        {
            "input": {"format": "jsonl"},
            "stages": ["rt_stages:ExactDedupStage", "rt_stages:CpuDropStage", "noop"],
            "runtime": {"batch_size": 50, "checkpoint_every_records": 100},
        }
    )
    result = await run_job(JobSpec(inputs=(str(inp),), out_dir=tmp_path / "out", config=config))
    assert result.manifest["complete"] is True
    assert result.manifest["checkpoints"] == 3


class TestResumeProperty:
    @settings(
        max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        batch_size=st.integers(1, 60),
        checkpoint_every=st.integers(1, 150),
        shard_max=st.integers(1, 200),
        crash_at=st.integers(1, 300),
    )
    async def test_crash_anywhere_then_resume_equals_uninterrupted(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        batch_size: int,
        checkpoint_every: int,
        shard_max: int,
        crash_at: int,
    ) -> None:
        """For any batching, checkpoint interval, shard size and crash point: same output."""
        tmp = tmp_path_factory.mktemp("prop")
        inp = await asyncio.to_thread(make_input, tmp / "in", 2, 150)
        flag = tmp / "crash-once"
        config = config_from_dict(
            {
                "input": {"format": "jsonl"},
                "stages": [
                    "rt_stages:ExactDedupStage",
                    "rt_stages:HoldStage",
                    {
                        "name": "rt_stages:CrashOnceStage",
                        "options": {"flag_file": str(flag), "at": crash_at},
                    },
                    "rt_stages:DropMarkedStage",
                ],
                "runtime": {"batch_size": batch_size, "checkpoint_every_records": checkpoint_every},
                "output": {"shard_max_records": shard_max},
            }
        )
        await run_job(JobSpec(inputs=(str(inp),), out_dir=tmp / "ref", config=config))
        flag.touch()
        spec = JobSpec(inputs=(str(inp),), out_dir=tmp / "out", config=config)
        # crash_at may lie beyond what reaches the stage: then the first run just completes.
        with contextlib.suppress(StageCrashed):
            await run_job(spec)
        await run_job(spec)
        assert output_of(tmp / "out") == output_of(tmp / "ref")
