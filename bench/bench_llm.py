"""LLM client benchmark: throughput against a server's capacity, client CPU, failover.

A fake OpenAI server runs in its own process (``tests/fakes/openai_server.py``) with a fixed
latency L per request and a concurrency cap C, so its capacity is C / L requests per second.

1. Throughput: one endpoint, 2C concurrent callers and a client cap of 2C per endpoint (so
   the server's queue never runs dry between two requests, as with vLLM's scheduler); goal:
   achieved / (C / L) >= 0.9.
2. Client CPU per request (this process's CPU time / requests); goal: <= 1 ms.
3. Failover: the same load over two endpoints, one answering 500 to everything; goal: the
   healthy endpoint's throughput / its throughput alone (run 1, same run) >= 0.9.

Run: ``python bench/bench_llm.py [--latency-s 0.1] [--concurrency 32] [--seconds 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from codekiln.synth.llm import LLMClient, LLMConfig, SamplingParams  # noqa: E402


@contextlib.contextmanager
def fake_server(latency_s: float, concurrency: int) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--latency-s", str(latency_s),
         "--max-concurrency", str(concurrency), "--text", "def f(x):\n    return x"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def drive(
    endpoints: list[str], callers: int, seconds: float, cap: int
) -> tuple[int, float, float, dict[str, int]]:
    """Run ``callers`` loops for ``seconds``; return (requests, wall s, CPU s, ok per endpoint)."""
    config = LLMConfig(
        endpoints=tuple(endpoints),
        model="fake-model",
        max_concurrency_per_endpoint=cap,
        breaker_failures=5,
        breaker_reset_s=2.0,
        backoff_base_s=0.05,
        backoff_max_s=0.5,
    )
    params = SamplingParams(max_tokens=32)
    done = 0
    async with LLMClient(config) as llm:
        await llm.wait_ready(timeout_s=10)
        await asyncio.gather(*(llm.complete("warm up") for _ in range(cap)))
        base = {url: s.successes for url, s in llm.stats().items()}
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds

        async def caller() -> None:
            nonlocal done
            while loop.time() < end:
                await llm.complete("def f(x):", params)
                done += 1

        cpu0, t0 = time.process_time(), time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for _ in range(callers):
                tg.create_task(caller())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        ok = {url: s.successes - base[url] for url, s in llm.stats().items()}
    return done, wall, cpu, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    lat, cap = args.latency_s, args.concurrency
    theoretical = cap / lat
    failures = []
    with fake_server(lat, cap) as healthy, fake_server(lat, cap) as other:
        n, wall, cpu, _ = asyncio.run(drive([healthy], 2 * cap, args.seconds, 2 * cap))
        alone = n / wall
        cpu_ms = 1000 * cpu / n
        print(f"throughput, 1 endpoint (L={lat}s, C={cap}): {alone:.1f} req/s; "
              f"theoretical C/L = {theoretical:.1f} req/s; ratio {alone / theoretical:.3f} "
              f"(goal >= 0.90)")  # fmt: skip
        print(f"client CPU per request: {cpu_ms:.3f} ms over {n} requests; baseline 1 ms; "
              f"ratio {cpu_ms / 1.0:.3f} (goal <= 1.00)")  # fmt: skip
        failing = other + "/fail"
        _, wall2, _, ok = asyncio.run(drive([healthy, failing], 2 * cap, args.seconds, 2 * cap))
        with_failing = ok[healthy] / wall2
        print(f"healthy endpoint beside a failing one: {with_failing:.1f} req/s; alone (same run) "
              f"{alone:.1f} req/s; ratio {with_failing / alone:.3f} (goal >= 0.90); "
              f"successes on the failing one: {ok[failing]}")  # fmt: skip
    if alone / theoretical < 0.9:
        failures.append("throughput")
    if cpu_ms > 1.0:
        failures.append("client CPU")
    if with_failing / alone < 0.9:
        failures.append("failover")
    if failures:
        print(f"goals missed: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
