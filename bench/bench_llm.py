"""LLM client benchmark: throughput against a server's capacity, client CPU, failover.

A fake OpenAI server runs in its own process (``tests/fakes/openai_server.py``) with a fixed
latency L per request and a concurrency cap C, so its capacity is C / L requests per second.

1. Throughput: one endpoint, 2C concurrent callers and a client cap of 2C per endpoint (so
   the server's queue never runs dry between two requests, as with vLLM's scheduler); goal:
   achieved / (C / L) >= 0.9.
   Also printed: the same load from a bare aiohttp loop, so that a shortfall can be told
   apart: server and machine (both fall short) or client (only the client does).
2. Client CPU per request (this process's CPU time / requests); goal: <= 1 ms.
3. Failover: the same load over two endpoints, one answering 500 to everything; goal: the
   healthy endpoint's throughput / its throughput alone (run 1, same run) >= 0.9.

Throughput counts the calls that finished inside the measuring window.

Run: ``python bench/bench_llm.py [--latency-s 0.1] [--concurrency 32] [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from codekiln.synth.llm import LLMClient, LLMConfig, LLMError, SamplingParams  # noqa: E402


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


@dataclass
class Run:
    window_s: float  # the measuring window; requests finishing after it are not counted
    in_window: Counter[str]  # successes that finished inside the window, per endpoint
    total: int  # every success, the drain after the window included (for CPU per request)
    failed: int
    cpu_s: float


async def drive(endpoints: list[str], callers: int, seconds: float, cap: int) -> Run:
    """``callers`` loops calling ``complete`` for ``seconds`` (after a warm-up)."""
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
    in_window: Counter[str] = Counter()
    total = failed = 0
    async with LLMClient(config) as llm:
        await llm.wait_ready(timeout_s=10)
        await asyncio.gather(*(llm.complete("warm up") for _ in range(cap)))
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + seconds

        async def caller() -> None:
            nonlocal total, failed
            while loop.time() < end:
                try:
                    out = await llm.complete("def f(x):", params)
                except LLMError:
                    failed += 1
                    continue
                total += 1
                if loop.time() <= end:
                    in_window[out.endpoint] += 1

        cpu0 = time.process_time()
        async with asyncio.TaskGroup() as tg:
            for _ in range(callers):
                tg.create_task(caller())
        cpu = time.process_time() - cpu0
    return Run(seconds, in_window, total, failed, cpu)


async def drive_raw(endpoint: str, callers: int, seconds: float) -> float:
    """A bare aiohttp loop (no balancing, retries or accounting): what server and machine
    allow, to tell the client's overhead from the fake server's on a busy machine."""
    body = json.dumps({"model": "fake-model", "prompt": "def f(x):", "max_tokens": 32})
    headers = {"Content-Type": "application/json"}
    done = 0
    connector = aiohttp.TCPConnector(limit=callers)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds

        async def caller() -> None:
            nonlocal done
            while loop.time() < end:
                async with session.post(f"{endpoint}/v1/completions", data=body,
                                        headers=headers) as resp:  # fmt: skip
                    await resp.read()
                if loop.time() <= end:
                    done += 1

        async with asyncio.TaskGroup() as tg:
            for _ in range(callers):
                tg.create_task(caller())
    return done / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    lat, cap = args.latency_s, args.concurrency
    theoretical = cap / lat
    failures = []
    with fake_server(lat, cap) as healthy, fake_server(lat, cap) as other:
        run = asyncio.run(drive([healthy], 2 * cap, args.seconds, 2 * cap))
        alone = run.in_window[healthy] / run.window_s
        cpu_ms = 1000 * run.cpu_s / run.total
        print(f"throughput, 1 endpoint (L={lat}s, C={cap}): {alone:.1f} req/s; "
              f"theoretical C/L = {theoretical:.1f} req/s; ratio {alone / theoretical:.3f} "
              f"(goal >= 0.90)")  # fmt: skip
        raw = asyncio.run(drive_raw(healthy, 2 * cap, args.seconds))
        print(f"  same load from a bare aiohttp loop (same run): {raw:.1f} req/s; client / bare "
              f"ratio {alone / raw:.3f}")  # fmt: skip
        print(f"client CPU per request: {cpu_ms:.3f} ms over {run.total} requests; baseline "
              f"1 ms; ratio {cpu_ms / 1.0:.3f} (goal <= 1.00)")  # fmt: skip
        failing = other + "/fail"
        run2 = asyncio.run(drive([healthy, failing], 2 * cap, args.seconds, 2 * cap))
        with_failing = run2.in_window[healthy] / run2.window_s
        print(f"healthy endpoint beside a failing one: {with_failing:.1f} req/s; alone (same run) "
              f"{alone:.1f} req/s; ratio {with_failing / alone:.3f} (goal >= 0.90); calls that "
              f"failed for good: {run2.failed}")  # fmt: skip
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
