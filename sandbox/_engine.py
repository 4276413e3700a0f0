"""The Docker engine boundary: container lifecycle through the docker SDK (in threads) and the
hijacked attach stream, spoken directly over the engine's unix socket with asyncio.

Every docker SDK error is wrapped into EngineError here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from .config import LABEL, SandboxConfig
from .errors import EngineError
from .models import DEFAULT_MEMORY_MB

log = logging.getLogger("codekiln.sandbox.engine")

OWNER_LABEL = LABEL + ".owner"
SUPERVISOR = ["python3", "-I", "-B", "/opt/codekiln/supervisor.py"]
# Where the host's channel directory appears in the container (read-only); see _worker.py.
CHANNEL_MOUNT = "/run/codekiln"
CHANNEL_NAME = "sock"
# The container's memory limit follows its job (Engine.memory_limit_mb): the job's memory_mb,
# all its processes, shared memory and tmpfs files together, plus this reserve for the
# supervisor (about 13 MiB resident) and the kernel's share; plus room for the outputs the
# supervisor holds and the job message it decoded.
SUPERVISOR_RESERVE_MB = 32
MIB = 1024 * 1024


def owner_id() -> str:
    """``host:pid:start``: the start time (clock ticks since boot) tells a reused pid apart
    from the owner that had it."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


@dataclass(frozen=True, slots=True)
class Attached:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class OomEvents:
    """When the engine reported an ``oom`` event for each container: its memory cgroup's OOM
    killer acted. Read from the engine's event stream in a daemon thread; the last
    ``MAX_CONTAINERS`` containers are kept."""

    MAX_CONTAINERS = 4096

    def __init__(self) -> None:
        self._times: collections.OrderedDict[str, list[float]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._stream: Any = None

    def start(self, stream: Any) -> None:
        self._stream = stream
        threading.Thread(target=self._read, name="codekiln-oom-events", daemon=True).start()

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def add(self, container_id: str, at: float) -> None:
        with self._lock:
            self._times.setdefault(container_id, []).append(at)
            self._times.move_to_end(container_id)
            while len(self._times) > self.MAX_CONTAINERS:
                self._times.popitem(last=False)

    def seen(self, container_id: str, since: float) -> bool:
        with self._lock:
            return any(at >= since for at in self._times.get(container_id, ()))

    def _read(self) -> None:
        stream = self._stream
        why = "it ended"
        try:
            for event in stream:
                container_id = event.get("id") or (event.get("Actor") or {}).get("ID")
                at = event.get("timeNano", 0) / 1e9 or float(event.get("time", 0))
                if container_id:
                    self.add(str(container_id), at)
        except Exception as exc:  # the engine went away mid-stream
            why = repr(exc)
        if self._stream is not None:  # not stop(): OOM kills are no longer attributed
            log.warning("the engine's oom event stream stopped (%s)", why)


class Engine:
    """Thin async wrapper over one docker SDK client."""

    def __init__(self, config: SandboxConfig, image: str) -> None:
        import docker

        self._config = config
        self._image = image
        try:
            self._client = docker.DockerClient(
                base_url=f"unix://{config.docker_socket}", timeout=60
            )
            self._client.ping()
        except docker.errors.DockerException as exc:
            raise EngineError(f"the Docker engine does not answer: {exc}") from exc
        # Engine calls are blocking: they run in threads, at most this many at once, so a burst
        # of container replacements cannot monopolise the engine or the thread pool.
        self._ops = asyncio.Semaphore(4)
        self._ooms = OomEvents()

    def close(self) -> None:
        self._ooms.stop()
        self._client.close()

    async def watch_ooms(self) -> None:
        """Start recording the engine's ``oom`` events of this instance's containers (the
        memory cgroup's OOM killer acted in one), for :meth:`oom_since`."""
        stream = await self._call(
            self._client.api.events,
            decode=True,
            filters={"event": "oom", "label": f"{LABEL}={self._config.instance}"},
        )
        self._ooms.start(stream)

    async def oom_since(self, container_id: str, since: float, wait_s: float = 1.0) -> bool:
        """Whether the engine reported an OOM kill in the container at or after ``since``
        (``time.time()``), waiting up to ``wait_s`` for the event to arrive."""
        end = time.monotonic() + wait_s
        while True:
            if self._ooms.seen(container_id, since):
                return True
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(0.05)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import docker

        async with self._ops:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except docker.errors.DockerException as exc:
                raise EngineError(f"docker: {exc}") from exc

    def image_present(self) -> bool:
        import docker

        try:
            self._client.images.get(self._image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as exc:
            raise EngineError(f"docker: {exc}") from exc
        return True

    async def create(self, job_uid: int, channel_dir: str) -> str:
        """Create (not start) a hardened container whose supervisor connects to the unix socket
        the service listens on in ``channel_dir`` (mounted read-only at CHANNEL_MOUNT)."""
        from docker.types import LogConfig, Ulimit

        c = self._config
        supervisor_cfg = {
            "uid": job_uid,
            "gid": job_uid,
            "fsize_bytes": c.fsize_mb * 1024 * 1024,
            "nofile": c.nofile,
            "nproc": c.nproc,
            "channel": f"{CHANNEL_MOUNT}/{CHANNEL_NAME}",
        }
        mem = f"{self.memory_limit_mb(DEFAULT_MEMORY_MB, 0)}m"
        api = self._client.api
        host_config = api.create_host_config(
            auto_remove=True,
            init=True,
            binds={channel_dir: {"bind": CHANNEL_MOUNT, "mode": "ro"}},
            network_mode="none",
            ipc_mode="private",
            read_only=True,
            tmpfs={
                "/sandbox": f"rw,exec,nosuid,nodev,size={c.sandbox_tmpfs_mb}m,mode=1777",
                "/tmp": f"rw,noexec,nosuid,nodev,size={c.tmp_tmpfs_mb}m,mode=1777",
            },
            shm_size=f"{c.shm_mb}m",
            cap_drop=["ALL"],
            cap_add=["SETUID", "SETGID"],
            security_opt=["no-new-privileges"],
            mem_limit=mem,
            memswap_limit=mem,
            pids_limit=c.pids_limit,
            nano_cpus=int(c.container_cpus * 1e9),
            ulimits=[
                Ulimit(name="nofile", soft=c.nofile, hard=c.nofile),
                Ulimit(name="fsize", soft=c.fsize_mb * 1024 * 1024, hard=c.fsize_mb * 1024 * 1024),
                Ulimit(name="core", soft=0, hard=0),
            ],
            log_config=LogConfig(type="none"),
        )
        config = api.create_container_config(
            self._image,
            [*SUPERVISOR, json.dumps(supervisor_cfg)],
            stdin_open=True,
            tty=False,
            detach=True,
            user="0:0",
            working_dir="/",
            hostname="sandbox",
            environment={},
            network_disabled=True,
            host_config=host_config,
            labels={LABEL: c.instance, OWNER_LABEL: owner_id()},
        )
        # The service's attach closing (a crash included) closes the supervisor's stdin; its
        # job channel closes too: the supervisor exits and the container removes itself
        # (auto_remove).
        config["StdinOnce"] = True
        created = await self._call(api.create_container_from_config, config)
        return str(created["Id"])

    def memory_limit_mb(self, job_memory_mb: int, message_bytes: int) -> int:
        """The container's memory limit while it runs a job of ``job_memory_mb`` sent in a
        message of ``message_bytes``: rounded up to 16 MiB, so that most jobs need no change."""
        output_mb = -(-self._config.output_limit_bytes // MIB)
        message_mb = -(-message_bytes // MIB)
        limit = job_memory_mb + SUPERVISOR_RESERVE_MB + 3 * output_mb + 2 * message_mb
        return -(-limit // 16) * 16

    async def set_memory_limit(self, container_id: str, memory_mb: int) -> None:
        """Change a running container's memory limit (swap equal to it: none). The kernel
        enforces it on the container's memory cgroup, so every process of the job, its shared
        memory and its tmpfs files count; over it, the OOM killer picks the job
        (oom_score_adj 1000) and the supervisor reports memory_exceeded."""
        mem = f"{memory_mb}m"
        await self._call(
            self._client.api.update_container, container_id, mem_limit=mem, memswap_limit=mem
        )

    async def attach(self, container_id: str) -> Attached:
        """Hijack the container's stdio (before start, so no output is missed): the
        supervisor's stderr, for diagnostics, and its stdin, whose closing ends it."""
        try:
            reader, writer = await asyncio.open_unix_connection(
                self._config.docker_socket, limit=2**20
            )
        except OSError as exc:
            raise EngineError(f"cannot connect to {self._config.docker_socket}: {exc}") from exc
        request = (
            f"POST /containers/{container_id}/attach"
            "?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
            "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            writer.close()
            raise EngineError(f"attach to {container_id[:12]} failed: {exc!r}") from exc
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status_line and " 200 " not in status_line:
            writer.close()
            raise EngineError(f"attach to {container_id[:12]} refused: {status_line}")
        return Attached(reader, writer)

    async def start(self, container_id: str) -> None:
        await self._call(self._client.api.start, container_id)

    async def remove(self, container_id: str) -> None:
        """Kill and remove; a container already gone is fine."""
        import docker

        async with self._ops:
            try:
                await asyncio.to_thread(self._client.api.remove_container, container_id, force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if "already in progress" in str(exc) or exc.status_code == 404:
                    return
                raise EngineError(f"docker remove {container_id[:12]}: {exc}") from exc

    async def reap_orphans(self) -> int:
        """Remove containers of this instance, and of any instance whose owner process on
        this host is gone. Returns how many were removed."""
        found = await self._call(self._client.api.containers, all=True, filters={"label": LABEL})
        host = socket.gethostname()
        removed = 0
        for c in found:
            labels = c.get("Labels") or {}
            owner = labels.get(OWNER_LABEL, "")
            owner_host, _, owner_proc = owner.partition(":")
            if owner_host == host:
                # A live owner on this host (another service, another test session) keeps its
                # containers; a dead one's are orphans (a zombie, or its pid now another
                # process's, is dead).
                orphan = not owner_alive(owner_proc)
            else:
                # Another host sharing this engine: only our own instance name is ours to reap.
                orphan = labels.get(LABEL) == self._config.instance
            if orphan:
                await self.remove(c["Id"])
                removed += 1
        return removed

    async def list_own(self) -> list[str]:
        found = await self._call(
            self._client.api.containers,
            all=True,
            filters={"label": f"{OWNER_LABEL}={owner_id()}"},
        )
        return [c["Id"] for c in found]


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses):
    [state, ppid, ...]; None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _start_ticks(pid: int) -> str:
    fields = _stat_fields(pid)
    # Field 22 of stat is the start time; it is index 19 after the name.
    return fields[19] if fields is not None and len(fields) > 19 else "0"


def owner_alive(owner_proc: str) -> bool:
    """Whether the process in an owner label's ``pid[:start]`` still runs: not gone, not a
    zombie (a service killed with -9 stays one until its parent waits for it), and, where the
    label has it, started at the same tick (not a later process that got the pid)."""
    pid, _, start = owner_proc.partition(":")
    if not pid.isdigit():
        return False
    fields = _stat_fields(int(pid))
    if fields is None or not fields or fields[0] in ("Z", "X", "x"):
        return False
    return not start or (len(fields) > 19 and fields[19] == start)
