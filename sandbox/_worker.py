"""One warm container: its supervisor, spoken to over the hijacked attach stream."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import struct
from typing import Any

from ._engine import Attached, Engine
from .errors import EngineError

log = logging.getLogger("codekiln.sandbox.worker")

MAX_MESSAGE = 256 * 1024 * 1024
STDOUT, STDERR = 1, 2


class Worker:
    """A started container with a ready supervisor; one job at a time."""

    def __init__(self, engine: Engine, container_id: str, job_uid: int, io: Attached) -> None:
        self.engine = engine
        self.container_id = container_id
        self.job_uid = job_uid
        self.jobs_done = 0
        self._io = io
        self._buf = bytearray()
        # The supervisor's own stderr (never the job's): the last lines, for diagnostics.
        self.diagnostics: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def short_id(self) -> str:
        return self.container_id[:12]

    @classmethod
    async def start(cls, engine: Engine, ready_timeout_s: float) -> Worker:
        job_uid = random.randrange(200_000, 2_000_000)
        container_id = await engine.create(job_uid)
        try:
            io = await engine.attach(container_id)
            worker = cls(engine, container_id, job_uid, io)
            await engine.start(container_id)
            async with asyncio.timeout(ready_timeout_s):
                hello = await worker._read_message()
            if not hello.get("ready"):
                raise EngineError(f"supervisor did not report ready: {hello!r}")
        except BaseException:
            await asyncio.shield(engine.remove(container_id))
            raise
        return worker

    async def run(self, job: dict[str, Any], deadline_s: float) -> dict[str, Any]:
        """Send one job and wait for its result; TimeoutError when the host deadline passes."""
        body = json.dumps(job).encode()
        self._io.writer.write(struct.pack(">I", len(body)) + body)
        async with asyncio.timeout(deadline_s):
            await self._io.writer.drain()
            result = await self._read_message()
        self.jobs_done += 1
        return result

    async def destroy(self) -> None:
        self._io.writer.close()
        await self.engine.remove(self.container_id)

    async def _read_frame(self) -> tuple[int, bytes]:
        try:
            head = await self._io.reader.readexactly(8)
            stream, size = head[0], struct.unpack(">I", head[4:])[0]
            data = await self._io.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EngineError(
                f"container {self.short_id} closed its stream; last diagnostics: "
                f"{list(self.diagnostics)[-3:]}"
            ) from exc
        return stream, data

    async def _read_message(self) -> dict[str, Any]:
        while True:
            if len(self._buf) >= 4:
                (size,) = struct.unpack(">I", self._buf[:4])
                if size > MAX_MESSAGE:
                    raise EngineError(f"container {self.short_id} sent an oversized message")
                if len(self._buf) >= 4 + size:
                    body = bytes(self._buf[4 : 4 + size])
                    del self._buf[: 4 + size]
                    try:
                        msg: dict[str, Any] = json.loads(body)
                    except ValueError as exc:
                        raise EngineError(f"container {self.short_id} sent bad JSON") from exc
                    return msg
            stream, data = await self._read_frame()
            if stream == STDOUT:
                self._buf += data
            else:
                text = data.decode("utf-8", errors="replace").strip()
                if text:
                    self.diagnostics.append(text[-2000:])
                    log.warning("container %s: %s", self.short_id, text[-500:])
