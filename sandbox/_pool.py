"""The warm pool: containers ready to run a job, replaced after kills, anomalies and N jobs.

A replaced container's slot is filled at once from the spares (containers started ahead,
outside the pool), and a new spare is started in the background; without a spare the slot
waits for a start (0.5-1 s).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from types import TracebackType
from typing import Any

from ._engine import Engine
from ._worker import Worker
from .config import SandboxConfig
from .errors import EngineError, SupervisorOOMKilled
from .languages import Language
from .metrics import Metrics
from .models import RunRequest, RunResult

log = logging.getLogger("codekiln.sandbox.pool")


def job_message(request: RunRequest, lang: Language, config: SandboxConfig) -> dict[str, Any]:
    return {
        "language_kind": lang.kind,
        "code": request.code,
        "tests": request.tests,
        "stdin": request.stdin,
        "files": request.files,
        "timeout_s": request.timeout_s,
        "memory_mb": request.memory_mb,
        # CPU-time rlimit: a backstop behind the wall deadline, for a job that outlives it.
        "cpu_limit_s": int(request.timeout_s) + 2,
        "output_limit_bytes": config.output_limit_bytes,
        "source_name": lang.source_name,
        "compile": list(lang.compile) if lang.compile else None,
        "compile_timeout_s": config.compile_timeout_s,
        "run": list(lang.run) if lang.run else None,
        "memory_rlimit": lang.memory_rlimit,
    }


class IdleWorkers:
    """The idle workers (at most the pool's size: a worker is here, busy, or being replaced).
    Waiting takers are served first come, first served; a taker that finds several idle
    workers takes the one whose memory limit fits its job, else the longest idle."""

    def __init__(self) -> None:
        self._workers: list[Worker] = []
        # Bound: the requests admitted (pool size + max_queue) that wait for a container.
        self._takers: collections.deque[asyncio.Future[Worker]] = collections.deque()

    def qsize(self) -> int:
        return len(self._workers)

    def put_nowait(self, worker: Worker) -> None:
        while self._takers:
            taker = self._takers.popleft()
            if not taker.done():
                taker.set_result(worker)
                return
        self._workers.append(worker)

    async def get(self, memory_limit_mb: int) -> Worker:
        if self._workers:
            for i, worker in enumerate(self._workers):
                if worker.memory_limit_mb == memory_limit_mb:
                    return self._workers.pop(i)
            return self._workers.pop(0)
        taker: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        self._takers.append(taker)
        try:
            return await taker
        except asyncio.CancelledError:
            # Handed a worker in the same step as the cancellation: give it to the next.
            if taker.done() and not taker.cancelled():
                self.put_nowait(taker.result())
            raise


class Pool:
    """Owns the containers; use as an async context manager (it owns the replacement tasks)."""

    def __init__(self, config: SandboxConfig, engine: Engine, metrics: Metrics) -> None:
        self._config = config
        self._engine = engine
        self._metrics = metrics
        # Bound: the pool size. A worker is idle here, busy with one job, or being replaced.
        self._idle = IdleWorkers()
        self._live: set[Worker] = set()
        # Bound: config.spare_containers (one start per replacement, only while below it).
        self._spares: list[Worker] = []
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def live(self) -> int:
        return len(self._live)

    @property
    def idle(self) -> int:
        return self._idle.qsize()

    @property
    def spares(self) -> int:
        return len(self._spares)

    async def __aenter__(self) -> Pool:
        await self._engine.watch_ooms()
        reaped = await self._engine.reap_orphans()
        if reaped:
            log.info("reaped %d orphan container(s)", reaped)
            self._metrics.reaped.inc(reaped)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            pool_size, spares = self._config.pool_size, self._config.spare_containers
            results = await asyncio.gather(
                *(self._start_one(spare=i >= pool_size) for i in range(pool_size + spares)),
                return_exceptions=True,
            )
            errors = [r for r in results[:pool_size] if isinstance(r, BaseException)]
            if len(errors) == pool_size:
                raise EngineError(f"no container could start: {errors[0]!r}") from errors[0]
            for _ in errors:
                self._spawn(self._replace(None, "start_failed"))
            for r in results[pool_size:]:
                if isinstance(r, BaseException):
                    self._spawn(self._start_retrying(spare=True))
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        workers = [*self._live, *self._spares]
        self._live.clear()
        self._spares.clear()
        await asyncio.gather(*(self._destroy(w) for w in workers), return_exceptions=True)
        if self._tg is not None:
            await self._tg.__aexit__(exc_type, exc, tb)
            self._tg = None

    async def _start_one(self, *, spare: bool = False) -> Worker:
        try:
            worker = await Worker.start(
                self._engine, self._config.container_start_timeout_s, self._config.channel_dir
            )
        except (EngineError, TimeoutError):
            self._metrics.start_failures.inc()
            raise
        self._metrics.started.inc()
        if self._closing:
            await self._destroy(worker)
            raise EngineError("pool is closing")
        if spare:
            self._spares.append(worker)
        else:
            self._live.add(worker)
            self._idle.put_nowait(worker)
        self._gauges()
        return worker

    async def _destroy(self, worker: Worker) -> None:
        try:
            await worker.destroy()
        except EngineError as exc:
            log.warning("removing container %s failed: %s", worker.short_id, exc)

    async def _replace(self, worker: Worker | None, reason: str) -> None:
        self._metrics.recycled.labels(reason).inc()
        promoted = False
        if worker is not None:
            self._live.discard(worker)
        if self._spares and not self._closing:
            spare = self._spares.pop()
            self._live.add(spare)
            self._idle.put_nowait(spare)
            promoted = True
        self._gauges()
        # The removal and the new start overlap: the replacement is ready ~one engine call
        # sooner, and neither is on any job's path.
        if worker is not None:
            await asyncio.gather(self._destroy(worker), self._start_retrying(spare=promoted))
        else:
            await self._start_retrying(spare=promoted)

    async def _start_retrying(self, *, spare: bool) -> None:
        delay = 0.2
        while not self._closing:
            try:
                await self._start_one(spare=spare)
            except (EngineError, TimeoutError) as exc:
                if self._closing:
                    return
                log.warning("container start failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                return

    def _spawn(self, coro: Any) -> None:
        if self._tg is None:
            raise EngineError("pool used outside 'async with'")
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _recycle(self, worker: Worker, reason: str) -> None:
        if self._closing:
            return  # __aexit__ removes every container, this one included
        self._spawn(self._replace(worker, reason))

    def _gauges(self) -> None:
        self._metrics.idle.set(self._idle.qsize())
        self._metrics.spares.set(len(self._spares))
        self._metrics.containers.set(len(self._live))

    async def run(self, request: RunRequest, lang: Language) -> RunResult:
        msg = job_message(request, lang, self._config)
        deadline_s = request.timeout_s + self._config.host_grace_s
        if lang.compile:
            deadline_s += self._config.compile_timeout_s
        # An idle container whose memory limit already fits this job, if there is one: it needs
        # no engine call to change it before the job starts (message size approximated).
        size = len(request.code) + len(request.tests or "") + len(request.stdin)
        size += sum(len(k) + len(v) for k, v in request.files.items())
        worker = await self._idle.get(self._engine.memory_limit_mb(request.memory_mb, size))
        self._gauges()
        t0 = time.monotonic()
        limit_before = worker.memory_limit_mb
        try:
            raw = await worker.run(msg, deadline_s)
        except TimeoutError:
            self._recycle(worker, "host_deadline")
            return RunResult(
                status="timeout",
                wall_s=time.monotonic() - t0,
                reason="the host-side deadline passed; the container was replaced",
            )
        except SupervisorOOMKilled as exc:
            self._recycle(worker, "supervisor_oom")
            return RunResult(
                status="memory_exceeded", reason=str(exc), wall_s=time.monotonic() - t0
            )
        except EngineError as exc:
            self._recycle(worker, "engine_error")
            return RunResult.error(f"sandbox fault: {exc}", wall_s=time.monotonic() - t0)
        except BaseException:
            # Cancelled mid-job: the container may still be running it, so it is not reused.
            self._recycle(worker, "cancelled")
            raise
        if worker.memory_limit_mb != limit_before:
            self._metrics.limit_updates.inc()
        raw.pop("id", None)
        if raw.pop("pending_cleanup", False):
            # The verdict is back; the supervisor cleans up (a fork bomb's processes take a
            # while to die) off this request's path, and the container is reused or recycled
            # after that. A closing pool removes it anyway.
            if not self._closing:
                self._spawn(self._after_cleanup(worker, deadline_s))
        else:
            self._release(worker, raw)
        try:
            return RunResult.from_json(raw)
        except (KeyError, TypeError, ValueError) as exc:
            return RunResult.error(f"sandbox fault: malformed supervisor result: {exc}")

    async def _after_cleanup(self, worker: Worker, timeout_s: float) -> None:
        try:
            report = await worker.finish(timeout_s)
        except TimeoutError:
            self._recycle(worker, "host_deadline")
        except SupervisorOOMKilled:
            # The job's memory is still charged (files on tmpfs outlive it), so the clean-up's
            # own page made the OOM killer end the supervisor: the verdict stands.
            self._recycle(worker, "supervisor_oom")
        except EngineError:
            self._recycle(worker, "engine_error")
        else:
            self._release(worker, report)

    def _release(self, worker: Worker, report: dict[str, Any]) -> None:
        """Back to the idle queue, or recycled, as the supervisor's clean-up report says."""
        recycle = bool(report.pop("recycle", True))
        anomaly = str(report.pop("anomaly", "") or "")
        if anomaly:
            log.warning("container %s: %s", worker.short_id, anomaly)
            self._recycle(worker, "anomaly")
        elif recycle:
            self._recycle(worker, "killed")
        elif worker.jobs_done >= self._config.jobs_per_container:
            self._recycle(worker, "job_count")
        else:
            self._idle.put_nowait(worker)
            self._gauges()
