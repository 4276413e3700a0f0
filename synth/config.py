"""The synthesis job's configuration: one frozen object, built once at the entry point.

In a YAML config file these keys live under ``synth:``; unknown keys and bad values fail with
an exact message (:class:`~.errors.ConfigError`) before any work starts.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codekiln.checks import bound, check_bounds, one_of

from .errors import ConfigError
from .packages import DEFAULT_PACKAGES

__all__ = ["GENERATORS", "SynthConfig"]

#: Generator names, in the order the job runs them.
GENERATORS = ("snippets", "textbook", "edu", "package", "diverse", "ingest")


@dataclass(frozen=True)
class SynthConfig:
    # connection settings (the stream config's synth: section holds these two as well);
    # command-line flags win over them, and they win over the environment
    llm_url: str | None = None
    sandbox_url: str | None = None
    data_dir: str | None = None
    generators: tuple[str, ...] = GENERATORS
    # seeds from the corpus (a deterministic pseudo-random sample: smallest record ids)
    max_seeds: int = bound(32, ">= 0")
    seed_langs: tuple[str, ...] = ("python",)
    seed_min_chars: int = 200
    seed_max_chars: int = 6000
    web_langs: tuple[str, ...] = ("markdown", "text", "restructuredtext", "html", "web")
    max_web_seeds: int = bound(16, ">= 0")
    # AutoDS seed selection
    autods_questions: str = "code_quality"
    autods_threshold: float | None = bound(None, "[0, 1]")
    autods_top_fraction: float | None = bound(0.5, "(0, 1]", optional=True)
    # completions: base models without a chat template
    autods_api: str = one_of("chat", ("chat", "completions"))
    # generation
    samples_per_seed: int = bound(1, ">= 1")
    concurrency: int = bound(32, ">= 1")
    deadline_s: float = bound(600.0, "> 0")
    seed: int = 0
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    apis_per_package: int = bound(2, ">= 0")
    ingest_classifier: str = one_of("heuristic", ("heuristic", "llm"))
    ingest_threshold: float = 0.5
    # execution
    exec_timeout_s: float = bound(10.0, "> 0")
    exec_memory_mb: int = bound(256, ">= 0")
    # decontamination and dedup
    decontam_max_overlap_ratio: float = bound(0.05, "[0, 1)")
    decontam_max_overlap_count: int = bound(25, ">= 0")
    dedup: bool = True
    # SFT mixture: per-origin weights (source_kind -> weight)
    mixture_weights: dict[str, float] = field(default_factory=dict)
    prompt_dir: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.generators) - set(GENERATORS))
        if unknown:
            raise ConfigError(f"synth.generators: unknown {unknown}; known: {GENERATORS}")
        check_bounds(self, "synth", ConfigError)
        if self.autods_threshold is None and self.autods_top_fraction is None:
            raise ConfigError("synth: set autods_threshold or autods_top_fraction (or both)")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> SynthConfig:
        """Build from the ``synth:`` mapping of a config file (lists become tuples)."""
        raw = dict(raw or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ConfigError(f"synth: unknown key(s) {unknown}; known: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, given in raw.items():
            value = given
            if str(hints[key]).startswith("tuple"):
                if isinstance(given, str) or not isinstance(given, list | tuple):
                    raise ConfigError(f"synth.{key} must be a list, got {given!r}")
                value = tuple(str(v) for v in given)
            elif key == "mixture_weights" and not isinstance(value, dict):
                raise ConfigError(f"synth.mixture_weights must be a mapping, got {value!r}")
            values[key] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"synth: {exc}") from exc

    @classmethod
    def from_file(cls, path: Path) -> SynthConfig:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a config file is a mapping")
        return cls.from_mapping(raw.get("synth", raw))
