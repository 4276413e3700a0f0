"""Sinks: sharded JSONL.zst and Parquet with atomic commit; restore drops uncommitted shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from codekiln.stream.record import Record
from codekiln.stream.writers import JsonlZstWriter, ParquetWriter, read_jsonl_zst
from codekiln.stream.writers.jsonl import json_line


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

    def test_lines_read_back_as_the_standard_library_wrote_them(self) -> None:
        """orjson's lines parse to what json.dumps gave: text with quotes, escapes, controls
        and non-ASCII, nested meta, floats, big ints; a non-str key falls back to json."""
        records = [
            Record(id="q", text='say "hi"\\n\t\x00\x1f é 漢 \U0001f600', meta={"a": [1, 2.5e-7]}),
            Record(id="n", text="x", meta={"big": 2**63 - 1, "neg": -(2**63), "f": 0.1}),
            Record(id="k", text="y", meta={1: "int key"}),  # type: ignore[dict-item]
            Record(id="h", text="z", meta={"huge": 2**70}),
        ]
        for record in records:
            line = json_line(record)
            assert line.endswith(b"\n")
            assert json.loads(line) == json.loads(json.dumps(record.to_json()))

    def test_non_finite_floats_are_null_on_both_paths(self) -> None:
        """NaN and infinities in meta are written as null, by orjson and by the fallback."""
        meta = {"nan": float("nan"), "inf": [float("inf"), 1.5], "n": {"x": float("-inf")}}
        for text in ("plain", "lone \udc80 surrogate"):  # the second takes the fallback
            row = json.loads(json_line(Record(id="f", text=text, meta=dict(meta))))
            assert row["meta"] == {"nan": None, "inf": [None, 1.5], "n": {"x": None}}

    def test_lone_surrogate_record_does_not_change_its_neighbours(self, tmp_path: Path) -> None:
        """Only the record orjson refuses is escaped: the others stay UTF-8 on one line each."""
        w = JsonlZstWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 30)
        w.write([Record(id="a", text="é"), Record(id="s", text="\udc80"), Record(id="b", text="ü")])
        w.commit()
        rows = read_jsonl_zst(tmp_path / "part-00000.jsonl.zst")
        assert [r["text"] for r in rows] == ["é", "\udc80", "ü"]

    def test_unicode_line_separators_stay_inside_their_record(self, tmp_path: Path) -> None:
        """U+2028, U+2029 and NEL, written raw in UTF-8 lines, do not split a record on read."""
        texts = ["a\u2028b", "c\u2029d", "e\x85f"]
        w = JsonlZstWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 30)
        w.write([Record(id=str(i), text=t) for i, t in enumerate(texts)])
        w.commit()
        rows = read_jsonl_zst(tmp_path / "part-00000.jsonl.zst")
        assert [r["text"] for r in rows] == texts


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
