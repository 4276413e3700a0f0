"""Per-language down-sampling: keep a language at a target share, decided record by record.

OpenCoder down-samples over-represented languages (Java 409 GB to 200 GB, HTML 213 GB to
64 GB). Each target is a keep ratio, given directly (``ratio: 0.3``) or as sizes
(``from_bytes: 213e9, to_bytes: 64e9``). A record is kept when a hash of its text (and the
seed) falls below its language's ratio: the decision needs nothing but the record, so it
streams, runs in any order, and the same document gets the same answer in every run.

An optional hard budget (``max_bytes``) additionally stops a language once that many
characters were kept; unlike ratios, it depends on input order (first come, first kept), and
the spent budget is part of the stage state so resume stays exactly-once.

Drop reason: ``downsample:<language>``. ``report()`` gives, per language, records and
characters in and kept, the target ratio and the achieved one, and each language's share of the
stream before and after.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import SHARD, STREAM, BatchStage, Scope

from codekiln.units import SizeError, parse_size

#: OpenCoder's published example: Java 409 GB -> 200 GB, HTML 213 GB -> 64 GB.
OPENCODER_TARGETS: dict[str, dict[str, float]] = {
    "Java": {"from_bytes": 409e9, "to_bytes": 200e9},
    "HTML": {"from_bytes": 213e9, "to_bytes": 64e9},
}


class DownsampleConfigError(ValueError):
    """A down-sampling target is malformed; the message names the language and field."""


@dataclass(frozen=True, slots=True)
class Target:
    ratio: float
    max_bytes: int | None = None


def _sizes(where: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with its byte counts as numbers: ``409e9`` (a string to YAML 1.1) or ``500M``."""
    out = dict(spec)
    for key in ("from_bytes", "to_bytes", "max_bytes"):
        if key in out and out[key] is not None:
            try:
                out[key] = parse_size(out[key])
            except SizeError as exc:
                raise DownsampleConfigError(f"{where}.{key}: {exc}") from None
    return out


def parse_targets(raw: Mapping[str, Any]) -> dict[str, Target]:
    if not isinstance(raw, Mapping):
        raise DownsampleConfigError(f"downsample.targets: expected a mapping, got {raw!r}")
    targets: dict[str, Target] = {}
    for lang, given in raw.items():
        where = f"downsample.targets[{lang!r}]"
        spec = (
            {"ratio": given}
            if isinstance(given, int | float) and not isinstance(given, bool)
            else given
        )
        if not isinstance(spec, Mapping):
            raise DownsampleConfigError(f"{where}: expected a ratio or a mapping, got {spec!r}")
        unknown = set(spec) - {"ratio", "from_bytes", "to_bytes", "max_bytes"}
        if unknown:
            raise DownsampleConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        spec = _sizes(where, spec)
        if "ratio" in spec and ("from_bytes" in spec or "to_bytes" in spec):
            raise DownsampleConfigError(f"{where}: give ratio or from_bytes/to_bytes, not both")
        if "ratio" in spec:
            ratio = spec["ratio"]
        elif "from_bytes" in spec and "to_bytes" in spec:
            if not spec["from_bytes"] or spec["from_bytes"] <= 0:
                raise DownsampleConfigError(f"{where}: from_bytes must be positive")
            ratio = spec["to_bytes"] / spec["from_bytes"]
        elif "max_bytes" in spec:
            ratio = 1.0
        else:
            raise DownsampleConfigError(f"{where}: needs ratio, from_bytes/to_bytes or max_bytes")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise DownsampleConfigError(f"{where}: the keep ratio must be within [0, 1]: {ratio!r}")
        max_bytes = spec.get("max_bytes")
        if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes < 0):
            raise DownsampleConfigError(f"{where}: max_bytes must be >= 0")
        targets[str(lang)] = Target(float(ratio), None if max_bytes is None else int(max_bytes))
    return targets


def keep_draw(text: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the text and the seed."""
    digest = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=8, key=f"downsample:{seed}".encode()
    ).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class DownsampleStage(BatchStage):
    """Keep each targeted language at its ratio (and within its byte budget)."""

    name: ClassVar[str] = "downsample"
    stateful: ClassVar[bool] = True

    def __init__(
        self,
        *,
        targets: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.targets = parse_targets(OPENCODER_TARGETS if targets is None else targets)
        self._by_lower = {lang.lower(): t for lang, t in self.targets.items()}
        self.seed = int(seed)
        self.docs_in: Counter[str] = Counter()
        self.docs_kept: Counter[str] = Counter()
        self.chars_in: Counter[str] = Counter()
        self.chars_kept: Counter[str] = Counter()

    def scope(self) -> Scope:
        # Ratios decide each record alone (a hash of its text); a byte budget ("first come,
        # first kept") depends on every record before.
        return SHARD if all(t.max_bytes is None for t in self.targets.values()) else STREAM

    def _target(self, lang: str) -> Target | None:
        return self.targets.get(lang) or self._by_lower.get(lang.lower())

    def process_batch(self, batch: list[Record]) -> list[Record]:
        for record in batch:
            if record.drop_reason is not None:
                continue
            lang = record.lang or "unknown"
            size = len(record.text)
            self.docs_in[lang] += 1
            self.chars_in[lang] += size
            target = self._target(lang)
            if target is not None:
                over_budget = (
                    target.max_bytes is not None and self.chars_kept[lang] + size > target.max_bytes
                )
                if over_budget or (
                    target.ratio < 1.0 and keep_draw(record.text, self.seed) >= target.ratio
                ):
                    record.drop_reason = f"{self.name}:{lang}"
                    continue
            self.docs_kept[lang] += 1
            self.chars_kept[lang] += size
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {
            "docs_in": dict(self.docs_in),
            "docs_kept": dict(self.docs_kept),
            "chars_in": dict(self.chars_in),
            "chars_kept": dict(self.chars_kept),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.docs_in = Counter(state.get("docs_in", {}))
        self.docs_kept = Counter(state.get("docs_kept", {}))
        self.chars_in = Counter(state.get("chars_in", {}))
        self.chars_kept = Counter(state.get("chars_kept", {}))

    def report(self) -> dict[str, Any]:
        total_in = sum(self.chars_in.values()) or 1
        total_kept = sum(self.chars_kept.values()) or 1
        languages = {}
        for lang in sorted(self.chars_in, key=lambda k: -self.chars_in[k]):
            target = self._target(lang)
            languages[lang] = {
                "docs_in": self.docs_in[lang],
                "docs_kept": self.docs_kept[lang],
                "chars_in": self.chars_in[lang],
                "chars_kept": self.chars_kept[lang],
                "target_ratio": None if target is None else round(target.ratio, 4),
                "achieved_ratio": round(self.chars_kept[lang] / (self.chars_in[lang] or 1), 4),
                "share_in": round(self.chars_in[lang] / total_in, 4),
                "share_kept": round(self.chars_kept[lang] / total_kept, 4),
            }
        return {
            "targets": {
                lang: {"ratio": round(t.ratio, 4), "max_bytes": t.max_bytes}
                for lang, t in self.targets.items()
            },
            "languages": languages,
        }
