"""One warm container: its supervisor, spoken to over a unix socket that bypasses the daemon.

Per container the service makes a private directory, listens on a unix socket in it and
bind-mounts the directory read-only into the container. The supervisor connects once, at start;
the service accepts that one connection, then closes the listener and removes the socket and
the directory, all before the first job is sent, so no job can ever reach a channel (see
THREAT_MODEL.md). Jobs and results then go straight between the service and the supervisor, with
no ``dockerd`` or ``containerd-shim`` copy on the way. The container's attach stream stays open:
it carries the supervisor's own stderr (diagnostics) and its closing ends the supervisor.
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
from typing import Any

from ._engine import CHANNEL_NAME, Attached, Engine
from .errors import EngineError

log = logging.getLogger("codekiln.sandbox.worker")

MAX_MESSAGE = 256 * 1024 * 1024
STDERR = 2
DIAGNOSTICS_WAIT_S = 0.5


class Worker:
    """A started container with a ready supervisor; one job at a time."""

    def __init__(
        self,
        engine: Engine,
        container_id: str,
        job_uid: int,
        attached: Attached,
        channel: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.engine = engine
        self.container_id = container_id
        self.job_uid = job_uid
        self.jobs_done = 0
        self._attached = attached
        self._reader, self._writer = channel
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
                    conn = await _accept_one(listener, attached, diagnostics, container_id)
                    # The one connection is made: nothing else can connect from here on.
                    _remove_channel(listener, path, channel_dir)
                    reader, writer = await asyncio.open_unix_connection(sock=conn, limit=2**20)
                    worker = cls(engine, container_id, job_uid, attached, (reader, writer))
                    worker.diagnostics.extend(diagnostics)
                    hello = await worker._read_message()
                if not hello.get("ready"):
                    raise EngineError(f"supervisor did not report ready: {hello!r}")
            except BaseException:
                await asyncio.shield(engine.remove(container_id))
                raise
        finally:
            _remove_channel(listener, path, channel_dir)
        return worker

    async def run(self, job: dict[str, Any], deadline_s: float) -> dict[str, Any]:
        """Send one job and wait for its result; TimeoutError when the host deadline passes."""
        body = json.dumps(job).encode()
        self._writer.write(struct.pack(">I", len(body)) + body)
        async with asyncio.timeout(deadline_s):
            await self._writer.drain()
            result = await self._read_message()
        self.jobs_done += 1
        return result

    async def destroy(self) -> None:
        self._writer.close()
        self._attached.writer.close()
        await self.engine.remove(self.container_id)

    async def _read_message(self) -> dict[str, Any]:
        try:
            head = await self._reader.readexactly(4)
            (size,) = struct.unpack(">I", head)
            if size > MAX_MESSAGE:
                raise EngineError(f"container {self.short_id} sent an oversized message")
            body = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self._collect_diagnostics()
            raise EngineError(
                f"container {self.short_id} closed its channel; last diagnostics: "
                f"{list(self.diagnostics)[-3:]}"
            ) from exc
        try:
            msg: dict[str, Any] = json.loads(body)
        except ValueError as exc:
            raise EngineError(f"container {self.short_id} sent bad JSON") from exc
        return msg

    async def _collect_diagnostics(self) -> None:
        """Read what the supervisor wrote to its stderr, briefly (it is dying or dead)."""
        with contextlib.suppress(TimeoutError, EngineError):
            async with asyncio.timeout(DIAGNOSTICS_WAIT_S):
                await _read_stderr(self._attached, self.diagnostics, self.short_id)


async def _read_stderr(attached: Attached, sink: collections.deque[str], short_id: str) -> None:
    """Log and keep the supervisor's stderr lines until its attach stream ends."""
    reader = attached.reader
    while True:
        try:
            head = await reader.readexactly(8)
            stream, size = head[0], struct.unpack(">I", head[4:])[0]
            data = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if stream == STDERR:
            text = data.decode("utf-8", errors="replace").strip()
            if text:
                sink.append(text[-2000:])
                log.warning("container %s: %s", short_id, text[-500:])


async def _accept_one(
    listener: socket.socket,
    attached: Attached,
    diagnostics: collections.deque[str],
    container_id: str,
) -> socket.socket:
    """The supervisor's connection; EngineError as soon as the container's stream ends first."""
    loop = asyncio.get_running_loop()
    accept = asyncio.ensure_future(loop.sock_accept(listener))
    ended = asyncio.ensure_future(_read_stderr(attached, diagnostics, container_id[:12]))
    try:
        await asyncio.wait({accept, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (accept, ended):
            task.cancel()
        await asyncio.gather(accept, ended, return_exceptions=True)
    if accept.done() and not accept.cancelled() and accept.exception() is None:
        conn, _ = accept.result()
        return conn
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
