"""The run's inputs as one ordered source: INPUT paths in command-line order, each read by the
reader its format needs. Positions are ``(input index, *reader position)``."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from threading import Event
from typing import Any

from codekiln.stream.config import InputConfig
from codekiln.stream.readers.base import (
    Budget,
    Item,
    Position,
    Reader,
    ShardFields,
    ShardReader,
    reject,
)
from codekiln.stream.readers.files import FileTreeReader
from codekiln.stream.readers.jsonl import JsonlReader
from codekiln.stream.readers.parquet import ParquetReader
from codekiln.stream.runtime.errors import InputError

from codekiln.shards import JSONL_SUFFIXES, PARQUET_SUFFIXES


def _shard_folder_format(root: Path) -> str | None:
    """``jsonl`` or ``parquet`` when every visible file below ``root`` is a shard of that kind.

    The walk stops at the first file that is not a shard, so a source tree costs a few
    entries. Without this a folder of shards was read as source files (``.jsonl.zst`` shards
    rejected as binary: an empty corpus, exit 0).
    """
    kinds: set[str] = set()
    for _folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            lower = name.lower()
            if lower.endswith(JSONL_SUFFIXES):
                kinds.add("jsonl")
            elif lower.endswith(PARQUET_SUFFIXES):
                kinds.add("parquet")
            else:
                return None
            if len(kinds) > 1:
                return None
    return kinds.pop() if kinds else None


def detect_format(path: Path, configured: str) -> str:
    """The reader for ``path``: the configured format, else from the name (``auto``).

    ``auto`` on a folder: ``jsonl`` or ``parquet`` when it holds only shards of that kind,
    else ``files`` (a source tree).
    """
    if configured != "auto":
        return configured
    if path.is_dir():
        return _shard_folder_format(path) or "files"
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "files"


def shard_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """A file itself, or the matching files below a folder, sorted (hidden files skipped)."""
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name.lower().endswith(suffixes)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


class MissingInput:
    """A path that does not exist: one quarantined record, so the run says so and goes on."""

    def __init__(self, path: str) -> None:
        self.path = path

    def input_bytes(self, stop: Event | None = None) -> int | None:
        return 0

    def consumed_bytes(self) -> int:
        return 0

    def items(self, after: Position | None, budget: Budget) -> Iterator[Item]:
        if after is None:
            yield (
                (0,),
                reject(self.path, "", "missing", path=self.path, error="no such file or folder"),
            )


def source_labels(paths: list[str]) -> list[str]:
    """Each input's ``source``: its base name, made unique within the run (``name#2``).

    Ids are ``record_id(source, key)``, so they do not depend on where the input lives: a shard
    a worker moved into ``.claimed/``, or a tree copied elsewhere, keeps its ids.
    """
    labels: list[str] = []
    seen: dict[str, int] = {}
    for p in paths:
        name = Path(p).resolve().name or str(Path(p).resolve())
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return labels


def make_reader(path: Path, cfg: InputConfig, source: str | None = None) -> Reader:
    fmt = detect_format(path, cfg.format)
    source = source or path.resolve().name
    if fmt == "files":
        return FileTreeReader(
            path, max_file_bytes=cfg.max_file_bytes, exclude_dirs=cfg.exclude_dirs, source=source
        )
    fields = ShardFields(text_key=cfg.text_key, id_key=cfg.id_key, source=source)
    if fmt == "jsonl":
        files = shard_files(path, JSONL_SUFFIXES)
        return JsonlReader(files, path, max_line_bytes=cfg.max_file_bytes, **fields)
    if fmt == "parquet":
        files = shard_files(path, PARQUET_SUFFIXES)
        return ParquetReader(files, path, max_text_bytes=cfg.max_file_bytes, **fields)
    raise InputError(f"unknown input format {fmt!r}")


def _finds_an_input(reader: Reader) -> bool:
    """Whether ``reader`` has at least one file to read (a file tree's walk stops at its first)."""
    if isinstance(reader, FileTreeReader):
        return next(iter(reader.walk()), None) is not None
    if isinstance(reader, ShardReader):
        return bool(reader.files)
    return False


class InputSet:
    """Every input of a run, read in order, under one budget.

    How far the run is (:meth:`read_fraction`): bytes on disk of the inputs read so far over
    their total, which :meth:`measure_input` takes once, in a thread beside the reading (a stat
    per shard; for a source tree, one more walk with a stat per file). A run resumed from a
    checkpoint counts what it read before: the inputs, shards and files before the resume
    point, and the part of the open shard before it.
    """

    def __init__(self, paths: list[str], cfg: InputConfig) -> None:
        if not paths:
            raise InputError("no input given")
        existing = [p for p in paths if Path(p).exists()]
        if not existing:
            raise InputError(f"no input exists: {', '.join(paths)}")
        self.paths = list(paths)
        self.sources = source_labels(paths)
        self.readers: list[Reader] = [
            make_reader(Path(p), cfg, label) if Path(p).exists() else MissingInput(p)
            for p, label in zip(paths, self.sources, strict=True)
        ]
        self.missing = [p for p in paths if not Path(p).exists()]
        if not any(_finds_an_input(reader) for reader in self.readers):
            # Folders with nothing to read (no file, or only skipped folders such as .git): a
            # run would read nothing and commit an empty corpus with exit 0.
            raise InputError(f"no input file in {', '.join(existing)}")
        self.budget = Budget(max_files=cfg.max_files, max_bytes=cfg.max_bytes)
        #: Each reader's input_bytes and the sums of those before it (one more: the total),
        #: once measured (set whole, from the measuring thread).
        self._sizes: tuple[list[int], list[int]] | None = None
        #: The reader being read: those before it are done (or were, before a resume).
        self._reading = 0

    def measure_input(self, stop: Event | None = None) -> None:
        """Measure the input's size for :meth:`read_fraction`; give up once ``stop`` is set."""
        sizes = []
        for reader in self.readers:
            size = reader.input_bytes(stop)
            if size is None:
                return
            sizes.append(size)
        self._sizes = sizes, list(itertools.accumulate(sizes, initial=0))

    def read_fraction(self) -> float | None:
        """The part of the input read, from 0 to 1 (``None`` until it is measured, or when it
        has no bytes). A file that grew since it was measured counts at its measured size, so
        the fraction never passes 1; once a cap (``max_files``, ``max_bytes``) is nearer than
        the input's end, the fraction is that of the cap. Called from the reading thread."""
        measured = self._sizes
        if measured is None or measured[1][-1] == 0:
            return None
        sizes, before = measured
        at = min(self._reading, len(sizes) - 1)
        fraction = (before[at] + min(self.readers[at].consumed_bytes(), sizes[at])) / before[-1]
        budget = self.budget
        if budget.max_files:
            fraction = max(fraction, budget.files / budget.max_files)
        if budget.max_bytes:
            fraction = max(fraction, budget.bytes / budget.max_bytes)
        return min(fraction, 1.0)

    def items(self, after: Position | None) -> Iterator[Item]:
        first = self._reading = after[0] if after else 0
        for index, reader in enumerate(self.readers):
            if index < first:
                continue
            self._reading = index
            inner = after[1:] if after and index == first else None
            for pos, record in reader.items(inner, self.budget):
                yield (index, *pos), record

    def state(self) -> dict[str, Any]:
        return {"budget": self.budget.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.budget.load(state["budget"])
