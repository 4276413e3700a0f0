"""Pool workers forked before the run starts, given their stages when the pipeline starts.

The pipeline's default pool (:func:`codekiln.stream.runtime.executor.make_pool`) starts a fork
server: a fresh interpreter that imports numpy and every pool stage's module again, about 0.25
CPU s a run, the largest fixed cost of a small run. Workers forked from the CLI process share
the modules it has already imported instead. Forking is only safe while the process runs a
single thread (a lock that another thread holds at fork time stays locked in the child), so the
CLI forks right after building its stages, before the event loop or any thread starts; the
workers then wait until the pipeline sends them their stages, after the run's output folder is
prepared, exactly when a fork-server pool would have received them.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from codekiln.stream.runtime.executor import _init_worker, pool_size
from codekiln.stream.stage import Stage

#: What each worker receives: its stages (pickled, by key) and their work folders, or None
#: when the run ends without needing them.
Setup = tuple[dict[str, bytes], dict[str, str]] | None


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # A worker outlives a parent killed with SIGKILL otherwise, blocked on its call queue
    # forever (it inherited the queue's write end). Linux only, as is this pool.
    with contextlib.suppress(OSError, AttributeError):  # a libc without prctl: no guard
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _init_when_told(setup: Any, parent_pid: int) -> None:
    _die_with_parent()
    # The parent may have died before the line above ran (a worker scheduled late, on a busy
    # machine, after its sibling took every start-up task): no signal will come then, and the
    # setup message may already be in the queue, so this worker would run on for good.
    if os.getppid() != parent_pid:
        os._exit(1)
    while True:
        try:
            message: Setup = setup.get(timeout=1.0)
            break
        except queue.Empty:
            if os.getppid() != parent_pid:  # the parent died before its pipeline started
                os._exit(1)
    if message is not None:
        _init_worker(*message)


class ForkedPool:
    """``size`` workers forked now; :meth:`configure` (the pipeline's pool factory) gives
    them their stages, :meth:`close` must be called in every case."""

    def __init__(self, size: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.size = size
        # One message per worker, all put at once: the queue never holds more than `size`.
        self._setup: Any = ctx.Queue(size)
        self._pool = ProcessPoolExecutor(
            max_workers=size,
            mp_context=ctx,
            initializer=_init_when_told,
            initargs=(self._setup, os.getpid()),
        )
        # Under "fork" the first submit() forks every worker at once, before the executor
        # starts its own threads. A worker takes one of these tasks once its initializer has
        # returned; they do not wait for each other (every worker exists already, unlike in
        # the fork-server pool, whose _ready sleeps so that each worker gets started), so a
        # worker still unpickling its stages when configure() returns joins in when done.
        self._ready: list[Future[int]] = [self._pool.submit(os.getpid) for _ in range(size)]
        self._told = False

    @classmethod
    def start(cls, workers: int) -> ForkedPool | None:
        """Fork the workers (``workers``, 0: one per core), or None where that is unsafe:
        another thread runs, or not Linux (macOS system libraries do not survive a fork)."""
        if (
            sys.platform != "linux"
            or threading.active_count() != 1
            or "fork" not in multiprocessing.get_all_start_methods()
        ):
            return None
        return cls(pool_size(workers))

    def _tell(self, message: Setup) -> None:
        if not self._told:
            self._told = True
            for _ in range(self.size):
                self._setup.put(message)

    def configure(
        self, stages: dict[str, Stage], work_dirs: dict[str, Path], workers: int
    ) -> ProcessPoolExecutor:
        """Send every worker its stages and return the pool once they are on their way (the
        signature of ``make_pool``; a worker that died before raises BrokenProcessPool)."""
        if pool_size(workers) != self.size:
            raise ValueError(f"{self.size} workers were forked, the pipeline wants {workers}")
        if self._told:
            raise RuntimeError("this pool was configured or closed already")
        blobs = {key: pickle.dumps(stage) for key, stage in stages.items()}
        self._tell((blobs, {k: str(v) for k, v in work_dirs.items()}))
        for fut in self._ready:
            fut.result()
        return self._pool

    def close(self) -> None:
        """Stop the workers; idempotent, and fine after the pipeline shut the pool down."""
        self._tell(None)
        self._pool.shutdown(wait=True, cancel_futures=True)
        # Every worker has exited now. Setup messages none of them read (one died before
        # reading its own, the broken pool terminated the others) are dropped: flushing them
        # into a pipe nobody reads blocks for good once they outgrow it (stages of a few MB).
        self._setup.cancel_join_thread()
        self._setup.close()
