"""fuzzy_dedup with datasketch's Redis storage, against a real redis-server on 127.0.0.1."""

from __future__ import annotations

import pickle
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage
from s1_helpers import run_stage
from test_s1_fuzzy import PRESET, corpus, kept

pytest.importorskip("redis", reason="the redis client is an optional extra (pip install redis)")
if shutil.which("redis-server") is None:
    pytest.skip(
        "redis-server is not installed (apt-get install redis-server)", allow_module_level=True
    )


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A throw-away redis-server on a free loopback port, no persistence."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    try:
        yield port
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


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
