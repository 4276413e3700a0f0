"""The cache of finished steps under ``out_dir/.work/``: a step's output records with the
fingerprint of the inputs and settings that made them, so a rerun after a crash or a kill
reuses them instead of paying for the generations again."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from codekiln.stream.record import Record

__all__ = ["inputs_fingerprint", "load_cache", "save_cache"]


def inputs_fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def load_cache(path: Path, fingerprint: str) -> list[Record] | None:
    """Records a finished step saved, if they were made from the same inputs and settings."""
    try:
        with path.open(encoding="utf-8") as fh:
            head = json.loads(fh.readline())
            if head.get("fingerprint") != fingerprint:
                return None
            return [Record.from_json(json.loads(line)) for line in fh]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save_cache(path: Path, fingerprint: str, records: Iterable[Record]) -> None:
    """Atomically (temp, fsync, rename): a killed run never leaves a half cache behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"fingerprint": fingerprint}) + "\n")
        for r in records:
            fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
