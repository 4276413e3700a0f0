"""Sources: directory trees, JSONL(.zst), Parquet; quarantine reasons; resume positions."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from codekiln.stream.config import InputConfig
from codekiln.stream.readers import Budget, FileTreeReader, InputSet, JsonlReader, ParquetReader
from codekiln.stream.record import Record, record_id
from codekiln.stream.runtime.errors import InputError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _tree(root: Path) -> Path:
    (root / "proj" / ".git").mkdir(parents=True)
    (root / "proj" / "src").mkdir()
    (root / "proj" / "src" / "main.py").write_text("print('hi')\n")
    (root / "lib").mkdir()
    (root / "lib" / "util.c").write_text("int x;\n")
    (root / "lib" / "blob.bin").write_bytes(b"ab\x00cd")
    (root / "lib" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "lib" / "empty.py").write_bytes(b"")
    (root / "lib" / "big.txt").write_text("x" * 200)
    (root / "lib" / "__pycache__").mkdir()
    (root / "lib" / "__pycache__" / "util.pyc").write_bytes(b"\x00")
    (root / "top.rs").write_text("fn main() {}\n")
    return root


def _read(
    reader: object, after: tuple[int, ...] | None = None
) -> list[tuple[tuple[int, ...], Record]]:
    return list(reader.items(after, Budget()))  # type: ignore[attr-defined]


class TestFileTree:
    def test_file_records_have_stable_ids_repo_and_relative_path(self, tmp_path: Path) -> None:
        """id = record_id(root name, relpath); repo = git root or top folder; path relative."""
        root = _tree(tmp_path / "in")
        reader = FileTreeReader(root, max_file_bytes=100)
        got = {r.path: r for _, r in _read(reader)}
        main = got["proj/src/main.py"]
        assert main.id == record_id("in", "proj/src/main.py")
        assert main.repo == "proj"
        assert main.text == "print('hi')\n"
        assert got["lib/util.c"].repo == "lib"
        assert got["top.rs"].repo == "in"
        assert "lib/__pycache__/util.pyc" not in got

    def test_bad_files_are_quarantined_with_reasons(self, tmp_path: Path) -> None:
        """Binary, non-UTF-8, empty and oversize files come out as rejects with their reason."""
        reader = FileTreeReader(_tree(tmp_path / "in"), max_file_bytes=100)
        reasons = {r.path: r.drop_reason for _, r in _read(reader)}
        assert reasons["lib/blob.bin"] == "reader:binary"
        assert reasons["lib/latin1.txt"] == "reader:non_utf8"
        assert reasons["lib/empty.py"] == "reader:empty"
        assert reasons["lib/big.txt"] == "reader:oversize"
        assert reasons["proj/src/main.py"] is None

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
    def test_unreadable_file_is_quarantined(self, tmp_path: Path) -> None:
        """A file without read permission is quarantined as reader:unreadable."""
        root = tmp_path / "in"
        root.mkdir()
        secret = root / "secret.py"
        secret.write_text("x = 1\n")
        secret.chmod(0)
        [(_, rec)] = _read(FileTreeReader(root, max_file_bytes=100))
        assert rec.drop_reason == "reader:unreadable"

    def test_fifo_is_quarantined_without_blocking(self, tmp_path: Path) -> None:
        """A named pipe is quarantined as reader:unreadable instead of hanging the read."""
        root = tmp_path / "in"
        root.mkdir()
        os.mkfifo(root / "pipe.py")
        [(_, rec)] = _read(FileTreeReader(root, max_file_bytes=100))
        assert rec.drop_reason == "reader:unreadable"
        assert rec.meta["error"] == "not a regular file"

    def test_broken_symlink_is_quarantined(self, tmp_path: Path) -> None:
        """A dangling symlink is quarantined as reader:unreadable, the walk goes on."""
        root = tmp_path / "in"
        root.mkdir()
        (root / "a.py").write_text("a = 1\n")
        (root / "dangling.py").symlink_to(root / "nowhere.py")
        got = {r.path: r.drop_reason for _, r in _read(FileTreeReader(root, max_file_bytes=100))}
        assert got == {"a.py": None, "dangling.py": "reader:unreadable"}

    def test_resume_after_position_yields_exactly_the_rest(self, tmp_path: Path) -> None:
        """items(after=p) yields exactly the items that followed p in a full read."""
        reader = FileTreeReader(_tree(tmp_path / "in"), max_file_bytes=100)
        full = _read(reader)
        for k in range(len(full)):
            assert _read(reader, full[k][0]) == full[k + 1 :]

    def test_byte_cap_stops_reading_and_counts_the_rest(self, tmp_path: Path) -> None:
        """A max_bytes cap admits files in walk order, then counts the rest as not read."""
        root = tmp_path / "in"
        root.mkdir()
        for i in range(10):
            (root / f"f{i}.py").write_text("x" * 10)
        budget = Budget(max_bytes=35)
        items = list(FileTreeReader(root, max_file_bytes=100).items(None, budget))
        assert [r.path for _, r in items] == ["f0.py", "f1.py", "f2.py"]
        assert budget.not_read == 7


def _write_jsonl(path: Path, lines: list[bytes]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    if path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    elif path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


class TestJsonl:
    def test_bad_lines_are_quarantined_and_good_ones_kept(self, tmp_path: Path) -> None:
        """Malformed JSON, non-objects, missing text, invalid UTF-8, huge lines: one reject each."""
        shard = tmp_path / "a.jsonl"
        _write_jsonl(
            shard,
            [
                json.dumps({"text": "good one", "lang": "python"}).encode(),
                b'{"text": "unterminated',
                b"[1, 2]",
                json.dumps({"content": "no text key"}).encode(),
                b'{"text": "caf\xe9"}',
                json.dumps({"text": "y" * 500}).encode(),
                b"",
                json.dumps({"id": "keep-me", "text": "good two", "stars": 5}).encode(),
            ],
        )
        reader = JsonlReader([shard], shard, text_key="text", id_key="id", max_line_bytes=200)
        items = _read(reader)
        reasons = [(pos[1], r.drop_reason) for pos, r in items]
        assert reasons == [
            (1, None),
            (2, "reader:malformed_json"),
            (3, "reader:not_object"),
            (4, "reader:missing_text"),
            (5, "reader:non_utf8"),
            (6, "reader:oversize"),
            (8, None),
        ]
        first, last = items[0][1], items[-1][1]
        assert first.id == record_id("a.jsonl", "a.jsonl:1")
        assert first.lang == "python"
        assert last.id == "keep-me"
        assert last.meta == {"stars": 5}
        assert items[1][1].text == '{"text": "unterminated'

    def test_compressed_shards_read_like_plain_ones(self, tmp_path: Path) -> None:
        """.jsonl.zst and .jsonl.gz shards (both written by codekiln.shards) yield the same
        records as the same lines uncompressed."""
        lines = [json.dumps({"text": f"doc {i}"}).encode() for i in range(50)]
        names = ("s.jsonl", "s.jsonl.zst", "s.jsonl.gz")
        for name in names:
            _write_jsonl(tmp_path / name, lines)
        texts = []
        for name in names:
            p = tmp_path / name
            reader = JsonlReader([p], p, text_key="text", id_key="id", max_line_bytes=1000)
            texts.append([r.text for _, r in _read(reader)])
        assert texts[0] == texts[1] == texts[2] == [f"doc {i}" for i in range(50)]

    @pytest.mark.parametrize("cut", [0.5, 0.99], ids=["half", "last-bytes"])
    def test_truncated_gz_quarantines_the_rest_of_the_shard_only(
        self, tmp_path: Path, cut: float
    ) -> None:
        """A gzip stream cut short: the lines before the cut, one reader:corrupt reject for the
        rest (not a silent short read), and the next shard is still read."""
        bad = tmp_path / "a.jsonl.gz"
        _write_jsonl(
            bad, [json.dumps({"text": f"doc {i} " + "x" * 40}).encode() for i in range(400)]
        )
        data = bad.read_bytes()
        bad.write_bytes(data[: int(len(data) * cut)])
        good = tmp_path / "b.jsonl"
        _write_jsonl(good, [json.dumps({"text": "fine"}).encode()])
        reader = JsonlReader(
            [bad, good], tmp_path, text_key="text", id_key="id", max_line_bytes=1000
        )
        got = [(pos[0], r.text, r.drop_reason) for pos, r in _read(reader)]
        assert got[-1] == (1, "fine", None)
        assert (got[-2][0], got[-2][2]) == (0, "reader:corrupt")
        read = [t for shard, t, reason in got[:-2] if shard == 0 and reason is None]
        assert read == [f"doc {i} " + "x" * 40 for i in range(len(read))]
        assert len(read) < 400

    def test_corrupt_zst_quarantines_the_rest_of_the_shard_only(self, tmp_path: Path) -> None:
        """A broken zstd stream yields one reader:corrupt reject; the next shard is still read."""
        bad = tmp_path / "a.jsonl.zst"
        bad.write_bytes(b"\x28\xb5\x2f\xfd garbage that is not zstd")
        good = tmp_path / "b.jsonl"
        _write_jsonl(good, [json.dumps({"text": "fine"}).encode()])
        reader = JsonlReader(
            [bad, good], tmp_path, text_key="text", id_key="id", max_line_bytes=100
        )
        got = [(pos[0], r.text, r.drop_reason) for pos, r in _read(reader)]
        assert got == [(0, "", "reader:corrupt"), (1, "fine", None)]

    def test_empty_shard_is_quarantined(self, tmp_path: Path) -> None:
        """A zero-byte shard is one reader:empty reject."""
        p = tmp_path / "e.jsonl"
        p.write_bytes(b"")
        reader = JsonlReader([p], p, text_key="text", id_key="id", max_line_bytes=100)
        assert [r.drop_reason for _, r in _read(reader)] == ["reader:empty"]

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.lists(st.lists(st.text(max_size=20), max_size=6), min_size=1, max_size=4))
    def test_resume_positions_cover_every_line_once(
        self, tmp_path: Path, shards: list[list[str]]
    ) -> None:
        """Resuming after any position yields exactly the tail of the full read."""
        folder = tmp_path / f"s{abs(hash(str(shards)))}"
        folder.mkdir()
        files = []
        for i, texts in enumerate(shards):
            p = folder / f"{i}.jsonl"
            _write_jsonl(p, [json.dumps({"text": t}).encode() for t in texts])
            files.append(p)
        reader = JsonlReader(files, folder, text_key="text", id_key="id", max_line_bytes=1000)
        full = _read(reader)
        assert [r.text for _, r in full if r.drop_reason is None] == [t for s in shards for t in s]
        for k in range(len(full)):
            assert _read(reader, full[k][0]) == full[k + 1 :]


class TestParquet:
    def test_rows_become_records_and_bad_rows_are_quarantined(self, tmp_path: Path) -> None:
        """Rows with text become records; a null text is reader:missing_text."""
        p = tmp_path / "a.parquet"
        pq.write_table(pa.table({"text": ["one", None, "three"], "lang": ["go", "go", "c"]}), p)
        reader = ParquetReader([p], p, text_key="text", id_key="id", max_text_bytes=100)
        got = [(pos, r.text, r.lang, r.drop_reason) for pos, r in _read(reader)]
        assert got == [
            ((0, 1), "one", "go", None),
            ((0, 2), "", "", "reader:missing_text"),
            ((0, 3), "three", "c", None),
        ]
        assert _read(reader, (0, 1))[0][0] == (0, 2)

    def test_resume_across_row_groups_yields_exactly_the_rest(self, tmp_path: Path) -> None:
        """With several row groups, items(after=p) yields exactly the rows after p."""
        p = tmp_path / "a.parquet"
        pq.write_table(pa.table({"text": [f"row {i}" for i in range(10)]}), p, row_group_size=3)
        reader = ParquetReader([p], p, text_key="text", id_key="id", max_text_bytes=100)
        full = _read(reader)
        assert [r.text for _, r in full] == [f"row {i}" for i in range(10)]
        for k in range(len(full)):
            assert _read(reader, full[k][0]) == full[k + 1 :]

    def test_not_parquet_is_quarantined_as_corrupt(self, tmp_path: Path) -> None:
        """A file that is not Parquet is one reader:corrupt reject."""
        p = tmp_path / "a.parquet"
        p.write_bytes(b"not parquet at all")
        reader = ParquetReader([p], p, text_key="text", id_key="id", max_text_bytes=100)
        assert [r.drop_reason for _, r in _read(reader)] == ["reader:corrupt"]


class TestInputSet:
    def test_missing_path_is_quarantined_when_another_exists(self, tmp_path: Path) -> None:
        """A missing INPUT becomes a reader:missing reject; the existing ones are read."""
        (tmp_path / "a.py").write_text("a = 1\n")
        inputs = InputSet([str(tmp_path), str(tmp_path / "nope")], InputConfig())
        got = [(pos, r.drop_reason) for pos, r in inputs.items(None)]
        assert got == [((0, 0), None), ((1, 0), "reader:missing")]

    def test_ids_do_not_depend_on_where_the_input_lives(self, tmp_path: Path) -> None:
        """The same tree in two places gives the same ids; two inputs of one name get apart."""
        for parent in ("x", "y"):
            (tmp_path / parent / "src").mkdir(parents=True)
            (tmp_path / parent / "src" / "a.py").write_text("a = 1\n")
        ids = [
            [r.id for _, r in InputSet([str(tmp_path / p / "src")], InputConfig()).items(None)]
            for p in ("x", "y")
        ]
        assert ids[0] == ids[1]
        both = InputSet([str(tmp_path / "x" / "src"), str(tmp_path / "y" / "src")], InputConfig())
        assert both.sources == ["src", "src#2"]
        assert len({r.id for _, r in both.items(None)}) == 2

    def test_no_existing_input_is_fatal(self, tmp_path: Path) -> None:
        """When no INPUT exists at all, that is an InputError (nothing to quarantine into)."""
        with pytest.raises(InputError, match="no input exists"):
            InputSet([str(tmp_path / "nope")], InputConfig())
