"""Heuristic quality filters (RefineCode stage 2): signals, rule tables, the filter stage."""

from codekiln.stream.filters.heuristic import HeuristicFilterStage, merge_reports
from codekiln.stream.filters.rules import (
    REPRODUCE_ALL,
    Rule,
    RuleConfigError,
    RuleSet,
    RuleTable,
    load_rules,
)
from codekiln.stream.filters.signals import SIGNALS, Unparseable

__all__ = [
    "REPRODUCE_ALL",
    "SIGNALS",
    "HeuristicFilterStage",
    "Rule",
    "RuleConfigError",
    "RuleSet",
    "RuleTable",
    "Unparseable",
    "load_rules",
    "merge_reports",
]
