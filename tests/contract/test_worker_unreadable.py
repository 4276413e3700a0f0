"""Issue 19: a worker never files a shard it could not read as done."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from codekiln.stream.config import config_from_dict
from codekiln.stream.worker import DONE, FAILED, WorkerSettings, run_worker

from codekiln import shards


def _publish_truncated(folder: Path) -> None:
    folder.mkdir(parents=True)
    good = folder / "in-00.jsonl.zst"
    shards.write_objects(good, [{"text": f"doc {i}\n" * 20} for i in range(300)])
    bad = folder / ".in-01.jsonl.zst.tmp"
    bad.write_bytes(good.read_bytes()[:-60])  # cut off inside its frame
    bad.rename(folder / "in-01.jsonl.zst")


async def test_truncated_shard_goes_to_failed(tmp_path: Path) -> None:
    """A .jsonl.zst cut short moves to .failed/ with reader:corrupt, the good one to .done/."""
    watch = tmp_path / "watch"
    await asyncio.to_thread(_publish_truncated, watch)
    settings = WorkerSettings(
        watch_dir=watch,
        out_dir=tmp_path / "out",
        worker_id="wu",
        poll_interval_s=0.05,
        metrics_port=0,
        once=True,
    )
    config = config_from_dict({"stages": ["exact_dedup"]})
    assert await run_worker(config, settings) == 0
    assert sorted(os.listdir(watch / DONE)) == ["in-00.jsonl.zst"]
    assert sorted(os.listdir(watch / FAILED)) == ["in-01.jsonl.zst", "in-01.jsonl.zst.error.txt"]
    assert "reader:corrupt" in (watch / FAILED / "in-01.jsonl.zst.error.txt").read_text()
