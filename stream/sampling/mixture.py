"""The annealing mixture writer: 84% original distribution, 16% high-quality streams.

OpenCoder's annealing stage trains on a mixture in which most of the data keeps the
pretraining distribution and a fixed share comes from high-quality streams (the algorithmic
corpus, synthetic snippets, code textbooks). This module builds that mixture from JSONL files,
streaming, in two passes and constant memory:

1. count the size of every stream (characters by default, or records);
2. give each stream a multiplier ``m = target / size``; every record of the stream is written
   ``floor(m)`` times plus once more when a hash of (stream, record id, seed) falls below the
   fractional part. So a stream is down-sampled (m < 1) or repeated (m > 1) deterministically,
   with the same records chosen in every run. Repetition is capped at ``max_repeat``; a stream
   too small to reach its share even then is reported as short.

Targets: the *original* stream (pretraining records, i.e. everything whose ``meta.corpus`` is not
the annealing corpus) gets ``original_share`` of the total; the high-quality streams share the
rest by their weights. Without ``total``, the total is set so that the original stream is used
exactly once. Records whose ``meta.corpus`` is ``anneal`` (tagged by the ``anneal_route``
stage) in the original inputs form the ``algorithmic`` stream. Output records are interleaved
across streams in proportion to their targets and carry ``meta.mix_stream``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codekiln.shards import BadLine, iter_lines

ORIGINAL = "original"
ALGORITHMIC = "algorithmic"


class MixtureError(ValueError):
    """Bad mixture parameters or unreadable inputs; the message says which."""


@dataclass(frozen=True, slots=True)
class MixSpec:
    original_share: float = 0.84
    #: Weights of the high-quality streams within the remaining share; empty: 1 for each
    #: stream that has input (``algorithmic`` and every named high-quality stream).
    weights: Mapping[str, float] = field(default_factory=dict)
    unit: str = "chars"
    total: float | None = None
    max_repeat: float = 4.0
    seed: int = 0
    anneal_corpus: str = "anneal"

    def __post_init__(self) -> None:
        if not 0 < self.original_share <= 1:
            raise MixtureError(f"original_share must be in (0, 1], got {self.original_share}")
        if self.unit not in ("chars", "records"):
            raise MixtureError(f"unit must be 'chars' or 'records', got {self.unit!r}")
        if any(w < 0 for w in self.weights.values()):
            raise MixtureError("stream weights must be >= 0")
        if self.max_repeat < 1:
            raise MixtureError("max_repeat must be >= 1")
        if self.total is not None and self.total <= 0:
            raise MixtureError("total must be positive")


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.endswith((".jsonl", ".zst"))
            )
        elif path.is_file():
            out.append(path)
        else:
            raise MixtureError(f"input not found: {path}")
    return out


class _Stream:
    """One named stream: records from files, optionally filtered by ``meta.corpus``."""

    def __init__(self, name: str, files: list[Path], corpus: str | None, negate: bool) -> None:
        self.name = name
        self.files = files
        self.corpus = corpus
        self.negate = negate
        self.bad_lines = 0

    def records(self) -> Iterator[dict[str, Any]]:
        for path in self.files:
            # codekiln.shards: any shard format a writer produces; a line that is not an
            # object, or a compressed shard cut off mid-frame, is a BadLine (counted).
            fmt = "parquet" if path.name.endswith(".parquet") else "jsonl"  # any name: lines
            for obj in iter_lines(path, fmt=fmt):
                if isinstance(obj, BadLine) or not isinstance(obj.get("text"), str):
                    self.bad_lines += 1
                    continue
                if self.corpus is not None:
                    tagged = (obj.get("meta") or {}).get("corpus") == self.corpus
                    if tagged == self.negate:
                        continue
                yield obj


def _size(obj: Mapping[str, Any], unit: str) -> int:
    return len(obj["text"]) if unit == "chars" else 1


def _draw(stream: str, key: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}\x00{stream}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _copies(multiplier: float, stream: str, key: str, seed: int) -> int:
    whole = math.floor(multiplier)
    return whole + (1 if _draw(stream, key, seed) < multiplier - whole else 0)


def build_mixture(
    original: list[Path],
    high_quality: Mapping[str, list[Path]],
    out: Path,
    spec: MixSpec | None = None,
) -> dict[str, Any]:
    """Write the mixture to ``out`` (``.jsonl`` or ``.jsonl.zst``); returns the report."""
    spec = spec or MixSpec()
    original_files = _files(original)
    streams: dict[str, list[_Stream]] = {
        ORIGINAL: [_Stream(ORIGINAL, original_files, spec.anneal_corpus, negate=True)],
        ALGORITHMIC: [_Stream(ALGORITHMIC, original_files, spec.anneal_corpus, negate=False)],
    }
    for name, paths in high_quality.items():
        if name == ORIGINAL:
            raise MixtureError("'original' is the pretraining stream; name the others otherwise")
        streams.setdefault(name, []).append(_Stream(name, _files(paths), None, negate=False))
    unknown = set(spec.weights) - set(streams)
    if unknown:
        raise MixtureError(f"weights name streams without input: {sorted(unknown)}")
    weights = dict(spec.weights) or {name: 1.0 for name in streams if name != ORIGINAL}

    # Pass 1: sizes.
    sizes = dict.fromkeys(streams, 0)
    counts = dict.fromkeys(streams, 0)
    for name, parts in streams.items():
        for part in parts:
            for obj in part.records():
                sizes[name] += _size(obj, spec.unit)
                counts[name] += 1
    bad_lines = {name: sum(p.bad_lines for p in parts) for name, parts in streams.items()}
    if sizes[ORIGINAL] == 0:
        raise MixtureError("the original stream is empty")
    total = spec.total if spec.total is not None else sizes[ORIGINAL] / spec.original_share
    hq_names = [n for n in streams if n != ORIGINAL and weights.get(n, 0) > 0 and sizes[n]]
    weight_sum = sum(weights[n] for n in hq_names)
    targets = {ORIGINAL: spec.original_share * total}
    for name in hq_names:
        targets[name] = (1 - spec.original_share) * total * weights[name] / weight_sum
    multipliers = {
        name: min(spec.max_repeat, targets[name] / sizes[name]) for name in targets if sizes[name]
    }

    # Pass 2: write, interleaving streams in proportion to their targets.
    written = dict.fromkeys(targets, 0)
    records_out = dict.fromkeys(targets, 0)
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    iters = {name: _emit(streams[name], multipliers[name], spec) for name in multipliers}
    with _open_out(tmp) as sink:
        while iters:
            # The stream furthest behind its target share goes next (smooth interleaving).
            name = min(iters, key=lambda n: (written[n] / targets[n], n))
            try:
                obj = next(iters[name])
            except StopIteration:
                del iters[name]
                continue
            sink.write(json.dumps(obj, ensure_ascii=False) + "\n")
            written[name] += _size(obj, spec.unit)
            records_out[name] += 1
    os.replace(tmp, out)
    grand = sum(written.values()) or 1
    report = {
        "out": str(out),
        "unit": spec.unit,
        "original_share_target": spec.original_share,
        "streams": {
            name: {
                "input_records": counts[name],
                "input_size": sizes[name],
                "target_size": round(targets.get(name, 0.0)),
                "multiplier": round(multipliers.get(name, 0.0), 4),
                "output_records": records_out.get(name, 0),
                "output_size": written.get(name, 0),
                "share": round(written.get(name, 0) / grand, 4),
                "short": bool(name in targets and written.get(name, 0) < 0.95 * targets[name]),
                "bad_lines": bad_lines[name],
            }
            for name in streams
        },
    }
    report_path = out.with_name(out.name.split(".")[0] + ".report.json")
    report_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def _emit(parts: list[_Stream], multiplier: float, spec: MixSpec) -> Iterator[dict[str, Any]]:
    for part in parts:
        for obj in part.records():
            key = str(obj.get("id") or hashlib.sha256(obj["text"].encode()).hexdigest())
            for copy in range(_copies(multiplier, part.name, key, spec.seed)):
                meta = dict(obj.get("meta") or {})
                meta["mix_stream"] = part.name
                if copy:
                    meta["mix_copy"] = copy
                yield {**obj, "meta": meta}


def _open_out(path: Path) -> io.TextIOBase:
    if path.name.endswith(".zst.tmp") or ".zst." in path.name:
        import zstandard

        raw = zstandard.ZstdCompressor(level=3).stream_writer(path.open("wb"), closefd=True)
        return io.TextIOWrapper(raw, encoding="utf-8")
    return path.open("w", encoding="utf-8")
