"""Issue 19: stream inputs that used to give an empty corpus and exit 0 without a word."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from codekiln.stream.config import InputConfig, OutputConfig
from codekiln.stream.readers.base import Budget
from codekiln.stream.readers.inputs import InputSet, detect_format
from codekiln.stream.readers.parquet import ParquetReader
from codekiln.stream.record import Record
from codekiln.stream.runtime.errors import InputError
from codekiln.stream.writers.sink import RunSink

from codekiln import shards


def _records(source: InputSet) -> list[Record]:
    return [record for _, record in source.items(None)]


class TestShardFolders:
    @pytest.mark.parametrize("suffix", shards.SHARD_SUFFIXES)
    def test_folder_of_shards_is_read_as_shards(self, tmp_path: Path, suffix: str) -> None:
        """A folder holding only shards, of any kind codekiln.shards writes (.jsonl.gz was read
        as one binary source file: rejected, an empty corpus, exit 0), reads their records with
        input.format: auto; and so does each shard given alone."""
        folder = tmp_path / "shards"
        folder.mkdir()
        for i in range(2):
            shards.write_objects(folder / f"part-{i}{suffix}", [{"text": f"x = {i}\n"}])
        got = _records(InputSet([str(folder)], InputConfig()))
        assert [(r.text, r.drop_reason) for r in got] == [("x = 0\n", None), ("x = 1\n", None)]
        alone = _records(InputSet([str(folder / f"part-1{suffix}")], InputConfig()))
        assert [(r.text, r.drop_reason) for r in alone] == [("x = 1\n", None)]

    def test_source_tree_stays_a_source_tree(self, tmp_path: Path) -> None:
        """A folder with any non-shard file is still read file by file."""
        (tmp_path / "data.jsonl").write_text('{"text": "a"}\n')
        (tmp_path / "tool.py").write_text("print(1)\n")
        assert detect_format(tmp_path, "auto") == "files"


class TestParquetMissingColumn:
    def test_other_text_column_is_missing_text(self, tmp_path: Path) -> None:
        """A parquet file whose text column has another name is reader:missing_text."""
        path = tmp_path / "a.parquet"
        pq.write_table(pa.table({"content": ["x = 1"]}), path)
        reader = ParquetReader([path], path, text_key="text", id_key="id", max_text_bytes=100)
        [(_, record)] = list(reader.items(None, Budget()))
        assert record.drop_reason == "reader:missing_text"
        assert "content" in json.dumps(record.meta)


class TestEmptyCorpus:
    @pytest.mark.parametrize("fmt", ["jsonl.zst", "parquet"])
    def test_empty_run_output_is_an_empty_valid_corpus(self, tmp_path: Path, fmt: str) -> None:
        """A sink that saw no record still commits one empty shard readers accept."""
        sink = RunSink(tmp_path, OutputConfig(format=fmt))
        state = sink.finish()
        [shard] = state["corpus"]
        assert shard["records"] == 0
        assert shards.read_objects(tmp_path / "corpus") == []

    def test_finish_adds_nothing_to_a_written_corpus(self, tmp_path: Path) -> None:
        """With records written, finish() commits them and adds no empty shard."""
        sink = RunSink(tmp_path, OutputConfig())
        sink.write([Record(id="1", text="x")], [])
        state = sink.finish()
        assert [s["records"] for s in state["corpus"]] == [1]
        assert [s["records"] for s in state["rejects"]] == [0]


class TestRunCli:
    def test_missing_input_and_empty_corpus_are_said(self, tmp_path: Path) -> None:
        """A missing INPUT and an empty corpus are notes on stderr; corpus/ holds an empty shard."""
        import subprocess
        import sys

        (tmp_path / "empty.jsonl").write_bytes(b"")
        config = tmp_path / "c.yaml"
        config.write_text("stages: [exact_dedup]\n")
        out = tmp_path / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "codekiln.stream.cli", "run", str(tmp_path / "empty.jsonl"),
             str(tmp_path / "nothere"), "--out", str(out), "--config", str(config)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"input {tmp_path / 'nothere'} does not exist" in proc.stderr
        assert "the corpus is empty" in proc.stderr
        assert [p.name for p in (out / "corpus").iterdir()] == ["part-00000.jsonl.zst"]
        assert shards.read_objects(out / "corpus") == []
        again = subprocess.run(
            [sys.executable, "-m", "codekiln.stream.cli", "run", str(tmp_path / "empty.jsonl"),
             str(tmp_path / "nothere"), "--out", str(out), "--config", str(config), "--json"],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        summary = json.loads(again.stdout)  # --json: one object, the same counts
        assert summary["already_complete"] is True
        assert summary["corpus_records"] == 0
        assert summary["reject_reasons"] == {"reader:empty": 1, "reader:missing": 1}


class TestNothingToRead:
    @pytest.mark.parametrize("layout", ["empty", "only-skipped", "no-shards-of-format"])
    def test_folders_with_nothing_to_read_are_an_input_error(
        self, tmp_path: Path, layout: str
    ) -> None:
        """A folder with no file to read (empty, only .git/__pycache__, or no shard of the
        configured format): an InputError naming it, before any work (a run committed an empty
        corpus and exited 0)."""
        root = tmp_path / "in"
        root.mkdir()
        cfg = InputConfig()
        if layout == "only-skipped":
            (root / ".git").mkdir()
            (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
            (root / "__pycache__").mkdir()
            (root / "__pycache__" / "m.pyc").write_bytes(b"\0")
        elif layout == "no-shards-of-format":
            (root / "notes.txt").write_text("x\n")
            cfg = InputConfig(format="jsonl")
        with pytest.raises(InputError, match=f"no input file in {root}"):
            InputSet([str(root)], cfg)

    def test_one_folder_with_a_file_is_enough(self, tmp_path: Path) -> None:
        """An empty folder beside one with a file is read (it adds nothing)."""
        (tmp_path / "empty").mkdir()
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "m.py").write_text("x = 1\n")
        got = _records(InputSet([str(tmp_path / "empty"), str(tmp_path / "full")], InputConfig()))
        assert [r.text for r in got] == ["x = 1\n"]
