"""codekiln-eval against evalplus 0.3.1 itself, on real model samples: identical verdicts.

The oracle is evalplus's own ``evaluate`` (PyPI evalplus==0.3.1 in its own virtual environment,
``make evalplus-venv``), run twice through tests/eval/evalplus_driver.py; codekiln is its real
CLI (``codekiln-eval evaluate``, default settings) against the real sandbox service. Samples:
../shared/reference/evalplus-samples/ (model outputs written by no one here: right, wrong,
crashing, slow) plus this file's own samples at the time limits (naive recursive fib, loops
sized to run well past or well inside evalplus's 1 s limit on this machine, a module that never
finishes loading, ``os._exit``). Every sample's base and plus status must be the same, except
where evalplus disagrees with itself between its two runs (its limits are wall-clock ones).

Both sides read the same dataset file: the release restricted to the tasks compared, so that
evalplus computes ground truth only for those. ``make test`` compares a deterministic quarter of
the tasks (those whose task-id sha256 is 0 mod 4) to keep its cost to a few minutes;
``CODEKILN_EVALPLUS_DIFF=full`` compares every task of the samples (see docs/eval.md for the
command and the figures).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxService

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EVALPLUS_PYTHON = REPO / ".venv-evalplus" / "bin" / "python"
DRIVER = Path(__file__).with_name("evalplus_driver.py")
RELEASES = {"humaneval": "HumanEvalPlus.jsonl.gz", "mbpp": "MbppPlus.jsonl.gz"}
SUBSET_MOD = 4


def _samples_dir(data_dir: Path) -> Path:
    return Path(
        os.environ.get("CODEKILN_EVALPLUS_SAMPLES_DIR")
        or data_dir.parent / "reference" / "evalplus-samples"
    )


def _in_subset(task_id: str) -> bool:
    if os.environ.get("CODEKILN_EVALPLUS_DIFF") == "full":
        return True
    return int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % SUBSET_MOD == 0


def _loop_rate() -> float:
    """Empty ``for`` iterations per CPU second of this interpreter (the slow samples' unit)."""
    n = 2_000_000
    start = time.process_time()
    for _ in range(n):
        pass
    return n / max(time.process_time() - start, 1e-6)


def own_samples(dataset: str) -> list[dict[str, str]]:
    """Samples at evalplus's time limits; the loops run ~0.05 s (pass) or ~3 s (fail: past
    evalplus's 1 s, inside the 4 s that codekiln used to allow) per call. The loop rate is
    measured once, beside whatever else the machine runs: a rate measured on a busy core ran
    the "2 s" loop in under 1 s of CPU later (a CI run: codekiln passed it, evalplus failed it
    on wall time), hence 3 s, a 3x margin over the limit."""
    fast, slow = int(0.05 * _loop_rate()), int(3 * _loop_rate())
    if dataset == "humaneval":
        fib_iter = (
            "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
        )
        return [
            {  # naive recursive fib: the base inputs (n <= 12) pass, plus n = 86 never ends
                "task_id": "HumanEval/55",
                "solution": "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
            },
            {  # right, with a loop well inside the 1 s limit on each call
                "task_id": "HumanEval/55",
                "solution": f"def fib(n):\n    for _ in range({fast}):\n        pass\n{fib_iter}",
            },
            {  # right, but each call runs ~3 s: past the 1 s limit, a failed input
                "task_id": "HumanEval/55",
                "solution": f"def fib(n):\n    for _ in range({slow}):\n        pass\n{fib_iter}",
            },
            {  # the process ends without a verdict: evalplus reports "timeout"
                "task_id": "HumanEval/0",
                "solution": "import os\n\n\ndef has_close_elements(numbers, threshold):\n"
                "    os._exit(0)\n",
            },
            {  # exit() inside the call: evalplus has removed exit, a failed input
                "task_id": "HumanEval/0",
                "solution": "def has_close_elements(numbers, threshold):\n    exit(0)\n",
            },
        ]
    return [
        {  # never finishes loading: the part's budget, min(60, sum of limits) + 2 s: "timeout"
            "task_id": "Mbpp/793",
            "solution": "while True:\n    pass\n\n\ndef last(arr, x):\n    return -1\n",
        },
        {  # right, but a loop of ~3 s on every call: past the 1 s limit
            "task_id": "Mbpp/803",
            "solution": f"def is_perfect_square(n):\n    for _ in range({slow}):\n        pass\n"
            "    return n >= 0 and int(n ** 0.5) ** 2 == n\n",
        },
    ]


def _write_inputs(
    data_dir: Path, work: Path, dataset: str
) -> tuple[Path, Path, list[dict[str, Any]]]:
    """The samples compared and a data dir whose release file holds only their tasks."""
    rows = [
        json.loads(line)
        for line in (_samples_dir(data_dir) / f"{dataset}.jsonl").read_text().splitlines()
        if line.strip()
    ]
    rows = [{k: r[k] for k in ("task_id", "solution", "completion") if k in r} for r in rows]
    rows = [r for r in rows if _in_subset(r["task_id"])] + own_samples(dataset)
    tasks = {r["task_id"] for r in rows}
    sub_data = work / "data"
    sub_data.mkdir(parents=True)
    with gzip.open(data_dir / RELEASES[dataset], "rt", encoding="utf-8") as src:
        records = [line for line in src if line.strip() and json.loads(line)["task_id"] in tasks]
    # mtime 0: the same tasks give the same bytes, hence the same hash on every run
    with (
        open(sub_data / RELEASES[dataset], "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
    ):
        gz.write("".join(records).encode("utf-8"))
    samples = work / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return samples, sub_data, rows


async def _evalplus(samples: Path, data: Path, work: Path, dataset: str) -> dict[str, Any]:
    out = work / "verdicts.json"
    proc = await asyncio.create_subprocess_exec(
        str(EVALPLUS_PYTHON), str(DRIVER), "--dataset", dataset, "--samples", str(samples),
        "--data-file", str(data / RELEASES[dataset]), "--work", str(work), "--out", str(out),
        "--parallel", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    log, _ = await proc.communicate()
    assert proc.returncode == 0, log.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


async def _codekiln(
    samples: Path, data: Path, out: Path, dataset: str, service: SandboxService
) -> dict[str, Any]:
    token = out.parent / "token"
    token.write_text(service.token)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codekiln.eval.cli", "evaluate", str(samples),
        "--dataset", f"{dataset}+", "--data-dir", str(data), "--out", str(out),
        "--sandbox-url", service.url, "--sandbox-token-file", str(token),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    log, _ = await proc.communicate()
    assert proc.returncode == 0, log.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads((out / "eval_results.json").read_text())
    return result


def _per_sample(results: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    nth: Counter[str] = Counter()
    out = []
    for r in rows:
        res = results["eval"][r["task_id"]][nth[r["task_id"]]]
        nth[r["task_id"]] += 1
        out.append((res["base_status"], res["plus_status"]))
    return out


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("dataset", ["humaneval", "mbpp"])
async def test_verdicts_are_evalplus_verdicts(
    dataset: str, data_dir: Path, tmp_path: Path, sandbox_service: SandboxService
) -> None:
    """Every sample's base and plus status equals evalplus 0.3.1's (bar its own flips)."""
    if not EVALPLUS_PYTHON.exists():
        pytest.fail(f"{EVALPLUS_PYTHON} is missing: run `make evalplus-venv`")
    samples, data, rows = _write_inputs(data_dir, tmp_path, dataset)
    first = await _evalplus(samples, data, tmp_path / "evalplus-1", dataset)
    second = await _evalplus(samples, data, tmp_path / "evalplus-2", dataset)
    started = time.monotonic()
    ours = await _codekiln(samples, data, tmp_path / "codekiln", dataset, sandbox_service)
    codekiln_s = time.monotonic() - started

    assert ours["hash"] == first["hash"], "the results' dataset hash is not evalplus's"
    ref1 = [(v["base_status"], v["plus_status"]) for v in first["verdicts"]]
    ref2 = [(v["base_status"], v["plus_status"]) for v in second["verdicts"]]
    got = _per_sample(ours, rows)
    flips = [i for i in range(len(rows)) if ref1[i] != ref2[i]]
    differ = [
        f"{rows[i]['task_id']} #{i}: evalplus {ref1[i]}, codekiln {got[i]}"
        for i in range(len(rows))
        if i not in flips and ref1[i] != got[i]
    ]
    report = {
        "dataset": dataset,
        "samples": len(rows),
        "evalplus_flips": len(flips),
        "compared": len(rows) - len(flips),
        "differ": len(differ),
        "evalplus_s": [round(first["wall_s"], 1), round(second["wall_s"], 1)],
        "codekiln_s": round(codekiln_s, 1),
        "statuses": dict(Counter("/".join(pair) for pair in got)),
    }
    print(json.dumps(report))
    report_dir = Path(os.environ.get("CODEKILN_EVALPLUS_REPORT_DIR") or tmp_path)
    flipped = [rows[i]["task_id"] for i in flips]
    details = {**report, "differences": differ, "flipped": flipped}
    await asyncio.to_thread(_write_report, report_dir / f"diff-{dataset}.json", details)
    assert not differ, "\n".join(differ)
    # The comparison is not vacuous: it holds passes, failures and evalplus's timeouts.
    statuses = {s for pair in got for s in pair}
    assert {"pass", "fail", "timeout"} <= statuses, statuses
    assert len(flips) <= len(rows) // 20, f"evalplus flipped on {len(flips)} samples"


def _write_report(path: Path, details: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(details, indent=1))
