"""Append-only spill files whose committed lengths are the checkpoint.

Dedup stages must hold records until the end of the stream (the survivor of a cluster is known
only when every member has been seen), and must not hold them in memory. They append to a few
files here; :meth:`Spill.commit` flushes and fsyncs them and returns their lengths, which go into
the stage's ``state_dict``. After a ``kill -9``, :meth:`Spill.restore` truncates every file back
to the committed length, so bytes written after the last checkpoint (whose records the runtime
will replay from the source) are discarded: exactly-once.

Held records share one layout (:func:`held_entry`, :func:`read_held`): a fixed header (two
lengths), the pickled small fields (id, lang, path, repo, source, meta), then the text's UTF-8
bytes as they are. Pickling the whole record would walk and copy every text; this way a text is
encoded once (the exact stage hashes those very bytes), written with ``writev`` and decoded once
from a memory map.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import pickle
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import GLOBAL, BatchStage, Scope

#: writev takes at most this many buffers per call (POSIX IOV_MAX is at least 1024 on Linux).
_IOV_MAX = 1024
#: Held-record entry header: length of the pickled fields, length of the UTF-8 text.
HELD_HEADER = struct.Struct("<IQ")
_ENTRY = HELD_HEADER


def held_fields(record: Record) -> bytes:
    """The record's small fields, pickled (raises if its meta cannot be: quarantine it)."""
    return pickle.dumps(
        (record.id, record.lang, record.path, record.repo, record.source, record.meta),
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def held_entry(fields: bytes, text: bytes) -> tuple[bytes, bytes, bytes]:
    """The parts of one held-record entry, for :meth:`Spill.append_parts`."""
    return _ENTRY.pack(len(fields), len(text)), fields, text


def held_record(fields: tuple[Any, ...], text: str) -> Record:
    """A record from its unpickled fields and its text."""
    rid, lang, path, repo, source, meta = fields
    return Record(rid, text, lang, path, repo, source, meta)


def read_held(view: memoryview) -> Iterator[Record]:
    """The records of a held-record file (see :meth:`Spill.view`), in append order."""
    at, end = 0, len(view)
    unpack, header = _ENTRY.unpack_from, _ENTRY.size
    while at < end:
        n_fields, n_text = unpack(view, at)
        at += header
        rid, lang, path, repo, source, meta = pickle.loads(view[at : at + n_fields])
        at += n_fields
        text = str(view[at : at + n_text], "utf-8", "surrogatepass")
        at += n_text
        yield Record(rid, text, lang, path, repo, source, meta)


def read_held_fields(view: memoryview, at: int) -> Record:
    """The entry at offset ``at``, without its text (``text`` is empty): enough for priority."""
    n_fields, _ = _ENTRY.unpack_from(view, at)
    at += _ENTRY.size
    return held_record(pickle.loads(view[at : at + n_fields]), "")


class SpillError(RuntimeError):
    """A checkpoint names spill files that are missing or shorter than committed."""


class Spill:
    """Named append-only binary files in one directory."""

    def __init__(self, directory: str | os.PathLike[str] | None, prefix: str) -> None:
        self._requested = Path(directory) if directory is not None else None
        self._prefix = prefix
        self.path: Path | None = None
        self._files: dict[str, IO[bytes]] = {}

    def _dir(self) -> Path:
        if self.path is None:
            if self._requested is None:
                self.path = Path(tempfile.mkdtemp(prefix=f"codekiln-{self._prefix}-"))
            else:
                self.path = self._requested / self._prefix
                # A fresh start (no restore): leftovers of an attempt that died before its first
                # checkpoint hold nothing committed.
                if self.path.exists():
                    shutil.rmtree(self.path)
                self.path.mkdir(parents=True)
        return self.path

    def _file(self, name: str) -> IO[bytes]:
        f = self._files.get(name)
        if f is None:
            f = open(self._dir() / name, "ab")  # noqa: SIM115 - held open across batches
            self._files[name] = f
        return f

    def append(self, name: str, data: bytes) -> int:
        """Append ``data``; returns the offset it starts at."""
        f = self._file(name)
        offset = f.tell()
        f.write(data)
        return offset

    def append_parts(self, name: str, parts: Sequence[bytes]) -> None:
        """Append ``parts`` back to back with ``writev``: no copy into a user-space buffer and
        one system call per 1024 parts, for large appends (held texts). A file is written
        either through this method or through :meth:`append`, never both."""
        if not parts:
            return
        f = self._files.get(name)
        if f is None:
            f = open(self._dir() / name, "ab", buffering=0)  # noqa: SIM115 - held open
            self._files[name] = f
        fd = f.fileno()
        for i in range(0, len(parts), _IOV_MAX):
            group = parts[i : i + _IOV_MAX]
            want = sum(map(len, group))
            done = os.writev(fd, group)
            if done != want:  # a short write (signal, nearly full disk): finish it plainly
                rest = memoryview(b"".join(group))[done:]
                while rest:
                    rest = rest[os.write(fd, rest) :]

    @contextlib.contextmanager
    def view(self, name: str) -> Iterator[memoryview]:
        """The bytes of one file, memory-mapped read-only (flushes first); empty if absent.
        Slices of the view are valid only inside the ``with`` block."""
        f = self._files.get(name)
        if f is not None:
            f.flush()
        path = None if self.path is None else self.path / name
        if path is None or not path.exists() or path.stat().st_size == 0:
            yield memoryview(b"")
            return
        with open(path, "rb") as r, mmap.mmap(r.fileno(), 0, access=mmap.ACCESS_READ) as m:
            m.madvise(mmap.MADV_SEQUENTIAL)
            view = memoryview(m)
            try:
                yield view
            finally:
                view.release()

    def append_json(self, name: str, obj: Any) -> None:
        self.append(
            name, json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
        )

    def append_pickle(self, name: str, obj: Any) -> None:
        """Append one pickle (self-delimiting, so a file is a sequence of them)."""
        self.append(name, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def read_pickles(self, name: str) -> Iterator[Any]:
        """The objects of one file, in append order. Spill files are this stage's own,
        written by this process or its predecessor in the same run: trusted input."""
        path = self._written(name)
        if path is None:
            return
        with open(path, "rb", buffering=1 << 20) as r:
            while True:
                try:
                    yield pickle.load(r)
                except EOFError:
                    return

    def size(self, name: str) -> int:
        f = self._files.get(name)
        if f is not None:
            return f.tell()
        path = self._dir() / name
        return path.stat().st_size if path.exists() else 0

    def commit(self) -> dict[str, Any]:
        """Flush and fsync every file; the returned mapping is the checkpoint."""
        for f in self._files.values():
            f.flush()
            os.fsync(f.fileno())
        self.close()  # reopened on the next append; nothing stays open across checkpoints
        lengths = (
            {name: (self.path / name).stat().st_size for name in self.names()} if self.path else {}
        )
        if self.path is not None:
            dir_fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return {"dir": str(self.path) if self.path else None, "lengths": lengths}

    def restore(self, state: dict[str, Any]) -> None:
        """Reopen the files of a checkpoint, truncated to their committed lengths."""
        self.close()
        if state.get("dir") is None:
            self.path = None
            return
        # The folder given at construction wins over the recorded one, so that an output
        # folder moved between two runs still resumes.
        self.path = self._requested / self._prefix if self._requested else Path(state["dir"])
        for name, length in state["lengths"].items():
            file = self.path / name
            if not file.exists() or file.stat().st_size < length:
                raise SpillError(
                    f"spill file {file} is missing or shorter than its checkpoint "
                    f"({length} bytes); the stage state cannot be restored"
                )
            with open(file, "r+b") as f:
                f.truncate(length)
        # Files created after the checkpoint hold only uncommitted data.
        for file in self.path.iterdir():
            if file.name not in state["lengths"]:
                file.unlink()

    def read(self, name: str) -> Iterator[bytes]:
        """The lines of one file, up to what has been written (flushes first)."""
        path = self._written(name)
        if path is None:
            return
        with open(path, "rb") as r:
            yield from r

    def read_bytes(self, name: str) -> bytes:
        path = self._written(name)
        return b"" if path is None else path.read_bytes()

    def _written(self, name: str) -> Path | None:
        """One file with all appended so far flushed to it; ``None`` when it does not exist."""
        f = self._files.get(name)
        if f is not None:
            f.flush()
        path = self._dir() / name
        return path if path.exists() else None

    def names(self) -> list[str]:
        if self.path is None or not self.path.exists():
            return []
        return sorted(p.name for p in self.path.iterdir())

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def remove(self) -> None:
        self.close()
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path)


class SpillingStage(BatchStage):
    """A stage that holds every record in a :class:`Spill` until the end of the stream (the
    exact and fuzzy dedups): stateful, and global in scope (it decides only once it has seen
    the whole stream). Subclasses call :meth:`_spill_to` in ``__init__``."""

    stateful: ClassVar[bool] = True

    _spill: Spill
    _spill_dir: str | None

    def scope(self) -> Scope:
        return GLOBAL

    def _spill_to(self, spill_dir: str | None, prefix: str) -> None:
        """Spill under ``spill_dir`` when given, else under the runtime's folder (see
        :meth:`open`); ``prefix`` names the spill's folder."""
        self._spill_dir = spill_dir
        self._spill = Spill(spill_dir, prefix)

    def open(self, work_dir: Path) -> None:
        """Spill under the runtime's per-stage folder (kept across resumes of the same run),
        unless the stage was given a ``spill_dir`` of its own."""
        if self._spill.path is None and self._spill_dir is None:
            self._spill = Spill(work_dir, "spill")

    def process(self, batch: list[Record]) -> list[Record]:
        # Not BatchStage's retry-one-by-one: a batch half-held then retried would hold records
        # twice. process_batch quarantines bad records itself; an I/O or index error (disk
        # full, Redis gone) escapes: a crash, resumed from the last checkpoint.
        return self.process_batch(batch)
