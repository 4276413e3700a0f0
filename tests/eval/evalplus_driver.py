"""Run evalplus 0.3.1's own ``evaluate`` on a samples file and print per-sample verdicts.

Runs under the evalplus virtual environment (``make evalplus-venv`` -> .venv-evalplus), never
under codekiln's: this is the reference side of tests/eval/test_evalplus_differential.py.

    .venv-evalplus/bin/python tests/eval/evalplus_driver.py \
        --dataset humaneval --samples S.jsonl --data-file D.jsonl.gz --work DIR --out V.json

evalplus refuses a samples file that lacks a task, so the tasks without a sample get one empty
solution each (listed as ``padded`` and left out of the output). The dataset file is given to
evalplus through its own override variables (HUMANEVAL_OVERRIDE_PATH, MBPP_OVERRIDE_PATH) and its
cache (ground truth) lives under ``--work``. The output holds, in samples-file order, each
sample's ``base_status`` and ``plus_status`` as evalplus wrote them, and evalplus's ``hash``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("humaneval", "mbpp"), required=True)
    ap.add_argument("--samples", type=Path, required=True)
    ap.add_argument("--data-file", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    var = "HUMANEVAL_OVERRIDE_PATH" if args.dataset == "humaneval" else "MBPP_OVERRIDE_PATH"
    os.environ[var] = str(args.data_file.resolve())
    os.environ["XDG_CACHE_HOME"] = str((args.work / "cache").resolve())
    # Imported only now: evalplus reads both variables at import time.
    from evalplus.data import get_human_eval_plus, get_mbpp_plus
    from evalplus.evaluate import evaluate

    problems = get_human_eval_plus() if args.dataset == "humaneval" else get_mbpp_plus()
    rows = [json.loads(line) for line in args.samples.read_text().splitlines() if line.strip()]
    keep = ("task_id", "solution", "completion")
    rows = [{k: v for k, v in r.items() if k in keep} for r in rows]
    seen = {r["task_id"] for r in rows}
    padded = [t for t in problems if t not in seen]
    samples = args.work / "samples.jsonl"
    with samples.open("w") as f:
        for r in rows + [{"task_id": t, "solution": ""} for t in padded]:
            f.write(json.dumps(r) + "\n")
    result_path = args.work / "samples_eval_results.json"
    result_path.unlink(missing_ok=True)
    start = time.monotonic()
    evaluate(args.dataset, samples=str(samples), parallel=args.parallel, i_just_wanna_run=True)
    wall_s = time.monotonic() - start
    results = json.loads(result_path.read_text())

    nth: Counter[str] = Counter()
    verdicts = []
    for r in rows:
        res = results["eval"][r["task_id"]][nth[r["task_id"]]]
        nth[r["task_id"]] += 1
        verdicts.append(
            {
                "task_id": r["task_id"],
                "base_status": res["base_status"],
                "plus_status": res["plus_status"],
            }
        )
    out = {"hash": results["hash"], "padded": padded, "wall_s": wall_s, "verdicts": verdicts}
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
