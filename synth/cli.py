"""``codekiln-synth``: run the synthesis job, score texts with AutoDS, decontaminate, list prompts.

Commands::

    codekiln-synth run --corpus DIR --out DIR [--llm-url URL[,URL...]] [--sandbox-url URL]
                       [--sandbox-token-file FILE]
                       [--config FILE] [--data-dir DIR] [--instructions FILE ...]
    codekiln-synth score FILE.jsonl --llm-url URL [--questions code_quality]
    codekiln-synth decontam FILE|DIR [--data-dir DIR]   # .jsonl[.zst|.gz], .parquet, shards
    codekiln-synth prompts

Settings come from the flags, else (``run``) the config file's ``synth:`` section, else the
environment, read at this entry point only: ``CODEKILN_LLM_URL``, ``CODEKILN_SANDBOX_URL``,
``CODEKILN_SANDBOX_TOKEN_FILE`` (or the token itself in ``CODEKILN_SANDBOX_TOKEN``; never on
the command line), ``CODEKILN_DATA_DIR``.
Exit codes: 0 done, 1 the job failed (message on stderr), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from codekiln.cli_common import (
    SANDBOX_URL_ENV,
    CommandParser,
    InputNotFound,
    add_data_dir_arg,
    add_sandbox_args,
    default_data_dir,
    input_not_found,
    internal_error,
    quiet_on_closed_stdout,
)

from .errors import ConfigError, SynthError


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    # --help shows every default, the subcommands' too
    p = CommandParser(prog="codekiln-synth", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the synthesis job on a stream corpus")
    run.add_argument("--corpus", required=True, type=Path, help="a codekiln-stream corpus/ folder")
    run.add_argument("--out", required=True, type=Path)
    # run: flag > config file > environment (resolved in _cmd_run)
    run.add_argument("--llm-url")
    add_sandbox_args(run, url_default=f"synth.sandbox_url of --config, else ${SANDBOX_URL_ENV}")
    add_data_dir_arg(run, first="synth.data_dir of --config, else ")
    run.add_argument("--config", type=Path, help="YAML file; keys under synth:")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument(
        "--instructions",
        type=Path,
        nargs="*",
        default=[],
        help="Evol-Instruct / Infinity-Instruct / McEval JSONL files to ingest",
    )
    score = sub.add_parser("score", help="AutoDS-score the text of each JSONL record")
    score.add_argument("file", type=Path)
    score.add_argument("--llm-url", default=env.get("CODEKILN_LLM_URL"))
    score.add_argument("--questions", default="code_quality", help="AutoDS question set")
    score.add_argument("--field", default="text", help="the JSON field holding the text")
    dec = sub.add_parser(
        "decontam",
        help="check records against HumanEval(+)/MBPP(+); prints one JSON line per "
        "contaminated (or unreadable) record, then the totals",
    )
    dec.add_argument("file", type=Path, help=".jsonl, .jsonl.zst, .parquet or a shard folder")
    add_data_dir_arg(dec, default=default_data_dir(env))
    dec.add_argument("--field", default="text", help="the JSON field holding the text")
    sub.add_parser("prompts", help="list the prompt files and their parsers")
    return p


def _rows(path: Path, field: str) -> list[tuple[int | str, str | None]]:
    """``(where, text)`` per record of a JSONL / JSONL.zst / Parquet file or shard folder.

    ``where`` is ``line N`` (one file) or ``SHARD:N`` (a folder); text is None where the
    record has no string ``field``. No record at all is an error, never an empty result, and
    so is no text at all: every line not JSON, or no record with ``field`` (a typo in
    ``--field`` checked nothing and exited 0).
    """
    from codekiln.shards import BadLine, ShardError, iter_objects

    rows: list[tuple[int | str, str | None]] = []
    many = path.is_dir()
    bad = 0
    try:
        for shard, number, obj in iter_objects(path):
            where: int | str = f"{shard}:{number}" if many else number
            bad += isinstance(obj, BadLine)
            text = None if isinstance(obj, BadLine) else obj.get(field)
            rows.append((where, text if isinstance(text, str) else None))
    except ShardError as exc:
        raise ConfigError(str(exc)) from exc
    if not rows:
        raise SynthError(f"{path}: no records to read")
    if bad == len(rows):
        raise SynthError(f"{path}: none of its {bad} lines is a JSON object")
    if all(text is None for _, text in rows):
        raise ConfigError(
            f"{path}: no record has a string field {field!r} ({len(rows) - bad} records, "
            f"{bad} lines not JSON); --field names the text's field"
        )
    return rows


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import SynthConfig
    from .job import DISABLED_NOTE, run_synthesis

    config = SynthConfig.from_file(args.config) if args.config else SynthConfig()
    env = os.environ
    llm_url = args.llm_url or config.llm_url or env.get("CODEKILN_LLM_URL")
    sandbox_url = args.sandbox_url or config.sandbox_url or env.get(SANDBOX_URL_ENV)
    data_dir = args.data_dir or config.data_dir or default_data_dir(env)
    if not llm_url:
        print(DISABLED_NOTE, file=sys.stderr)
        return 2
    if not data_dir:
        raise ConfigError("--data-dir (or CODEKILN_DATA_DIR) is required for decontamination")
    report = run_synthesis(
        args.corpus, args.out, llm_url, sandbox_url, config=config,
        sandbox_token=_token(args.sandbox_token_file),
        data_dir=data_dir, instructions=args.instructions,
    )  # fmt: skip
    stages = report.get("sft", {}).get("stages", {})
    if args.json:
        summary = {
            "annealing_samples": report["annealing"]["records"],
            "sft_written": {k: v["written"] for k, v in stages.items()},
            "rejects": report["rejects"]["records"],
            "report": str(args.out / "report.md"),
        }
        print(json.dumps(summary, sort_keys=True))
        return 0
    print(f"annealing: {report['annealing']['records']} samples; "
          + "; ".join(f"SFT {k}: {v['written']}" for k, v in stages.items())
          + f"; rejects: {report['rejects']['records']}")  # fmt: skip
    print(f"report: {args.out / 'report.md'}")
    return 0


def _token(path: Path | None) -> str | None:
    from codekiln.cli_common import SecretError, sandbox_token

    try:
        return sandbox_token(path, os.environ)
    except SecretError as exc:
        raise ConfigError(str(exc)) from exc


def _cmd_score(args: argparse.Namespace) -> int:
    from .autods import AutoDSScorer
    from .llm import LLMClient, LLMConfig

    if not args.llm_url:
        raise ConfigError("--llm-url (or CODEKILN_LLM_URL) is required")
    rows = _rows(args.file, args.field)

    async def main() -> None:
        async with LLMClient(LLMConfig(endpoints=tuple(args.llm_url.split(",")))) as llm:
            await llm.wait_ready(
                timeout_s=60, on_wait=lambda line: print(line, file=sys.stderr, flush=True)
            )
            scorer = AutoDSScorer(llm, args.questions)
            for line, text in rows:
                if text is None:
                    print(json.dumps({"line": line, "error": f"no string field {args.field!r}"}))
                    continue
                try:
                    result = await scorer.score(text)
                except SynthError as exc:
                    print(json.dumps({"line": line, "error": str(exc)}))
                    continue
                print(json.dumps({"line": line, "score": result.score, "answers": result.answers}))

    asyncio.run(main())
    return 0


def _cmd_decontam(args: argparse.Namespace) -> int:
    from .decontam import DecontamStage

    if args.data_dir is None:
        raise ConfigError("--data-dir (or CODEKILN_DATA_DIR) is required")
    stage = DecontamStage(data_dir=str(args.data_dir))
    index = stage.index
    dropped = unreadable = 0
    rows = _rows(args.file, args.field)
    for line, text in rows:
        if text is None:
            unreadable += 1
            print(json.dumps({"line": line, "error": f"no string field {args.field!r}"}))
            continue
        hit = index.check(text, max_overlap_ratio=stage.max_overlap_ratio,
                          max_overlap_count=stage.max_overlap_count)  # fmt: skip
        if hit:
            dropped += 1
            print(json.dumps({"line": line, "rule": hit[0], "benchmark": hit[1]}))
    # The total is the last line of the same JSON-lines output (stdout), so a pipe gets it.
    print(json.dumps({"records": len(rows), "contaminated": dropped, "unreadable": unreadable}))
    return 0


def _cmd_prompts(args: argparse.Namespace) -> int:
    from .prompts import PROMPT_DIR, load_prompt

    for path in sorted(PROMPT_DIR.glob("*.yaml")):
        if path.stem == "autods_questions":
            continue
        prompt = load_prompt(path.stem)
        print(f"{prompt.name:22} parser={prompt.parser:15} {prompt.description}")
    return 0


@quiet_on_closed_stdout
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"run": _cmd_run, "score": _cmd_score, "decontam": _cmd_decontam,
                "prompts": _cmd_prompts}  # fmt: skip
    try:
        return handlers[args.command](args)
    except BrokenPipeError:  # stdout's reader went away: quiet_on_closed_stdout ends it
        raise
    except InputNotFound as exc:
        return input_not_found("codekiln-synth", exc)
    except ConfigError as exc:
        print(f"codekiln-synth: configuration error: {exc}", file=sys.stderr)
        return 2
    except (SynthError, OSError) as exc:
        print(f"codekiln-synth: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("codekiln-synth: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line here, the traceback logged
        return internal_error("codekiln-synth", exc)


if __name__ == "__main__":
    sys.exit(main())
