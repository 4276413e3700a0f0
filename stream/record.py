"""The unit that flows through a pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def record_id(source: str, key: str) -> str:
    """A stable id: the same (source, key) always gives the same id.

    ``key`` is what locates the record inside its source (a file path relative to the input
    root, or ``<shard>:<line>`` for JSONL), never an arrival order.
    """
    return hashlib.sha256(f"{source}\x00{key}".encode()).hexdigest()[:32]


@dataclass(slots=True)
class Record:
    """One document (a source file, a web page, a synthesised sample).

    ``drop_reason`` is ``None`` while the record is alive; a stage that rejects it sets
    ``"<stage>:<rule>"`` and the runtime routes it to the rejects sink.
    """

    id: str
    text: str
    lang: str = ""
    path: str = ""
    repo: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    drop_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "lang": self.lang,
            "path": self.path,
            "repo": self.repo,
            "source": self.source,
            "meta": self.meta,
        }
        if self.drop_reason is not None:
            out["reason"] = self.drop_reason
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Record:
        return cls(
            id=str(obj["id"]),
            text=str(obj["text"]),
            lang=str(obj.get("lang", "")),
            path=str(obj.get("path", "")),
            repo=str(obj.get("repo", "")),
            source=str(obj.get("source", "")),
            meta=dict(obj.get("meta") or {}),
            drop_reason=obj.get("reason"),
        )
