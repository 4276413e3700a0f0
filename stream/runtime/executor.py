"""The process pool that runs ``cpu_bound`` stages' batches on every core.

Stage objects travel to each worker process once, when the pool starts (pickled in the
initializer's arguments); afterwards only batches and results cross the process boundary.
:func:`make_pool` uses ``forkserver`` (``spawn`` where unavailable): forking a process that
already runs an event loop and threads can deadlock. The CLI forks its workers itself before
any of those start, when it can (:mod:`codekiln.stream.runtime.forked`), and falls back to this.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from codekiln.stream.record import Record
from codekiln.stream.stage import Stage

_STAGES: dict[str, Stage] = {}


def _init_worker(blobs: dict[str, bytes], work_dirs: dict[str, str]) -> None:
    for key, blob in blobs.items():
        stage = pickle.loads(blob)
        stage.open(Path(work_dirs[key]))
        _STAGES[key] = stage


class Changes:
    """What a stage changed in a batch it returned record for record (the same objects, in
    order): every field but the text, and the text only where the stage replaced it.

    Most stages leave the text alone (filters, MinHash, language identification), so sending
    the whole records back would move every text through the pipe twice per pool stage; this
    moves it once. :meth:`apply` writes the changes onto the runtime process's own copies.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    @classmethod
    def of(cls, out: list[Record], texts: list[str]) -> Changes:
        return cls(
            [
                (r.id, None if r.text is text else r.text, r.lang, r.path, r.repo, r.source,
                 r.meta, r.drop_reason)
                for r, text in zip(out, texts, strict=True)
            ]
        )  # fmt: skip

    def apply(self, batch: list[Record]) -> list[Record]:
        if len(batch) != len(self.rows):
            raise ValueError(f"{len(self.rows)} changes for a batch of {len(batch)} records")
        for record, (rid, text, lang, path, repo, source, meta, reason) in zip(
            batch, self.rows, strict=True
        ):
            record.id = rid
            if text is not None:
                record.text = text
            record.lang, record.path, record.repo, record.source = lang, path, repo, source
            record.meta = meta
            record.drop_reason = reason
        return batch


def run_batch(
    key: str, batch: list[Record]
) -> tuple[list[Record] | Changes, float, dict[str, Any] | None]:
    """Run one batch through the worker's copy of a stage; returns (result, busy seconds, the
    stage's counters from this batch, see :meth:`Stage.take_stats`). The result is
    :class:`Changes` when the stage returned the batch's own records in order, else the list."""
    start = time.perf_counter()
    stage = _STAGES[key]
    texts = [r.text for r in batch]
    originals = list(batch)  # process() may return the list it was given, changed in place
    out = stage.process(batch)
    busy = time.perf_counter() - start
    result: list[Record] | Changes = out
    if (  # anything but a list (None, a tuple) goes back as is, for the runtime to reject
        isinstance(out, list)
        and len(out) == len(originals)
        and all(o is r for o, r in zip(out, originals, strict=True))
    ):
        result = Changes.of(out, texts)
    return result, busy, stage.take_stats()


def pool_size(configured: int) -> int:
    return configured if configured > 0 else (os.cpu_count() or 1)


def make_pool(
    stages: dict[str, Stage], work_dirs: dict[str, Path], workers: int
) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        # The fork server imports the stages' modules once and every worker forks with them
        # loaded, instead of each worker importing them again (about 0.2 CPU s each for the
        # filter and MinHash stages: numpy, lxml, ...). Only the first pool of a process sets
        # this: the fork server starts once.
        ctx.set_forkserver_preload(
            sorted({__name__, *(type(stage).__module__ for stage in stages.values())})
        )
    blobs = {key: pickle.dumps(stage) for key, stage in stages.items()}
    size = pool_size(workers)
    pool = ProcessPoolExecutor(
        max_workers=size,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(blobs, {k: str(v) for k, v in work_dirs.items()}),
    )
    # Start every worker now (this runs in a thread): the pool otherwise starts processes
    # lazily inside submit(), i.e. inside the event loop, and starting a process blocks.
    for fut in [pool.submit(_ready) for _ in range(size)]:
        fut.result()
    return pool


def _ready() -> int:
    # Long enough that no worker goes idle (and gets reused) before all have been started.
    time.sleep(0.05)
    return os.getpid()
