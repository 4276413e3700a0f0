"""JavaScript parse-failure rule: tree-sitter (what codekiln runs) against esprima (what it ran).

Corpus: ``*.js`` files over 1 kB under ``--dir`` (default: the first that exists of npm's own
sources ``/usr/lib/node_modules/npm``, ``/usr/share/nodejs``, ``/usr/lib/node_modules``), in
sorted path order, capped at ``--mb`` MB. Hand-written, current JavaScript (CommonJS and ES
modules). Without such a folder the script says so and measures nothing.

Figures (CPU time of this process, so "per core"; each the least of ``--repeat`` passes, after
one untimed pass over the first files):

1. tree-sitter-javascript, a bare ``Parser.parse`` of the bytes;
2. codekiln's ``js_unparseable`` signal as the filter stage runs it (read and progress
   callbacks, the first error located), on fresh documents;
3. esprima 4.0.1 as codekiln's rule ran it until it moved (``parseScript`` then
   ``parseModule``, JSX on), over every file (a rejection stops early, so this flatters it) and
   over the files it accepts only, when esprima is importable (it is no longer a dependency:
   ``pip install esprima==4.0.1`` to measure it);
4. baseline always present: ``ast.parse`` on the same number of MB of this interpreter's
   standard library (the Python parse rule, which also runs before every other rule).

It also prints how many files each parser rejects; ``--node`` adds ``node --check`` on every
file (slow: one process per file) as the ground truth.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

DEFAULT_DIRS = ("/usr/lib/node_modules/npm", "/usr/share/nodejs", "/usr/lib/node_modules")
MIN_BYTES = 1024
WARM_UP = 10


def js_corpus(directory: str | None, cap_mb: float) -> list[tuple[Path, bytes]]:
    """(path, bytes) of the ``*.js`` files over 1 kB, sorted, capped at ``cap_mb``."""
    candidates = [directory] if directory else [d for d in DEFAULT_DIRS if Path(d).is_dir()]
    if not candidates or not Path(candidates[0]).is_dir():
        return []
    out: list[tuple[Path, bytes]] = []
    total = 0
    for path in sorted(Path(candidates[0]).rglob("*.js")):
        try:
            if not path.is_file() or path.stat().st_size <= MIN_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        out.append((path, data))
        total += len(data)
        if total >= cap_mb * 1e6:
            break
    return out


def least_cpu(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def esprima_accepts(esprima: object, text: str) -> bool:
    for parse in (esprima.parseScript, esprima.parseModule):  # type: ignore[attr-defined]
        try:
            parse(text, {"jsx": True})
            return True
        except RecursionError:
            return False
        except Exception:  # esprima raises its own Error type and assorted others
            continue
    return False


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="folder of .js files (default: npm's own sources)")
    parser.add_argument("--mb", type=float, default=8.0, help="corpus cap in MB (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; least CPU counts")
    parser.add_argument("--node", action="store_true", help="also run node --check per file")
    args = parser.parse_args()

    import tree_sitter
    import tree_sitter_javascript
    from codekiln.stream.filters import SIGNALS, Unparseable
    from codekiln.stream.filters.document import Document
    from codekiln.stream.filters.signals.javascript import JS_PARSER

    docs = js_corpus(args.dir, args.mb)
    if not docs:
        print("no JavaScript corpus found: pass --dir FOLDER of .js files; nothing measured")
        return 0
    size = sum(len(d) for _, d in docs)
    texts = [d.decode("utf-8", "replace") for _, d in docs]
    root = os.path.commonpath([str(p) for p, _ in docs])
    print(f"corpus: {len(docs)} .js files over 1 kB under {root}, {size / 1e6:.2f} MB")
    print(f"before: {_load()}")

    ts_parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_javascript.language()))
    signal = SIGNALS["js_unparseable"].fn

    def bare() -> None:
        for _, data in docs:
            ts_parser.parse(data)

    rejected: list[str] = []

    def rule() -> None:
        rejected.clear()
        for (path, _), text in zip(docs, texts, strict=True):
            try:
                signal(Document(text, "JavaScript", str(path)))
            except Unparseable as exc:
                rejected.append(f"{path}: {exc.detail}")

    for _, data in docs[:WARM_UP]:
        ts_parser.parse(data)
    cpu_bare = least_cpu(bare, args.repeat)
    cpu_rule = least_cpu(rule, args.repeat)
    rule_mbs = size / 1e6 / cpu_rule
    print(f"tree-sitter bare parse        : {size / 1e6 / cpu_bare:6.2f} MB/s per core")
    print(f"js_unparseable ({JS_PARSER}): {rule_mbs:6.2f} MB/s per core, "
          f"{len(rejected)} of {len(docs)} files unparseable "
          f"({cpu_bare / cpu_rule:.2f}x the bare parse's speed)")  # fmt: skip
    for line in rejected[:5]:
        print(f"  {line}")

    from bench_filters import corpus  # the same stdlib walk as the filter bench

    py = [text for _, text in corpus(size / 1e6)]
    py_size = sum(len(t.encode()) for t in py)

    def python_parse() -> None:
        for text in py:
            ast.parse(text)

    cpu_py = least_cpu(python_parse, args.repeat)
    py_mbs = py_size / 1e6 / cpu_py
    print(f"baseline ast.parse, {py_size / 1e6:.2f} MB of Python stdlib: {py_mbs:6.2f} MB/s per "
          f"core -> js_unparseable is {rule_mbs / py_mbs:.2f}x")  # fmt: skip

    try:
        import esprima
    except ImportError:
        print("esprima not installed: its figures skipped (pip install esprima==4.0.1)")
    else:
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for text in texts[:WARM_UP]:
                esprima_accepts(esprima, text)
            accepted_texts: list[str] = []

            def esprima_all() -> None:
                accepted_texts.clear()
                accepted_texts.extend(t for t in texts if esprima_accepts(esprima, t))

            cpu_es_all = least_cpu(esprima_all, args.repeat)
            accepted = list(accepted_texts)
            acc_size = sum(len(t.encode()) for t in accepted)
            cpu_es_ok = least_cpu(lambda: [esprima_accepts(esprima, t) for t in accepted], 1)
        acc_docs = [t.encode() for t in accepted]
        cpu_ts_ok = least_cpu(lambda: [ts_parser.parse(d) for d in acc_docs], args.repeat)
        es_all = size / 1e6 / cpu_es_all
        es_ok = acc_size / 1e6 / cpu_es_ok
        ts_ok = acc_size / 1e6 / cpu_ts_ok
        print(f"esprima 4.0.1, every file     : {es_all:6.2f} MB/s per core, rejects "
              f"{len(docs) - len(accepted)} of {len(docs)} -> js_unparseable is "
              f"{rule_mbs / es_all:.1f}x")  # fmt: skip
        print(f"esprima 4.0.1, the {len(accepted)} files it accepts ({acc_size / 1e6:.2f} MB): "
              f"{es_ok:6.2f} MB/s per core; tree-sitter on them {ts_ok:6.2f} -> "
              f"{ts_ok / es_ok:.1f}x")  # fmt: skip

    if args.node:
        node = shutil.which("node")
        if node is None:
            print("node not found: --node skipped")
        else:
            bad = [
                str(p)
                for p, _ in docs
                if subprocess.run(
                    [node, "--check", str(p)], check=False, capture_output=True
                ).returncode
            ]
            print(f"node --check rejects {len(bad)} of {len(docs)} files")
    print(f"after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
