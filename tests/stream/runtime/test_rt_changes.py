"""What a pool worker sends back: the changes to the batch's records, texts only if replaced."""

from __future__ import annotations

import pickle

import pytest
from codekiln.stream.record import Record
from codekiln.stream.runtime import executor
from codekiln.stream.stage import BatchStage, FlatMapStage


class Tag(BatchStage):
    name = "tag"

    def process_batch(self, batch: list[Record]) -> list[Record]:
        for r in batch:
            r.meta["seen"] = True
            if r.text.startswith("upper"):
                r.text = r.text.upper()
            if r.text.startswith("drop"):
                r.drop_reason = "tag:drop"
        return batch


class Split(FlatMapStage):
    name = "split"

    def flat_map(self, record: Record) -> list[Record]:
        return [Record(id=f"{record.id}-{i}", text=part) for i, part in enumerate(record.text)]


def batch() -> list[Record]:
    return [Record(id=str(i), text=t, lang="Python") for i, t in enumerate(
        ["keep me " * 1000, "upper case", "drop this"])]  # fmt: skip


def test_unchanged_texts_are_not_sent_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records returned as given travel back without their texts; applying them restores all."""
    monkeypatch.setitem(executor._STAGES, "tag", Tag())
    sent = pickle.loads(pickle.dumps(batch()))  # the worker's copy
    result, _, _ = executor.run_batch("tag", sent)
    assert isinstance(result, executor.Changes)
    wire = pickle.dumps(result)
    assert len(wire) < 1000  # the 8 KB text stayed behind
    mine = batch()
    out = pickle.loads(wire).apply(mine)
    assert out is mine
    assert [r.text for r in out] == ["keep me " * 1000, "UPPER CASE", "drop this"]
    assert [r.drop_reason for r in out] == [None, None, "tag:drop"]
    assert all(r.meta == {"seen": True} for r in out)


def test_new_records_come_back_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage that returns other records (more, fewer, new ones) sends them whole."""
    monkeypatch.setitem(executor._STAGES, "split", Split())
    result, _, _ = executor.run_batch("split", [Record(id="a", text="xy")])
    assert isinstance(result, list)
    assert [(r.id, r.text) for r in result] == [("a-0", "x"), ("a-1", "y")]
