"""Durable file operations: every commit is temp file, fsync, rename, fsync of the folder.

The implementations live in :mod:`codekiln.shards` (shared by every component); these names
stay for the stream runtime's modules.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from codekiln.shards import atomic_write_bytes, fsync_dir

__all__ = ["atomic_write_bytes", "fsync_dir", "remove_quietly"]


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
