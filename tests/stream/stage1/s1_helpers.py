"""Helpers for stage-1 tests: records from (path, text) pairs, and driving a stage to the end."""

from __future__ import annotations

from codekiln.stream.record import Record, record_id
from codekiln.stream.stage import Stage


def make_record(path: str, text: str, *, repo: str = "r", **meta: object) -> Record:
    return Record(
        id=record_id("test", f"{repo}/{path}"), text=text, path=path, repo=repo, meta=dict(meta)
    )


def run_stage(stage: Stage, records: list[Record], batch_size: int = 7) -> list[Record]:
    """Process in batches, then finish: every record that comes out (kept and dropped)."""
    out: list[Record] = []
    for i in range(0, len(records), batch_size):
        out.extend(stage.process(records[i : i + batch_size]))
    out.extend(stage.finish())
    return out
