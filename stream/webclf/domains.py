"""Domain-level aggregation and the AutoDS-style recall loop for code-related web data.

OpenCoder recalls code-related pages from a web corpus in rounds: train fastText on seed
pages, score the pool, compute per domain the share of pages scored code-related, call a domain
code-related when that share passes a threshold, take its pages as new positives (and pages of
clearly unrelated domains as new negatives), retrain, repeat. OpenCoder annotated the URLs of
the selected domains by hand; here relabelling is automatic and documented: a page becomes a
positive when its domain is selected *and* its own score passes ``relabel_min_score``; a page
becomes a negative when its domain's share is at most ``negative_max_share``.

A page's domain is the host of its URL (``url`` key, ``meta.url``, or ``path`` when it is a
URL), lower-cased, without a leading ``www.``. Pages without a URL count under ``(none)`` and
are never selected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from codekiln.stream.webclf.model import (
    CODE,
    OTHER,
    CodeWebClassifier,
    Evaluation,
    TrainParams,
    WebClfError,
    evaluate,
)

from codekiln.checks import bound, check_bounds

NO_DOMAIN = "(none)"


def domain_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("meta") or {}
    url = obj.get("url") or meta.get("url") or ""
    if not url:
        path = str(obj.get("path") or "")
        url = path if "://" in path else ""
    if not url:
        return NO_DOMAIN
    try:
        host = urlsplit(str(url)).hostname or ""
    except ValueError:
        return NO_DOMAIN
    host = host.lower().removeprefix("www.")
    return host or NO_DOMAIN


@dataclass(frozen=True, slots=True)
class DomainStat:
    domain: str
    pages: int
    code_pages: int

    @property
    def share(self) -> float:
        return self.code_pages / self.pages if self.pages else 0.0


def aggregate(
    pages: Iterable[tuple[str, float]], page_threshold: float = 0.5
) -> dict[str, DomainStat]:
    """(domain, score) pairs -> per-domain page counts and code-related page counts."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for domain, score in pages:
        row = totals[domain]
        row[0] += 1
        row[1] += score >= page_threshold
    return {d: DomainStat(d, n, c) for d, (n, c) in totals.items()}


def select_domains(
    stats: Mapping[str, DomainStat], min_share: float = 0.1, min_pages: int = 1
) -> list[DomainStat]:
    """Domains whose code-related share is at least ``min_share`` (OpenCoder: 10%)."""
    chosen = [
        s
        for s in stats.values()
        if s.domain != NO_DOMAIN and s.pages >= min_pages and s.share >= min_share
    ]
    return sorted(chosen, key=lambda s: (-s.share, -s.pages, s.domain))


@dataclass(frozen=True, slots=True)
class IterationParams:
    """The recall loop's settings (module docstring); a bad value is a :class:`WebClfError`."""

    rounds: int = bound(3, ">= 0")
    page_threshold: float = bound(0.5, "[0, 1]")
    domain_min_share: float = bound(0.1, "[0, 1]")
    domain_min_pages: int = bound(2, ">= 0")
    relabel_min_score: float = bound(0.3, "[0, 1]")
    negative_max_share: float = bound(0.0, "[0, 1]")
    train: TrainParams = field(default_factory=TrainParams)

    def __post_init__(self) -> None:
        check_bounds(self, "webclf", WebClfError)


@dataclass(slots=True)
class RoundReport:
    round: int
    positives: int
    negatives: int
    selected_domains: list[str]
    recalled_pages: int
    heldout: dict[str, float | int] | None = None


def iterate(
    seeds: list[tuple[str, str]],
    pool: Sequence[Mapping[str, Any]],
    params: IterationParams | None = None,
    heldout: list[tuple[str, str]] | None = None,
) -> tuple[CodeWebClassifier, list[RoundReport]]:
    """Score, select domains, relabel, retrain, ``rounds`` times; returns the last model."""
    params = params or IterationParams()
    pool_domains = [domain_of(p) for p in pool]
    pool_texts = [str(p["text"]) for p in pool]
    examples = list(seeds)
    reports: list[RoundReport] = []
    clf = CodeWebClassifier.train(examples, params.train)
    for round_no in range(1, params.rounds + 1):
        scores = clf.scores(pool_texts)
        stats = aggregate(zip(pool_domains, scores, strict=True), params.page_threshold)
        selected = {s.domain for s in select_domains(stats, params.domain_min_share,
                                                     params.domain_min_pages)}  # fmt: skip
        new_pos = [
            (t, CODE)
            for t, d, s in zip(pool_texts, pool_domains, scores, strict=True)
            if d in selected and s >= params.relabel_min_score
        ]
        new_neg = [
            (t, OTHER)
            for t, d in zip(pool_texts, pool_domains, strict=True)
            if d != NO_DOMAIN and d not in selected and stats[d].share <= params.negative_max_share
        ]
        examples = [*seeds, *new_pos, *new_neg]
        clf = CodeWebClassifier.train(examples, params.train)
        evaluation: Evaluation | None = evaluate(clf, heldout) if heldout else None
        reports.append(
            RoundReport(
                round=round_no,
                positives=sum(1 for _, label in examples if label == CODE),
                negatives=sum(1 for _, label in examples if label == OTHER),
                selected_domains=sorted(selected),
                recalled_pages=sum(1 for s in scores if s >= params.page_threshold),
                heldout=evaluation.as_dict() if evaluation else None,
            )
        )
    return clf, reports
