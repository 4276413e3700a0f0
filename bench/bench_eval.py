"""Full HumanEval+ evaluation of the canonical solutions (all 1,570 base and 122,683 plus
inputs): codekiln (every program in hardened sandbox containers) against evalplus.evaluate
(unsandboxed processes), on this machine, in this run.

Both start cold (expected outputs computed from the canonical solutions) and then run again
warm (expected outputs cached: evalplus's ground-truth pickle, codekiln's reference cache).
Both get the same parallelism: evalplus ``parallel=P`` worker processes, codekiln a pool of P
warm containers and P jobs in flight. Printed: wall times and codekiln / evalplus ratios
(below 1.0 means codekiln is faster).

    python bench/bench_eval.py [--parallel P] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EVALPLUS_SNIPPET = """
import sys
from evalplus.evaluate import evaluate
evaluate(dataset="humaneval", samples=sys.argv[1], parallel=int(sys.argv[2]))
"""


def write_samples(data_dir: Path, path: Path) -> int:
    from codekiln.eval.data import load_dataset

    ds = load_dataset("humaneval+", data_dir)
    with path.open("w") as f:
        for task in ds.tasks.values():
            f.write(json.dumps({"task_id": task.task_id, "solution": task.canonical}) + "\n")
    return len(ds.tasks)


def run_evalplus(samples: Path, data_dir: Path, cache: Path, parallel: int) -> tuple[float, str]:
    result = samples.with_name(samples.stem + "_eval_results.json")
    result.unlink(missing_ok=True)  # evalplus would load it instead of evaluating
    env = dict(
        os.environ,
        HUMANEVAL_OVERRIDE_PATH=str(data_dir / "HumanEvalPlus.jsonl.gz"),
        XDG_CACHE_HOME=str(cache),
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", EVALPLUS_SNIPPET, str(samples), str(parallel)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"evalplus failed:\n{proc.stderr[-3000:]}")
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "pass@1" in ln]
    return wall, " / ".join(ln.strip() for ln in lines)


async def run_codekiln(
    samples: Path, data_dir: Path, cache: Path, *, url: str, token: str, parallel: int
) -> tuple[float, str]:
    from codekiln.eval.data import load_dataset
    from codekiln.eval.evaluate import evaluate_samples, read_samples
    from codekiln.eval.execute import Evaluator, ExecConfig
    from codekiln.sandbox.client import SandboxClient

    start = time.perf_counter()
    ds = load_dataset("humaneval+", data_dir)
    found, quarantine = read_samples(samples, ds)
    async with SandboxClient(url, token=token) as sb:
        evaluator = Evaluator(ds, sb, ExecConfig(concurrency=parallel), cache_dir=cache)
        ev = await evaluate_samples(evaluator, found, quarantine, log=open(os.devnull, "w"))  # noqa: ASYNC230, SIM115
    wall = time.perf_counter() - start
    scores = ev.pass_at_k()
    return wall, f"base {scores['base']['pass@1']:.1f} / plus {scores['plus']['pass@1']:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("CODEKILN_DATA_DIR") or REPO.parent / "shared" / "data"),
    )
    args = parser.parse_args()
    from tests.fixtures.sandbox import start_service, stop_service

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp_s:
        tmp = Path(tmp_s)
        samples = tmp / "samples.jsonl"
        n = write_samples(args.data_dir, samples)
        print(f"HumanEval+ v0.1.10, {n} canonical solutions, parallelism {args.parallel}")
        service = start_service(tmp / "sandbox", pool_size=args.parallel)
        try:
            figures = {}
            for phase in ("cold", "warm"):
                ck = asyncio.run(
                    run_codekiln(
                        samples,
                        args.data_dir,
                        tmp / "ck-cache",
                        url=service.url,
                        token=service.token,
                        parallel=args.parallel,
                    )
                )
                ep = run_evalplus(samples, args.data_dir, tmp / "ep-cache", args.parallel)
                figures[phase] = (ck, ep)
                print(
                    f"{phase}: codekiln {ck[0]:.1f} s ({ck[1]}); evalplus {ep[0]:.1f} s ({ep[1]})"
                )
        finally:
            stop_service(service)
    for phase, (ck, ep) in figures.items():
        print(f"ratio {phase} (codekiln / evalplus wall time): {ck[0] / ep[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
