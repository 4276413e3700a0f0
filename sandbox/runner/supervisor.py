"""The in-container supervisor: receives jobs over the container's attached stdio, runs each.

Runs inside the sandbox image as root with only CAP_SETUID and CAP_SETGID (see THREAT_MODEL.md),
on the image's python3, stdlib only, single-threaded (it forks).

Protocol, both directions: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
The supervisor first sends ``{"ready": true, ...}``; then for every job message it sends one
result message (with ``recycle`` and ``anomaly``), or, when the job asks ``report_early``, two:
the result as soon as the verdict is known (``pending_cleanup``), then the clean-up's report
(``recycle``, ``anomaly``). EOF ends it. The channel is a unix socket the service listens on
in a directory bind-mounted read-only at ``cfg["channel"]``'s directory: the supervisor connects
once, at start, before any job exists, and the service then removes the socket (THREAT_MODEL.md).
Without ``cfg["channel"]``, or when there is no socket to connect to, the channel is the
container's attached stdin/stdout (the hello says which).

Per job: a child forks, starts a new session, drops to the job uid and SCHED_IDLE, writes the
files into the work directory (empty: checked after every job), sets rlimits and runs (Python:
the harness, in the forked warm interpreter; other languages: compile, then exec). The
supervisor feeds stdin, reads stdout/stderr up to a byte cap while the job runs and enforces the
deadline. Afterwards, as the subreaper of everything the job left, it reaps every ended child and
checks, without forking, that the container holds no task but init and itself (the pids
cgroup's count) and that no writable directory or IPC namespace holds anything; only when that
fails does it kill every process of the job uid (one ``kill(-1)``, with the job uid as its
effective uid only: the supervisor has no CAP_KILL), wait for them, and have a child dropped to
the job uid wipe every directory the job could write. A container is kept only when it is then
proven clean. The job can neither signal nor trace the supervisor (other real and saved uid).
"""

from __future__ import annotations

# Modules a job commonly imports are loaded once here, so the forked job finds them warm.
# Not threading and random: their at-fork hooks would run in every job's child (threading's
# doubles the cost of a fork); a job that imports them pays for it alone.
import ast  # noqa: F401
import bisect  # noqa: F401
import collections  # noqa: F401
import errno
import functools  # noqa: F401
import gc
import hashlib  # noqa: F401
import heapq  # noqa: F401
import hmac
import itertools  # noqa: F401
import json
import math  # noqa: F401
import os
import re
import resource
import select
import signal
import socket
import stat
import string  # noqa: F401
import struct
import sys
import time
import typing  # noqa: F401
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contextlib

import harness

MAX_MESSAGE = 256 * 1024 * 1024
READ_CHUNK = 65536
JOB_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/sandbox",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
# /dev/mqueue: Docker mounts the IPC namespace's mqueue filesystem there; POSIX message queues
# (mq_open) outlive their creator, so it is checked and wiped like the tmpfs directories.
SANDBOX_DIRS = ("/sandbox", "/tmp", "/dev/shm", "/dev/mqueue")
# The job's work directory is the root of the /sandbox tmpfs: root-owned and sticky, so a job
# can neither remove it, change its mode nor give it extended attributes (that would outlive the
# job), and it is empty when a job starts (checked after every job, wiped when not).
WORKDIR = "/sandbox"
# How long killed tasks get to exit (and be reaped) before the container counts as unclean.
SETTLE_S = 0.5
# System V IPC objects outlive their creator (the container has its own IPC namespace, shared by
# its jobs): listed here, removed by the reaper like files.
SYSVIPC = ("/proc/sysvipc/shm", "/proc/sysvipc/msg", "/proc/sysvipc/sem")
PIDS_CURRENT = ("/sys/fs/cgroup/pids/pids.current", "/sys/fs/cgroup/pids.current")


# The seccomp filter the supervisor installs on itself (inherited by every job, stacked on
# Docker's profile): io_uring_setup, io_uring_enter and io_uring_register (425-427, the same
# numbers on x86_64, i386, aarch64 and arm; the x32 bit is masked) fail with EPERM. io_uring
# performs I/O outside the syscall boundary that the rest of the defences watch.
IO_URING_FIRST, IO_URING_LAST = 425, 427
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_ALU_AND_K, BPF_JGE_K, BPF_JGT_K, BPF_RET_K = 0x20, 0x54, 0x35, 0x25, 0x06
SECCOMP_PROGRAM = (
    (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    (BPF_ALU_AND_K, 0, 0, 0xBFFFFFFF),  # without __X32_SYSCALL_BIT
    (BPF_JGE_K, 0, 2, IO_URING_FIRST),  # below: allow
    (BPF_JGT_K, 1, 0, IO_URING_LAST),  # above: allow
    (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
    (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
)


def harden() -> None:
    """Make this process the subreaper of everything its jobs leave behind (so it reaps their
    orphans and zombies itself, ``CLONE_PARENT`` children included) and install the seccomp
    filter; raise OSError when either fails (the container is then unusable, loudly)."""
    import ctypes  # once, before any job: never imported in a job's child

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [
        ctypes.c_int,
        ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]

    def prctl(option: int, arg: int, ptr: Any = None) -> None:
        if libc.prctl(option, arg, ptr, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({option}): {os.strerror(err)}")

    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in SECCOMP_PROGRAM)
    filters = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    prog = SockFprog(len(SECCOMP_PROGRAM), ctypes.cast(filters, ctypes.c_void_p))
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog))


def reap_children() -> int:
    """Wait for every child that has ended (the job's orphans and ``CLONE_PARENT`` siblings
    come to this subreaper); return how many were reaped."""
    n = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            return n
        n += 1


def settle(timeout_s: float) -> bool:
    """Reap until the container holds only its idle tasks (init and this supervisor); True when
    it does within ``timeout_s`` (killed tasks take a moment to exit)."""
    until = time.monotonic() + timeout_s
    while True:
        reap_children()
        if Baseline.pids is not None and _pids_in_container() == Baseline.pids:
            return True
        if time.monotonic() >= until:
            return False
        time.sleep(0.001)


def read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_message(fd: int) -> dict[str, Any] | None:
    head = read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes exceeds {MAX_MESSAGE}")
    body = read_exact(fd, size)
    if body is None:
        return None
    msg: dict[str, Any] = json.loads(body)
    return msg


def write_message(fd: int, msg: dict[str, Any]) -> None:
    body = json.dumps(msg).encode()
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _remove_tree(path: str, depth: int = 0) -> None:
    """Remove ``path`` (never following links), making directories writable on the way."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    if depth < 200:  # deeper trees are left and reported (not clean: the container is recycled)
        _empty_dir(path, depth + 1)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _empty_dir(path: str, depth: int = 0) -> None:
    try:
        entries = os.listdir(path)
    except OSError:
        return
    for entry in entries:
        _remove_tree(os.path.join(path, entry), depth)


def _wipe(path: str) -> bool:
    """Remove everything under ``path`` that this uid can remove; True when it is empty."""
    _empty_dir(path)
    try:
        return not os.listdir(path)
    except OSError:
        return False


def read_kernel_file(path: str, size: int = 0) -> bytes | None:
    """A /proc or /sys file's bytes, or None where it cannot be read. With ``size``, one read(2)
    of at most that many bytes (a cgroup counter is read atomically); else read to its end."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if size:
            return os.read(fd, size)
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def _ipc_objects() -> list[tuple[int, int]]:
    """(kind, id) of every System V IPC object in the container: kind is SYSVIPC's index."""
    found = []
    for kind, path in enumerate(SYSVIPC):
        data = read_kernel_file(path)
        if data is None:
            continue
        for line in data.splitlines()[1:]:  # the first line is the header
            fields = line.split()
            if len(fields) > 1 and fields[1].isdigit():
                found.append((kind, int(fields[1])))
    return found


def _remove_ipc_objects() -> bool:
    """Remove the IPC objects this uid owns (in the reaper); True when none is left."""
    objects = _ipc_objects()
    if not objects:
        return True
    import ctypes  # the reaper's child only: never in the forked jobs' shared heap

    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0
    for kind, ident in objects:
        if kind == 0:
            libc.shmctl(ident, ipc_rmid, None)
        elif kind == 1:
            libc.msgctl(ident, ipc_rmid, None)
        else:
            libc.semctl(ident, 0, ipc_rmid)
    return not _ipc_objects()


def _pids_in_container() -> int | None:
    """Tasks in this container's pids cgroup (one atomic count), or None where unreadable."""
    for path in PIDS_CURRENT:
        data = read_kernel_file(path, 64)
        if data is None:
            continue
        with contextlib.suppress(ValueError):
            return int(data)
    return None


class Limits:
    """The supervisor's soft RLIMIT_NOFILE (set in main()): every descriptor it can have open
    is below it; the job's own, lower limit is set after its descriptors are arranged. And the
    CPUs the jobs run on (``split_cpus``)."""

    max_fd = 256
    own_stdio: tuple[Any, ...] = ()
    all_cpus: frozenset[int] = frozenset()
    job_cpus: frozenset[int] = frozenset()


def split_cpus() -> None:
    """Keep one of the container's CPUs for this supervisor; a job that runs longer than
    PIN_AFTER_S is moved to the others (``move_job_off``).

    The deadline, the kill and the verdict must not wait for the job's CPU time. SCHED_IDLE
    orders the tasks inside the container, but the host schedules the container's cgroup as one
    entity against everything else: where a job keeps it runnable on every CPU (a fork bomb),
    the supervisor waking at the deadline waits for the cgroup's next turn, 0.1-0.6 s on a
    loaded host. On a CPU where no job task runs, it is placed as a task that slept and runs
    within milliseconds. A job starts on every CPU (most end within milliseconds, and pinning
    them all cost a quarter of the friendly throughput); the choice is random per container.
    With one CPU there is nothing to split. A job can widen its own affinity again: it then
    only delays its own kill (the host deadline stays the backstop); not a boundary.
    """
    cpus = frozenset(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    ordered = sorted(cpus)
    own = ordered[int.from_bytes(os.urandom(2), "big") % len(ordered)]
    os.sched_setaffinity(0, {own})
    Limits.all_cpus = cpus
    Limits.job_cpus = cpus - {own}


# How long a job runs on every CPU before it is moved off the supervisor's (split_cpus), and
# how often it is looked at again when nothing was left to move (a fork bomb's new processes
# inherit their parent's affinity: once all are moved, no new one is on the supervisor's CPU).
PIN_AFTER_S = 0.05
PIN_AGAIN_S = 0.1


def move_job_off(uid: int) -> int:
    """Move every task (thread) of the job uid off the supervisor's CPU, with the job uid as
    the effective uid only (as ``kill_job``); return how many were moved."""
    moved = 0
    # Listed before the switch: /proc/<pid> belongs to a task's effective uid, which is then
    # the job's for this supervisor too.
    names = os.listdir("/proc")
    own = str(os.getpid())
    os.setresuid(-1, uid, -1)
    try:
        for name in names:
            if not name.isdigit() or name == own:
                continue
            try:
                if os.stat(f"/proc/{name}").st_uid != uid:
                    continue
                tids = os.listdir(f"/proc/{name}/task")
            except OSError:
                continue
            for tid in tids:
                with contextlib.suppress(OSError, ValueError):
                    if os.sched_getaffinity(int(tid)) != Limits.job_cpus:
                        os.sched_setaffinity(int(tid), Limits.job_cpus)
                        moved += 1
    finally:
        os.setresuid(-1, 0, -1)
    return moved


# The container's memory cgroup counters that are memory of the job: anonymous memory and
# shared memory (tmpfs files, /dev/shm, shared mappings); not the page cache of the image's
# files (compilers, runtimes), which the kernel reclaims instead of failing.
MEMORY_STAT = (
    ("/sys/fs/cgroup/memory/memory.stat", (b"total_rss", b"total_shmem")),
    ("/sys/fs/cgroup/memory.stat", (b"anon", b"shmem")),
)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _cgroup_job_memory() -> int | None:
    """Anonymous plus shared memory of the whole container, in bytes; None where unreadable."""
    for path, keys in MEMORY_STAT:
        data = read_kernel_file(path, 8192)
        if data is None:
            continue
        total = 0
        for line in data.splitlines():
            key, _, value = line.partition(b" ")
            if key in keys:
                total += int(value)
        return total
    return None


def _own_anon() -> int:
    """This supervisor's resident anonymous memory in bytes (statm: resident less shared)."""
    data = read_kernel_file("/proc/self/statm", 256) or b"0 0 0"
    fields = data.split()
    return (int(fields[1]) - int(fields[2])) * PAGE_SIZE


class JobMemory:
    """The memory of one job's processes together: the container's anonymous and shared memory
    less this supervisor's own and less what was there before the job (init's). Sampled while
    the job runs and once at its end, before anything of it is killed or removed; ``peak_mb``
    is the largest sample. A spike between two samples can be missed; a process or file still
    holding memory at the end cannot."""

    INTERVAL_S = 0.01

    def __init__(self) -> None:
        base = _cgroup_job_memory()
        self.readable = base is not None
        self.base = (base or 0) - _own_anon()
        self.peak = 0
        self.next_at = time.monotonic() + self.INTERVAL_S

    def sample(self) -> None:
        total = _cgroup_job_memory() if self.readable else None
        if total is not None:
            self.peak = max(self.peak, total - _own_anon() - self.base)
        self.next_at = time.monotonic() + self.INTERVAL_S

    @property
    def peak_mb(self) -> float:
        return self.peak / (1024 * 1024)


class Baseline:
    """What an idle container looks like, taken at start: the fast clean-up check's reference."""

    pids: int | None = None


def nothing_left() -> bool:
    """True when no job task is alive (or a zombie), no writable directory holds anything and
    no System V IPC object exists.

    Cheap enough for every job. The pids cgroup counts every task of the container; a job cannot
    leave it (no CAP_SYS_ADMIN, read-only cgroupfs), so the idle count (init and the supervisor)
    proves that nothing of the job survived: nothing of it can start again afterwards. When this
    answers False the reaper decides (a zombie init has not reaped yet is not a leftover).
    """
    if Baseline.pids is None or _pids_in_container() != Baseline.pids:
        return False
    for d in SANDBOX_DIRS:
        try:
            if os.listdir(d):
                return False
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return not _ipc_objects()


def kill_job(uid: int) -> bool:
    """SIGKILL every process of the job uid, without forking; True when one was signalled.

    One ``kill(-1)`` is enough: the kernel signals every process of the uid while holding the
    task list, and a fork that completes after that pass fails because its parent already has
    a fatal signal pending, so nothing escapes it (fork bombs included). The supervisor sends
    it with the job uid as its effective uid only (it has no CAP_KILL): its real and saved uids
    stay 0, so it takes uid 0 and its capabilities back at once, and meanwhile the job can
    neither signal nor trace it (both need the supervisor's real or saved uid). kill(-1) skips
    the caller and init, the only other tasks of uid 0. A fork would cost, under a fork bomb
    starving the container's CPU, tenths of a second on the way to the verdict.
    """
    os.setresuid(-1, uid, -1)
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        return False
    finally:
        os.setresuid(-1, 0, -1)
    return True


def reap(uid: int, gid: int, wipe: bool) -> tuple[bool, bool]:
    """From a child dropped to the job uid: SIGKILL every process of that uid and (with
    ``wipe``) remove every file and IPC object it can. Returns (signalled_something, wiped).

    The caller waits for the tasks to be gone (``settle``): this child does not scan /proc
    while they die.
    """
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            drop_privileges(uid, gid)
            try:
                os.kill(-1, signal.SIGKILL)
                code |= 1
            except ProcessLookupError:
                pass
            if wipe:
                for d in SANDBOX_DIRS:
                    if not _wipe(d):
                        code |= 2
                if not _remove_ipc_objects():
                    code |= 2
        except BaseException:
            code |= 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return True, False
    return bool(code & 1), not code & 2


def clean_up(uid: int, gid: int) -> bool:
    """After a job: make the container as it was at start; True when that is proven.

    The fast path forks nothing. Otherwise the job's tasks are killed and waited for first,
    then its files are wiped (no task is left to write new ones).
    """
    reap_children()
    if nothing_left():
        return True
    if not settle(0):
        kill_job(uid)
        settle(SETTLE_S)
    _, wiped = reap(uid, gid, wipe=True)
    return wiped and settle(SETTLE_S) and nothing_left()


OOM_EVENTS = ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events")


def oom_kills() -> int:
    """The container's memory cgroup's OOM-kill count (cgroup v1 or v2)."""
    for path in OOM_EVENTS:
        data = read_kernel_file(path, 4096)
        if data is None:
            continue
        for line in data.splitlines():
            if line.startswith(b"oom_kill "):
                return int(line.split()[1])
    return 0


class Capture:
    """Bytes read from one job pipe, kept up to a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> bool:
        """Keep what fits; True when the stream went over its cap."""
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.data += chunk[: max(room, 0)]
            self.truncated = True
            return True
        self.data += chunk
        return False


def spawn(job: dict[str, Any], argv: list[str] | None, cfg: dict[str, Any], *, setup: bool) -> Any:
    """Fork the job child (argv None: the Python harness); return its pid and our pipe ends."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rec_r, rec_w = os.pipe()
    nonce_r, nonce_w = os.pipe()
    stdio = harness.fresh_stdio() if argv is None else None
    pid = os.fork()
    if pid == 0:
        # Every step here runs for every job, in a copy-on-write copy of the supervisor: work
        # that allocates Python objects copies heap pages, so it is kept to syscalls.
        code = 127
        try:
            # The job's stderr from the start, so a set-up failure is reported as the job's.
            os.dup2(err_w, 2)
            os.setsid()
            try:
                fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
                os.write(fd, b"1000")
                os.close(fd)
            except OSError:
                pass
            drop_privileges(cfg["uid"], cfg["gid"])
            # The job yields to the supervisor within the container's CPU share (the share
            # against other containers is the cgroup's, not changed): SCHED_IDLE weighs 3
            # against the supervisor's 1024, so a fork bomb of 90 processes does not starve
            # the deadline, the kill and the clean-up (at nice 19, weight 15, it still did,
            # tenths of a second under load). A job cannot leave SCHED_IDLE (RLIMIT_NICE 0).
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            if Limits.all_cpus:
                # Not the supervisor's own CPU only (inherited): every CPU, until PIN_AFTER_S.
                with contextlib.suppress(OSError):  # a cpuset narrowed since: as it is
                    os.sched_setaffinity(0, Limits.all_cpus)
            os.umask(0o077)
            if setup:
                for name, content in job.get("files", {}).items():
                    path = os.path.join(WORKDIR, name)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    # The service refuses text UTF-8 cannot hold; "replace" all the same.
                    with open(path, "w", encoding="utf-8", errors="replace") as f:
                        f.write(content)
                if argv is not None:
                    source = os.path.join(WORKDIR, job["source_name"])
                    with open(source, "w", encoding="utf-8", errors="replace") as f:
                        f.write(job["code"])
                        if job.get("tests"):
                            f.write("\n" + job["tests"] + "\n")
            os.chdir(WORKDIR)
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            # Python jobs keep the record pipe as 3 and the nonce pipe as 4 (through two free
            # descriptors at the top, so neither overwrites the other); every other inherited
            # descriptor is closed in one close_range.
            first_closed = 3
            if argv is None:
                os.dup2(rec_w, Limits.max_fd - 1)
                os.dup2(nonce_r, Limits.max_fd - 2)
                os.dup2(Limits.max_fd - 1, 3)
                os.dup2(Limits.max_fd - 2, 4)
                first_closed = 5
            os.closerange(first_closed, Limits.max_fd)
            mem = int(job["memory_mb"]) * 1024 * 1024
            limits = {
                resource.RLIMIT_FSIZE: int(cfg["fsize_bytes"]),
                resource.RLIMIT_NOFILE: int(cfg["nofile"]),
                resource.RLIMIT_NPROC: int(cfg["nproc"]),
                resource.RLIMIT_CORE: 0,
                resource.RLIMIT_CPU: int(job["cpu_limit_s"]),
            }
            if job.get("memory_rlimit", True):
                # One process's own allocations: a quick MemoryError (malloc NULL) for the
                # common single-process hog; the job as a whole is held by the container's
                # memory cgroup. Not for runtimes that reserve large address ranges (V8).
                limits[resource.RLIMIT_DATA] = mem
            for res, value in limits.items():
                resource.setrlimit(res, (value, value))
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            if argv is None:
                # os.environ is already JOB_ENV (set once in main()); the supervisor's objects
                # stay frozen (never scanned by the job's collections).
                code = harness.main(job["code"], job.get("tests"), 3, 4, stdio)
            else:
                mb = str(job["memory_mb"])
                os.execvpe(argv[0], [a.replace("{memory_mb}", mb) for a in argv], JOB_ENV)
        except BaseException as exc:
            try:
                import traceback

                os.write(2, f"codekiln sandbox: job failed to start: {exc!r}\n".encode())
                os.write(2, traceback.format_exc().encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    for fd in (in_r, out_w, err_w, rec_w, nonce_r):
        os.close(fd)
    del stdio  # the child's; never used here (its buffers are empty, closing writes nothing)
    return pid, in_w, out_r, err_r, rec_r, nonce_w


# How long a killed job's main process gets to exit before its result goes without it (its
# status is SIGKILL's, its usage read from /proc): the clean-up waits for it, the answer not.
EXIT_WAIT_S = 0.01


def poller_wait(pidfd: int, timeout_s: float) -> bool:
    """True when the process of ``pidfd`` exits within ``timeout_s``."""
    return bool(select.select([pidfd], [], [], timeout_s)[0])


def proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds (its own and its waited-for children's) and peak RSS in MiB of a live or
    zombie child, from /proc; zeros where unreadable."""
    cpu_s = rss_mb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
        cpu_s = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open(f"/proc/{pid}/status", "rb") as f,
    ):
        for line in f:
            if line.startswith(b"VmHWM:"):
                rss_mb = int(line.split()[1]) / 1024.0
    return cpu_s, rss_mb


def pump(fd: int, poller: select.poll, streams: dict[int, Capture], open_streams: set[int]) -> bool:
    """Read what one of the job's pipes holds into its capture; a pipe at EOF leaves the poller
    and ``open_streams``. True when the capture went over its cap."""
    try:
        chunk = os.read(fd, READ_CHUNK)
    except (BlockingIOError, InterruptedError):
        return False
    if not chunk:
        poller.unregister(fd)
        open_streams.discard(fd)
        return False
    return streams[fd].add(chunk)


def run_phase(
    job: dict[str, Any],
    argv: list[str] | None,
    cfg: dict[str, Any],
    timeout_s: float,
    *,
    setup: bool,
    stdin: bytes,
) -> dict[str, Any]:
    """Run one process of the job to its end or its deadline; return raw facts."""
    nonce = os.urandom(16).hex()
    memory = JobMemory()
    t0 = time.monotonic()
    pid, in_w, out_r, err_r, rec_r, nonce_w = spawn(job, argv, cfg, setup=setup)
    if argv is None:
        # The harness reads it before any job code runs; a child that died already gets none.
        with contextlib.suppress(BrokenPipeError):
            os.write(nonce_w, nonce.encode())
    os.close(nonce_w)
    limit = int(job["output_limit_bytes"])
    out, err, rec = Capture(limit), Capture(limit), Capture(16 * 1024 * 1024)
    streams = {out_r: out, err_r: err, rec_r: rec}
    for fd in (in_w, out_r, err_r, rec_r):
        os.set_blocking(fd, False)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    for fd in streams:
        poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    stdin_view = memoryview(stdin)
    if stdin_view:
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
        in_w = -1
    deadline = t0 + timeout_s
    pin_at = t0 + PIN_AFTER_S
    grace = 0.0
    timed_out = exceeded = exited = False
    open_streams = set(streams)
    while open_streams or not exited:
        now = time.monotonic()
        if not exited and now >= deadline:
            timed_out = True
            break
        if exited and now >= grace:
            break
        if now >= memory.next_at:
            memory.sample()
            if Limits.job_cpus and now >= pin_at:
                moved = move_job_off(cfg["uid"])
                pin_at = now + (0.0 if moved else PIN_AGAIN_S)
        wait_s = min(grace if exited else deadline, memory.next_at) - now
        for fd, _ev in poller.poll(max(wait_s, 0.0) * 1000):
            if fd == pidfd:
                exited = True
                # Output still in the pipes is read during a short grace; a pipe held open
                # after that belongs to a leftover process, which is killed below.
                grace = time.monotonic() + 0.05
                poller.unregister(pidfd)
            elif fd == in_w:
                try:
                    n = os.write(in_w, stdin_view[:READ_CHUNK])
                    stdin_view = stdin_view[n:]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    stdin_view = stdin_view[:0]
                if not stdin_view:
                    poller.unregister(in_w)
                    os.close(in_w)
                    in_w = -1
            elif fd in open_streams and pump(fd, poller, streams, open_streams) and fd != rec_r:
                exceeded = True
        if exceeded:
            break
    killed = timed_out or exceeded
    # Before the kill: what the job's processes and files hold together at its end.
    memory.sample()
    if not exited or open_streams:
        found = kill_job(cfg["uid"])
        killed = killed or found or not exited
    if exited or poller_wait(pidfd, EXIT_WAIT_S):
        _, status, usage = os.wait4(pid, 0)
        cpu_s, maxrss_mb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0
    else:
        # Killed and still exiting (a fork bomb's CPU starvation can make that take tenths of
        # a second): its status is SIGKILL's, its usage so far is read from /proc, and the
        # clean-up reaps it.
        status = int(signal.SIGKILL)
        cpu_s, maxrss_mb = proc_usage(pid)
    wall_s = time.monotonic() - t0
    # What is left in the pipes is read, bounded in bytes and time. After a kill, only what is
    # buffered now: the killed processes are still exiting (a fork bomb's take a while under
    # the container's CPU quota) and write nothing more; their EOF would only delay the result.
    if not exited:
        poller.unregister(pidfd)  # readable from its exit on: not a stream to wait for
    now = time.monotonic()
    drain_until, hard_until = now + (0.0 if killed else 1.0), now + 1.0
    while open_streams and not exceeded and time.monotonic() < hard_until:
        events = poller.poll(max(0.0, drain_until - time.monotonic()) * 1000)
        if not events:
            break
        for fd, _ev in events:
            if fd in open_streams and pump(fd, poller, streams, open_streams) and fd != rec_r:
                exceeded = not killed
    if open_streams:
        killed = True
    for fd in (out_r, err_r, rec_r, pidfd):
        os.close(fd)
    if in_w >= 0:
        os.close(in_w)
    return {
        "nonce": nonce,
        "pid": pid,
        "status": status,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "maxrss_mb": maxrss_mb,
        "job_mb": memory.peak_mb,
        "timed_out": timed_out,
        "exceeded": exceeded,
        "killed": killed,
        "stdout": out,
        "stderr": err,
        "record": bytes(rec.data),
    }


V8_OOM = b"JavaScript heap out of memory"
# bash's allocator exits 2 with this (xmalloc or xrealloc) when RLIMIT_DATA (memory_mb)
# refuses it memory.
BASH_OOM = re.compile(
    rb"^[^\n]*: x(?:malloc|realloc): (?:[^\n]*: )?cannot allocate \d+ bytes", re.MULTILINE
)


def decode(cap: Capture) -> str:
    return cap.data.decode("utf-8", errors="replace")


def verdict(job: dict[str, Any], facts: dict[str, Any], oom: bool) -> dict[str, Any]:
    status = facts["status"]
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    record: dict[str, Any] | None = None
    reason = ""
    if job["language_kind"] == "python" and facts["record"]:
        # One JSON line per writer: processes the job forked inherit the harness and may write
        # their own record when they unwind; only the main process's counts. The job can write
        # anything to this pipe: a line without the nonce is rejected unparsed (megabytes of
        # junk lines, or one nested a million deep, cost a substring search, not a parse).
        nonce = facts["nonce"].encode()
        for line in facts["record"].splitlines():
            if nonce not in line:
                reason = "result record rejected (no nonce)"
                continue
            try:
                candidate = json.loads(line)
            except (ValueError, RecursionError):
                reason = "result record rejected (not JSON)"
                continue
            if not isinstance(candidate, dict) or not hmac.compare_digest(
                str(candidate.get("nonce", "")), facts["nonce"]
            ):
                reason = "result record rejected (bad nonce)"
            elif candidate.get("pid") == facts["pid"]:
                record = candidate
                reason = ""
    tests = record.get("tests", []) if record else []
    limit_mb = float(job["memory_mb"])
    job_mb = float(facts["job_mb"])
    memory_mb = max(float(facts["maxrss_mb"]), job_mb)
    with_tests = job.get("tests") is not None and job["language_kind"] == "python"
    if oom or job_mb > limit_mb:
        # The container's memory cgroup killed a process of this job, or its processes, shared
        # memory and files held more than its limit together (the container's limit is higher
        # by the supervisor's reserve: JobMemory measured it).
        state = "memory_exceeded"
    elif facts["timed_out"]:
        state = "timeout"
    elif facts["exceeded"]:
        state = "output_exceeded"
    elif record is not None and record.get("memory_error"):
        state = "memory_exceeded"
    elif with_tests:
        ok = (
            record is not None
            and not record.get("code_error")
            and bool(tests)
            and all(t.get("status") == "passed" for t in tests)
        )
        state = "passed" if ok else "failed"
        if record is None and not reason:
            reason = "no result record from the test harness (exited or killed before the end)"
        elif record is not None and record.get("code_error"):
            reason = str(record["code_error"])[:2000]
    else:
        state = "passed" if exit_code == 0 else "failed"
    if state == "failed" and memory_mb >= 0.95 * limit_mb:
        state = "memory_exceeded"
    if state in ("passed", "failed") and memory_mb > limit_mb:
        # One of its processes alone held more than the limit: never a pass.
        state = "memory_exceeded"
    if (
        state == "failed"
        and sig in (signal.SIGABRT, signal.SIGTRAP)
        and V8_OOM in facts["stderr"].data
    ):
        # V8 aborts at its heap limit (set from memory_mb); a job printing this line itself
        # only turns its own failure into another failure verdict.
        state = "memory_exceeded"
    if state == "failed" and exit_code == 2 and BASH_OOM.search(facts["stderr"].data):
        # The same for bash (and any program built on its allocator) at RLIMIT_DATA.
        state = "memory_exceeded"
    if sig == signal.SIGXCPU and state == "failed":
        state = "timeout"
    return {
        "status": state,
        "exit_code": exit_code,
        "signal": sig,
        "stdout": decode(facts["stdout"]),
        "stderr": decode(facts["stderr"]),
        "truncated": facts["stdout"].truncated or facts["stderr"].truncated,
        "wall_s": round(facts["wall_s"], 6),
        "cpu_s": round(facts["cpu_s"], 6),
        "memory_mb": round(memory_mb, 3),
        "tests": tests,
        "reason": reason,
    }


def run_job(job: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    oom_before = oom_kills()
    # The service refuses text UTF-8 cannot hold (lone surrogates); "replace" all the same.
    stdin = job.get("stdin", "").encode("utf-8", errors="replace")
    timeout_s = float(job["timeout_s"])
    compile_argv = job.get("compile")
    setup = True
    result: dict[str, Any] | None = None
    compile_wall = 0.0
    if compile_argv:
        cjob = dict(job, cpu_limit_s=int(job["compile_timeout_s"]) + 1)
        facts = run_phase(
            cjob, compile_argv, cfg, float(job["compile_timeout_s"]), setup=True, stdin=b""
        )
        setup = False
        compile_wall = facts["wall_s"]
        if facts["timed_out"] or facts["exceeded"] or facts["status"] != 0:
            # The compiler's memory is judged by the container's limit only (OOM), not as the
            # job's: compile_timeout_s and that limit are the compile's own.
            compile_facts = dict(facts, job_mb=0.0)
            result = verdict(dict(job, tests=None), compile_facts, oom_kills() > oom_before)
            if result["status"] == "passed":
                result["status"] = "failed"
            if facts["timed_out"]:
                result["status"] = "timeout"
            result["reason"] = "compilation failed"
    if result is None:
        argv = job.get("run")
        facts = run_phase(job, argv, cfg, timeout_s, setup=setup, stdin=stdin)
        oom = oom_kills() > oom_before
        result = verdict(job, facts, oom)
        result["wall_s"] = round(result["wall_s"] + compile_wall, 6)
    result["compile_s"] = round(compile_wall, 6)
    return result


def finish(cfg: dict[str, Any]) -> dict[str, Any]:
    """Clean up after a job: whether the container must be recycled, and why."""
    # The container is kept only when it is proven as clean as when it started: its pids
    # cgroup counts only init and this supervisor (zombies included: the job's orphans and
    # CLONE_PARENT children are this subreaper's to reap), no writable directory holds
    # anything, no IPC object exists. Whatever the job did, a later job cannot tell.
    try:
        clean = clean_up(cfg["uid"], cfg["gid"])
    except Exception as exc:  # a supervisor fault: the host recycles us
        return {"recycle": True, "anomaly": f"supervisor fault in clean-up: {exc!r}"}
    return {
        "recycle": not clean,
        "anomaly": "" if clean else "job processes or files survived clean-up",
    }


def send(fd: int, msg: dict[str, Any]) -> bool:
    """Write one message; False when the service has gone (then the supervisor ends)."""
    try:
        write_message(fd, msg)
    except OSError as exc:
        if exc.errno in (errno.EPIPE, errno.ECONNRESET):
            return False
        raise
    return True


def main() -> int:
    cfg = json.loads(sys.argv[1])
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    harden()
    Baseline.pids = _pids_in_container()
    split_cpus()
    Limits.max_fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # Held here so that a job replacing them (harness) does not free them in its copy: that
    # would flush and finalise them there, copying heap pages for nothing.
    Limits.own_stdio = (sys.stdin, sys.stdout, sys.stderr)
    # The job's environment, set once here: a forked Python job inherits it as it is.
    os.environ.clear()
    os.environ.update(JOB_ENV)
    rfd, wfd, channel = 0, 1, "stdio"
    if cfg.get("channel"):
        # Not inheritable (the default), and closed in every job's child anyway. Where the
        # engine cannot see the service's directory (the engine in another container, say),
        # there is no socket: the attached stdio serves instead.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(cfg["channel"])
        except OSError:
            sock.close()
        else:
            rfd = wfd = sock.detach()
            channel = "socket"
    gc.freeze()
    hello = {"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]}
    write_message(wfd, dict(hello, channel=channel))
    while True:
        try:
            job = read_message(rfd)
        except (ValueError, OSError) as exc:
            write_message(wfd, {"fatal": f"bad message: {exc!r}"})
            return 2
        if job is None:
            return 0
        job_id = job.get("id")
        try:
            result = run_job(job, cfg)
        except Exception as exc:  # a supervisor fault: report it, the host recycles us
            result = {
                "status": "error",
                "reason": f"supervisor fault: {exc!r}",
                "recycle": True,
                "anomaly": "supervisor fault",
            }
        else:
            if job.get("report_early"):
                # The verdict goes out before the clean-up (killing and waiting for a fork
                # bomb's processes, wiping files); the clean-up's report follows as a second
                # message, which the service reads before it gives this container a new job.
                if not send(wfd, dict(result, id=job_id, pending_cleanup=True)):
                    return 0
                result = {}
            result.update(finish(cfg))
        if not send(wfd, dict(result, id=job_id)):
            return 0


if __name__ == "__main__":
    sys.exit(main())
