"""Intentional deviations from OpenCoder's reference filters: one table, read by the tests and
embedded in the docs.

The table (``data/opc_deviations.yaml``) lists every difference between codekiln's filters and
OpenCoder's own filtering code (opc_data_filtering @ 44b857e) that codekiln keeps on purpose:
the rule, upstream's behaviour, codekiln's, the reason and an example file (optionally
``corpus_examples``: files of the other reference corpora, outside the golden set, where the
row decided a verdict; prose, not checked against data; optionally ``reproduce``: the rule
changes that give upstream's behaviour back, which the filter stage's ``reproduce`` option
applies, see :func:`.rules.load_rules`). Its ``covers`` part
is machine-readable: which upstream signals (``qsc_*`` names) may take other values and which
upstream rules may fire differently, on which files. The differential test
(tests/stream/stage2/test_opc_reference.py) fails on any difference no row covers; the docs
(docs/stream-stage2.md) embed :func:`render_markdown` of the same rows, checked by a test.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

DEVIATIONS_FILE = "opc_deviations.yaml"
#: ``covers.files`` values that are conditions rather than lists of paths.
ALL_FILES = "all"
UPSTREAM_UNPARSED = "upstream-parser-rejected"
_ROW_KEYS = {"id", "rule", "upstream", "codekiln", "reason", "example", "covers"}
_OPTIONAL_KEYS = {"corpus_examples", "reproduce"}
_COVER_KEYS = {"signals", "rules", "files", "tags", "max_diff"}


class DeviationTableError(ValueError):
    """The deviation table is malformed: the message names the row and field."""


@dataclass(frozen=True, slots=True)
class Deviation:
    id: str
    rule: str
    upstream: str
    codekiln: str
    reason: str
    example: str
    #: Upstream signal names (or ``fnmatch`` patterns) whose values may differ where the row
    #: applies.
    signals: frozenset[str]
    #: Upstream rule (signal) names that may fire on one side only where the row applies.
    rules: frozenset[str]
    #: ``ALL_FILES``, ``UPSTREAM_UNPARSED`` or a tuple of file paths.
    files: str | tuple[str, ...]
    #: Language tags the row applies to (empty: every language).
    tags: frozenset[str]
    #: The largest absolute difference of a signal value the row covers (None: any).
    max_diff: float | None = None
    #: Examples outside the golden set ("package version: path (what happens)").
    corpus_examples: tuple[str, ...] = ()
    #: Rule changes that reproduce upstream's behaviour, in the shape of the filter stage's
    #: ``overrides`` flattened to (table, rule, ((field, value), ...)); empty: not reproducible.
    reproduce: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = ()

    def reproduce_overrides(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``reproduce`` as the filter stage's ``overrides`` mapping."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for table, rule, fields in self.reproduce:
            out.setdefault(table, {})[rule] = dict(fields)
        return out

    def applies(self, path: str, tag: str, upstream_unparsed: bool) -> bool:
        if self.tags and tag not in self.tags:
            return False
        if self.files == ALL_FILES:
            return True
        if self.files == UPSTREAM_UNPARSED:
            return upstream_unparsed
        return path in self.files

    def covers_signal(self, name: str, difference: float | None = None) -> bool:
        """Whether the row allows ``name`` to differ by ``difference`` (None: the values are
        not comparable numbers, e.g. one side has none)."""
        if self.max_diff is not None and (difference is None or difference > self.max_diff):
            return False
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.signals)

    def covers_rule(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.rules)


def _strings(where: str, value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DeviationTableError(f"{where}: must be a list of strings, got {value!r}")
    return frozenset(value)


def _row(index: int, raw: Any) -> Deviation:
    where = f"{DEVIATIONS_FILE} row {index}"
    if not isinstance(raw, Mapping):
        raise DeviationTableError(f"{where}: must be a mapping")
    unknown = set(raw) - _ROW_KEYS - _OPTIONAL_KEYS
    missing = _ROW_KEYS - set(raw)
    if unknown or missing:
        raise DeviationTableError(
            f"{where}: unknown key(s) {sorted(unknown)}, missing key(s) {sorted(missing)}"
        )
    for key in _ROW_KEYS - {"covers"}:
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise DeviationTableError(f"{where}: {key} must be a non-empty string")
    where = f"{DEVIATIONS_FILE} row {raw['id']!r}"
    covers = raw["covers"]
    if not isinstance(covers, Mapping) or set(covers) - _COVER_KEYS:
        raise DeviationTableError(f"{where}: covers must be a mapping of {sorted(_COVER_KEYS)}")
    files = covers.get("files", ALL_FILES)
    if isinstance(files, list):
        files = tuple(_strings(f"{where}: covers.files", files))
        files = tuple(sorted(files))
    elif files not in (ALL_FILES, UPSTREAM_UNPARSED):
        raise DeviationTableError(
            f"{where}: covers.files must be a list of paths, {ALL_FILES!r} or {UPSTREAM_UNPARSED!r}"
        )
    signals = _strings(f"{where}: covers.signals", covers.get("signals"))
    rules = _strings(f"{where}: covers.rules", covers.get("rules"))
    if not signals and not rules:
        raise DeviationTableError(f"{where}: covers names no signal and no rule")
    max_diff = covers.get("max_diff")
    if max_diff is not None and (
        isinstance(max_diff, bool) or not isinstance(max_diff, int | float) or max_diff <= 0
    ):
        raise DeviationTableError(f"{where}: covers.max_diff must be a positive number")
    examples = raw.get("corpus_examples")
    _strings(f"{where}: corpus_examples", examples)  # a list of strings, in the table's order
    reproduce = _reproduce(where, raw.get("reproduce"))
    return Deviation(
        id=raw["id"],
        rule=raw["rule"],
        upstream=raw["upstream"].strip(),
        codekiln=raw["codekiln"].strip(),
        reason=raw["reason"].strip(),
        example=raw["example"].strip(),
        signals=signals,
        rules=rules,
        files=files,
        tags=_strings(f"{where}: covers.tags", covers.get("tags")),
        max_diff=None if max_diff is None else float(max_diff),
        corpus_examples=tuple(examples or ()),
        reproduce=reproduce,
    )


def _reproduce(where: str, raw: Any) -> tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...]:
    """``reproduce: {table: {rule: {field: value}}}`` flattened; the rule tables check the
    tables, rules and fields when the option is used (and a test, for every row)."""
    if raw is None:
        return ()
    error = f"{where}: reproduce must map tables to rules to fields, got {raw!r}"
    if not isinstance(raw, Mapping) or not raw:
        raise DeviationTableError(error)
    out = []
    for table, rules in raw.items():
        if not isinstance(table, str) or not isinstance(rules, Mapping) or not rules:
            raise DeviationTableError(error)
        for rule, fields in rules.items():
            if not isinstance(rule, str) or not isinstance(fields, Mapping) or not fields:
                raise DeviationTableError(error)
            out.append((table, rule, tuple(sorted(fields.items()))))
    return tuple(out)


def load_deviations(text: str | None = None) -> tuple[Deviation, ...]:
    """The built-in table (or the YAML ``text``), validated."""
    if text is None:
        source = resources.files("codekiln.stream.filters").joinpath("data", DEVIATIONS_FILE)
        text = source.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeviationTableError(f"{DEVIATIONS_FILE} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("deviations"), list):
        raise DeviationTableError(f"{DEVIATIONS_FILE}: must hold a list under 'deviations'")
    rows = tuple(_row(i, r) for i, r in enumerate(raw["deviations"]))
    ids = [row.id for row in rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise DeviationTableError(f"{DEVIATIONS_FILE}: duplicate id(s) {dupes}")
    return rows


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _scope(row: Deviation) -> str:
    if isinstance(row.files, tuple):
        files = f"{len(row.files)} listed file{'s' if len(row.files) != 1 else ''}"
    elif row.files == UPSTREAM_UNPARSED:
        files = "files upstream's parser rejects"
    else:
        files = "every file"
    if row.tags:
        files += " (" + ", ".join(sorted(row.tags)) + ")"
    parts = [files]
    if row.signals:
        bound = f" within {row.max_diff:g}" if row.max_diff is not None else ""
        parts.append(f"values{bound}")
    if row.rules:
        parts.append("rules")
    return "; ".join(parts)


def _reproduce_cell(row: Deviation) -> str:
    changes = [
        f"`{table}` `{rule}`: " + ", ".join(f"{k} {_yaml_value(v)}" for k, v in fields)
        for table, rule, fields in row.reproduce
    ]
    return "; ".join(changes) or "no"


def _yaml_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else f"`{value}`"


def render_markdown(rows: tuple[Deviation, ...]) -> str:
    """The docs' table of intentional deviations (one row per deviation)."""
    out = [
        "| id | rule | upstream | codekiln | reason | example | covers | reproduce |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        example = row.example if " " in row.example else f"`{row.example}`"
        if row.corpus_examples:
            example += "; other corpora: " + "; ".join(row.corpus_examples)
        cells = (
            row.id,
            f"`{row.rule}`",
            row.upstream,
            row.codekiln,
            row.reason,
            example,
            _scope(row),
            _reproduce_cell(row),
        )
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"
