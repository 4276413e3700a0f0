"""The security suite: abusive jobs against the real engine, each contained, reported with the
right verdict, leaving the host and the next job unaffected.

Every test runs on a service with ONE warm container, so the next job lands in the same
container unless the abusive one forced a recycle.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from codekiln.sandbox.client import RunRequest, SandboxClient

from .conftest import (
    CONTAINER_ID,
    PLANTED_ENV,
    Host,
    assert_next_job_healthy,
    run_py,
    settle,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def only_supervisor_left(procs: dict[str, list[dict[str, str]]]) -> bool:
    """Every container runs exactly its init and its supervisor (both root), nothing else."""
    return bool(procs) and all(
        len(ps) == 2 and all(p["UID"] in ("0", "root") for p in ps) for ps in procs.values()
    )


#: Abusive jobs that end with one verdict and leave the container fit for the next job:
#: (language, code, limits, verdict).
ABUSE = {
    # Allocating without bound.
    "memory bomb": (
        "python",
        "x = []\nwhile True:\n    x.append(bytearray(10**7))\n",
        {"memory_mb": 128},
        "memory_exceeded",
    ),
    # Several processes together exceeding the container memory.
    "memory bomb in children": (
        "python",
        "import os, time\n"
        "for _ in range(12):\n"
        "    if os.fork() == 0:\n"
        "        x = bytearray(200 * 2**20)\n"
        "        x[::4096] = b'x' * len(x[::4096])\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "for _ in range(12):\n"
        "    os.wait()\n",
        {"memory_mb": 256, "timeout_s": 8},
        "memory_exceeded",
    ),
    # A C program touching memory until malloc fails.
    "C memory bomb": (
        "c",
        "#include <stdlib.h>\n#include <string.h>\n"
        "int main(void){ for(;;){ char *p = malloc(1<<20); if(!p) return 1;"
        " memset(p, 1, 1<<20);} }\n",
        {"memory_mb": 64, "timeout_s": 5},
        "memory_exceeded",
    ),
    # bash doubling a string until its allocator is refused memory (exit 2, "xmalloc").
    "bash memory bomb": (
        "bash",
        "x=xxxxxxxx\nwhile true; do x=$x$x; done\n",
        {"memory_mb": 64, "timeout_s": 5},
        "memory_exceeded",
    ),
    # Closing stdout/stderr and spinning still ends at the deadline.
    "closed output then busy loop": (
        "python",
        "import os\nos.close(1)\nos.close(2)\nwhile True:\n    pass\n",
        {"timeout_s": 1},
        "timeout",
    ),
    "cpu spin": ("python", "while True:\n    pass\n", {"timeout_s": 1}, "timeout"),
}


class TestResourceAbuse:
    async def test_fork_bomb_is_contained(self, solo: SandboxClient, host: Host) -> None:
        """A fork bomb ends as timeout or failed, and every process it made is gone."""
        r = await run_py(
            solo,
            "import os\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass\n",
            timeout_s=2,
        )
        assert r.status in ("timeout", "failed"), r
        assert only_supervisor_left(await settle(host))
        await assert_next_job_healthy(solo)

    @pytest.mark.parametrize("name", ABUSE)
    async def test_abusive_job_gets_its_verdict(self, solo: SandboxClient, name: str) -> None:
        """Each job of ABUSE ends with its verdict, and the next job runs normally."""
        language, code, limits, verdict = ABUSE[name]
        r = await solo.run(RunRequest(language=language, code=code, **limits))
        assert r.status == verdict, r
        await assert_next_job_healthy(solo)

    async def test_disk_fill_fails_and_is_wiped(self, solo: SandboxClient) -> None:
        """Filling the disk fails the job (size caps), and the next job finds the space free."""
        code = (
            "i = 0\nwith open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)\n"
        )
        r = await run_py(solo, code, timeout_s=10)
        assert r.status == "failed", r
        assert "No space left" in r.stderr or "File too large" in r.stderr or r.signal == 25
        r2 = await run_py(solo, "import os\nprint(os.listdir('.'), os.statvfs('.').f_bfree > 0)")
        assert r2.stdout == "[] True\n", r2

    async def test_unbounded_output_is_output_exceeded(self, solo: SandboxClient) -> None:
        """Endless output is cut at the cap: output_exceeded with the truncation flag."""
        r = await run_py(solo, "while True:\n    print('y' * 1000)\n", timeout_s=10)
        assert r.status == "output_exceeded", r
        assert r.truncated
        assert 0 < len(r.stdout) <= 1024 * 1024
        await assert_next_job_healthy(solo)

    async def test_blocking_on_stdin_sees_eof(self, solo: SandboxClient) -> None:
        """A job reading stdin gets the given input then EOF, never a hang."""
        r = await run_py(
            solo, "import sys\ndata = sys.stdin.read()\nprint(len(data))\n", stdin="abc"
        )
        assert (r.status, r.stdout) == ("passed", "3\n"), r

    async def test_large_stdin_unread_does_not_hang(self, solo: SandboxClient) -> None:
        """Megabytes of stdin that the job never reads do not block the supervisor."""
        r = await run_py(solo, "print('ignored')", stdin="z" * (3 * 2**20), timeout_s=5)
        assert (r.status, r.stdout) == ("passed", "ignored\n"), r

    async def test_sleep_forever_times_out(self, solo: SandboxClient) -> None:
        """Sleeping forever is a timeout at the job's deadline."""
        r = await run_py(solo, "import time\ntime.sleep(10**6)\n", timeout_s=1)
        assert r.status == "timeout", r
        assert 1.0 <= r.wall_s < 5.0
        await assert_next_job_healthy(solo)


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A TCP server on the HOST's loopback that records whether anyone connected."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    connected: list[bool] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connected.append(True)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join()
        srv.close()
        assert not connected, "a job reached the host's loopback"


class TestNetwork:
    async def test_only_loopback_interface(self, solo: SandboxClient) -> None:
        """The container has no network interface but loopback."""
        r = await run_py(solo, "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))")
        assert r.stdout == "['lo']\n", r

    async def test_dns_resolution_fails(self, solo: SandboxClient) -> None:
        """Name resolution fails inside the sandbox."""
        code = (
            "import socket\n"
            "try:\n"
            "    socket.getaddrinfo('pypi.org', 443)\n"
            "    print('resolved')\n"
            "except OSError as e:\n"
            "    print('failed')\n"
        )
        r = await run_py(solo, code)
        assert r.stdout == "failed\n", r

    async def test_tcp_to_host_loopback_fails(
        self, solo: SandboxClient, host_listener: int
    ) -> None:
        """A TCP connection to a server on the host's loopback is refused."""
        code = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {host_listener}), timeout=2)\n"
            "    print('connected')\n"
            "except OSError as e:\n"
            "    print('failed', type(e).__name__)\n"
        )
        r = await run_py(solo, code)
        assert r.stdout.startswith("failed"), r


class TestIsolation:
    async def test_host_secrets_and_environment_are_unreadable(
        self, solo: SandboxClient, secret: str, secret_file: Path
    ) -> None:
        """Neither the service's environment nor a host file is visible to a job."""
        code = (
            "import os, glob\n"
            "print(dict(os.environ))\n"
            f"print(os.path.exists({str(secret_file)!r}))\n"
            "for p in glob.glob('/proc/*/environ'):\n"
            "    try:\n"
            "        print(p, open(p, 'rb').read())\n"
            "    except OSError as e:\n"
            "        print(p, 'denied')\n"
        )
        r = await run_py(solo, code)
        assert r.status == "passed", r
        assert secret not in r.stdout
        assert secret not in r.stderr
        assert PLANTED_ENV not in r.stdout
        assert "\nFalse\n" in r.stdout
        assert "/proc/1/environ denied" in r.stdout

    async def test_writes_outside_workdir_fail(self, solo: SandboxClient) -> None:
        """The root filesystem (runner included) is read-only to a job; /var/tmp too."""
        code = (
            "for p in ['/opt/codekiln/harness.py', '/etc/passwd', '/usr/bin/python3', "
            "'/var/tmp/x', '/x']:\n"
            "    try:\n"
            "        open(p, 'a').write('pwned')\n"
            "        print('wrote', p)\n"
            "    except OSError as e:\n"
            "        print('denied', p)\n"
        )
        r = await run_py(solo, code)
        assert "wrote" not in r.stdout, r
        assert r.stdout.count("denied") == 5
        await assert_next_job_healthy(solo)

    async def test_job_channel_is_unreachable(self, solo: SandboxClient) -> None:
        """A job can neither list nor connect to the supervisor's channel, nor holds a socket."""
        code = (
            "import os, socket\n"
            "try:\n"
            "    print(os.listdir('/run/codekiln'))\n"
            "except OSError:\n"
            "    print('denied')\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    s.connect('/run/codekiln/sock')\n"
            "    print('connected')\n"
            "except OSError:\n"
            "    print('refused')\n"
            "s.close()\n"
            "links = [os.readlink(f'/proc/self/fd/{fd}') for fd in os.listdir('/proc/self/fd')\n"
            "         if os.path.exists(f'/proc/self/fd/{fd}')]\n"
            "print([link for link in links if link.startswith('socket:')])\n"
        )
        r = await run_py(solo, code)
        assert r.status == "passed", r
        assert r.stdout.split("\n")[:3] in (["denied", "refused", "[]"], ["[]", "refused", "[]"]), r
        await assert_next_job_healthy(solo)

    async def test_files_do_not_persist_across_jobs(self, solo: SandboxClient) -> None:
        """Files a job leaves in /tmp, /dev/shm, home and its work directory are gone for the
        next job in the same container."""
        places = ["/tmp/left", "/dev/shm/left", "left", "sub/dir/left"]
        code = (
            CONTAINER_ID
            + "import os\n"
            + f"for p in {places!r}:\n"
            + "    os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n"
            + "    open(p, 'w').write('x')\n"
            + "os.chmod('sub', 0)\n"
            + "print(os.environ['HOME'] == os.getcwd())\n"
        )
        r1 = await run_py(solo, code)
        assert r1.status == "passed", r1
        check = (
            CONTAINER_ID
            + "import os\n"
            + f"print([p for p in {places!r} + ['sub'] if os.path.exists(p)])\n"
            + "print(os.listdir('/tmp'), os.listdir('/dev/shm'), os.listdir('.'))\n"
        )
        r2 = await run_py(solo, check)
        assert r1.stdout.split()[1] == r2.stdout.split()[1], "not the same container"
        assert r2.stdout.splitlines()[1:] == ["[]", "[] [] []"], r2

    async def test_sysv_ipc_objects_do_not_persist_across_jobs(self, solo: SandboxClient) -> None:
        """Shared memory and message queues a job leaves are gone for the next job."""
        make = (
            CONTAINER_ID
            + "import ctypes\n"
            + "libc = ctypes.CDLL(None)\n"
            + "print(libc.shmget(4242, 4096, 0o1600) >= 0, libc.msgget(4343, 0o1600) >= 0)\n"
        )
        r1 = await run_py(solo, make)
        assert r1.stdout.split("\n")[1] == "True True", r1
        check = (
            CONTAINER_ID
            + "for kind in ('shm', 'msg', 'sem'):\n"
            + "    print(kind, len(open(f'/proc/sysvipc/{kind}').read().splitlines()))\n"
        )
        r2 = await run_py(solo, check)
        assert r1.stdout.split()[1] == r2.stdout.split()[1], "not the same container"
        assert r2.stdout.splitlines()[1:] == ["shm 1", "msg 1", "sem 1"], r2

    async def test_setsid_daemon_does_not_outlive_its_job(
        self, solo: SandboxClient, host: Host
    ) -> None:
        """A double-forked setsid daemon is killed with its job."""
        code = (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        for fd in (0, 1, 2):\n"
            "            os.close(fd)\n"
            "        time.sleep(1000)\n"
            "    os._exit(0)\n"
            "time.sleep(0.2)\n"
            "print('parent done')\n"
        )
        r = await run_py(solo, code)
        assert r.status == "passed", r
        assert only_supervisor_left(await settle(host))
        await assert_next_job_healthy(solo)

    async def test_signals_to_the_supervisor_are_refused(
        self, solo: SandboxClient, host: Host
    ) -> None:
        """A job cannot signal, trace or read the memory of the supervisor or init."""
        code = (
            "import os, signal\n"
            "me = os.getpid()\n"
            "for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
            "    if os.getuid() != os.stat(f'/proc/{pid}').st_uid:\n"
            "        for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM):\n"
            "            try:\n"
            "                os.kill(pid, sig)\n"
            "                print('signalled', pid)\n"
            "            except PermissionError:\n"
            "                pass\n"
            "        try:\n"
            "            open(f'/proc/{pid}/mem', 'rb').read(1)\n"
            "            print('read mem', pid)\n"
            "        except OSError:\n"
            "            pass\n"
            "print('done')\n"
        )
        r = await run_py(solo, code)
        assert r.stdout == "done\n", r
        assert only_supervisor_left(await settle(host))
        await assert_next_job_healthy(solo)

    async def test_zombies_do_not_survive(self, solo: SandboxClient, host: Host) -> None:
        """Children left unreaped by the job leave no zombie behind."""
        code = (
            "import os, time\n"
            "for _ in range(20):\n"
            "    if os.fork() == 0:\n"
            "        os._exit(0)\n"
            "time.sleep(0.3)\n"
            "print(sum(1 for p in os.listdir('/proc') if p.isdigit() and "
            "open(f'/proc/{p}/stat').read().split(')')[1].split()[0] == 'Z'))\n"
        )
        r = await run_py(solo, code)
        assert r.status == "passed", r
        assert int(r.stdout) == 20, r
        procs = await settle(host)
        assert only_supervisor_left(procs)
        assert not [p for ps in procs.values() for p in ps if p["STAT"].startswith("Z")]


FAKE_PASSES = {
    "exit(0)": "exit(0)",
    "sys.exit(0)": "import sys\nsys.exit(0)",
    "os._exit(0)": "import os\nos._exit(0)",
    "kill itself": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "SystemExit in tests": None,
    "forged record": "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, "
    'b\'{"nonce": "x", "tests": [{"name": "t", "status": "passed"}]}\')\n'
    "    except OSError:\n        pass\nos._exit(0)",
}


class TestVerdicts:
    @pytest.mark.parametrize("name", sorted(FAKE_PASSES))
    async def test_early_exit_is_not_a_pass(self, solo: SandboxClient, name: str) -> None:
        """Exiting (any way) before the harness wrote its record is a fail."""
        code = FAKE_PASSES[name]
        tests = "assert False\n"
        if code is None:
            code, tests = "pass", "raise SystemExit(0)\nassert False\n"
        r = await run_py(solo, code, tests=tests)
        assert r.status == "failed", r

    async def test_always_equal_object_does_not_pass(self, solo: SandboxClient) -> None:
        """An object whose __eq__ is always True does not satisfy `assert f(x) == expected`."""
        code = (
            "class Anything:\n"
            "    def __eq__(self, other):\n        return True\n"
            "    def __ne__(self, other):\n        return False\n"
            "def solve(x):\n    return Anything()\n"
        )
        tests = "assert solve(1) == 2\nassert 3 == solve(2)\n"
        r = await run_py(solo, code, tests=tests)
        assert r.status == "failed", r
        assert [t.status for t in r.tests] == ["failed", "failed"]

    async def test_always_equal_subclass_of_expected_type_does_not_pass(
        self, solo: SandboxClient
    ) -> None:
        """A subclass of int or list with a lying __eq__ does not pass either."""
        code = (
            "class I(int):\n    def __eq__(self, o):\n        return True\n"
            "class L(list):\n    def __eq__(self, o):\n        return True\n"
            "def f():\n    return I(0)\n"
            "def g():\n    return L()\n"
            "def h():\n    return [I(0)]\n"
        )
        tests = "def test_int():\n    assert f() == 5\n"
        tests += "def test_list():\n    assert g() == [1, 2]\n"
        tests += "def test_nested():\n    assert h() == [7]\n"
        r = await run_py(solo, code, tests=tests)
        assert r.status == "failed", r
        assert [t.status for t in r.tests] == ["failed", "failed", "failed"]

    async def test_honest_equal_values_still_pass(self, solo: SandboxClient) -> None:
        """Strict comparison keeps Python's ordinary equalities (int/float, dict/Counter)."""
        code = "import collections\ndef f():\n    return collections.Counter('aab')\n"
        tests = (
            "assert f() == {'a': 2, 'b': 1}\nassert 2 == 2.0\nassert [1, (2, 3)] == [1, (2, 3)]\n"
        )
        r = await run_py(solo, code, tests=tests)
        assert r.status == "passed", r


async def test_abuse_leaves_no_host_process(solo: SandboxClient, host: Host) -> None:
    """After the suite's abuse, no process of a job uid exists on the host."""
    await asyncio.sleep(0)
    procs = await settle(host)
    assert only_supervisor_left(procs)
