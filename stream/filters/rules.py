"""Rule tables: which signal, compared with which threshold, for which language.

The tables are data (``data/rules.yaml``), loaded into frozen objects. A table names its rules;
each rule names a signal (by default the rule's own name) and fires when the signal's value is
below ``lt``, above ``gt``, or equal to ``eq``. A rule with ``p`` below 1 fires for that share
of the documents over the threshold, decided by a hash of the document and the rule name (the
same document always gets the same decision). ``extends`` copies a parent table; an entry in
the child replaces the given fields of the parent's rule, ``enabled: false`` turns it off.

Users change rules without code: the stage's ``rules`` option points at another YAML file of
the same shape (merged over the built-in one), ``overrides`` changes fields of single rules per
table (``"*"`` for every table), ``disable`` lists rule names to turn off everywhere.
``reproduce`` names rows of the intentional-deviation table (``data/opc_deviations.yaml``) whose
upstream behaviour to give back: each such row carries the rule changes that do it (another
signal, a rule on or off), applied before ``overrides``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from codekiln.stream.filters.deviations import load_deviations
from codekiln.stream.filters.signals import SIGNALS

BUILTIN_RULES = "rules.yaml"
#: ``reproduce`` value for every deviation-table row that can give upstream's behaviour back.
REPRODUCE_ALL = "all"
_RULE_KEYS = {"signal", "lt", "gt", "eq", "p", "enabled", "doc"}
_TABLE_KEYS = {"extends", "description", "rules"}


class RuleConfigError(ValueError):
    """A rule table is malformed: the message names the table, rule and field."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    signal: str
    lt: float | None = None
    gt: float | None = None
    eq: float | None = None
    p: float = 1.0
    enabled: bool = True
    doc: str = ""

    def fires_on(self, value: float) -> bool:
        if self.lt is not None and value < self.lt:
            return True
        if self.gt is not None and value > self.gt:
            return True
        return self.eq is not None and value == self.eq

    def describe(self) -> str:
        parts = []
        if self.lt is not None:
            parts.append(f"< {self.lt:g}")
        if self.gt is not None:
            parts.append(f"> {self.gt:g}")
        if self.eq is not None:
            parts.append(f"== {self.eq:g}")
        cond = " or ".join(parts)
        prob = f" (p = {self.p:g})" if self.p < 1 else ""
        return f"{self.signal} {cond}{prob}"


@dataclass(frozen=True, slots=True)
class RuleTable:
    name: str
    rules: tuple[Rule, ...]
    description: str = ""

    @property
    def active(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)


@dataclass(frozen=True, slots=True)
class Routing:
    """Language (Linguist name) -> table; language type -> table; the fallback table."""

    languages: Mapping[str, str] = field(default_factory=dict)
    lang_types: Mapping[str, str] = field(default_factory=dict)
    default: str = "others"
    text_zh: str = "text_zh"
    #: Share of CJK characters above which a prose document uses the ``text_zh`` table.
    zh_min_cjk_fraction: float = 0.3


@dataclass(frozen=True, slots=True)
class RuleSet:
    tables: Mapping[str, RuleTable]
    routing: Routing

    def table(self, name: str) -> RuleTable:
        return self.tables[name]


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise RuleConfigError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _rule_fields(where: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise RuleConfigError(f"{where}: a rule must be a mapping, got {spec!r}")
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise RuleConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}"
        )
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in ("lt", "gt", "eq"):
            out[key] = None if value is None else _number(where, key, value)
        elif key == "p":
            p = _number(where, key, value)
            if not 0.0 <= p <= 1.0:
                raise RuleConfigError(f"{where}: p must be within [0, 1], got {value!r}")
            out[key] = p
        elif key == "enabled":
            if not isinstance(value, bool):
                raise RuleConfigError(f"{where}: enabled must be true or false, got {value!r}")
            out[key] = value
        else:
            if not isinstance(value, str):
                raise RuleConfigError(f"{where}: {key} must be a string, got {value!r}")
            out[key] = value
    return out


def _merge_rule(where: str, name: str, base: Rule | None, spec: Any) -> Rule:
    fields = _rule_fields(where, spec)
    if base is not None:
        rule = replace(base, **fields)
    else:
        rule = Rule(name=name, **{"signal": name, **fields})
    if rule.signal not in SIGNALS:
        raise RuleConfigError(f"{where}: unknown signal {rule.signal!r}")
    if rule.lt is None and rule.gt is None and rule.eq is None:
        raise RuleConfigError(f"{where}: a rule needs at least one of lt, gt, eq")
    return rule


def _build_tables(raw: Mapping[str, Any], source: str) -> dict[str, RuleTable]:
    tables: dict[str, RuleTable] = {}
    pending = dict(raw)

    def build(name: str, chain: tuple[str, ...]) -> RuleTable:
        if name in tables:
            return tables[name]
        if name in chain:
            raise RuleConfigError(f"{source}: tables extend each other in a cycle: {chain}")
        spec = pending.get(name)
        if not isinstance(spec, Mapping):
            raise RuleConfigError(f"{source}: table {name!r} is missing or not a mapping")
        unknown = set(spec) - _TABLE_KEYS
        if unknown:
            raise RuleConfigError(f"{source}: table {name!r}: unknown key(s) {sorted(unknown)}")
        rules: dict[str, Rule] = {}
        parent = spec.get("extends")
        if parent is not None:
            rules = {rule.name: rule for rule in build(str(parent), (*chain, name)).rules}
        for rule_name, rule_spec in (spec.get("rules") or {}).items():
            where = f"{source}: table {name!r}, rule {rule_name!r}"
            rules[rule_name] = _merge_rule(where, rule_name, rules.get(rule_name), rule_spec)
        table = RuleTable(name, tuple(rules.values()), str(spec.get("description", "")))
        tables[name] = table
        return table

    for name in raw:
        build(name, ())
    return tables


#: libyaml's safe loader when PyYAML was built with it (the same documents, ~8x faster on the
#: built-in table, which every run loads), else the pure-Python one.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(path: Path | None) -> tuple[dict[str, Any], str]:
    if path is None:
        text = resources.files("codekiln.stream.filters").joinpath("data", BUILTIN_RULES)
        builtin = yaml.load(text.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
        return builtin, f"built-in {BUILTIN_RULES}"
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except OSError as exc:
        raise RuleConfigError(f"cannot read rule file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RuleConfigError(f"rule file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RuleConfigError(f"rule file {path} must hold a mapping")
    return data, str(path)


def load_rules(
    path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    disable: list[str] | tuple[str, ...] = (),
    reproduce: str | Sequence[str] = (),
) -> RuleSet:
    """The built-in tables, merged with ``path``, the rule changes of the deviation-table rows
    ``reproduce`` names (``"all"``: every row that has them), ``overrides`` and ``disable`` (in
    that order)."""
    builtin, _ = _load_yaml(None)
    raw_tables: dict[str, Any] = dict(builtin["tables"])
    raw_routing: dict[str, Any] = dict(builtin.get("routing") or {})
    if path is not None:
        user, source = _load_yaml(Path(path))
        unknown = set(user) - {"tables", "routing"}
        if unknown:
            raise RuleConfigError(f"{source}: unknown key(s) {sorted(unknown)}")
        for name, spec in (user.get("tables") or {}).items():
            if name in raw_tables and isinstance(spec, Mapping):
                merged = dict(raw_tables[name])
                merged_rules = dict(merged.get("rules") or {})
                for rule_name, rule_spec in (spec.get("rules") or {}).items():
                    old = merged_rules.get(rule_name)
                    merged_rules[rule_name] = (
                        {**old, **rule_spec}
                        if isinstance(old, Mapping) and isinstance(rule_spec, Mapping)
                        else rule_spec
                    )
                merged.update({k: v for k, v in spec.items() if k != "rules"})
                merged["rules"] = merged_rules
                raw_tables[name] = merged
            else:
                raw_tables[name] = spec
        for key, value in (user.get("routing") or {}).items():
            if isinstance(value, Mapping) and isinstance(raw_routing.get(key), Mapping):
                raw_routing[key] = {**raw_routing[key], **value}
            else:
                raw_routing[key] = value
    tables = _build_tables(raw_tables, "rules")
    for row, changes in _reproduced(reproduce):
        _apply_overrides(tables, changes, f"reproduce {row!r}")
    _apply_overrides(tables, overrides or {}, "overrides")
    if disable:
        known = {rule.name for table in tables.values() for rule in table.rules}
        missing = sorted(set(disable) - known)
        if missing:
            raise RuleConfigError(f"disable: unknown rule(s) {missing}")
        for name, table in tables.items():
            tables[name] = replace(
                table,
                rules=tuple(
                    replace(rule, enabled=False) if rule.name in disable else rule
                    for rule in table.rules
                ),
            )
    routing = _routing(raw_routing, tables)
    return RuleSet(tables, routing)


def _apply_overrides(
    tables: dict[str, RuleTable], overrides: Mapping[str, Any], source: str
) -> None:
    if not isinstance(overrides, Mapping):
        raise RuleConfigError(f"{source} must map table names to rules, got {overrides!r}")
    for table_name, changes in overrides.items():
        targets = list(tables) if table_name == "*" else [table_name]
        for target in targets:
            if target not in tables:
                raise RuleConfigError(
                    f"{source}: unknown table {target!r}; known: {sorted(tables)}"
                )
            if not isinstance(changes, Mapping):
                raise RuleConfigError(f"{source}[{table_name!r}] must map rule names to fields")
            rules = {rule.name: rule for rule in tables[target].rules}
            for rule_name, spec in changes.items():
                if rule_name not in rules and table_name == "*":
                    continue
                where = f"{source}: table {target!r}, rule {rule_name!r}"
                rules[rule_name] = _merge_rule(where, rule_name, rules.get(rule_name), spec)
            tables[target] = replace(tables[target], rules=tuple(rules.values()))


def _reproduced(reproduce: Any) -> list[tuple[str, dict[str, dict[str, dict[str, Any]]]]]:
    """(row id, its rule changes) for each deviation-table row ``reproduce`` names."""
    if isinstance(reproduce, list | tuple) and not reproduce:
        return []
    rows = {row.id: row for row in load_deviations()}
    reproducible = [row.id for row in rows.values() if row.reproduce]
    if reproduce == REPRODUCE_ALL:
        names = reproducible
    elif isinstance(reproduce, list | tuple) and all(isinstance(n, str) for n in reproduce):
        names = list(dict.fromkeys(reproduce))
    else:
        raise RuleConfigError(
            f"reproduce must be {REPRODUCE_ALL!r} or a list of deviation-table row ids, "
            f"got {reproduce!r}; reproducible rows: {reproducible}"
        )
    for name in names:
        if name not in rows:
            close = difflib.get_close_matches(name, list(rows), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RuleConfigError(
                f"reproduce: no deviation-table row {name!r}{hint}; reproducible rows: "
                f"{reproducible}"
            )
        if not rows[name].reproduce:
            raise RuleConfigError(
                f"reproduce: row {name!r} has no rule change that gives upstream's behaviour "
                f"back (see the deviation table in docs/stream-stage2.md); reproducible rows: "
                f"{reproducible}"
            )
    return [(name, rows[name].reproduce_overrides()) for name in names]


def _routing(raw: Mapping[str, Any], tables: Mapping[str, RuleTable]) -> Routing:
    allowed = {"languages", "lang_types", "default", "text_zh", "zh_min_cjk_fraction"}
    unknown = set(raw) - allowed
    if unknown:
        raise RuleConfigError(f"routing: unknown key(s) {sorted(unknown)}")
    routing = Routing(
        languages=dict(raw.get("languages") or {}),
        lang_types=dict(raw.get("lang_types") or {}),
        default=str(raw.get("default", "others")),
        text_zh=str(raw.get("text_zh", "text_zh")),
        zh_min_cjk_fraction=float(raw.get("zh_min_cjk_fraction", 0.3)),
    )
    named = [
        *routing.languages.values(),
        *routing.lang_types.values(),
        routing.default,
        routing.text_zh,
    ]
    for table in named:
        if table not in tables:
            raise RuleConfigError(f"routing: names unknown table {table!r}")
    return routing
