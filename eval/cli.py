"""``codekiln-eval``: run / evaluate / compare / launch.

    codekiln-eval run --endpoint URL --model NAME --dataset humaneval+ --out DIR
    codekiln-eval evaluate SAMPLES.jsonl --dataset mbpp+ --out DIR
    codekiln-eval compare DIR/eval_results.json ... --out REPORT_DIR
    codekiln-eval launch ...          (Kubernetes: vLLM server + eval Job; needs the train extra)

Environment, read here only: CODEKILN_DATA_DIR (benchmark files), CODEKILN_SANDBOX_URL and
CODEKILN_SANDBOX_TOKEN_FILE (or the token itself in CODEKILN_SANDBOX_TOKEN) for the sandbox
service.

Exit codes: 0 done, 1 the evaluation failed, 2 bad usage, configuration or a refused token,
130 interrupted (Ctrl-C: ``run`` resumes its generation from the samples already written).
A traceback is never printed for these: it goes to the log file the message names.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codekiln.cli_common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    SANDBOX_URL_ENV,
    CommandParser,
    InputNotFound,
    add_data_dir_arg,
    add_sandbox_args,
    default_data_dir,
    from_args,
    input_not_found,
    internal_error,
    log_exception,
    quiet_on_closed_stdout,
)

from .data import DATASETS, VARIANTS, load_dataset
from .errors import ConfigError, EvalError
from .limits import ExecConfig
from .prompts import MODES

#: The command's name: its messages, its log file, and the Job commands :func:`run_argv` spells.
PROG = "codekiln-eval"


@dataclass(frozen=True)
class SandboxTarget:
    url: str
    token: str | None


@dataclass(frozen=True)
class EvalJob:
    """Everything one evaluation needs; what a Kubernetes Job's entry point builds."""

    dataset: str
    data_dir: Path
    out_dir: Path
    sandbox: SandboxTarget
    exec_config: ExecConfig
    variant: str = "full"
    samples_path: Path | None = None  # evaluate these; None: generate first (``run``)
    gen: Any = None  # generate.GenConfig for ``run``
    model: str | None = None
    reference_cache: Path | None = None
    limit: int | None = None  # only the first N tasks (smoke runs)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--variant", default="full", choices=VARIANTS, help="HumanEval+/MBPP+ file")
    add_data_dir_arg(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_sandbox_args(p)
    p.add_argument("--concurrency", type=int, default=4, help="sandbox jobs in flight")
    # evalplus 0.3.1's defaults (DEFAULT_MIN_TIME_LIMIT, DEFAULT_GT_TIME_LIMIT_FACTOR)
    p.add_argument("--min-time-limit-s", type=float, default=ExecConfig.min_time_limit_s)
    p.add_argument("--time-limit-factor", type=float, default=ExecConfig.time_limit_factor)
    p.add_argument("--max-job-s", type=float, default=ExecConfig.max_job_s)
    p.add_argument("--memory-mb", type=int, default=ExecConfig.memory_mb)
    p.add_argument(
        "--sandbox-max-timeout-s",
        type=float,
        default=ExecConfig.sandbox_max_timeout_s,
        help="the sandbox service's cap on one job; slower parts are split into several jobs",
    )
    p.add_argument("--limit", type=int, help="only the first N tasks (a smoke run)")
    p.add_argument("--json", action="store_true", help="print pass@k and counts as one JSON object")
    p.add_argument(
        "--reference-cache",
        type=Path,
        help="folder for expected outputs and reference times (default: --out)",
    )


def build_parser() -> argparse.ArgumentParser:
    # --help shows every default, the subcommands' too
    parser = CommandParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate samples from an endpoint, then evaluate them")
    run.add_argument("--endpoint", required=True, help="OpenAI-compatible base URL (vLLM)")
    run.add_argument("--model", help="model name (default: the first /v1/models lists)")
    run.add_argument("--mode", default="base", choices=MODES)
    run.add_argument("--samples", type=int, default=1, help="samples per task")
    run.add_argument("--temperature", type=float, default=0.0)
    run.add_argument("--top-p", type=float, default=1.0)
    run.add_argument("--max-tokens", type=int, default=768)
    run.add_argument("--llm-concurrency", type=int, default=16)
    _add_common(run)

    ev = sub.add_parser("evaluate", help="evaluate an evalplus samples JSONL")
    ev.add_argument("samples", type=Path)
    ev.add_argument("--model", help="model label stored in the results")
    _add_common(ev)

    cmp_ = sub.add_parser("compare", help="compare results against published baselines")
    cmp_.add_argument("results", type=Path, nargs="+", help="eval_results.json files")
    cmp_.add_argument("--out", type=Path, help="write compare.md, compare.png, compare.json")
    cmp_.add_argument("--model", help="label for these results (default: from the results)")
    cmp_.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout")

    sub.add_parser(
        "launch", help="Kubernetes: vLLM server + eval Job (train extra)", add_help=False
    )
    return parser


def run_argv(
    *,
    endpoint: str,
    model: str,
    dataset: str,
    mode: str,
    samples: int,
    temperature: float,
    out: str | Path,
) -> list[str]:
    """The argv of ``codekiln-eval run`` for these values, program name first: what the eval
    Kubernetes Job runs (``shlex.join`` it for a shell). Spelled here, beside the parser it
    must satisfy; tests/eval/test_launch.py parses it back into the same values."""
    return [
        PROG, "run", "--endpoint", endpoint, "--model", model, "--dataset", dataset,
        "--mode", mode, "--samples", str(samples), "--temperature", str(temperature),
        "--out", str(out),
    ]  # fmt: skip


def _sandbox(args: argparse.Namespace) -> SandboxTarget:
    url = args.sandbox_url or os.environ.get(SANDBOX_URL_ENV)
    if not url:
        raise ConfigError(
            f"no sandbox: pass --sandbox-url or set {SANDBOX_URL_ENV} "
            "(start one with: codekiln-sandbox serve --host 127.0.0.1 --port P --token-file F)"
        )
    from codekiln.cli_common import SecretError, sandbox_token

    try:
        token = sandbox_token(args.sandbox_token_file, os.environ)
    except SecretError as exc:
        raise ConfigError(str(exc)) from exc
    return SandboxTarget(url=url, token=token)


def _job(args: argparse.Namespace) -> EvalJob:
    gen = None
    if args.command == "run":
        from .generate import GenConfig

        gen = from_args(GenConfig, args, concurrency=args.llm_concurrency)
    return from_args(
        EvalJob,
        args,
        data_dir=args.data_dir or default_data_dir(os.environ),
        out_dir=args.out,
        sandbox=_sandbox(args),
        exec_config=from_args(ExecConfig, args),  # --concurrency: sandbox jobs in flight
        samples_path=args.samples if args.command == "evaluate" else None,
        gen=gen,
    )


async def run_job(job: EvalJob) -> list[str]:
    """Generate (for ``run``) and evaluate; write the results; return the pass@k lines.

    A plain coroutine with no CLI state, so a Kubernetes Job's entry point can call it.
    """
    from codekiln.sandbox.client import SandboxClient

    from .evaluate import evaluate_samples, pass_at_k_lines, read_samples, write_outputs
    from .execute import Evaluator

    full = dataset = load_dataset(job.dataset, job.data_dir, job.variant)
    extra: dict[str, Any] = {"model": job.model}
    if job.limit is not None:
        if job.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {job.limit}")
        kept = dict(list(dataset.tasks.items())[: job.limit])
        dataset = replace(dataset, tasks=kept, notes=(*dataset.notes, f"first {len(kept)} tasks"))
        # A partial run: `compare` marks its scores as such, never as the benchmark's score.
        extra["partial"] = {"limit": job.limit, "tasks": len(kept), "of_tasks": len(full.tasks)}
    job.out_dir.mkdir(parents=True, exist_ok=True)
    if job.gen is not None:
        from .generate import generate

        # Before generating (it may take hours): a sandbox that is not there, or refuses the
        # token, would only be found once every sample is drawn.
        async with SandboxClient(job.sandbox.url, token=job.sandbox.token) as sandbox:
            await _require_sandbox(sandbox, job.sandbox.url)
        samples_path = await generate(dataset, job.gen, job.out_dir)
        extra.update(
            model=job.gen.model or job.model,
            mode=job.gen.mode,
            temperature=job.gen.temperature,
            samples_per_task=job.gen.samples,
        )
    else:
        assert job.samples_path is not None
        samples_path = job.samples_path
    # Read against the whole benchmark: with --limit, a sample of a task past the limit is left
    # out and counted, not quarantined as an "unknown task".
    samples, quarantine = read_samples(samples_path, full)
    if dataset is not full:
        outside = [x for x in samples if x.task_id not in dataset.tasks]
        samples = [x for x in samples if x.task_id in dataset.tasks]
        extra["partial"]["samples_outside_limit"] = len(outside)
    extra["samples_file"] = str(samples_path)
    extra["exec_config"] = job.exec_config.__dict__
    async with SandboxClient(job.sandbox.url, token=job.sandbox.token) as sandbox:
        # Before any sample runs: a wrong token would fail every job (an exception group).
        await _require_sandbox(sandbox, job.sandbox.url)
        evaluator = Evaluator(
            dataset, sandbox, job.exec_config, cache_dir=job.reference_cache or job.out_dir
        )
        evaluation = await evaluate_samples(evaluator, samples, quarantine, job.out_dir)
    lines = pass_at_k_lines(evaluation)
    path = write_outputs(evaluation, job.out_dir, extra)
    lines.append(f"results: {path}")
    return lines


async def _require_sandbox(sandbox: Any, url: str) -> None:
    """A ConfigError naming why, unless the sandbox at ``url`` runs a trivial job for our token."""
    from codekiln.cli_common import check_sandbox

    problem = await check_sandbox(sandbox, url)
    if problem is not None:
        raise ConfigError(problem)


def run_main(argv: Sequence[str]) -> int:
    """``run`` / ``evaluate`` from an argument list (also a Job's command)."""
    args = build_parser().parse_args(list(argv))
    job = _job(args)
    lines = asyncio.run(run_job(job))
    if args.json:
        results = json.loads((job.out_dir / "eval_results.json").read_text(encoding="utf-8"))
        keys = ("model", "dataset", "pass_at_k", "pass_at_k_unit", "counts", "partial")
        summary = {k: results[k] for k in keys if k in results}
        summary["results"] = str(job.out_dir / "eval_results.json")
        print(json.dumps(summary, sort_keys=True), flush=True)
        return 0
    for line in lines:
        print(line, flush=True)
    return 0


def _launch(argv: list[str]) -> int:
    try:
        from codekiln.train.eval_launch import eval_launch_main
    except ImportError as exc:
        print(
            "codekiln-eval launch needs the Kubernetes launcher of the train component: "
            f"pip install 'codekiln[train]' ({exc})",
            file=sys.stderr,
        )
        return 2
    result: int = eval_launch_main(argv)
    return result


@quiet_on_closed_stdout
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "launch":
        return _launch(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            from .compare import compare

            text, written = compare(args.results, args.out, args.model)
            if args.json:
                from .compare import compare_json

                print(json.dumps(compare_json(args.results, args.model), indent=1))
                return 0
            print(text)
            for kind, path in written.items():
                print(f"{kind}: {path}")
            return 0
        return run_main(argv)
    except BrokenPipeError:  # stdout's reader went away: quiet_on_closed_stdout ends it
        raise
    except InputNotFound as exc:
        return input_not_found(PROG, exc)
    except ConfigError as exc:
        print(f"codekiln-eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EvalError as exc:
        print(f"codekiln-eval: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(
            "codekiln-eval: interrupted; run the same command again to resume "
            "(samples already generated are kept)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BaseExceptionGroup as group:
        # One line, never the group's tree: the first error's type and message.
        first = _first_leaf(group)
        if isinstance(first, KeyboardInterrupt):
            print("codekiln-eval: interrupted; run the same command again", file=sys.stderr)
            return EXIT_INTERRUPTED
        where = log_exception(PROG, group)
        print(f"codekiln-eval: {type(first).__name__}: {first} (details: {where})", file=sys.stderr)
        return EXIT_USAGE if isinstance(first, ConfigError) else EXIT_FAILURE
    except Exception as exc:  # a bug, not a user error: one line here, the traceback logged
        return internal_error(PROG, exc)


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


if __name__ == "__main__":
    sys.exit(main())
