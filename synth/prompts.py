"""Prompts are data: YAML files under ``synth/prompts/`` (or a directory the config names).

Each file has ``name``, ``description``, ``parser`` (a key of :data:`~.parsers.PARSERS`),
``inputs`` (the placeholders the templates use), ``sampling`` (defaults for
:class:`~.llm.SamplingParams`), ``system`` and ``user`` templates with ``{placeholder}`` fields.
Loading checks all of that and fails with :class:`~.errors.PromptError` naming the file.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import PromptError
from .llm import SamplingParams
from .parsers import PARSERS, parse

__all__ = ["PROMPT_DIR", "PromptTemplate", "load_prompt", "load_questions"]

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
_KEYS = {"name", "description", "parser", "inputs", "sampling", "system", "user"}
_SAMPLING_KEYS = {"n", "temperature", "top_p", "max_tokens", "stop", "seed"}


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    name: str
    description: str
    parser: str
    inputs: tuple[str, ...]
    system: str
    user: str
    sampling: dict[str, Any] = field(default_factory=dict)

    def messages(self, **values: str) -> list[dict[str, str]]:
        """The chat messages with every placeholder filled; a missing value is a PromptError."""
        missing = [k for k in self.inputs if k not in values]
        if missing:
            raise PromptError(f"prompt {self.name!r} needs values for {missing}")
        out = []
        if self.system.strip():
            out.append({"role": "system", "content": self.system.strip()})
        out.append({"role": "user", "content": self.user.format_map(values).strip()})
        return out

    def params(self, **overrides: Any) -> SamplingParams:
        settings = dict(self.sampling)
        if "stop" in settings:
            settings["stop"] = tuple(settings["stop"])
        settings.update(overrides)
        return SamplingParams(**settings)

    def parse(self, text: str) -> dict[str, str]:
        return parse(self.parser, text)


def _placeholders(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def load_prompt(name: str, prompt_dir: Path | None = None) -> PromptTemplate:
    path = (prompt_dir or PROMPT_DIR) / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PromptError(f"cannot load prompt {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: a prompt file is a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise PromptError(f"{path}: unknown key(s) {sorted(unknown)}")
    for key in ("name", "parser", "user"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise PromptError(f"{path}: {key!r} must be a non-empty string")
    if raw["name"] != name:
        raise PromptError(f"{path}: name {raw['name']!r} does not match the file name")
    if raw["parser"] not in PARSERS:
        raise PromptError(f"{path}: unknown parser {raw['parser']!r}; known: {sorted(PARSERS)}")
    inputs = tuple(raw.get("inputs") or ())
    system = str(raw.get("system") or "")
    try:
        used = _placeholders(system) | _placeholders(raw["user"])
    except ValueError as exc:
        raise PromptError(f"{path}: bad template: {exc}") from exc
    if used != set(inputs):
        raise PromptError(f"{path}: templates use {sorted(used)} but inputs are {sorted(inputs)}")
    sampling = dict(raw.get("sampling") or {})
    bad = set(sampling) - _SAMPLING_KEYS
    if bad:
        raise PromptError(f"{path}: unknown sampling key(s) {sorted(bad)}")
    template = PromptTemplate(
        name=name,
        description=str(raw.get("description") or ""),
        parser=raw["parser"],
        inputs=inputs,
        system=system,
        user=raw["user"],
        sampling=sampling,
    )
    try:
        template.params()
    except (TypeError, ValueError) as exc:
        raise PromptError(f"{path}: bad sampling settings: {exc}") from exc
    return template


def load_questions(set_name: str, prompt_dir: Path | None = None) -> list[tuple[str, str]]:
    """The AutoDS question set ``set_name`` as ``(id, question)`` pairs."""
    path = (prompt_dir or PROMPT_DIR) / "autods_questions.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PromptError(f"cannot load {path}: {exc}") from exc
    if not isinstance(raw, dict) or set_name not in raw:
        known = sorted(raw) if isinstance(raw, dict) else []
        raise PromptError(f"{path}: no question set {set_name!r}; known: {known}")
    out = []
    for item in raw[set_name] or []:
        if not isinstance(item, dict) or not item.get("id") or not item.get("text"):
            raise PromptError(f"{path}: each question in {set_name!r} needs id and text")
        out.append((str(item["id"]), str(item["text"])))
    if not out:
        raise PromptError(f"{path}: question set {set_name!r} is empty")
    return out
