"""fuzzy_dedup with datasketch's Redis storage, against a real redis-server on 127.0.0.1."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage
from s1_helpers import run_stage
from test_s1_fuzzy import PRESET, corpus, kept

# redis_port: tests/fixtures/redis.py (skips where redis or redis-server is missing).


def redis_stage(tmp: Path, port: int, basename: str) -> FuzzyDedupStage:
    config = {
        "type": "redis",
        "basename": basename.encode(),
        "redis": {"host": "127.0.0.1", "port": port},
    }
    return FuzzyDedupStage(
        preset=PRESET, index="datasketch", storage_config=config, spill_dir=str(tmp)
    )


@pytest.mark.slow
def test_redis_index_same_decisions(tmp_path: Path, redis_port: int) -> None:
    """The Redis-backed MinHashLSH keeps exactly the records the band index keeps."""
    expected = kept(
        run_stage(FuzzyDedupStage(preset=PRESET, spill_dir=str(tmp_path / "a")), corpus())
    )
    got = kept(run_stage(redis_stage(tmp_path / "b", redis_port, "run1"), corpus()))
    assert got == expected


@pytest.mark.slow
def test_redis_resume_rolls_back_keys(tmp_path: Path, redis_port: int) -> None:
    """Keys inserted into Redis after the checkpoint are removed on resume: same output."""
    expected = run_stage(redis_stage(tmp_path / "ref", redis_port, "ref"), corpus())
    records = corpus()
    first = redis_stage(tmp_path / "run", redis_port, "run")
    first.process(records[:4])
    state = pickle.loads(pickle.dumps(first.state_dict()))
    first.process(records[4:9])  # reaches Redis, then the process dies
    first.close()
    second = redis_stage(tmp_path / "run", redis_port, "run")
    second.load_state_dict(state)
    out = run_stage(second, corpus()[4:])
    assert [(r.id, r.drop_reason) for r in out] == [(r.id, r.drop_reason) for r in expected]
