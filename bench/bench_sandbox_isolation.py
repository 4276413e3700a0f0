"""Hostile jobs against their own time limit, and the innocent job after each, one container.

Through the real service's HTTP API with a pool of one container, so every job lands where the
previous one ran unless that one forced a recycle. Each hostile kind (fork bombs in Python, C
and bash, a CLONE_PARENT zombie maker, a setsid sleeper) runs with a 1 s limit, followed by one
correct Python program. Baseline, measured in the same run: a plain sleeper, which only waits for
its deadline, in the same language (C's latency includes its compile). Prints, per kind, the
client's latency (median and max) as a ratio to the time limit and to its language's baseline,
how many innocent jobs after it failed, and the containers recycled. The target is at most
1.2x the limit (for C, the baseline's compile time added).
Run: ``python bench/bench_sandbox_isolation.py [--reps 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from bench_sandbox import recycles, service
from codekiln.sandbox.client import RunRequest, SandboxClient
from hostile_programs import SLEEPERS, hostile

LIMIT_S = 1.0
HOSTILE = hostile(
    "fork bomb (python)", "fork bomb (c)", "fork bomb (bash)", "zombie maker (c)", "setsid sleepers"
)
INNOCENT = RunRequest(language="python", code="print(6 * 7)")


async def timed(client: SandboxClient, language: str, code: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = await client.run(RunRequest(language=language, code=code, timeout_s=LIMIT_S))
    return time.perf_counter() - t0, r.status


async def run(reps: int) -> int:
    with service(1, "bench-isolation") as svc:
        url = svc.url
        async with (
            SandboxClient(url, token=svc.token, retries=100) as client,
            aiohttp.ClientSession() as http,
        ):
            await client.run(INNOCENT)  # warm-up
            base_med = {}
            for language, code in SLEEPERS.items():
                base = [(await timed(client, language, code))[0] for _ in range(reps)]
                base_med[language] = statistics.median(base)
                print(
                    f"baseline: {language} sleeper, {LIMIT_S:g} s limit, x{reps}: median "
                    f"{base_med[language]:.2f} s, max {max(base):.2f} s"
                )
            for kind, (language, code) in HOSTILE.items():
                before = sum((await recycles(http, url)).values())
                lat, statuses, innocent_failed = [], Counter(), 0
                for _ in range(reps):
                    dt, status = await timed(client, language, code)
                    lat.append(dt)
                    statuses[status] += 1
                    r = await client.run(INNOCENT)
                    innocent_failed += (r.status, r.stdout) != ("passed", "42\n")
                med = statistics.median(lat)
                print(
                    f"  {kind:<20} median {med:5.2f} s = {med / LIMIT_S:.2f}x the limit "
                    f"({med / base_med[language]:.2f}x its baseline), max {max(lat):5.2f} s = "
                    f"{max(lat) / LIMIT_S:.2f}x; {dict(statuses)}; innocent jobs after it "
                    f"failed: {innocent_failed}/{reps}; recycled: "
                    f"{sum((await recycles(http, url)).values()) - before}"
                )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    return asyncio.run(run(p.parse_args().reps))


if __name__ == "__main__":
    sys.exit(main())
