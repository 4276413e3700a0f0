"""The sandbox under a hostile mix, against the friendly-only run measured in the same run.

Two runs of the same number of requests at the same concurrency through the real service's
HTTP API: friendly programs only, then a mix where a share (15% by default) is hostile: fork
bombs, memory hogs, sleepers, zombie makers, processes that outlive the job, output floods
(each with a 1 s time limit). Prints for each run: throughput, p50/p99 latency (all runs, and
the friendly ones alone), recycled containers by reason, the service's peak RSS (VmHWM), the
slowest hostile job against its time limit, and the target: the mixed run takes at most 1.5x
(the hostile jobs' time limits spread over the pool + the friendly-only run's time).
Run: ``python bench/bench_sandbox_hostile.py [--pool-size 4] [--n 400] [--concurrency 16]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import recycles, service
from codekiln.sandbox.client import RunRequest, SandboxClient
from hostile_programs import hostile

HOSTILE_TIMEOUT_S = 1.0
FRIENDLY = {
    "python": "print(sum(range(10)))",
    "bash": "echo $((6 * 7))",
}
# The mix: every kind but those bench_sandbox_isolation adds (C programs, bash fork bombs,
# setsid sleepers), with a 1 s limit each.
HOSTILE = hostile(
    "fork bomb (python)", "memory hog", "sleeper", "zombie maker (python)", "outliver",
    "output flood", "spin (bash)",
)  # fmt: skip


def workload(n: int, hostile_frac: float, seed: int) -> list[tuple[str, RunRequest]]:
    rng = random.Random(seed)
    kinds = sorted(HOSTILE)
    n_hostile = round(n * hostile_frac)
    items: list[tuple[str, RunRequest]] = []
    for i in range(n_hostile):
        kind = kinds[i % len(kinds)]
        lang, code = HOSTILE[kind]
        items.append(
            (kind, RunRequest(language=lang, code=code, timeout_s=HOSTILE_TIMEOUT_S, memory_mb=64))
        )
    for i in range(n - n_hostile):
        lang = "python" if i % 4 else "bash"
        items.append(("friendly", RunRequest(language=lang, code=FRIENDLY[lang])))
    rng.shuffle(items)
    return items


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def one_run(
    client: SandboxClient,
    http: aiohttp.ClientSession,
    url: str,
    items: list[tuple[str, RunRequest]],
    concurrency: int,
) -> dict[str, object]:
    it = iter(items)
    lat: list[tuple[str, float, float, str]] = []  # kind, latency, program wall, status

    async def worker() -> None:
        for kind, req in it:
            t0 = time.perf_counter()
            r = await client.run(req)
            lat.append((kind, time.perf_counter() - t0, r.wall_s or 0.0, r.status))

    before = await recycles(http, url)
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    wall = time.perf_counter() - t0
    recycled = await recycles(http, url) - before
    friendly = [x[1] for x in lat if x[0] == "friendly"]
    bad_friendly = [x for x in lat if x[0] == "friendly" and x[3] != "passed"]
    hostile = [x for x in lat if x[0] != "friendly"]
    return {
        "n": len(lat),
        "wall_s": wall,
        "rate": len(lat) / wall,
        "p50": _pct([x[1] for x in lat], 0.5),
        "p99": _pct([x[1] for x in lat], 0.99),
        "friendly_p50": _pct(friendly, 0.5),
        "friendly_p99": _pct(friendly, 0.99),
        "friendly_failed": len(bad_friendly),
        "recycles": dict(recycled),
        "hostile": hostile,
    }


def report(name: str, r: dict[str, object]) -> None:
    print(
        f"  {name:<13} n={r['n']:<4} {r['wall_s']:7.2f} s {r['rate']:8.1f} req/s   "
        f"p50 {r['p50'] * 1000:8.1f} ms  p99 {r['p99'] * 1000:8.1f} ms   friendly p50 "  # type: ignore[operator]
        f"{r['friendly_p50'] * 1000:7.1f} ms p99 {r['friendly_p99'] * 1000:8.1f} ms"  # type: ignore[operator]
    )
    recycles = r["recycles"]
    assert isinstance(recycles, dict)
    print(
        f"  {'':<13} recycles {sum(recycles.values())} {recycles or ''}; "
        f"friendly runs not passed: {r['friendly_failed']}"
    )


async def run(args: argparse.Namespace) -> int:
    friendly = workload(args.n, 0.0, args.seed)
    mixed = workload(args.n, args.hostile_frac, args.seed)
    n_hostile = sum(1 for k, _ in mixed if k != "friendly")
    with service(args.pool_size, "bench-hostile") as svc:
        url = svc.url
        async with (
            SandboxClient(url, token=svc.token, retries=100) as client,
            aiohttp.ClientSession() as http,
        ):
            await one_run(client, http, url, friendly[:32], 8)  # warm-up
            f = await one_run(client, http, url, friendly, args.concurrency)
            m = await one_run(client, http, url, mixed, args.concurrency)
            rss = svc.memory_mb("VmHWM")
    print(
        f"pool {args.pool_size}, concurrency {args.concurrency}, {args.n} requests; mixed: "
        f"{n_hostile} hostile ({n_hostile / args.n:.0%}, {HOSTILE_TIMEOUT_S:g} s limit each)"
    )
    report("friendly-only", f)
    report("mixed", m)
    hostile = m["hostile"]
    assert isinstance(hostile, list)
    by_kind: dict[str, list[tuple[str, float, float, str]]] = {}
    for x in hostile:
        by_kind.setdefault(x[0], []).append(x)
    for kind, xs in sorted(by_kind.items()):
        statuses = Counter(x[3] for x in xs)
        print(
            f"    {kind:<21} x{len(xs):<3} own wall max {max(x[2] for x in xs):5.2f} s, "
            f"latency max {max(x[1] for x in xs):5.2f} s; {dict(statuses)}"
        )
    worst = max((x[2] for x in hostile), default=0.0)
    budget = f["wall_s"] + n_hostile * HOSTILE_TIMEOUT_S / args.pool_size  # type: ignore[operator]
    ratio = m["wall_s"] / budget  # type: ignore[operator]
    print(
        f"  ratios: throughput mixed/friendly {m['rate'] / f['rate']:.3f}x "  # type: ignore[operator]
        f"(p50 {m['p50'] / f['p50']:.1f}x); mixed time / (friendly time + hostile limits over "  # type: ignore[operator]
        f"the pool = {budget:.2f} s) = {ratio:.2f} (target <= 1.5: "
        f"{'met' if ratio <= 1.5 else 'NOT met'}); slowest hostile job {worst:.2f} s = "
        f"{worst / HOSTILE_TIMEOUT_S:.2f}x its limit (target <= 1.2); service peak RSS "
        f"{rss:.0f} MiB (target <= 512)"
    )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool-size", type=int, default=4)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--hostile-frac", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=18)
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
