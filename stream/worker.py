"""``codekiln-stream worker``: the long-running form of a run.

It watches ``watch_dir`` for input shards (``*.jsonl``, ``*.jsonl.zst``, ``*.parquet``; write
them under a hidden name and rename them in, so a half-written shard is never picked up),
claims one at a time, runs the configured pipeline over it into ``out_dir/<shard>/`` (corpus,
rejects, manifest.json, report.md: the same layout and exactly-once resume as ``run``), and
moves it to ``.done/``. Several workers can share one ``watch_dir``:

- claim = take an exclusive ``flock`` on ``.claimed/<name>.lock``, then ``rename`` the shard
  into ``.claimed/``; only one worker can do both;
- a worker that dies releases its lock with its process; another worker then finds the shard in
  ``.claimed/`` with a free lock and finishes it, resuming from its checkpoint;
- a shard whose run fails (a stage crashed) moves to ``.failed/`` with ``<name>.error.txt``.

SIGTERM (or SIGINT) drains: the shard in progress is finished and committed, no new shard is
claimed, the process exits 0. ``/metrics`` (Prometheus) and ``/healthz`` are served on
``metrics_host:metrics_port`` (port 0 picks a free port, printed at start).

Stage state lives per shard (each shard is its own run): a stateful stage such as a dedup
index does not carry over from one shard to the next in worker mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from codekiln.stream.config import StreamConfig
from codekiln.stream.metrics import RunMetrics, StageMetrics, prometheus_collector
from codekiln.stream.runtime.errors import ConfigError, InputError, StreamError
from codekiln.stream.runtime.job import AfterCommit, JobSpec, run_job
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from codekiln.shards import SHARD_SUFFIXES

log = logging.getLogger("codekiln.stream.worker")

CLAIMED, DONE, FAILED = ".claimed", ".done", ".failed"


@dataclass(frozen=True)
class WorkerSettings:
    watch_dir: Path
    out_dir: Path
    worker_id: str
    poll_interval_s: float = 1.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    once: bool = False

    @classmethod
    def from_config(
        cls,
        config: StreamConfig,
        *,
        watch_dir: Path | None = None,
        out_dir: Path | None = None,
        worker_id: str | None = None,
        metrics_port: int | None = None,
        once: bool = False,
    ) -> WorkerSettings:
        w = config.worker
        watch = watch_dir or (Path(w.watch_dir) if w.watch_dir else None)
        out = out_dir or (Path(w.out_dir) if w.out_dir else None)
        if watch is None:
            raise ConfigError("config: worker.watch_dir: required in worker mode (or --watch-dir)")
        if out is None:
            raise ConfigError("config: worker.out_dir: required in worker mode (or --out)")
        port = w.metrics_port if metrics_port is None else metrics_port
        if not 0 <= port <= 65535:
            raise ConfigError(f"config: worker.metrics_port: must be 0..65535, got {port}")
        return cls(
            watch_dir=watch,
            out_dir=out,
            worker_id=worker_id or w.worker_id or f"{socket.gethostname()}-{os.getpid()}",
            poll_interval_s=w.poll_interval_s,
            metrics_host=w.metrics_host,
            metrics_port=port,
            once=once,
        )


def shard_stem(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(SHARD_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


class Claim:
    """An exclusively held shard: the lock lives as long as this object is open."""

    def __init__(self, path: Path, lock: IO[bytes]) -> None:
        self.path = path
        self._lock = lock

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        self._lock.close()


def _try_lock(lock_path: Path) -> IO[bytes] | None:
    fh = open(lock_path, "ab")  # noqa: SIM115 - held open for the claim's lifetime
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def _candidates(folder: Path) -> Iterator[Path]:
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    for name in names:
        if not name.startswith(".") and name.lower().endswith(SHARD_SUFFIXES):
            yield folder / name


def claim_next(watch_dir: Path) -> Claim | None:
    """Claim a shard: an abandoned one in ``.claimed/`` first, else a new one (sync: call it
    from a thread)."""
    claimed = watch_dir / CLAIMED
    claimed.mkdir(parents=True, exist_ok=True)
    for path in _candidates(claimed):  # abandoned by a worker that died
        lock = _try_lock(claimed / f".{path.name}.lock")
        if lock is None:
            continue
        if path.exists():
            return Claim(path, lock)
        lock.close()
    for path in _candidates(watch_dir):
        lock = _try_lock(claimed / f".{path.name}.lock")
        if lock is None:
            continue
        target = claimed / path.name
        try:
            os.rename(path, target)
        except FileNotFoundError:  # another worker took it between our listing and our lock
            lock.close()
            continue
        return Claim(target, lock)
    return None


#: Reject reasons that mean the shard itself (not one record in it) could not be read.
UNREADABLE_REASONS = ("reader:unreadable", "reader:corrupt", "reader:missing")


def unreadable_reasons(manifest: Mapping[str, Any]) -> str:
    """``"reader:corrupt 1, ..."`` for the shard-level read failures of a run, else ``""``."""
    reasons = manifest.get("rejects", {}).get("reasons", {})
    return ", ".join(f"{r} {n}" for r, n in reasons.items() if r in UNREADABLE_REASONS and n)


def _finish_claim(claim: Claim, folder_name: str, error: str | None = None) -> None:
    dest = claim.path.parent.parent / folder_name
    dest.mkdir(exist_ok=True)
    if error is not None:
        (dest / f"{claim.path.name}.error.txt").write_text(error + "\n")
    os.replace(claim.path, dest / claim.path.name)
    lock_path = claim.path.parent / f".{claim.path.name}.lock"
    with contextlib.suppress(FileNotFoundError):
        lock_path.unlink()
    claim.release()


class WorkerState:
    """What /metrics and /healthz show."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.started = time.time()
        self.current: str | None = None
        self.current_metrics: RunMetrics | None = None
        self.totals: dict[str, StageMetrics] = {}
        self.shards: dict[str, int] = {"done": 0, "failed": 0}
        self.draining = False

    def add_finished(self, metrics: RunMetrics) -> None:
        for m in metrics:
            t = self.totals.setdefault(m.key, StageMetrics(m.key))
            t.records_in += m.records_in
            t.records_out += m.records_out
            t.dropped.update(m.dropped)
            t.busy_s += m.busy_s
            t.batches += m.batches

    def merged(self) -> RunMetrics:
        keys = list(self.totals)
        if self.current_metrics is not None:
            keys += [m.key for m in self.current_metrics if m.key not in self.totals]
        merged = RunMetrics(keys)
        for key, t in self.totals.items():
            merged[key].restore(t.snapshot())
        if self.current_metrics is not None:
            for m in self.current_metrics:
                x = merged[m.key]
                x.records_in += m.records_in
                x.records_out += m.records_out
                x.dropped.update(m.dropped)
                x.busy_s += m.busy_s
                x.depth = m.depth
        return merged


def make_app(state: WorkerState) -> web.Application:
    registry = CollectorRegistry()
    registry.register(prometheus_collector(state.merged))

    class _WorkerCollector:
        def collect(self) -> Iterator[Any]:
            shards = CounterMetricFamily(
                "codekiln_stream_worker_shards", "Input shards finished", labels=["status"]
            )
            for status, n in state.shards.items():
                shards.add_metric([status], n)
            busy = GaugeMetricFamily(
                "codekiln_stream_worker_busy", "1 while a shard is in progress"
            )
            busy.add_metric([], 1 if state.current else 0)
            yield from (shards, busy)

    registry.register(_WorkerCollector())

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "draining" if state.draining else "ok",
                "worker_id": state.worker_id,
                "current_shard": state.current,
                "shards": state.shards,
                "uptime_s": round(time.time() - state.started, 1),
            }
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def run_worker(
    config: StreamConfig,
    settings: WorkerSettings,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    after_commit: tuple[AfterCommit, ...] = (),
    config_extra: Mapping[str, Any] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``), or until idle with ``settings.once``.

    ``after_commit`` and ``config_extra`` go into every shard's :class:`JobSpec` (the steps
    codekiln.flow composes after each shard's corpus commits)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    state = WorkerState(settings.worker_id)
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port)
        await site.start()
        port = runner.addresses[0][1]
        log.info(
            "worker %s: watching %s, metrics on http://%s:%d/metrics",
            settings.worker_id,
            settings.watch_dir,
            settings.metrics_host,
            port,
        )
        if on_ready is not None:
            on_ready(port)
        await asyncio.to_thread(settings.out_dir.mkdir, parents=True, exist_ok=True)
        if not await asyncio.to_thread(settings.watch_dir.is_dir):
            # Waited for (a volume mounted after the pod starts), but said.
            log.warning("worker %s: %s does not exist (yet)", settings.worker_id,
                        settings.watch_dir)  # fmt: skip
        while not stop.is_set():
            claim = await asyncio.to_thread(claim_next, settings.watch_dir)
            if claim is None:
                if settings.once:
                    if not sum(state.shards.values()):
                        log.warning(
                            "worker %s: no shard to claim in %s: nothing done",
                            settings.worker_id,
                            settings.watch_dir,
                        )
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.poll_interval_s):
                        await stop.wait()
                continue
            state.current = claim.path.name
            spec = JobSpec(
                inputs=(str(claim.path),),
                out_dir=settings.out_dir / shard_stem(claim.path.name),
                config=config,
                after_commit=after_commit,
                config_extra=dict(config_extra or {}),
            )
            seen: list[RunMetrics] = []

            async def watch(metrics: RunMetrics, seen: list[RunMetrics] = seen) -> None:
                seen.append(metrics)
                state.current_metrics = metrics
                await asyncio.Event().wait()  # until cancelled when the shard's run ends

            try:
                # Drain on SIGTERM: the shard in progress runs to its commit; only the claiming
                # of new shards stops.
                result = await run_job(spec, on_metrics=watch)
                unread = unreadable_reasons(result.manifest)
                if unread:
                    # The run committed what it could read, but the shard is not done: an
                    # operator must see it in .failed/ (with the reasons), not in .done/.
                    raise InputError(f"the shard could not be read whole: {unread}")
            except StreamError as exc:
                log.error("shard %s failed (moved to %s/): %s", claim.path.name, FAILED, exc)
                await asyncio.to_thread(
                    _finish_claim, claim, FAILED, f"{type(exc).__name__}: {exc}"
                )
                state.shards["failed"] += 1
            else:
                await asyncio.to_thread(_finish_claim, claim, DONE)
                log.info("shard %s done -> %s", claim.path.name, spec.out_dir)
                state.shards["done"] += 1
            finally:
                if seen:
                    state.add_finished(seen[0])
                state.current = None
                state.current_metrics = None
        state.draining = True
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return 0
