"""The filter stage's report through the real runtime: exact across kill -9 and resume."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.stream.kill9 import clean_and_resumed, repo_env

CONFIG: dict[str, Any] = {
    "input": {"format": "jsonl"},
    "stages": ["preprocess", "filters"],
    "runtime": {"batch_size": 20, "checkpoint_every_records": 100, "workers": 2},
    "output": {"shard_max_records": 200},
}


def make_input(folder: Path, n: int = 1200, seed: int = 5) -> Path:
    """Python files the filters keep, and ones they drop for several reasons."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    ops = ["+", "-", "*", "//", "%", "^", "|", "&"]
    with open(folder / "in.jsonl", "w", encoding="utf-8") as fh:
        for j in range(n):
            kind = rng.random()
            names = ["".join(rng.choices("abcdefghijklmnop", k=8)) for _ in range(80)]
            if kind < 0.15:
                text = "".join(f"print '{name}'\n" for name in names)  # Python 2: unparseable
            elif kind < 0.3:
                text = "".join(f"print({a!r}, {b})\n" for a, b in itertools.pairwise(names))
            else:
                text = "".join(
                    f"def {names[k]}({names[k + 1]}, {names[k + 2]}):\n"
                    f"    {names[k + 3]} = {names[k + 1]} {rng.choice(ops)} {rng.randrange(99)}\n"
                    f"    for {names[k]} in range({names[k + 2]}):\n"
                    f"        {names[k + 3]} += {names[k]} {rng.choice(ops)} {names[k + 1]}\n"
                    f"        if {names[k + 3]} > {rng.randrange(999)}:\n"
                    f"            break\n"
                    f"    return {names[k + 3]} {rng.choice(ops)} {names[k + 2]}\n\n\n"
                    for k in range(0, 60, 4)
                )
            fh.write(json.dumps({"text": text, "path": f"pkg/m{j}.py", "repo": "r"}) + "\n")
    return folder


def filter_report(out: Path) -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    (report,) = [s["report"] for s in manifest["stages"] if s["key"] == "filters"]
    return report  # type: ignore[no-any-return]


@pytest.mark.slow
def test_filter_counts_exact_after_kill_9(tmp_path: Path) -> None:
    """SIGKILL after checkpoints, rerun: per-rule and per-language counts equal a clean run's."""
    inp = make_input(tmp_path / "in")
    expected, got = clean_and_resumed(
        tmp_path, inp, CONFIG, filter_report, env=repo_env(), max_after=0.1
    )
    assert expected["docs_in"] == 1200
    assert expected["docs_kept"] > 600
    assert {"unparseable", "py_cate_no_var"} <= set(expected["drops_by_rule"])
    assert got == expected
