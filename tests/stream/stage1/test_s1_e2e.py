"""Stage 1 through the real runtime: `codekiln-stream run`, including kill -9 and resume."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from codekiln.stream.writers import read_jsonl_zst

from tests.stream.kill9 import clean_and_resumed, repo_env

LICENCE = "# Copyright 2020 Example Corp.\n# Licensed under the MIT License.\n\n"


def make_input(folder: Path, n: int = 900, seed: int = 3) -> Path:
    """JSONL with exact duplicates, near-duplicates, licence headers and junk kinds."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    bodies = []
    for i in range(n // 3):
        words = [f"name{rng.randrange(10**6)}" for _ in range(60)]
        bodies.append(
            "".join(f"def f{i}_{k}({words[k]}):\n    return {words[k + 1]}\n" for k in range(30))
        )
    for s in range(2):
        with open(folder / f"shard-{s}.jsonl", "w") as fh:
            for j in range(n // 2):
                i = rng.randrange(len(bodies))
                text = bodies[i]
                kind = rng.random()
                if kind < 0.2:
                    text = text.replace(f"def f{i}_3(", f"def edited_{j}(", 1)  # near-duplicate
                elif kind < 0.3:
                    text = LICENCE + text
                path = f"pkg{j % 7}/mod_{s}_{j}.py" if kind < 0.95 else f"data/t{j}.csv"
                rec = {"text": text, "path": path, "repo": f"repo{j % 5}", "meta": {"stars": j % 4}}
                fh.write(json.dumps(rec) + "\n")
    return folder


CONFIG: dict[str, Any] = {
    "input": {"format": "jsonl"},
    "stages": [
        "preprocess",
        "exact_dedup",
        {"name": "minhash", "options": {"preset": "opencoder-128x16"}},
        {"name": "fuzzy_dedup", "options": {"preset": "opencoder-128x16"}},
        "copyright",
    ],
    "runtime": {"batch_size": 30, "checkpoint_every_records": 150, "workers": 2},
    "output": {"shard_max_records": 200},
}


def output_of(out: Path) -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    corpus = [r for p in sorted((out / "corpus").glob("*.zst")) for r in read_jsonl_zst(p)]
    rejects = [r for p in sorted((out / "rejects").glob("*.zst")) for r in read_jsonl_zst(p)]
    return {
        "corpus": sorted((r["id"], r["text"], "copyright_removed" in r["meta"]) for r in corpus),
        "rejects": sorted((r["id"], r["reason"]) for r in rejects),
        "reports": {s["key"]: s["report"] for s in manifest["stages"]},
    }


@pytest.mark.slow
def test_kill_9_then_rerun_gives_identical_output(tmp_path: Path) -> None:
    """SIGKILL mid-run (dedup state, spill files, held records), rerun: same output."""
    inp = make_input(tmp_path / "in")
    expected, got = clean_and_resumed(
        tmp_path, inp, CONFIG, output_of, env=repo_env("CODEKILN_LLM_URL"), max_after=0.2
    )
    reasons = {reason for _, reason in expected["rejects"]}
    assert any(removed for _, _, removed in expected["corpus"])
    assert {
        "exact_dedup:duplicate",
        "fuzzy_dedup:duplicate",
        "preprocess:excluded_language",
    } <= reasons
    assert got == expected
