"""What a pool worker's run_batch hands back when a stage breaks the process() contract."""

from __future__ import annotations

from typing import Any

import pytest
from codekiln.stream.record import Record
from codekiln.stream.runtime import executor
from codekiln.stream.runtime.errors import StageCrashed
from codekiln.stream.runtime.pipeline import _checked
from codekiln.stream.stage import Stage


class ForgotReturn(Stage):
    """process() changes the records and forgets to return them (returns None)."""

    name = "forgot"
    cpu_bound = True

    def process(self, batch: list[Record]) -> Any:
        for r in batch:
            r.meta["seen"] = True


def test_none_from_process_is_reported_as_a_wrong_return(monkeypatch: pytest.MonkeyPatch) -> None:
    """process() returning None crashes the stage as 'returned NoneType', not a worker TypeError."""
    monkeypatch.setitem(executor._STAGES, "forgot", ForgotReturn())
    result, _, _ = executor.run_batch("forgot", [Record(id="a", text="x")])
    with pytest.raises(StageCrashed, match="returned NoneType, expected a list of Record"):
        _checked("forgot", result)
