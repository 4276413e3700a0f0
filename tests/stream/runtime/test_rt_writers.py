"""Sinks: sharded JSONL.zst and Parquet with atomic commit; restore drops uncommitted shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from codekiln.stream.record import Record
from codekiln.stream.writers import JsonlZstWriter, ParquetWriter, read_jsonl_zst


def _recs(n: int, start: int = 0) -> list[Record]:
    return [
        Record(id=f"id{i}", text=f"text {i} é", lang="python", meta={"i": i})
        for i in range(start, start + n)
    ]


class TestJsonlZst:
    def test_shards_roll_by_records_and_are_invisible_until_commit(self, tmp_path: Path) -> None:
        """Shards roll at max_records; the open shard is a hidden temp file until commit()."""
        w = JsonlZstWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 30)
        w.write(_recs(25))
        visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
        assert visible == ["part-00000.jsonl.zst", "part-00001.jsonl.zst"]
        w.commit()
        rows = [r for p in sorted(tmp_path.glob("part-*")) for r in read_jsonl_zst(p)]
        assert [r["id"] for r in rows] == [f"id{i}" for i in range(25)]
        assert rows[0]["text"] == "text 0 é"
        assert [s["records"] for s in w.shards] == [10, 10, 5]
        for s in w.shards:
            assert hashlib.sha256((tmp_path / s["file"]).read_bytes()).hexdigest() == s["sha256"]
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    def test_restore_deletes_shards_written_after_the_checkpoint(self, tmp_path: Path) -> None:
        """restore(committed) removes later shards and temp files; numbering continues from it."""
        w = JsonlZstWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 30)
        w.write(_recs(10))
        checkpoint = [dict(s) for s in w.shards]
        w.write(_recs(10, start=10))  # one more shard, committed after the checkpoint ...
        (tmp_path / ".part-00002.jsonl.zst.tmp").write_bytes(b"partial")  # ... a crash mid-shard
        again = JsonlZstWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 30)
        again.restore(checkpoint)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00000.jsonl.zst"]
        again.write(_recs(3, start=10))
        again.commit()
        assert [s["file"] for s in again.shards] == ["part-00000.jsonl.zst", "part-00001.jsonl.zst"]

    def test_same_records_give_byte_identical_shards(self, tmp_path: Path) -> None:
        """Compression is deterministic, so a rewritten shard has the same bytes and hash."""
        shas = []
        for name in ("a", "b"):
            w = JsonlZstWriter(tmp_path / name, prefix="part", max_records=100, max_bytes=1 << 30)
            w.write(_recs(50))
            w.commit()
            shas.append(w.shards[0]["sha256"])
        assert shas[0] == shas[1]

    def test_lone_surrogates_are_escaped_not_lost(self, tmp_path: Path) -> None:
        """Text that is not valid UTF-8 (lone surrogates from JSON) is written escaped."""
        w = JsonlZstWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 30)
        w.write([Record(id="s", text="a\ud800b")])
        w.commit()
        [row] = read_jsonl_zst(tmp_path / "part-00000.jsonl.zst")
        assert row["text"] == "a\ud800b"


class TestParquet:
    def test_parquet_shards_hold_every_field(self, tmp_path: Path) -> None:
        """Parquet shards carry id, text, lang, meta (JSON) and reason columns."""
        w = ParquetWriter(tmp_path, prefix="part", max_records=100, max_bytes=1 << 30)
        recs = _recs(5)
        recs[2].drop_reason = "f:rule"
        w.write(recs)
        w.commit()
        table = pq.read_table(tmp_path / "part-00000.parquet").to_pylist()
        assert [r["id"] for r in table] == [f"id{i}" for i in range(5)]
        assert json.loads(table[3]["meta"]) == {"i": 3}
        assert table[2]["reason"] == "f:rule"
        assert table[0]["reason"] is None


@pytest.mark.parametrize("fmt", ["jsonl.zst", "parquet"])
async def test_run_with_each_output_format(tmp_path: Path, fmt: str) -> None:
    """A whole run writes its corpus in the configured format."""
    from codekiln.stream.config import config_from_dict
    from codekiln.stream.runtime.job import JobSpec, run_job

    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"m{i}.py").write_text(f"x = {i}\n")
    config = config_from_dict({"stages": ["noop"], "output": {"format": fmt}})
    result = await run_job(JobSpec(inputs=(str(src),), out_dir=tmp_path / "out", config=config))
    [shard] = result.manifest["corpus"]["shards"]
    assert shard["file"].endswith("." + fmt)
    assert shard["records"] == 5
