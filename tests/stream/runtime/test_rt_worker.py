"""Worker mode: atomic claims shared by several workers, SIGTERM drain, /metrics and /healthz."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from codekiln.stream.config import config_from_dict
from codekiln.stream.worker import CLAIMED, DONE, FAILED, WorkerSettings, claim_next, run_worker
from codekiln.stream.writers import read_jsonl_zst


def _shards(folder: Path, n: int, lines: int = 30) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for s in range(n):
        name = f"in-{s:02d}.jsonl"
        tmp = folder / f".{name}.tmp"
        tmp.write_text(
            "".join(json.dumps({"text": f"shard {s} doc {i}"}) + "\n" for i in range(lines))
        )
        tmp.rename(folder / name)  # how producers publish a shard: never half-written
        names.append(name)
    return names


def _settings(tmp_path: Path, worker_id: str, once: bool = True) -> WorkerSettings:
    return WorkerSettings(
        watch_dir=tmp_path / "watch",
        out_dir=tmp_path / "out",
        worker_id=worker_id,
        poll_interval_s=0.05,
        metrics_port=0,
        once=once,
    )


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def _corpus_ids(out: Path) -> list[str]:
    return [r["id"] for p in sorted(out.glob("*/corpus/*.zst")) for r in read_jsonl_zst(p)]


class TestClaims:
    def test_a_shard_is_claimed_by_one_claimant_only(self, tmp_path: Path) -> None:
        """While one claim holds a shard, a second claimant gets the next shard, never the same."""
        _shards(tmp_path / "watch", 2)
        first = claim_next(tmp_path / "watch")
        second = claim_next(tmp_path / "watch")
        third = claim_next(tmp_path / "watch")
        assert first is not None
        assert second is not None
        assert {first.path.name, second.path.name} == {"in-00.jsonl", "in-01.jsonl"}
        assert third is None
        first.release()
        second.release()

    def test_abandoned_claim_is_taken_over(self, tmp_path: Path) -> None:
        """A shard left in .claimed/ by a dead worker (lock free) is claimed again."""
        _shards(tmp_path / "watch", 1)
        claim = claim_next(tmp_path / "watch")
        assert claim is not None
        claim.release()  # what the kernel does when the owning process dies
        again = claim_next(tmp_path / "watch")
        assert again is not None
        assert again.path == tmp_path / "watch" / CLAIMED / "in-00.jsonl"
        again.release()

    async def test_two_workers_process_every_shard_exactly_once(self, tmp_path: Path) -> None:
        """Two workers sharing a folder: every shard done once, every record in the output once."""
        names = _shards(tmp_path / "watch", 6)
        config = config_from_dict({"input": {"format": "jsonl"}, "stages": ["noop"]})
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_worker(config, _settings(tmp_path, "w1")))
            tg.create_task(run_worker(config, _settings(tmp_path, "w2")))
        assert sorted(os.listdir(tmp_path / "watch" / DONE)) == names
        ids = _corpus_ids(tmp_path / "out")
        assert len(ids) == len(set(ids)) == 6 * 30
        for name in names:
            manifest = json.loads(
                (tmp_path / "out" / name.removesuffix(".jsonl") / "manifest.json").read_text()
            )
            assert manifest["complete"] is True


class TestEndpoints:
    async def test_metrics_and_healthz_on_port_0(self, tmp_path: Path, no_blocking: Any) -> None:
        """/metrics serves per-stage Prometheus counters; /healthz answers ok with the worker id."""
        await asyncio.to_thread(_shards, tmp_path / "watch", 2, 25)
        config = config_from_dict(
            {"input": {"format": "jsonl"}, "stages": ["noop", "rt_stages:DropMarkedStage"]}
        )
        stop = asyncio.Event()
        ready = asyncio.Event()
        port: list[int] = []

        def on_ready(p: int) -> None:
            port.append(p)
            ready.set()

        settings = _settings(tmp_path, "wm", once=False)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_worker(config, settings, stop=stop, on_ready=on_ready))
            await ready.wait()
            base = f"http://127.0.0.1:{port[0]}"
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with asyncio.timeout(60):
                    while True:  # until both shards are done, as /healthz tells
                        async with http.get(f"{base}/healthz") as resp:
                            assert resp.status == 200
                            health = await resp.json()
                        if health["shards"]["done"] == 2:
                            break
                        await asyncio.sleep(0.05)
                async with http.get(f"{base}/metrics") as resp:
                    assert resp.status == 200
                    text = await resp.text()
            stop.set()
        assert health["status"] == "ok"
        assert health["worker_id"] == "wm"
        assert health["shards"] == {"done": 2, "failed": 0}
        assert 'codekiln_stream_stage_records_in_total{stage="noop"} 50.0' in text
        assert 'codekiln_stream_worker_shards_total{status="done"} 2.0' in text
        assert "codekiln_stream_stage_queue_depth" in text


@pytest.mark.slow
def test_sigterm_drains_the_current_shard_and_exits_0(
    tmp_path: Path, python: str, cli_env: dict[str, str]
) -> None:
    """SIGTERM mid-shard: that shard is finished and committed, no new one is claimed, exit 0."""
    _shards(tmp_path / "watch", 2, lines=400)
    cfg = tmp_path / "w.yaml"
    cfg.write_text(
        "input: {format: jsonl}\n"
        "stages: [{name: 'rt_stages:SlowStage', options: {delay_s: 0.05}}]\n"
        "runtime: {batch_size: 10}\n"
        f"worker: {{watch_dir: '{tmp_path / 'watch'}', out_dir: '{tmp_path / 'out'}', "
        "poll_interval_s: 0.05, metrics_port: 0}\n"
    )
    proc = subprocess.Popen(
        [python, "-m", "codekiln.stream.cli", "worker", "--config", str(cfg)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        claimed = tmp_path / "watch" / CLAIMED
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            claimed.exists() and any(p.suffix == ".jsonl" for p in claimed.iterdir())
        ):
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert os.listdir(tmp_path / "watch" / DONE) == ["in-00.jsonl"]
    assert (tmp_path / "watch" / "in-01.jsonl").exists()
    manifest = json.loads((tmp_path / "out" / "in-00" / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["corpus"]["records"] == 400


class TestFailures:
    async def test_failed_shard_goes_to_failed_with_its_error(self, tmp_path: Path) -> None:
        """A shard whose run crashes moves to .failed/ with an error file; the worker goes on."""
        await asyncio.to_thread(_shards, tmp_path / "watch", 2, 10)
        config = config_from_dict(
            {"input": {"format": "jsonl"}, "stages": ["rt_stages:CrashStage"]}
        )
        assert await run_worker(config, _settings(tmp_path, "wf")) == 0
        failed = tmp_path / "watch" / FAILED
        assert _listing(failed) == [
            "in-00.jsonl",
            "in-00.jsonl.error.txt",
            "in-01.jsonl",
            "in-01.jsonl.error.txt",
        ]
        assert "disk on fire" in (failed / "in-00.jsonl.error.txt").read_text()


@pytest.mark.slow
def test_worker_killed_mid_shard_is_finished_by_another(
    tmp_path: Path, python: str, cli_env: dict[str, str]
) -> None:
    """kill -9 a worker mid-shard; the next worker takes the claim over and resumes it."""
    _shards(tmp_path / "ref-watch", 1, lines=600)
    _shards(tmp_path / "watch", 1, lines=600)
    common = (
        "input: {format: jsonl}\n"
        "stages: [{name: 'rt_stages:SlowStage', options: {delay_s: 0.02}},"
        " 'rt_stages:ExactDedupStage']\n"
        "runtime: {batch_size: 10, checkpoint_every_records: 50}\n"
    )

    def config(watch: str, out: str) -> Path:
        path = tmp_path / f"{watch}.yaml"
        path.write_text(
            common + f"worker: {{watch_dir: '{tmp_path / watch}', out_dir: '{tmp_path / out}', "
            "poll_interval_s: 0.05, metrics_port: 0}\n"
        )
        return path

    def worker(cfg: Path, log: str, new_session: bool = False) -> subprocess.Popen[bytes]:
        with open(tmp_path / log, "wb") as err:  # the child keeps its own copy of the fd
            return subprocess.Popen(
                [python, "-m", "codekiln.stream.cli", "worker", "--config", str(cfg), "--once"],
                env=cli_env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=new_session,
            )

    ref = worker(config("ref-watch", "ref-out"), "ref.log")
    assert ref.wait(timeout=120) == 0
    cfg = config("watch", "out")
    victim = worker(cfg, "victim.log", new_session=True)
    ckpt = tmp_path / "out" / "in-00" / ".codekiln" / "checkpoint.pkl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ckpt.exists():
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert _listing(tmp_path / "watch" / DONE) == []
    heir = worker(cfg, "heir.log")
    assert heir.wait(timeout=120) == 0, (tmp_path / "heir.log").read_text()
    assert _listing(tmp_path / "watch" / DONE) == ["in-00.jsonl"]
    got = json.loads((tmp_path / "out" / "in-00" / "manifest.json").read_text())
    want = json.loads((tmp_path / "ref-out" / "in-00" / "manifest.json").read_text())
    assert got["starts"] == 2
    assert [s["sha256"] for s in got["corpus"]["shards"]] == [
        s["sha256"] for s in want["corpus"]["shards"]
    ]
