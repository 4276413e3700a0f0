"""Every flag lands in its config field: the CLIs build their frozen configs with
codekiln.cli_common.from_args (a flag fills the field of its name), so each command here gets a
value of its own for every flag, and each value is looked up where it must land."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.eval import cli as eval_cli
from codekiln.eval.cli import EvalJob, SandboxTarget
from codekiln.eval.limits import ExecConfig
from codekiln.stream.ray.cli import add_arguments, options_from_args
from codekiln.stream.ray.options import RayOptions
from codekiln.stream.sampling import cli as mix_cli
from codekiln.stream.sampling.mixture import MixSpec
from codekiln.train import eval_launch, launcher
from codekiln.train.kube import EvalJobParams

TRAIN_CFG = {
    "stage": "pretrain",
    "model": {"preset": "opencoder-1.5b"},
    "data": {"corpus_dir": "/data/out/corpus", "tokenizer_path": "/data/tokenizer"},
    "batch": {"global_batch": 1024, "micro_batch": 4},
    "checkpoint": {"dir": "/checkpoints/run1"},
}


def _at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def _same(actual: Any, given: list[str]) -> bool:
    if isinstance(actual, tuple | list):
        return [str(x) for x in actual] == given
    [text] = given
    if isinstance(actual, Path):
        return actual == Path(text)
    return actual is not None and actual == type(actual)(text)


def assert_lands(
    argv: list[str], built: Any, *inner: str, elsewhere: dict[str, str | None] | None = None
) -> None:
    """Each ``--flag VALUE`` of ``argv`` is the value of its field in ``built``.

    The field is named like the flag (``--max-job-s``: ``max_job_s``), on ``built`` or on the
    first of its ``inner`` objects that has one, unless ``elsewhere`` gives the flag's dotted
    path from ``built`` (a field of another name), or None (not part of the config: a file
    read, the output path, a value parsed first). A switch (no value) is not looked up.
    """
    elsewhere = elsewhere or {}
    given: dict[str, list[str]] = {}
    for flag, value in zip(argv, [*argv[1:], "--"], strict=True):
        if flag.startswith("--") and not value.startswith("--"):
            given.setdefault(flag, []).append(value)
    for flag, values in given.items():
        field = flag[2:].replace("-", "_")
        path = elsewhere.get(flag, field)
        if path is None:
            continue
        if flag not in elsewhere:
            owners = [p for p in ("", *inner) if hasattr(_at(built, p) if p else built, field)]
            assert owners, f"{flag}: no field {field}"
            path = f"{owners[0]}.{field}" if owners[0] else field
        assert _same(_at(built, path), values), f"{flag} {values}: not in {path}"


def _capture(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[Any]:
    """Record the first argument of every call of ``module.name``, then call the real one."""
    seen: list[Any] = []
    real = getattr(module, name)

    def spy(first: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(first)
        return real(first, *args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


def test_eval_run_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """codekiln-eval run: each flag in its EvalJob, ExecConfig or GenConfig field."""
    jobs: list[EvalJob] = []

    async def record(job: EvalJob) -> list[str]:
        jobs.append(job)
        return []

    monkeypatch.setattr(eval_cli, "run_job", record)
    monkeypatch.delenv("CODEKILN_SANDBOX_TOKEN_FILE", raising=False)
    monkeypatch.setenv("CODEKILN_SANDBOX_TOKEN", "tok")
    argv = [
        "run", "--endpoint", "http://e/v1", "--model", "m", "--mode", "instruct",
        "--samples", "3", "--temperature", "0.4", "--top-p", "0.9", "--max-tokens", "55",
        "--llm-concurrency", "7", "--dataset", "humaneval", "--variant", "mini",
        "--data-dir", "/d", "--out", str(tmp_path / "o"), "--sandbox-url", "http://sb",
        "--concurrency", "9", "--min-time-limit-s", "2", "--time-limit-factor", "3",
        "--max-job-s", "33", "--memory-mb", "99", "--sandbox-max-timeout-s", "44",
        "--limit", "5", "--reference-cache", "/rc",
    ]  # fmt: skip
    assert eval_cli.main(argv) == 0
    [job] = jobs
    renamed = {"--llm-concurrency": "gen.concurrency", "--concurrency": "exec_config.concurrency"}
    places = {"--out": "out_dir", "--sandbox-url": "sandbox.url"}
    assert_lands(argv, job, "exec_config", "gen", elsewhere={**renamed, **places})
    assert (job.sandbox.token, job.samples_path, job.gen.model) == ("tok", None, "m")


def test_eval_evaluate_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """codekiln-eval evaluate: the samples file and the label; nothing generated."""
    jobs: list[EvalJob] = []

    async def record(job: EvalJob) -> list[str]:
        jobs.append(job)
        return []

    monkeypatch.setattr(eval_cli, "run_job", record)
    monkeypatch.setenv("CODEKILN_SANDBOX_URL", "http://sb")
    monkeypatch.delenv("CODEKILN_SANDBOX_TOKEN_FILE", raising=False)
    monkeypatch.delenv("CODEKILN_SANDBOX_TOKEN", raising=False)
    argv = ["evaluate", "s.jsonl", "--dataset", "mbpp+", "--out", "o", "--model", "lab"]
    assert eval_cli.main([*argv, "--data-dir", "/d"]) == 0
    [job] = jobs
    assert (job.samples_path, job.gen, job.model) == (Path("s.jsonl"), None, "lab")
    assert job.sandbox == SandboxTarget(url="http://sb", token=None)
    assert job.exec_config == ExecConfig()


def test_eval_launch_flags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """codekiln-eval launch: each flag in its EvalJobParams field."""
    seen = _capture(monkeypatch, eval_launch, "build_eval_objects")
    argv = [
        "--name", "ev1", "--image", "i:1", "--endpoint", "http://e/v1", "--dry-run",
        "--model", "m", "--dataset", "mbpp", "--dataset", "humaneval", "--mode", "instruct",
        "--samples", "5", "--temperature", "0.7", "--gpus", "2", "--vllm-image", "v:1",
        "--out-dir", "/o", "--namespace", "ns", "--data-pvc", "dp", "--checkpoints-pvc", "cp",
    ]  # fmt: skip
    assert eval_launch.eval_launch_main(argv) == 0
    [params] = seen
    volumes = {"--data-pvc": "volumes.data_pvc", "--checkpoints-pvc": "volumes.checkpoints_pvc"}
    renamed = {"--model": "model_name", "--dataset": "datasets", "--gpus": "vllm_gpus"}
    assert_lands(argv, params, elsewhere={**renamed, **volumes})
    assert params.model_path is None
    argv = ["--name", "ev1", "--image", "i:1", "--model-path", "/c/x", "--dry-run"]
    assert eval_launch.eval_launch_main(argv) == 0
    assert seen[1] == EvalJobParams(name="ev1", image="i:1", model_path="/c/x")
    assert "kind: Job" in capsys.readouterr().out


def test_train_launch_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """codekiln-train launch: each flag in its TrainJobParams field or config override."""
    seen = _capture(monkeypatch, launcher, "build_train_objects")
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(TRAIN_CFG))
    argv = [
        "--name", "t1", "--image", "i:1", "--config", str(config), "--dry-run", "--nodes", "2",
        "--gpus", "4", "--kind", "indexed-job", "--corpus-dir", "/cc", "--tokenizer", "/tk",
        "--checkpoint-dir", "/ck", "--namespace", "ns", "--data-pvc", "dp",
        "--checkpoints-pvc", "cp",
    ]  # fmt: skip
    assert launcher.train_launch_main(argv) == 0, capsys.readouterr().err
    [params] = seen
    volumes = {"--data-pvc": "volumes.data_pvc", "--checkpoints-pvc": "volumes.checkpoints_pvc"}
    overrides = {
        "--corpus-dir": "train_config.data.corpus_dir",
        "--tokenizer": "train_config.data.tokenizer_path",
        "--checkpoint-dir": "train_config.checkpoint.dir",
    }
    assert_lands(
        argv,
        params,
        elsewhere={"--config": None, "--gpus": "gpus_per_node", **volumes, **overrides},
    )
    assert params.train_config["batch"] == TRAIN_CFG["batch"]


def test_ray_executor_flags() -> None:
    """codekiln-stream run --executor ray: each flag in its RayOptions field; --workers is
    the local instance's CPUs (0: Ray's own count)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=0)
    add_arguments(parser)
    argv = ["--executor", "ray", "--address", "auto", "--shard-files", "3", "--partitions", "2"]
    argv += ["--task-timeout-s", "5", "--workers", "4"]
    options = options_from_args(parser.parse_args(argv))
    assert_lands(argv, options, elsewhere={"--executor": None, "--workers": "num_cpus"})
    assert options_from_args(parser.parse_args([])) == RayOptions()


def test_anneal_mix_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """codekiln-stream anneal-mix: each flag in its MixSpec field."""
    specs: list[MixSpec] = []

    def record(original: Any, hq: Any, out: Path, spec: MixSpec) -> dict[str, Any]:
        specs.append(spec)
        return {"streams": {}, "out": str(out)}

    monkeypatch.setattr(mix_cli, "build_mixture", record)
    argv = [
        "anneal-mix", str(tmp_path), "--out", str(tmp_path / "mix.jsonl"),
        "--original-share", "0.5", "--weights", "a=2,b=0.5", "--unit", "records",
        "--total", "100", "--max-repeat", "3", "--seed", "7",
    ]  # fmt: skip
    assert mix_cli.main(argv) == 0
    [spec] = specs
    assert_lands(argv, spec, elsewhere={"--out": None, "--weights": None})
    assert spec.weights == {"a": 2.0, "b": 0.5}
