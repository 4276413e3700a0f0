"""One warm container: its supervisor, spoken to over a unix socket that bypasses the daemon.

Per container the service makes a private directory, listens on a unix socket in it and
bind-mounts the directory read-only into the container. The supervisor connects once, at start;
the service accepts that one connection, then closes the listener and removes the socket and
the directory, all before the first job is sent, so no job can ever reach a channel (see
THREAT_MODEL.md). Jobs and results then go straight between the service and the supervisor, with
no ``dockerd`` or ``containerd-shim`` copy on the way. The container's attach stream stays open:
it carries the supervisor's own stderr (diagnostics) and its closing ends the supervisor.

Where the engine does not see the service's filesystem (an engine in another container, as in
the Kubernetes deployment, unless ``channel_dir`` is a volume both share at the same path), the
supervisor finds no socket and speaks over the attach stream instead (slower: every message
is copied by the daemon and the shim); its hello arrives there and says so.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import random
import socket
import struct
import tempfile
import time
from typing import Any

from ._engine import CHANNEL_NAME, Attached, Engine
from .errors import EngineError, SupervisorOOMKilled
from .models import DEFAULT_MEMORY_MB

log = logging.getLogger("codekiln.sandbox.worker")

# A result carries at most two output caps (1 MiB each by default, up to 6 bytes per byte as
# JSON escapes) plus test verdicts; a bigger message is a misbehaving container.
MAX_MESSAGE = 64 * 1024 * 1024
STDOUT, STDERR = 1, 2
DIAGNOSTICS_WAIT_S = 0.5


class Worker:
    """A started container with a ready supervisor; one job at a time."""

    def __init__(
        self,
        engine: Engine,
        container_id: str,
        job_uid: int,
        attached: Attached,
        channel: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
        *,
        pending_stdout: bytes = b"",
    ) -> None:
        self.engine = engine
        self.container_id = container_id
        self.job_uid = job_uid
        self.jobs_done = 0
        #: When the job in flight was sent (time.time()), None between jobs.
        self._job_sent: float | None = None
        # The container's memory limit now (Engine.create's), changed to each job's own.
        self.memory_limit_mb = engine.memory_limit_mb(DEFAULT_MEMORY_MB, 0)
        self._attached = attached
        # None: the attach stream is the channel (docker-framed; stdout is the supervisor's).
        self._channel = channel
        self._reader, self._writer = channel or (attached.reader, attached.writer)
        self._stdout = bytearray(pending_stdout)
        # The supervisor's own stderr (never the job's): the last lines, for diagnostics.
        self.diagnostics: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def short_id(self) -> str:
        return self.container_id[:12]

    @classmethod
    async def start(
        cls, engine: Engine, ready_timeout_s: float, channel_base: str | None = None
    ) -> Worker:
        job_uid = random.randrange(200_000, 2_000_000)
        channel_dir = tempfile.mkdtemp(prefix="codekiln-channel-", dir=channel_base)
        path = os.path.join(channel_dir, CHANNEL_NAME)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # The supervisor is uid 0 without CAP_DAC_OVERRIDE: a root service keeps both
            # private; another service must let "others" traverse and connect (the directory's
            # name is random and unlistable, and it is gone once the supervisor is connected).
            root = os.geteuid() == 0
            os.chmod(channel_dir, 0o700 if root else 0o711)
            listener.bind(path)
            os.chmod(path, 0o600 if root else 0o666)
            listener.listen(1)
            listener.setblocking(False)
            container_id = await engine.create(job_uid, channel_dir)
            try:
                attached = await engine.attach(container_id)
                diagnostics: collections.deque[str] = collections.deque(maxlen=20)
                await engine.start(container_id)
                async with asyncio.timeout(ready_timeout_s):
                    conn, stdout = await _connection(listener, attached, diagnostics, container_id)
                    # The one connection is made (or the supervisor answered on its stdio
                    # instead): nothing can connect from here on.
                    _remove_channel(listener, path, channel_dir)
                    channel = None
                    if conn is not None:
                        channel = await asyncio.open_unix_connection(sock=conn, limit=2**20)
                    worker = cls(
                        engine, container_id, job_uid, attached, channel, pending_stdout=stdout
                    )
                    worker.diagnostics.extend(diagnostics)
                    hello = await worker._read_message()
                if not hello.get("ready"):
                    raise EngineError(f"supervisor did not report ready: {hello!r}")
                if conn is None:
                    log.info("container %s: no socket, attached stdio", container_id[:12])
            except BaseException:
                await asyncio.shield(engine.remove(container_id))
                raise
        finally:
            _remove_channel(listener, path, channel_dir)
        return worker

    async def run(self, job: dict[str, Any], deadline_s: float) -> dict[str, Any]:
        """Send one job and wait for its result; TimeoutError when the host deadline passes.

        The result comes as soon as the verdict is known, with ``pending_cleanup``: the
        supervisor is still cleaning up (``finish`` reads its report) and the container takes
        no job before that.
        """
        body = json.dumps(dict(job, report_early=True)).encode()
        async with asyncio.timeout(deadline_s):
            limit = self.engine.memory_limit_mb(int(job["memory_mb"]), len(body))
            if limit != self.memory_limit_mb:
                await self.engine.set_memory_limit(self.container_id, limit)
                self.memory_limit_mb = limit
            self._job_sent = time.time()
            try:
                self._writer.write(struct.pack(">I", len(body)) + body)
                await self._writer.drain()
                result = await self._read_message()
            finally:
                self._job_sent = None
        self.jobs_done += 1
        return result

    async def finish(self, timeout_s: float) -> dict[str, Any]:
        """The supervisor's clean-up report after a ``pending_cleanup`` result: ``recycle``
        and ``anomaly``. TimeoutError when it takes longer than ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            return await self._read_message()

    async def destroy(self) -> None:
        if self._channel is not None:
            self._writer.close()
        self._attached.writer.close()
        await self.engine.remove(self.container_id)

    async def _read_message(self) -> dict[str, Any]:
        try:
            if self._channel is None:
                body = await self._read_stdio_message()
            else:
                head = await self._reader.readexactly(4)
                (size,) = struct.unpack(">I", head)
                if size > MAX_MESSAGE:
                    raise EngineError(f"container {self.short_id} sent an oversized message")
                body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self._collect_diagnostics()
            sent = self._job_sent
            if sent is not None and await self.engine.oom_since(self.container_id, sent):
                # The job filled the container's memory: the kernel's OOM killer ended the
                # job and then the supervisor, whose page it needed while the job's memory
                # was still being freed (seen with a Go hog under load).
                raise SupervisorOOMKilled(
                    f"the job's memory use made the container's OOM killer end the sandbox's "
                    f"supervisor too (container {self.short_id}, replaced)"
                ) from exc
            raise EngineError(
                f"container {self.short_id} closed its channel; last diagnostics: "
                f"{list(self.diagnostics)[-3:]}"
            ) from exc
        try:
            msg: dict[str, Any] = json.loads(body)
        except ValueError as exc:
            raise EngineError(f"container {self.short_id} sent bad JSON") from exc
        return msg

    async def _read_stdio_message(self) -> bytes:
        """One message from the supervisor's stdout, out of the attach stream's frames."""
        while True:
            if len(self._stdout) >= 4:
                (size,) = struct.unpack(">I", self._stdout[:4])
                if size > MAX_MESSAGE:
                    raise EngineError(f"container {self.short_id} sent an oversized message")
                if len(self._stdout) >= 4 + size:
                    body = bytes(self._stdout[4 : 4 + size])
                    del self._stdout[: 4 + size]
                    return body
            head = await self._reader.readexactly(8)
            stream, size = head[0], struct.unpack(">I", head[4:])[0]
            data = await self._reader.readexactly(size)
            if stream == STDOUT:
                self._stdout += data
            else:
                _keep_stderr(data, self.diagnostics, self.short_id)

    async def _collect_diagnostics(self) -> None:
        """Read what the supervisor wrote to its stderr, briefly (it is dying or dead)."""
        with contextlib.suppress(TimeoutError, EngineError):
            async with asyncio.timeout(DIAGNOSTICS_WAIT_S):
                await _read_stderr(self._attached, self.diagnostics, self.short_id)


def _keep_stderr(data: bytes, sink: collections.deque[str], short_id: str) -> None:
    text = data.decode("utf-8", errors="replace").strip()
    if text:
        sink.append(text[-2000:])
        log.warning("container %s: %s", short_id, text[-500:])


async def _read_stderr(
    attached: Attached, sink: collections.deque[str], short_id: str, *, until_stdout: bool = False
) -> bytes:
    """Log and keep the supervisor's stderr lines until its attach stream ends, or (with
    ``until_stdout``) until its stdout says something, which is returned."""
    reader = attached.reader
    while True:
        try:
            head = await reader.readexactly(8)
            stream, size = head[0], struct.unpack(">I", head[4:])[0]
            data = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return b""
        if stream == STDERR:
            _keep_stderr(data, sink, short_id)
        elif until_stdout and data:
            return data


async def _connection(
    listener: socket.socket,
    attached: Attached,
    diagnostics: collections.deque[str],
    container_id: str,
) -> tuple[socket.socket | None, bytes]:
    """The supervisor's socket connection, or (None, the first bytes of its stdout) when it
    speaks on its stdio instead; EngineError as soon as the container's stream ends first."""
    loop = asyncio.get_running_loop()
    accept = asyncio.ensure_future(loop.sock_accept(listener))
    stdio = asyncio.ensure_future(
        _read_stderr(attached, diagnostics, container_id[:12], until_stdout=True)
    )
    try:
        await asyncio.wait({accept, stdio}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (accept, stdio):
            task.cancel()
        await asyncio.gather(accept, stdio, return_exceptions=True)
    if accept.done() and not accept.cancelled() and accept.exception() is None:
        conn, _ = accept.result()
        return conn, b""
    if stdio.done() and not stdio.cancelled() and stdio.exception() is None and stdio.result():
        return None, stdio.result()
    raise EngineError(
        f"container {container_id[:12]} ended before its supervisor connected; last "
        f"diagnostics: {list(diagnostics)[-3:]}"
    )


def _remove_channel(listener: socket.socket, path: str, channel_dir: str) -> None:
    listener.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(channel_dir)
