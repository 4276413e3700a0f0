"""Fixtures of the Ray executor tests: one local Ray instance per test module, loopback only."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zstandard

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray instance (2 CPUs, small object store, bound to 127.0.0.1); its GCS address."""
    ray = pytest.importorskip("ray")
    from codekiln.stream.ray._cluster import LOOPBACK_ENV
    from ray._private import ray_constants

    os.environ[LOOPBACK_ENV] = "0"  # every Ray server binds 127.0.0.1 only
    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(
        num_cpus=2,
        object_store_memory=300 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def write_config(
    path: Path, first: list[Any] | None = None, input_format: str = "auto", **runtime: Any
) -> Path:
    """The test pipeline: stage 1 at a 0.8 threshold (so planted near copies are found)."""
    stages: list[Any] = [
        *(first or []),
        "preprocess",
        "exact_dedup",
        {"name": "minhash", "options": {"preset": "t0.8"}},
        {"name": "fuzzy_dedup", "options": {"preset": "t0.8"}},
        "copyright",
        # A byte budget makes downsample order-dependent: it runs as a serial step.
        {"name": "downsample", "options": {"targets": {"Java": {"max_bytes": 1000}}}},
        # Decides each record alone, counters only: runs per shard, counters summed.
        {"name": "anneal_route", "options": {"exclusive": True}},
    ]
    cfg = {
        "input": {"format": input_format},
        "stages": stages,
        "runtime": {"batch_size": 8, "workers": 1, **runtime},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def read_folder(folder: Path) -> list[dict[str, Any]]:
    """Every record of the .jsonl.zst shards in ``folder``."""
    out = []
    for shard in sorted(folder.glob("*.jsonl.zst")):
        with open(shard, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        out.extend(json.loads(line) for line in data.splitlines())
    return out


def outcome(out_dir: Path) -> tuple[dict[str, str | None], dict[str, str]]:
    """(corpus id -> duplicate_of-free marker, reject id -> reason) of a finished run."""
    corpus = {r["id"]: r["meta"].get("fuzzy_cluster_size") for r in read_folder(out_dir / "corpus")}
    rejects = {r["id"]: r["reason"] for r in read_folder(out_dir / "rejects")}
    return corpus, rejects
