"""``codekiln-stream``: run the pipeline over inputs, or serve as a long-running worker.

::

    codekiln-stream run INPUT... --out DIR [--config FILE]
    codekiln-stream run --default-input --out DIR       # what `make run` does
    codekiln-stream worker --config FILE                 # watch, claim, process, commit

Exit status: 0 done (bad records are quarantined, not fatal), 1 the run failed (a stage
crashed, output could not be written), 2 bad command line or config, 130 interrupted.
Environment (read here and nowhere else): ``CODEKILN_LLM_URL`` and ``CODEKILN_SANDBOX_URL``
turn on the LLM synthesis step when the config does not set ``synth.*``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from codekiln.stream.config import StreamConfig
from codekiln.stream.runtime.errors import ConfigError, InputError, StreamError

from codekiln.cli_common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandParser,
    internal_error,
    quiet_on_closed_stdout,
)
from codekiln.units import SizeError
from codekiln.units import parse_size as parse_size_value

PROG = "codekiln-stream"

#: Modules of other components that add subcommands: each has ``register(subparsers)``.
SUBCOMMAND_MODULES = ["codekiln.stream.webclf.cli", "codekiln.stream.filters.tune"]

#: --default-input reads the whole stdlib plus the start of site-packages (sorted by name)
#: up to this many bytes of admitted files, so `make run` ends in minutes on 2 cores; the
#: report says how many files the cap left unread. --max-bytes 0 lifts it.
DEFAULT_INPUT_MAX_BYTES = 160 * 1024 * 1024


def parse_size(text: str) -> int:
    """``123``, ``64k``, ``160M``, ``2G`` (powers of 1024) -> bytes (codekiln.units, as in
    YAML configs)."""
    try:
        return parse_size_value(text)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    # --help shows every default, the subcommands' too (the registered modules' included)
    parser = CommandParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="stream inputs through the pipeline into --out")
    run.add_argument("inputs", nargs="*", metavar="INPUT", help="folders, .jsonl[.zst], .parquet")
    run.add_argument(
        "--out", required=True, type=Path, help="output folder (resumed if it holds a run)"
    )
    run.add_argument("--config", type=Path, help="YAML config (default: the RefineCode pipeline)")
    run.add_argument(
        "--default-input",
        action="store_true",
        help="read this Python's standard library and site-packages (capped, see --max-bytes)",
    )
    run.add_argument("--max-files", type=_nonneg_int, help="stop after this many files (0: no cap)")
    run.add_argument(
        "--max-bytes",
        type=parse_size,
        help="stop after this many bytes of admitted input, e.g. 500M (0: no cap; "
        f"--default-input uses {DEFAULT_INPUT_MAX_BYTES // 2**20}M unless given)",
    )
    run.add_argument("--workers", type=_nonneg_int, help="process-pool size (0: one per core)")
    run.add_argument("--overwrite", action="store_true", help="discard a previous run in --out")
    run.add_argument(
        "--restart-on-change",
        action="store_true",
        help="replace a run in --out made with other inputs or config instead of refusing "
        "(the same run is still resumed; implied by --default-input)",
    )
    run.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout"
    )
    from codekiln.stream.ray.cli import add_arguments as add_executor_arguments

    add_executor_arguments(run)  # --executor {local,ray}, --address, ... (docs/ray.md)
    run.set_defaults(func=cmd_run)

    worker = sub.add_parser("worker", help="watch a folder for input shards and process them")
    worker.add_argument("--config", type=Path, required=True)
    worker.add_argument("--watch-dir", type=Path, help="overrides worker.watch_dir")
    worker.add_argument("--out", type=Path, help="overrides worker.out_dir")
    worker.add_argument("--worker-id", help="overrides worker.worker_id")
    worker.add_argument("--metrics-port", type=int, help="overrides worker.metrics_port (0: any)")
    worker.add_argument("--once", action="store_true", help="exit when no shard is left")
    worker.set_defaults(func=cmd_worker)

    for module_name in SUBCOMMAND_MODULES:
        _register(module_name, sub)
    return parser


def _register(module_name: str, sub: Any) -> None:
    try:
        found = importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return
    try:
        importlib.import_module(module_name).register(sub)
    except Exception as exc:
        print(
            f"{PROG}: warning: subcommands of {module_name} are unavailable: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )


def _err(message: str) -> None:
    # A config check reports every problem it found, one per line.
    for line in message.splitlines() or [""]:
        print(f"{PROG}: error: {line}", file=sys.stderr)


def _apply_caps(config: StreamConfig, args: argparse.Namespace) -> tuple[StreamConfig, list[str]]:
    notes: list[str] = []
    changes: dict[str, Any] = {}
    if args.max_files is not None:
        changes["max_files"] = args.max_files or None
    if args.max_bytes is not None:
        changes["max_bytes"] = args.max_bytes or None
    elif args.default_input and config.input.max_bytes is None:
        changes["max_bytes"] = DEFAULT_INPUT_MAX_BYTES
        notes.append(
            f"--default-input caps the input at {DEFAULT_INPUT_MAX_BYTES // 2**20} MiB of admitted "
            "files (the whole standard library, then site-packages in name order) so that "
            "`make run` ends in minutes on 2 cores; run with --max-bytes 0 for everything."
        )
    if args.default_input:
        # sysconfig's stdlib folder holds the base interpreter's own site-packages (not the
        # standard library); the venv's site-packages is read as its own input.
        extra = tuple(
            d for d in ("site-packages", "dist-packages") if d not in config.input.exclude_dirs
        )
        config = replace(
            config, input=replace(config.input, exclude_dirs=config.input.exclude_dirs + extra)
        )
        notes.append(
            "--default-input reads the standard library without the site-packages folder "
            "nested in it (the base interpreter's packages), then the venv's site-packages."
        )
    if args.workers is not None:
        config = replace(config, runtime=replace(config.runtime, workers=args.workers))
    if changes:
        config = replace(config, input=replace(config.input, **changes))
    return config, notes


def _terminal_console(*, stderr: bool) -> Any:
    """A rich Console when that stream is a terminal (as rich decides it), else None.

    Plain text otherwise: importing rich and laying out its tables cost about 0.1 CPU s a run,
    spent for nobody when the output goes to a file or a pipe. rich's own overrides
    (FORCE_COLOR, TTY_COMPATIBLE) still make it a terminal.
    """
    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        tty = False
    if not tty and "FORCE_COLOR" not in os.environ and "TTY_COMPATIBLE" not in os.environ:
        return None
    from rich.console import Console

    console = Console(stderr=stderr)
    return console if console.is_terminal else None


def cmd_run(args: argparse.Namespace) -> int:
    from codekiln.stream.runtime.job import default_inputs

    from codekiln.flow import FlowEnv, load_flow

    # The whole config (synth: and launch: included) and every endpoint it names are checked
    # before any work starts; the run after the commit is composed by codekiln.flow.
    flow = load_flow(args.config, FlowEnv.from_environ(os.environ))
    config, notes = _apply_caps(flow.stream, args)
    inputs = list(args.inputs)
    if args.default_input:
        inputs += default_inputs()
    if not inputs:
        raise ConfigError("no INPUT given (or use --default-input)")
    spec = flow.job_spec(
        inputs,
        args.out,
        config=config,
        overwrite=args.overwrite,
        restart_on_change=args.restart_on_change or args.default_input,
        notes=notes,
    )
    console = _terminal_console(stderr=True)
    progress = None
    if not args.no_progress and console is not None:
        from codekiln.stream.runtime.progress import show_progress

        async def progress(metrics: Any) -> None:
            await show_progress(metrics, console)

    def warn(message: str) -> None:
        if console is not None:
            console.print(f"[yellow]note:[/] {message}")
        else:
            print(f"note: {message}", file=sys.stderr)

    missing = [path for path in inputs if not Path(path).exists()]
    if len(missing) < len(inputs):  # none there at all: the run's error says it, in one line
        for path in missing:
            warn(f"input {path} does not exist: skipped (counted as reader:missing in rejects)")

    from codekiln.stream.ray.cli import run_on_ray, wants_ray

    result = run_on_ray(spec, args, warn) if wants_ray(args) else _run_local(spec, warn, progress)
    if args.json:
        print(json.dumps(_summary_json(result), sort_keys=True))
    else:
        _print_summary(result)
    if result.manifest["corpus"]["records"] == 0:
        # Legitimate (every record filtered), but never silent: the empty shard is written.
        warn(
            f"the corpus is empty: no record passed (rejects: "
            f"{result.manifest['rejects']['records']:,}, see the report for why)"
        )
    return 0


def _run_local(spec: Any, warn: Callable[[str], None], progress: Any) -> Any:
    from codekiln.stream.runtime.forked import ForkedPool
    from codekiln.stream.runtime.job import pool_stage_classes, run_job

    # The pool's workers are forked here, before the event loop starts any thread, with the
    # pool stages' modules imported and their shared data loaded (Stage.preload) but no stage
    # built yet (a constructor may start threads of its own); see runtime/forked.py. Where
    # forking is unsafe (another thread runs), the pipeline starts its fork-server pool instead.
    forked = None
    classes = pool_stage_classes(spec.config)
    if classes:
        for cls in classes:
            with contextlib.suppress(Exception):  # build_stages reports a stage that fails
                cls.preload()
        forked = ForkedPool.start(spec.config.runtime.workers)
    try:
        return asyncio.run(
            run_job(
                spec,
                warn=warn,
                on_metrics=progress,
                pool_factory=forked.configure if forked is not None else None,
            )
        )
    finally:
        if forked is not None:
            forked.close()


def _summary_json(result: Any) -> dict[str, Any]:
    """What the summary table says, as data (``run --json``)."""
    m = result.manifest
    return {
        "out_dir": str(result.out_dir),
        "resumed": bool(result.resumed),
        "already_complete": bool(result.already_complete),
        "source": {"items": m["source"]["items"], "records": m["source"]["records"]},
        "stages": [
            {"key": s["key"], "in": s["in"], "out": s["out"], "dropped": sum(s["dropped"].values())}
            for s in m["stages"]
        ],
        "corpus_records": m["corpus"]["records"],
        "rejects_records": m["rejects"]["records"],
        "reject_reasons": m["rejects"].get("reasons", {}),
        "languages": m["langs"],
        "report": str(result.report_path.resolve()),
    }


def _print_summary(result: Any) -> None:
    m = result.manifest
    lines: list[str] = []
    if result.already_complete:
        lines.append(
            f"{result.out_dir} already holds a complete run; manifest and report refreshed."
        )
    elif result.resumed:
        lines.append(f"resumed from checkpoint {m.get('checkpoints', 0)} and finished.")
    src = m["source"]
    rows = [
        ["reader", f"{src['items']:,}", f"{src['records']:,}", f"{sum(src['dropped'].values()):,}"]
    ]
    for s in m["stages"]:
        rows.append([s["key"], f"{s['in']:,}", f"{s['out']:,}", f"{sum(s['dropped'].values()):,}"])
    after: list[str] = []
    top = ", ".join(f"{k} {v}" for k, v in list(m["langs"].items())[:8])
    corpus, rejects = m["corpus"]["records"], m["rejects"]["records"]
    after.append(f"corpus: {corpus:,} records; rejects: {rejects:,}")
    if top:
        after.append(f"languages: {top}")
    for item in result.skipped_stages:
        after.append(f"off: {item['name']} ({item['why']})")
    after += result.summary  # the after-commit steps' notes (codekiln.flow)
    after.append(f"report: {result.report_path.resolve()}")

    title, header = "codekiln stream: summary", ["step", "in", "out", "dropped"]
    console = _terminal_console(stderr=False)
    if console is None:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        table = [title]
        for r in [header, *rows]:
            cells = [c.rjust(w) for c, w in zip(r, widths, strict=True)]
            cells[0] = r[0].ljust(widths[0])  # step names read left-aligned, counts right
            table.append("  ".join(cells))
        print("\n".join([*lines, *table, *after]))
        return
    from rich.markup import escape
    from rich.table import Table

    for line in lines:
        console.print(escape(line))
    rich_table = Table(title=title, title_justify="left")
    for col in header:
        rich_table.add_column(col, justify="left" if col == "step" else "right")
    for row in rows:
        rich_table.add_row(*row)
    console.print(rich_table)
    for line in after:
        console.print(escape(line))


def cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from codekiln.stream.worker import WorkerSettings, run_worker

    from codekiln.flow import FlowEnv, load_flow

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )

    flow = load_flow(args.config, FlowEnv.from_environ(os.environ))
    config = flow.stream
    settings = WorkerSettings.from_config(
        config,
        watch_dir=args.watch_dir,
        out_dir=args.out,
        worker_id=args.worker_id,
        metrics_port=args.metrics_port,
        once=args.once,
    )
    if args.once and not settings.watch_dir.is_dir():
        # One pass over a folder that is not there reads nothing: a typo, said at once. A
        # long-running worker waits for it instead (a volume mounted after the pod starts).
        raise InputError(f"worker: the watch folder {settings.watch_dir} does not exist")
    return asyncio.run(
        run_worker(config, settings, after_commit=flow.steps(), config_extra=flow.config_extra())
    )


@quiet_on_closed_stdout
def main(argv: Sequence[str] | None = None) -> int:
    from codekiln.stream.runtime.malloc import limit_malloc_arenas

    # Each process of a run (this one and its pool workers) computes on one thread; numpy's
    # OpenBLAS would start a thread per core on import that only spins (about 0.08 CPU s a
    # process, a third of a small run's fixed cost). Set before numpy loads; a user's value
    # is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    limit_malloc_arenas()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # stdout's reader went away: quiet_on_closed_stdout ends it
        raise
    except (ConfigError, InputError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except StreamError as exc:
        _err(str(exc))
        return EXIT_FAILURE
    except OSError as exc:  # e.g. --out is a file, or the disk is full
        _err(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _err("interrupted; run the same command again to resume from the last checkpoint")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, not a user error: one line here, the traceback logged
        return internal_error(PROG, exc)


if __name__ == "__main__":
    sys.exit(main())
