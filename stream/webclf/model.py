"""A fastText classifier of code-related web pages: training, scoring, evaluation.

Labels are ``code`` (code-related: programming tutorials, API docs, Q&A about code) and
``other``. Text is normalised before fastText sees it: lower-cased, split into word runs and
single punctuation characters (so ``{``, ``;``, ``()`` and ``=>`` become tokens, which is most
of what separates code from prose), and cut to ``max_tokens`` tokens.

fastText 0.9.3's Python wrapper calls ``np.array(..., copy=False)`` when predicting a single
string, which NumPy 2 rejects; scoring here goes through the binding's ``multilinePredict``
(what the wrapper uses for lists) and builds no NumPy arrays, so it works with NumPy 1 and 2.
Training runs in a child interpreter (:mod:`._train_proc` says why) with one thread and a
fixed seed by default: two trainings on the same data give identical models. (In a process
whose state had been disturbed, fastText gave slightly different scores run to run, or NaN.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codekiln.checks import bound, check_bounds
from codekiln.shards import SHARD_SUFFIXES, BadLine, iter_numbered

CODE = "code"
OTHER = "other"
_TOKEN = re.compile(r"\w+|[^\w\s]")
_POSITIVE = {"code", "1", "true", "yes", "pos", "positive", "__label__code"}
_NEGATIVE = {"other", "0", "false", "no", "neg", "negative", "web", "__label__other"}


class WebClfError(Exception):
    """Root of this package's errors: bad training data, a missing model, bad arguments."""


def normalise(text: str, max_tokens: int = 2000) -> str:
    tokens = _TOKEN.findall(text[: max_tokens * 12].lower())
    return " ".join(tokens[:max_tokens])


def parse_label(value: Any) -> str:
    key = str(value).strip().lower()
    if key in _POSITIVE:
        return CODE
    if key in _NEGATIVE:
        return OTHER
    raise WebClfError(f"unknown label {value!r}: use code/other (or 1/0, true/false)")


@dataclass(frozen=True, slots=True)
class TrainParams:
    """fastText's training settings (its names, ``wordNgrams`` as ``word_ngrams``) and the
    token cut of :func:`normalise`; a bad value is a :class:`WebClfError` before training."""

    dim: int = bound(64, ">= 1")
    epoch: int = bound(10, ">= 1")
    lr: float = bound(0.5, "> 0")
    word_ngrams: int = bound(2, ">= 1")
    min_count: int = bound(1, ">= 1")
    bucket: int = bound(200_000, ">= 0")
    threads: int = bound(1, ">= 1")
    seed: int = 0
    max_tokens: int = bound(2000, ">= 1")

    def __post_init__(self) -> None:
        check_bounds(self, "webclf", WebClfError)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """:func:`codekiln.shards.iter_numbered` of a webclf input: ``.jsonl.zst``, ``.jsonl.gz``
    and Parquet by their suffix, any other name as JSON lines (webclf never asked for a suffix).
    """
    return iter_numbered(path, fmt=None if path.name.lower().endswith(SHARD_SUFFIXES) else "jsonl")


def read_pages(
    path: Path, keys: tuple[str, ...] = ("text",)
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each page of :func:`iter_jsonl`; a line that is not a JSON
    object holding ``keys`` is a :class:`WebClfError` naming the file and the line."""
    expected = "a JSON object with " + ", ".join(repr(k) for k in keys)
    for number, item in iter_jsonl(path):
        if isinstance(item, BadLine):
            raise WebClfError(f"{path}:{number}: expected {expected}: {item.error}")
        missing = [k for k in keys if k not in item]
        if missing:
            raise WebClfError(f"{path}:{number}: expected {expected}; no {missing[0]!r}")
        yield number, item


def read_labelled(path: Path) -> Iterator[tuple[str, str]]:
    """(text, label) pairs from JSONL with ``text`` and ``label`` keys; bad lines raise."""
    for number, obj in read_pages(path, ("text", "label")):
        try:
            label = parse_label(obj["label"])
        except WebClfError as exc:
            raise WebClfError(f"{path}:{number}: {exc}") from exc
        yield str(obj["text"]), label


class CodeWebClassifier:
    """A trained fastText model with the normalisation it was trained with."""

    def __init__(self, model: Any, max_tokens: int = 2000) -> None:
        self._model = model
        self.max_tokens = max_tokens

    @classmethod
    def train(
        cls, examples: Iterable[tuple[str, str]], params: TrainParams | None = None
    ) -> CodeWebClassifier:
        params = params or TrainParams()
        counts = {CODE: 0, OTHER: 0}
        fd, name = tempfile.mkstemp(suffix=".txt", prefix="webclf-train-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                for text, label in examples:
                    counts[label] += 1
                    handle.write(f"__label__{label} {normalise(text, params.max_tokens)}\n")
            if not counts[CODE] or not counts[OTHER]:
                raise WebClfError(f"training needs both classes, got {counts}")
            model = _train_file(name, params)
        finally:
            os.unlink(name)
        return cls(model, params.max_tokens)

    @classmethod
    def load(cls, path: str | Path) -> CodeWebClassifier:
        import fasttext

        path = Path(path)
        if not path.is_file():
            raise WebClfError(f"model not found: {path}")
        meta_path = path.with_suffix(path.suffix + ".json")
        max_tokens = 2000
        if meta_path.is_file():
            max_tokens = int(json.loads(meta_path.read_text(encoding="utf-8"))["max_tokens"])
        try:
            model = fasttext.load_model(str(path))
        except ValueError as exc:
            raise WebClfError(f"cannot load fastText model {path}: {exc}") from exc
        return cls(model, max_tokens)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        self._model.save_model(str(tmp))
        os.replace(tmp, path)
        meta = {"max_tokens": self.max_tokens, "labels": [CODE, OTHER]}
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta), encoding="utf-8")

    def scores(self, texts: list[str]) -> list[float]:
        """Probability of ``code`` for each text."""
        if not texts:
            return []
        lines = [normalise(t, self.max_tokens) for t in texts]
        # k=-1: every label with its probability; threshold 0.
        labels, probs = self._model.f.multilinePredict(lines, -1, 0.0, "strict")
        out = []
        for row_labels, row_probs in zip(labels, probs, strict=True):
            score = 0.0
            for label, prob in zip(row_labels, row_probs, strict=True):
                if label == f"__label__{CODE}":
                    score = float(prob)
            out.append(min(1.0, max(0.0, score)))
        return out

    def score(self, text: str) -> float:
        return self.scores([text])[0]


def _train_file(name: str, params: TrainParams) -> Any:
    """Train in a fresh interpreter (see :mod:`codekiln.stream.webclf._train_proc` for why)."""
    import fasttext

    fd, model_path = tempfile.mkstemp(suffix=".bin", prefix="webclf-model-")
    os.close(fd)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "codekiln.stream.webclf._train_proc",
                name,
                model_path,
                json.dumps(asdict(params)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            raise WebClfError(f"{detail[0]} (try word_ngrams >= 2 or a lower lr)")
        return fasttext.load_model(model_path)
    finally:
        os.unlink(model_path)


@dataclass(frozen=True, slots=True)
class Evaluation:
    n: int
    true_pos: int
    false_pos: int
    false_neg: int
    true_neg: int

    @property
    def precision(self) -> float:
        return self.true_pos / (self.true_pos + self.false_pos) if self.true_pos else 0.0

    @property
    def recall(self) -> float:
        return self.true_pos / (self.true_pos + self.false_neg) if self.true_pos else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        return (self.true_pos + self.true_neg) / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "accuracy": round(self.accuracy, 4),
            "tp": self.true_pos,
            "fp": self.false_pos,
            "fn": self.false_neg,
            "tn": self.true_neg,
        }


def evaluate(
    clf: CodeWebClassifier, examples: Iterable[tuple[str, str]], threshold: float = 0.5
) -> Evaluation:
    tp = fp = fn = tn = 0
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal tp, fp, fn, tn
        for (_, label), score in zip(batch, clf.scores([t for t, _ in batch]), strict=True):
            predicted = score >= threshold
            actual = label == CODE
            tp += predicted and actual
            fp += predicted and not actual
            fn += actual and not predicted
            tn += not predicted and not actual
        batch.clear()

    for example in examples:
        batch.append(example)
        if len(batch) >= 512:
            flush()
    flush()
    return Evaluation(tp + fp + fn + tn, tp, fp, fn, tn)
