"""Pinned outputs: digests of what the default stream run (local and Ray), synthesis with the
fake LLM and an eval of canonical solutions produce, so a refactor that changes them (the
local and the Ray executor alike, which the Ray == local and resumed == clean tests cannot
see) fails here. With those tests (tests/stream/ray, tests/stream/runtime/test_rt_resume.py)
this pins a Ray run and a resumed run too.

Each digest is over CONTENT, never over what legitimately varies by machine or run: the
records of the corpus and of the rejects, decompressed, each as ``json.dumps(record,
sort_keys=True)`` in the manifest's shard order, plus the manifest's counts (source, corpus,
rejects, langs) and each stage's in/out/dropped and report. Compressed bytes, shard sizes and
hashes, timings (``busy_s``, ``elapsed_s``), paths and fingerprints are left out.

What is pinned and why this input:

* ``stream``: ``codekiln-stream run`` with no ``--config`` (the default RefineCode pipeline of
  ``make run``, every stage: it trains and loads no model, webclf is not in it) on a small
  embedded tree (planted exact and near copies, a copyright header, Java, a minified line, a
  binary and an empty file). Not ``--default-input``: that reads this Python's stdlib and
  site-packages, which differ between Python builds and installed packages (the pin would
  break on every machine but this one), and it takes minutes. The run gives the same digest
  with ``--workers 1`` and ``--workers 2`` (both are run and must match the one pin).
* ``stream`` through ``--executor ray`` (7 files a shard, 3 dedup partitions): the same pin.
  The rejects are digested as a sorted set of lines, since the Ray executor writes them in
  another order (the corpus comes out in the same order; tests/stream/ray compare rejects by
  id too). A local Ray start costs about 5-20 s.
* ``synth``: the synthesis job (every default generator) with tests/synth's scripted fake
  LLM and the real sandbox as execution filter: the annealing corpus, both SFT stages, the
  rejects and seeds.jsonl (each as a sorted set of lines, since the generators run
  concurrently), the report's counts. The sandbox's ``wall_s`` is left out of each record.
* ``eval``: per-task verdicts (status and first failing input of base and plus) of the
  HumanEval+ canonical solutions and of an empty body for the first tasks, through the real
  sandbox service. The eval and synth pins need Docker (marked ``docker``, like every sandbox
  test). The sandbox runs trivial programs far inside their time limits, and the filters'
  per-signal time budget (2 s) is far above what these small files take, so no pin depends
  on the machine's speed.

A legitimate behaviour change updates the pins explicitly, in its own commit::

    .venv/bin/python -m tests.flow.test_outputs_pinned --write

(needs Docker and the sandbox image, as ``make test`` does; data from $CODEKILN_DATA_DIR,
default ../shared/data).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import zstandard
from codekiln.stream import cli

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.sandbox import start_service, stop_service
from tests.stream.ray.corpus import python_file, write_tree

REPO = Path(__file__).resolve().parents[2]
PINS = Path(__file__).with_name("outputs_pinned.json")
REGENERATE = ".venv/bin/python -m tests.flow.test_outputs_pinned --write"

#: HumanEval+ tasks whose verdicts are pinned (the first of the dataset).
EVAL_TASKS = 4

#: Keys that hold a duration (the sandbox's ``wall_s`` in a synthesized record's execution
#: verdict, a generator's ``seconds``): dropped at every depth before a record is digested.
TIME_KEYS = frozenset({"wall_s", "seconds", "elapsed_s", "busy_s"})

#: Stage report keys that say how the work was done, not what came out (they may differ with
#: the worker count or the executor): left out of the digest.
HOW_KEYS = frozenset({"signatures_computed_here", "spilled"})


def write_input(root: Path) -> Path:
    """The embedded input: the Ray tests' planted tree plus files that reach the stages the
    plain tree does not (fuzzy dedup at its default threshold, copyright, filters, Java)."""
    import random

    write_tree(root, seed=1, n=60)
    rng = random.Random(20)
    long_file = python_file(rng, lines=400)
    extra = {
        "repo5/long.py": long_file,
        # one word of ~2,000 changed: over the default 0.9786 threshold
        "repo6/long_copy.py": long_file.replace("return x\n", "return y\n"),
        "repo5/licensed.py": "# Copyright (c) 2019 Example Corp. All rights reserved.\n"
        "# Licensed under the MIT License.\n\n" + python_file(rng, lines=30),
        "repo5/minified.js": "var a=" + ",".join(str(i) for i in range(4000)) + ";\n",
        "repo5/data.py": "DATA = [\n" + "".join(f"    {i},\n" for i in range(3000)) + "]\n",
        "repo7/Main.java": "public class Main {\n"
        + "".join(f"  static int f{i}(int x) {{ return x * {i}; }}\n" for i in range(60))
        + "}\n",
        "repo7/Other.java": "class Other {\n"
        + "".join(f"  int g{i}() {{ return {i * 7}; }}\n" for i in range(40))
        + "}\n",
        "repo7/README.md": "# Example\n\nA small project used by the pinned-output test.\n",
    }
    for rel, text in extra.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _records(folder: Path, shards: list[dict[str, Any]], ordered: bool) -> tuple[int, str]:
    """(count, sha256) of the records of ``shards`` as canonical JSON lines: in the manifest's
    shard order, or sorted when not ``ordered``."""
    lines: list[str] = []
    for shard in shards:
        path = folder / shard["file"]
        with open(path, "rb") as fh:
            data = fh.read()
        if path.suffix == ".zst":
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
        lines.extend(
            json.dumps(_timeless(json.loads(line)), sort_keys=True) for line in data.splitlines()
        )
    if not ordered:
        lines.sort()
    return len(lines), hashlib.sha256("".join(f"{x}\n" for x in lines).encode()).hexdigest()


def stream_digest(out: Path) -> dict[str, Any]:
    """What a finished run produced, without what varies by machine (see the docstring)."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    stages = [
        {
            "key": s["key"],
            "in": s["in"],
            "out": s["out"],
            "dropped": s["dropped"],
            "report": {k: v for k, v in s["report"].items() if k not in HOW_KEYS},
        }
        for s in manifest["stages"]
    ]
    corpus = _records(out / "corpus", manifest["corpus"]["shards"], ordered=True)
    rejects = _records(out / "rejects", manifest["rejects"]["shards"], ordered=False)
    return {
        "source": {k: manifest["source"][k] for k in ("items", "records", "dropped")},
        "corpus": {"records": manifest["corpus"]["records"], "content": list(corpus)},
        "rejects": {
            "records": manifest["rejects"]["records"],
            "reasons": manifest["rejects"]["reasons"],
            "content": list(rejects),
        },
        "langs": manifest["langs"],
        "stages": hashlib.sha256(json.dumps(stages, sort_keys=True).encode()).hexdigest(),
    }


def run_stream(work: Path, *options: str) -> dict[str, Any]:
    """The default pipeline (no --config) over the embedded input in ``work/tree``."""
    tree = work / "tree"
    if not tree.exists():
        write_input(tree)
    out = work / ("out" + "".join(options).replace("-", "_"))
    assert cli.main(["run", str(tree), "--out", str(out), "--no-progress", *options]) == 0
    return stream_digest(out)


async def eval_verdicts(sandbox_url: str, token: str, data_dir: Path, cache: Path) -> Any:
    """Per task: the canonical solution's and an empty body's verdict on base and plus."""
    from codekiln.eval.data import load_dataset
    from codekiln.eval.evaluate import Quarantine, Sample, evaluate_samples
    from codekiln.eval.execute import Evaluator, ExecConfig
    from codekiln.sandbox.client import SandboxClient

    ds = load_dataset("humaneval+", data_dir)
    tasks = list(ds.tasks.values())[:EVAL_TASKS]
    samples: list[Sample] = []
    for t in tasks:
        samples.append(Sample(t.task_id, t.canonical, len(samples)))
        samples.append(Sample(t.task_id, f"{t.prompt}    pass\n", len(samples)))
    async with SandboxClient(sandbox_url, token=token) as client:
        evaluator = Evaluator(ds, client, ExecConfig(concurrency=2), cache_dir=cache)
        ev = await evaluate_samples(evaluator, samples, Quarantine())
    out: dict[str, dict[str, Any]] = {}
    for sample, verdict in zip(ev.samples, ev.verdicts, strict=True):
        kind = "canonical" if sample.line % 2 == 0 else "empty_body"
        out.setdefault(sample.task_id, {})[kind] = {
            part: [v.status, v.fail_index] for part, v in sorted(verdict.items())
        }
    return out


async def synth_digest(work: Path, sandbox_url: str, token: str, data_dir: Path) -> Any:
    """The synthesis job with every default generator, the scripted fake LLM and the real
    sandbox (execution filter on) over tests/synth's small corpus and instruction file."""
    from codekiln.synth.config import SynthConfig
    from codekiln.synth.job import run_synthesis

    from tests.synth import scripted
    from tests.synth.test_job import write_corpus, write_instructions

    async with FakeOpenAIServer(model="fake-coder", slow_s=5.0, retry_after_s=0.05) as server:
        scripted.install(server)
        config = SynthConfig(max_seeds=4, packages=("heapq",), apis_per_package=50)
        report = await asyncio.to_thread(
            run_synthesis, write_corpus(work), work / "out", server.url, sandbox_url,
            config=config, sandbox_token=token, data_dir=data_dir,
            instructions=[write_instructions(work)],
        )  # fmt: skip
        server.assert_clean()
    out = work / "out"
    sft = json.loads((out / "sft" / "manifest.json").read_text())
    # The generators run concurrently: every output is digested as a set of lines.
    return {
        "execution_filter": report["execution_filter"],
        "seeds": report["seeds"],
        "generators": _timeless(report["generators"]),
        "annealing": _records(out / "annealing", report["annealing"]["shards"], ordered=False),
        "rejects": {
            "reasons": report["rejects"]["reasons"],
            "content": _records(out / "rejects", _shards(out / "rejects"), ordered=False),
        },
        "sft": {
            name: {
                "by_source": stage["by_source"],
                "content": _records(out / "sft" / name, stage["shards"], ordered=False),
            }
            for name, stage in sorted(sft["stages"].items())
        },
        "seeds_file": _records(out, [{"file": "seeds.jsonl"}], ordered=False),
    }


def _shards(folder: Path) -> list[dict[str, Any]]:
    return [{"file": p.name} for p in sorted(folder.glob("*.jsonl.zst"))]


def _pins() -> dict[str, Any]:
    pins: dict[str, Any] = json.loads(PINS.read_text())
    return pins


def _check(name: str, got: Any) -> None:
    want = _pins()[name]
    assert got == want, (
        f"the {name} outputs differ from the pinned ones ({PINS.name}). If the change is "
        f"intended, regenerate the pins with `{REGENERATE}` and commit them on their own."
    )


def test_default_stream_run_is_pinned(tmp_path: Path) -> None:
    """The default pipeline's corpus, rejects and counts, with one worker and with two."""
    one = run_stream(tmp_path, "--workers", "1")
    two = run_stream(tmp_path, "--workers", "2")
    assert two == one, "the worker count changed the output"
    # the embedded input reaches the stages it is there for
    assert one["rejects"]["reasons"].get("exact_dedup:duplicate", 0) > 0
    _check("stream", one)


def test_ray_stream_run_is_pinned(tmp_path: Path) -> None:
    """The same run through the Ray executor (a local Ray instance the CLI starts, bound to
    127.0.0.1), cut into several shards and shuffle partitions: the same pinned outputs."""
    pytest.importorskip("ray")
    got = run_stream(tmp_path, "--executor", "ray", "--shard-files", "7", "--partitions", "3")
    _check("stream", got)


@pytest.mark.docker
def test_eval_verdicts_are_pinned(sandbox_service: Any, data_dir: Path, tmp_path: Path) -> None:
    """Canonical solutions pass; empty bodies fail, each at its pinned first input."""
    got = asyncio.run(eval_verdicts(sandbox_service.url, sandbox_service.token, data_dir, tmp_path))
    assert all(v["canonical"]["base"][0] == "pass" for v in got.values())
    _check("eval", got)


@pytest.mark.docker
def test_synth_outputs_are_pinned(sandbox_service: Any, data_dir: Path, tmp_path: Path) -> None:
    """Synthesis with the scripted fake LLM: annealing, SFT, rejects and seeds as pinned."""
    got = asyncio.run(synth_digest(tmp_path, sandbox_service.url, sandbox_service.token, data_dir))
    assert got["execution_filter"] is True
    _check("synth", _jsonable(got))


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from the JSON file (tuples become lists)."""
    return json.loads(json.dumps(value))


def _write() -> None:
    """Recompute every pin that can be computed here and rewrite the JSON file."""
    pins = _pins() if PINS.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        pins["stream"] = run_stream(Path(tmp), "--workers", "1")
        service = start_service(Path(tmp), pool_size=2)
        try:
            data_dir = Path(os.environ.get("CODEKILN_DATA_DIR") or REPO.parent / "shared" / "data")
            cache = Path(tmp) / "refcache"
            cache.mkdir()
            pins["eval"] = asyncio.run(eval_verdicts(service.url, service.token, data_dir, cache))
            synth = asyncio.run(synth_digest(Path(tmp), service.url, service.token, data_dir))
            pins["synth"] = _jsonable(synth)
        finally:
            stop_service(service)
    PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {REGENERATE}")
    _write()
