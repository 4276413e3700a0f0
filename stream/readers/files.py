"""Directory trees of source files: one record per file.

- ``id``     ``record_id(source, path)``, where ``source`` is the input root's name (unique
  within the run), so ids do not change when the tree moves
- ``path``   the file's path relative to the input root (``/``-separated)
- ``repo``   the nearest enclosing git work tree (a folder holding ``.git``), relative to the
  input root (the root's own name when the root is one); else the top folder under the root
- ``meta``   ``{"size": bytes}``

Quarantined with a reason (``reader:<rule>``): ``binary`` (a NUL byte in the first 8 KiB),
``non_utf8``, ``oversize`` (above ``max_file_bytes``; not read), ``empty``, ``unreadable``
(permission denied, broken link, vanished, I/O error). Once a cap of the run's budget
(``max_files`` / ``max_bytes``) is reached, the remaining files are counted as not read (not
rejected: they were never looked at). Symlinked folders are not followed
(loops); symlinked files are read. Walk order is sorted by name, so positions are stable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from codekiln.stream.readers.base import Budget, Item, Position, reject
from codekiln.stream.record import Record, record_id

_SNIFF_BYTES = 8192
#: Version-control metadata and bytecode caches: never source documents.
DEFAULT_EXCLUDE_DIRS = (".git", ".hg", ".svn", "__pycache__")


@dataclass(frozen=True)
class _Entry:
    rel: str
    abspath: str
    repo: str
    error: str | None = None


class FileTreeReader:
    def __init__(
        self,
        root: Path,
        *,
        max_file_bytes: int,
        exclude_dirs: tuple[str, ...] = DEFAULT_EXCLUDE_DIRS,
        source: str | None = None,
    ) -> None:
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.exclude_dirs = frozenset(exclude_dirs)
        self.source = source or root.resolve().name
        #: The sizes of the files looked at so far (progress, see consumed_bytes).
        self._consumed = 0

    def input_bytes(self, stop: Event | None = None) -> int | None:
        """The sizes of the files :meth:`walk` yields: one more walk of the tree, with a stat
        per file. About 4 us a file, in a thread beside the reading: lost in the noise of a
        run with the default stages (about 280 us a file), up to a sixth of one whose stages
        do nothing. Holding the reader's own walk instead, to walk once, would cost memory in
        proportion to the tree (a run of millions of files)."""
        total = 0
        for entry in self.walk():
            if stop is not None and stop.is_set():
                return None
            total += _file_size(entry)
        return total

    def consumed_bytes(self) -> int:
        return self._consumed

    def walk(self) -> Iterator[_Entry]:
        """The entries this reader reads, in its order, without reading any file (a planner
        cuts shards on their positions)."""
        root = self.root
        if root.is_file():
            yield _Entry(root.name, str(root), root.name)
            return
        yield from self._walk_dir(str(root), "", None)

    def _walk_dir(self, abspath: str, rel: str, repo: str | None) -> Iterator[_Entry]:
        try:
            with os.scandir(abspath) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield _Entry(
                rel or ".", abspath, repo or "", error=f"cannot list folder: {exc.strerror}"
            )
            return
        if any(e.name == ".git" for e in entries):
            repo = rel or self.root.resolve().name
        for entry in entries:
            child_rel = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name in self.exclude_dirs:
                    continue
                yield from self._walk_dir(entry.path, child_rel, repo)
            elif entry.is_symlink() and entry.is_dir():
                continue  # symlinked folders are not followed: they can loop
            else:
                top = child_rel.split("/", 1)[0] if rel else self.root.resolve().name
                yield _Entry(child_rel, entry.path, repo if repo is not None else top)

    def items(self, after: Position | None, budget: Budget) -> Iterator[Item]:
        start = after[0] + 1 if after else 0
        self._consumed = 0
        for index, entry in enumerate(self.walk()):
            if index < start:
                self._consumed += _file_size(entry)  # read before the resume point
                continue
            record = self._read(entry, budget)
            if record is not None:
                yield (index,), record

    def _read(self, entry: _Entry, budget: Budget) -> Record | None:
        """The file's record, a quarantined one, or ``None`` when a cap stops reading."""
        src, rel, repo = self.source, entry.rel, entry.repo
        if entry.error is not None:
            return reject(src, rel, "unreadable", path=rel, repo=repo, error=entry.error)
        if budget.exhausted:
            budget.not_read += 1
            return None
        try:
            st = os.stat(entry.abspath)
        except OSError as exc:
            return reject(src, rel, "unreadable", path=rel, repo=repo, error=str(exc.strerror))
        self._consumed += st.st_size if stat.S_ISREG(st.st_mode) else 0
        if not stat.S_ISREG(st.st_mode):
            # A FIFO, socket or device: opening it could block forever.
            return reject(src, rel, "unreadable", path=rel, repo=repo, error="not a regular file")
        size = st.st_size
        if size == 0:
            return reject(src, rel, "empty", path=rel, repo=repo, size=0)
        if size > self.max_file_bytes:
            return reject(src, rel, "oversize", path=rel, repo=repo, size=size)
        if not budget.admit(size):
            budget.not_read += 1
            return None
        try:
            with open(entry.abspath, "rb") as fh:
                data = fh.read(self.max_file_bytes + 1)
        except OSError as exc:
            return reject(src, rel, "unreadable", path=rel, repo=repo, error=str(exc.strerror))
        if len(data) > self.max_file_bytes:  # grew since stat
            return reject(src, rel, "oversize", path=rel, repo=repo, size=len(data))
        if b"\x00" in data[:_SNIFF_BYTES]:
            return reject(src, rel, "binary", path=rel, repo=repo, size=len(data))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return reject(
                src, rel, "non_utf8", path=rel, repo=repo, size=len(data), error=str(exc)[:200]
            )
        return Record(
            id=record_id(src, rel),
            text=text,
            path=rel,
            repo=repo,
            source=src,
            meta={"size": len(data)},
        )


def _file_size(entry: _Entry) -> int:
    """The size of a regular file of the walk; 0 for anything else (its reader says why)."""
    if entry.error is not None:
        return 0
    try:
        st = os.stat(entry.abspath)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0
