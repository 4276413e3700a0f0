"""The pipeline engine: a source, stages and a sink joined by bounded channels.

::

    source ──ch──▶ stage 1 ──ch──▶ stage 2 ── … ──ch──▶ sink
    (thread)      (thread or      (process pool for
                   in-loop)        cpu_bound stages)

Messages are :class:`Batch` (live records plus the records dropped so far, which ride along to
keep the rejects in input order) and :class:`Barrier` (a checkpoint marker). The source emits a
barrier every ``checkpoint_every`` items; each stage, when the barrier reaches it, snapshots its
state (stateful stages) and its counters into the barrier and passes it on; the sink commits its
open shards and hands the barrier to the checkpoint callback. Because channels are FIFO, the
snapshot taken at each stage covers exactly the items before the barrier: source offset, stage
states and sink manifest describe the same cut, and they are written as one checkpoint.

Every task belongs to one TaskGroup. End of stream is a channel close; each stage then calls
``finish()`` and closes its own output. The first task that fails cancels the others and the
run raises a :class:`~codekiln.stream.runtime.errors.StreamError`.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from codekiln.stream.metrics import RunMetrics, StepCounts
from codekiln.stream.readers.base import Item, Position
from codekiln.stream.record import Record
from codekiln.stream.runtime import executor as _executor
from codekiln.stream.runtime.channel import Channel
from codekiln.stream.runtime.errors import SinkError, StageCrashed, StreamError
from codekiln.stream.stage import RECORD, Stage


@dataclass(slots=True)
class Batch:
    live: list[Record]
    dropped: list[Record]


@dataclass(slots=True)
class Barrier:
    """A checkpoint cut: everything before it in the stream is covered by its snapshots."""

    seq: int
    position: Position | None
    source_state: dict[str, Any]
    states: dict[str, bytes] = field(default_factory=dict)
    metrics: dict[str, StepCounts] = field(default_factory=dict)


Message = Batch | Barrier


class Source(Protocol):
    def items(self, after: Position | None) -> Iterator[Item]: ...
    def state(self) -> dict[str, Any]: ...


@runtime_checkable
class MeasuredSource(Source, Protocol):
    """A source that can say how much of its input is read (the progress display's ETA), as
    :class:`~codekiln.stream.readers.inputs.InputSet` does; other sources show none."""

    def measure_input(self, stop: threading.Event | None = None) -> None: ...
    def read_fraction(self) -> float | None: ...


class Sink(Protocol):
    def write(self, live: list[Record], dropped: list[Record]) -> None: ...
    def commit(self) -> dict[str, Any]: ...
    def abort(self) -> None: ...


#: Called with (barrier, sink state) after the sink committed up to the barrier.
CheckpointFn = Callable[[Barrier, dict[str, Any]], Awaitable[None]]
#: (cpu_bound stages by key, their work folders, runtime.workers) -> the pool that runs them.
PoolFactory = Callable[[dict[str, Stage], dict[str, Path], int], Executor]


@dataclass(frozen=True)
class PipelineOptions:
    batch_size: int = 512
    #: A batch also closes once its records hold this many characters of text, so that a few
    #: large files still make enough batches to keep every pool worker busy (512 source files
    #: of 14 kB are 7 MB: two batches, one worker idle) and one batch's payload stays small.
    #: 0: no limit (batches of batch_size records).
    batch_max_chars: int = 1_000_000
    #: Bound of every channel, in batches. 4 lets a stage pick up its next batch while the one
    #: downstream still works (double buffering with slack for uneven batch costs); anything
    #: more only adds memory: at most (stages + 1) x queue_batches x batch_size records in
    #: flight, whatever the input size.
    queue_batches: int = 4
    workers: int = 0
    checkpoint_every: int = 5_000
    #: The input's size (for the progress display's ETA) is measured once the reading has
    #: lasted this long: a run that reads its input sooner needs no ETA and does not pay for
    #: the measure (for a source tree, a second walk with a stat per file: about 4 us a file,
    #: in a thread beside the reader).
    measure_input_after_s: float = 1.0


def _take(it: Iterator[Item], n: int, max_chars: int) -> tuple[list[Item], bool]:
    """(up to ``n`` items, holding at most about ``max_chars`` of text; whether the input
    ended). The item that reaches ``max_chars`` is the last of the batch."""
    if max_chars <= 0:
        items = list(itertools.islice(it, n))
        return items, len(items) < n
    items = []
    chars = 0
    for item in itertools.islice(it, n):
        items.append(item)
        chars += len(item[1].text)
        if chars >= max_chars:
            return items, False
    return items, len(items) < n


def _take_records(it: Iterator[Record], n: int, max_chars: int) -> list[Record]:
    """Up to ``n`` records holding at most about ``max_chars`` of text (as :func:`_take`)."""
    if max_chars <= 0:
        return list(itertools.islice(it, n))
    records = []
    chars = 0
    for record in itertools.islice(it, n):
        records.append(record)
        chars += len(record.text)
        if chars >= max_chars:
            break
    return records


def _take_measured(
    it: Iterator[Item], n: int, max_chars: int, source: MeasuredSource | None
) -> tuple[list[Item], bool, float | None]:
    """:func:`_take`, and then (in the same thread as the reading) how far the input is."""
    items, ended = _take(it, n, max_chars)
    return items, ended, source.read_fraction() if source is not None else None


def split_dropped(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """(live, dropped) records of a batch, each in order (every executor splits alike)."""
    live = [r for r in records if r.drop_reason is None]
    if len(live) == len(records):
        return records, []
    return live, [r for r in records if r.drop_reason is not None]


def in_pool(stage: Stage) -> bool:
    """Where this runtime runs a stage, read from its declared scope
    (:meth:`~codekiln.stream.stage.Stage.scope`): a ``record`` stage that is ``cpu_bound`` runs
    in the process pool; every other stage runs in the runtime's process, one instance seeing
    the whole stream in input order (all that ``shard``, ``stream`` and ``global`` need)."""
    return stage.cpu_bound and stage.scope() == RECORD


def checkpointed(stage: Stage) -> bool:
    """Whether a stage's ``state_dict()`` goes into every checkpoint: any stage whose scope
    keeps state (all but ``record``), and the pool stages, whose copy here holds the counters
    their workers passed back (:meth:`~codekiln.stream.stage.Stage.take_stats`)."""
    return stage.scope() != RECORD or in_pool(stage)


class Pipeline:
    """One run of ``source -> stages -> sink``; see the module docstring.

    The plan: each stage's place (:func:`in_pool`) and whether it is checkpointed
    (:func:`checkpointed`) follow its declared scope, read once per run."""

    def __init__(
        self,
        source: Source,
        stages: list[tuple[str, Stage]],
        sink: Sink,
        *,
        options: PipelineOptions,
        metrics: RunMetrics,
        work_dirs: dict[str, Path] | None = None,
        on_checkpoint: CheckpointFn | None = None,
        seq_start: int = 0,
        pool_factory: PoolFactory | None = None,
    ) -> None:
        self.source = source
        self.stages = stages
        self.sink = sink
        self.options = options
        self.metrics = metrics
        self.work_dirs = work_dirs or {}
        self.on_checkpoint = on_checkpoint
        self.seq = seq_start
        #: Makes the process pool of the cpu_bound stages (a fork-server pool unless the caller
        #: forked one beforehand: codekiln.stream.runtime.forked); called in a thread.
        self.pool_factory: PoolFactory = pool_factory or _executor.make_pool
        self._checkpointed = {key for key, stage in stages if checkpointed(stage)}
        self._threads: ThreadPoolExecutor | None = None
        self._items: Iterator[Item] | None = None
        self._pool: Executor | None = None
        self._measured = source if isinstance(source, MeasuredSource) else None
        #: Set once the input's size is of no more use (the reading ended, or the run stops).
        self._stop_measuring = threading.Event()
        self._input_read = asyncio.Event()

    @staticmethod
    def step_keys(stage_keys: list[str]) -> list[str]:
        return ["source", *stage_keys, "sink"]

    async def run(self, after: Position | None = None) -> None:
        """Stream everything after ``after`` through; returns once the sink committed."""
        n = len(self.stages)
        # Every edge is bounded (why this bound: PipelineOptions.queue_batches); a full channel
        # blocks its producer, so backpressure reaches the reader.
        bound = self.options.queue_batches
        channels: list[Channel[Message]] = [Channel(bound) for _ in range(n + 1)]
        for i, (key, _) in enumerate(self.stages):
            self.metrics[key].depth = channels[i].depth
        self.metrics["sink"].depth = channels[n].depth
        # One thread per in-process stage at most: each stage works on one batch at a time;
        # plus the source, the sink and the measure of the input's size.
        self._threads = ThreadPoolExecutor(max_workers=n + 3, thread_name_prefix="codekiln-stage")
        cpu = {key: s for key, s in self.stages if in_pool(s)}
        loop = asyncio.get_running_loop()
        try:
            if cpu:
                try:
                    self._pool = await loop.run_in_executor(
                        self._threads,
                        self.pool_factory,
                        cpu,
                        {k: self.work_dirs.get(k, Path(".")) for k in cpu},
                        self.options.workers,
                    )
                except Exception as exc:
                    raise StageCrashed(
                        ", ".join(cpu),
                        f"the process pool for cpu_bound stages did not start "
                        f"(is the stage picklable?): {type(exc).__name__}: {exc}",
                    ) from exc
            async with asyncio.TaskGroup() as tg:
                if self._measured is not None:
                    tg.create_task(self._measure_input(self._measured))
                tg.create_task(self._source(after, channels[0]))
                for i, (key, stage) in enumerate(self.stages):
                    if key in cpu:
                        tg.create_task(self._pooled_stage(key, stage, channels[i], channels[i + 1]))
                    else:
                        tg.create_task(self._stage(key, stage, channels[i], channels[i + 1]))
                tg.create_task(self._sink(channels[n]))
        except BaseExceptionGroup as group:
            await self._shutdown(abort=True)
            raise first_error(group) from None
        except BaseException:  # cancelled from outside: same clean-up, then re-raise
            await asyncio.shield(self._shutdown(abort=True))
            raise
        await self._shutdown(abort=False)

    async def _shutdown(self, *, abort: bool) -> None:
        """Stop the pools; on failure drop the open shards, once no thread still writes them."""
        self._stop_measuring.set()
        pool, self._pool = self._pool, None
        threads, self._threads = self._threads, None
        if threads is None:
            return

        def stop() -> None:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            # Waits for work already running in the stage threads (a cancelled task does not
            # stop its thread), so that abort() cannot race a write that opens a new shard.
            threads.shutdown(wait=True, cancel_futures=True)
            # Close the reader now (its open file) rather than whenever it is collected.
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
            if abort:
                self.sink.abort()

        await asyncio.to_thread(stop)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    async def _measure_input(self, source: MeasuredSource) -> None:
        """Measure the input's size, unless the reading ends within ``measure_input_after_s``."""
        try:
            async with asyncio.timeout(self.options.measure_input_after_s):
                await self._input_read.wait()
        except TimeoutError:
            await self._in_thread(source.measure_input, self._stop_measuring)

    # -- source --------------------------------------------------------------------------
    async def _source(self, after: Position | None, out: Channel[Message]) -> None:
        m = self.metrics["source"]
        progress = self.metrics.input
        if after is None and self._measured is not None:
            progress.start(time.monotonic())
        it = self._items = self.source.items(after)
        every = self.options.checkpoint_every
        since = 0
        position = after
        while True:
            want = min(self.options.batch_size, every - since)
            start = time.perf_counter()
            items, ended, fraction = await self._in_thread(
                _take_measured, it, want, self.options.batch_max_chars, self._measured
            )
            m.busy_s += time.perf_counter() - start
            progress.update(1.0 if ended and self._measured else fraction, time.monotonic())
            if items:
                position = items[-1][0]
                live, dropped = split_dropped([r for _, r in items])
                m.count(len(items), live, dropped)
                await out.put(Batch(live, dropped))
                since += len(items)
            if ended:
                self._stop_measuring.set()
                self._input_read.set()
                break
            if since >= every:
                self.seq += 1
                barrier = Barrier(self.seq, position, self.source.state())
                barrier.metrics["source"] = m.snapshot()
                await out.put(barrier)
                since = 0
        await out.close()

    # -- stages --------------------------------------------------------------------------
    async def _pass_barrier(self, key: str, stage: Stage, barrier: Barrier) -> None:
        # A pool stage's copy here holds the counters its workers passed back for every batch
        # before this barrier (see Stage.take_stats): checkpointed with the rest.
        if key in self._checkpointed:
            try:
                barrier.states[key] = await self._in_thread(_pickle_state, stage)
            except Exception as exc:
                raise StageCrashed(
                    key, f"state_dict() failed: {type(exc).__name__}: {exc}"
                ) from exc
        barrier.metrics[key] = self.metrics[key].snapshot()

    async def _finish(self, key: str, stage: Stage, out: Channel[Message]) -> None:
        """End of stream for one stage: pass on what ``finish()`` returns, a batch at a time.

        ``finish()`` may return a list or any iterable (a generator streaming records back from
        spill files); either way it is consumed in chunks of ``batch_size`` records or
        ``batch_max_chars`` characters from a worker thread, so the next stages keep their
        parallelism (a stage that holds everything until the end, like fuzzy dedup, feeds the
        rest of the pipeline only from here) and memory stays bounded.
        """
        m = self.metrics[key]
        start = time.perf_counter()
        try:
            tail = await self._in_thread(stage.finish)
            it = iter(tail if tail is not None else ())
        except Exception as exc:
            raise StageCrashed(key, f"finish() failed: {type(exc).__name__}: {exc}") from exc
        m.busy_s += time.perf_counter() - start
        while True:
            start = time.perf_counter()
            try:
                chunk = await self._in_thread(
                    _take_records, it, self.options.batch_size, self.options.batch_max_chars
                )
            except Exception as exc:
                raise StageCrashed(key, f"finish() failed: {type(exc).__name__}: {exc}") from exc
            m.busy_s += time.perf_counter() - start
            if not chunk:
                break
            live, dropped = split_dropped(_checked(key, chunk))
            m.records_out += len(live)
            for r in dropped:
                m.dropped[r.drop_reason or "?"] += 1
            await out.put(Batch(live, dropped))
        await out.close()

    async def _stage(
        self, key: str, stage: Stage, inp: Channel[Message], out: Channel[Message]
    ) -> None:
        m = self.metrics[key]
        while (msg := await inp.get()) is not None:
            if isinstance(msg, Barrier):
                await self._pass_barrier(key, stage, msg)
            elif msg.live:
                start = time.perf_counter()
                result = await self._in_thread(run_stage, key, stage, msg.live)
                m.busy_s += time.perf_counter() - start
                live, dropped = split_dropped(result)
                m.count(len(msg.live), live, dropped)
                msg = Batch(live, msg.dropped + dropped if dropped else msg.dropped)
            await out.put(msg)
        await self._finish(key, stage, out)

    async def _pooled_stage(
        self, key: str, stage: Stage, inp: Channel[Message], out: Channel[Message]
    ) -> None:
        # Up to 2 x `workers` batches of this stage are submitted at once (the pool runs
        # `workers` of them, the rest wait in its queue); results are emitted in input order.
        # Twice the pool: a worker that finishes a batch while an older, slower one still runs
        # finds the next one queued instead of idling until the older result is emitted.
        window: Channel[tuple[Message, asyncio.Future[Any] | None]] = Channel(
            2 * _executor.pool_size(self.options.workers)
        )
        loop = asyncio.get_running_loop()

        async def submit() -> None:
            while (msg := await inp.get()) is not None:
                fut = None
                if isinstance(msg, Batch) and msg.live:
                    try:
                        fut = loop.run_in_executor(self._pool, _executor.run_batch, key, msg.live)
                    except BrokenProcessPool as exc:  # a worker died since the last submit
                        raise StageCrashed(key, _WORKER_DIED) from exc
                    fut.add_done_callback(_retrieved)
                await window.put((msg, fut))
            await window.close()

        async def emit() -> None:
            m = self.metrics[key]
            while (entry := await window.get()) is not None:
                msg, fut = entry
                if isinstance(msg, Barrier):
                    await self._pass_barrier(key, stage, msg)
                elif fut is not None:
                    try:
                        result, busy, stats = await fut
                    except BrokenProcessPool as exc:
                        raise StageCrashed(key, _WORKER_DIED) from exc
                    except Exception as exc:
                        raise StageCrashed(
                            key, f"process() raised {type(exc).__name__}: {exc}"
                        ) from exc
                    m.busy_s += busy
                    if stats is not None:
                        try:
                            stage.absorb_stats(stats)
                        except Exception as exc:
                            raise StageCrashed(
                                key, f"absorb_stats() failed: {type(exc).__name__}: {exc}"
                            ) from exc
                    if isinstance(result, _executor.Changes):
                        # Applied to this process's copies of the records, which nothing else
                        # touches while the batch is out.
                        result = result.apply(msg.live)
                    live, dropped = split_dropped(_checked(key, result))
                    m.count(len(msg.live), live, dropped)
                    msg = Batch(live, msg.dropped + dropped if dropped else msg.dropped)
                await out.put(msg)
            await self._finish(key, stage, out)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(submit())
            tg.create_task(emit())

    # -- sink ----------------------------------------------------------------------------
    async def _sink(self, inp: Channel[Message]) -> None:
        m = self.metrics["sink"]
        while (msg := await inp.get()) is not None:
            if isinstance(msg, Barrier):
                msg.metrics["sink"] = m.snapshot()
                state = await self._commit()
                if self.on_checkpoint is not None:
                    await self.on_checkpoint(msg, state)
                continue
            if not (msg.live or msg.dropped):
                continue
            start = time.perf_counter()
            try:
                await self._in_thread(self.sink.write, msg.live, msg.dropped)
            except OSError as exc:
                raise SinkError(f"writing output failed: {exc}") from exc
            m.busy_s += time.perf_counter() - start
            m.records_in += len(msg.live) + len(msg.dropped)
            m.records_out += len(msg.live)
            m.batches += 1
        await self._commit(final=True)

    async def _commit(self, *, final: bool = False) -> dict[str, Any]:
        try:
            # A sink may define finish() for the run's last commit (RunSink writes an empty
            # shard for an empty output); one without it commits as usual.
            commit = getattr(self.sink, "finish", self.sink.commit) if final else self.sink.commit
            state: dict[str, Any] = await self._in_thread(commit)
        except OSError as exc:
            raise SinkError(f"committing output failed: {exc}") from exc
        return state


_WORKER_DIED = "a worker process died (killed or out of memory)"


def _retrieved(fut: asyncio.Future[Any]) -> None:
    """Mark a pool future's exception as seen. emit() awaits every future it reaches and
    reports the first failure; the ones still in the window when the run stops (a dead worker
    fails them all) would each log "Future exception was never retrieved" with a traceback."""
    if not fut.cancelled():
        fut.exception()


def _pickle_state(stage: Stage) -> bytes:
    return pickle.dumps(stage.state_dict(), protocol=pickle.HIGHEST_PROTOCOL)


def _checked(key: str, result: Any) -> list[Record]:
    if not isinstance(result, list) or (result and not isinstance(result[0], Record)):
        raise StageCrashed(key, f"returned {type(result).__name__}, expected a list of Record")
    return result


def run_stage(key: str, stage: Stage, batch: list[Record]) -> list[Record]:
    """``stage.process(batch)``; an exception escaping it, or a result that is not a list of
    records, is :class:`StageCrashed` naming the stage (every executor calls stages so)."""
    first = batch[0].id
    try:
        result = stage.process(batch)
    except Exception as exc:
        raise StageCrashed(
            key,
            f"process() raised {type(exc).__name__}: {exc} "
            f"(batch of {len(batch)} records from id {first})",
        ) from exc
    return _checked(key, result)


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a failed TaskGroup: the first real one, unwrapped."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            if isinstance(exc, StreamError | KeyboardInterrupt | SystemExit):
                return exc
            wrapped = StreamError(f"pipeline failed: {type(exc).__name__}: {exc}")
            wrapped.__cause__ = exc
            return wrapped
    return group
