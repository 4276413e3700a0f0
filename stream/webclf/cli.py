"""``codekiln-stream webclf train|evaluate|score|domains|iterate``.

Every input is read by :mod:`codekiln.shards` (:func:`~.model.iter_jsonl`): ``.jsonl``,
``.jsonl.zst``, ``.jsonl.gz`` and Parquet by their suffix, any other name as JSON lines.
``train``, ``evaluate`` and ``iterate`` stop at a bad line (exit 2, the file and line named);
``score`` and ``domains`` skip such lines and print how many they skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codekiln.stream.subcommand import standalone_main
from codekiln.stream.webclf.domains import (
    IterationParams,
    aggregate,
    domain_of,
    iterate,
    select_domains,
)
from codekiln.stream.webclf.model import (
    CODE,
    OTHER,
    CodeWebClassifier,
    TrainParams,
    WebClfError,
    evaluate,
    iter_jsonl,
    read_labelled,
    read_pages,
)

from codekiln.shards import BadLine


def _texts(path: Path, label: str) -> Iterator[tuple[str, str]]:
    return ((str(obj["text"]), label) for _, obj in read_pages(path))


def _examples(args: argparse.Namespace) -> list[tuple[str, str]]:
    examples: list[tuple[str, str]] = []
    for path in args.data or []:
        examples += read_labelled(Path(path))
    for path in args.positive or []:
        examples += _texts(Path(path), CODE)
    for path in args.negative or []:
        examples += _texts(Path(path), OTHER)
    if not examples:
        raise WebClfError("no training data: give --data, or --positive and --negative")
    return examples


def _in_holdout(text: str, share: float) -> bool:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < share


#: The TrainParams fields the command line sets, each as ``--name`` (``_`` spelt ``-``).
_TRAIN_OPTIONS = ("dim", "epoch", "lr", "word_ngrams", "min_count", "threads", "seed")


def _params(args: argparse.Namespace) -> TrainParams:
    return TrainParams(**{name: getattr(args, name) for name in _TRAIN_OPTIONS})


def _print_eval(title: str, result: dict[str, Any]) -> None:
    print(
        f"{title}: precision {result['precision']:.4f}  recall {result['recall']:.4f}  "
        f"F1 {result['f1']:.4f}  accuracy {result['accuracy']:.4f}  (n={result['n']})"
    )


def cmd_train(args: argparse.Namespace) -> int:
    examples = _examples(args)
    train = [e for e in examples if not _in_holdout(e[0], args.holdout)]
    held = [e for e in examples if _in_holdout(e[0], args.holdout)]
    clf = CodeWebClassifier.train(train, _params(args))
    clf.save(args.out)
    print(f"trained on {len(train)} examples ({sum(1 for _, y in train if y == CODE)} code)")
    if held:
        _print_eval(f"held-out ({len(held)})", evaluate(clf, held, args.threshold).as_dict())
    print(f"model: {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    clf = CodeWebClassifier.load(args.model)
    result = evaluate(clf, read_labelled(Path(args.data)), args.threshold).as_dict()
    _print_eval("evaluation", result)
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    clf = CodeWebClassifier.load(args.model)
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.tmp")
    bad = scored = 0
    batch: list[dict[str, Any]] = []
    with tmp.open("w", encoding="utf-8") as dst:

        def flush() -> None:
            for obj, score in zip(batch, clf.scores([o["text"] for o in batch]), strict=True):
                meta = dict(obj.get("meta") or {})
                meta["code_score"] = round(score, 6)
                meta["code_related"] = score >= args.threshold
                dst.write(json.dumps({**obj, "meta": meta}, ensure_ascii=False) + "\n")
            batch.clear()

        for _, obj in iter_jsonl(Path(args.input)):
            if isinstance(obj, BadLine) or not isinstance(obj.get("text"), str):
                bad += 1
                continue
            batch.append(obj)
            scored += 1
            if len(batch) >= 512:
                flush()
        flush()
    os.replace(tmp, out)
    print(
        f"scored {scored} records -> {out}" + (f" ({bad} malformed lines skipped)" if bad else "")
    )
    return 0


def cmd_domains(args: argparse.Namespace) -> int:
    pairs = []
    skipped = 0
    for _, obj in iter_jsonl(Path(args.scored)):
        try:
            if isinstance(obj, BadLine):
                raise TypeError(obj.reason)
            score = float((obj.get("meta") or {})["code_score"])
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped += 1
            continue
        pairs.append((domain_of(obj), score))
    stats = aggregate(pairs, args.page_threshold)
    chosen = select_domains(stats, args.min_share, args.min_pages)
    note = f"; {skipped} lines without a meta.code_score skipped" if skipped else ""
    print(f"{len(stats)} domains, {len(chosen)} selected (share >= {args.min_share:g}){note}")
    for s in chosen[: args.top]:
        print(f"  {s.domain:40s} {s.code_pages:>6}/{s.pages:<6} {100 * s.share:5.1f}%")
    if args.out:
        rows = [
            {"domain": s.domain, "pages": s.pages, "code_pages": s.code_pages, "share": s.share}
            for s in chosen
        ]
        Path(args.out).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


def cmd_iterate(args: argparse.Namespace) -> int:
    seeds = list(read_labelled(Path(args.seeds)))
    pool = [obj for _, obj in read_pages(Path(args.pool))]
    heldout = list(read_labelled(Path(args.heldout))) if args.heldout else None
    params = IterationParams(
        rounds=args.rounds,
        page_threshold=args.page_threshold,
        domain_min_share=args.min_share,
        domain_min_pages=args.min_pages,
        train=_params(args),
    )
    clf, reports = iterate(seeds, pool, params, heldout)
    for r in reports:
        line = (
            f"round {r.round}: {len(r.selected_domains)} domains selected, "
            f"{r.recalled_pages} pages recalled, train {r.positives} code / {r.negatives} other"
        )
        if r.heldout:
            line += f", held-out F1 {r.heldout['f1']:.4f}"
        print(line)
    clf.save(args.out)
    print(f"model: {args.out}")
    return 0


def _train_options(parser: argparse.ArgumentParser) -> None:
    defaults = TrainParams()
    for name in _TRAIN_OPTIONS:
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)


def _guard(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = fn(args)
        except (WebClfError, OSError, ValueError) as exc:
            print(f"codekiln-stream webclf: error: {exc}", file=sys.stderr)
            return 2
        return result

    return run


def register(subparsers: Any) -> None:
    webclf = subparsers.add_parser(
        "webclf", help="fastText classifier of code-related web pages (train, evaluate, score)"
    )
    sub = webclf.add_subparsers(dest="webclf_command", required=True)

    train = sub.add_parser("train", help="train from labelled JSONL ({text, label})")
    train.add_argument("--data", action="append", help="JSONL with text and label (code/other)")
    train.add_argument("--positive", action="append", help="JSONL of code-related texts")
    train.add_argument("--negative", action="append", help="JSONL of other texts")
    train.add_argument("--out", required=True, help="model file to write (.bin)")
    train.add_argument("--holdout", type=float, default=0.1, help="share held out to evaluate")
    train.add_argument("--threshold", type=float, default=0.5)
    _train_options(train)
    train.set_defaults(func=_guard(cmd_train))

    ev = sub.add_parser("evaluate", help="precision, recall, F1 on labelled JSONL")
    ev.add_argument("--model", required=True)
    ev.add_argument("--data", required=True)
    ev.add_argument("--threshold", type=float, default=0.5)
    ev.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ev.set_defaults(func=_guard(cmd_evaluate))

    score = sub.add_parser("score", help="add meta.code_score to every record of a JSONL file")
    score.add_argument("input")
    score.add_argument("--model", required=True)
    score.add_argument("--out", required=True)
    score.add_argument("--threshold", type=float, default=0.5)
    score.set_defaults(func=_guard(cmd_score))

    dom = sub.add_parser("domains", help="share of code-related pages per domain; selection")
    dom.add_argument("scored", help="JSONL written by 'webclf score' (records with a url)")
    dom.add_argument("--page-threshold", type=float, default=0.5)
    dom.add_argument("--min-share", type=float, default=0.1)
    dom.add_argument("--min-pages", type=int, default=2)
    dom.add_argument("--top", type=int, default=50)
    dom.add_argument("--out", help="write the selected domains as JSON")
    dom.set_defaults(func=_guard(cmd_domains))

    it = sub.add_parser("iterate", help="AutoDS-style rounds: score, select, relabel, retrain")
    it.add_argument("--seeds", required=True, help="labelled seed JSONL")
    it.add_argument("--pool", required=True, help="JSONL web pages with url and text")
    it.add_argument("--heldout", help="labelled JSONL to report F1 after each round")
    it.add_argument("--rounds", type=int, default=3)
    it.add_argument("--page-threshold", type=float, default=0.5)
    it.add_argument("--min-share", type=float, default=0.1)
    it.add_argument("--min-pages", type=int, default=2)
    it.add_argument("--out", required=True)
    _train_options(it)
    it.set_defaults(func=_guard(cmd_iterate))


def main(argv: list[str] | None = None) -> int:
    return standalone_main(register, argv)


if __name__ == "__main__":
    sys.exit(main())
