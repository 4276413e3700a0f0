"""Heuristic filter stage: routing, drop reasons, config, budgets, determinism."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
from codekiln.stream.filters import (
    SIGNALS,
    HeuristicFilterStage,
    RuleConfigError,
    load_rules,
    merge_reports,
)
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals import signal
from codekiln.stream.record import Record
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stream.stage2.samples import word

GOOD_PYTHON = '''"""Inventory helpers for the warehouse service."""

import logging

log = logging.getLogger(__name__)


class Inventory:
    """Counts items per warehouse shelf and reports shortages."""

    def __init__(self, shelves):
        self.shelves = dict(shelves)
        self.history = []

    def take(self, shelf, amount):
        current = self.shelves.get(shelf, 0)
        if amount > current:
            log.warning("shortage on %s: wanted %d, have %d", shelf, amount, current)
            amount = current
        self.shelves[shelf] = current - amount
        self.history.append((shelf, -amount))
        return amount

    def restock(self, shelf, amount):
        if amount <= 0:
            raise ValueError("restock amount must be positive")
        self.shelves[shelf] = self.shelves.get(shelf, 0) + amount
        self.history.append((shelf, amount))

    def shortages(self, minimum):
        missing = {}
        for shelf, count in sorted(self.shelves.items()):
            if count < minimum:
                missing[shelf] = minimum - count
        return missing
'''


def rec(text: str, lang: str = "Python", path: str = "pkg/mod.py", **meta: object) -> Record:
    return Record(id=f"id-{hash((text, lang, path))}", text=text, lang=lang, path=path, meta=meta)


def run(stage: HeuristicFilterStage, *records: Record) -> list[Record]:
    return stage.process(list(records))


class TestPythonRules:
    def test_good_module_is_kept(self) -> None:
        """A plain, well-formed Python module passes every default rule."""
        (out,) = run(HeuristicFilterStage(), rec(GOOD_PYTHON))
        assert out.drop_reason is None, out.meta.get("filter_detail")

    def test_syntax_error_is_unparseable(self) -> None:
        """A Python 2 print statement makes the file unparseable, with the parser named."""
        text = GOOD_PYTHON + "\nprint 'hello'\n"
        (out,) = run(HeuristicFilterStage(), rec(text))
        assert out.drop_reason == "filters:unparseable"
        assert "python3." in out.meta["filter_detail"]

    def test_byte_order_mark_is_not_a_parse_failure(self) -> None:
        """A file starting with a UTF-8 BOM (U+FEFF once decoded) parses."""
        assert SIGNALS["py_unparseable"].fn(Document("\ufeff" + GOOD_PYTHON, "Python")) == 0.0

    def test_deep_nesting_is_unparseable_not_a_crash(self) -> None:
        """100k nested brackets give reason unparseable, not a crash or a hang."""
        text = GOOD_PYTHON + "\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"
        (out,) = run(HeuristicFilterStage(), rec(text))
        assert out.drop_reason == "filters:unparseable"

    def test_deep_expression_recursion_is_unparseable(self) -> None:
        """A 200k-term chained expression (deep AST) is handled: unparseable or kept."""
        text = GOOD_PYTHON + "\ny = " + "+".join(["1"] * 200_000) + "\n"
        (out,) = run(HeuristicFilterStage(disable=["num_chars_line_max"]), rec(text))
        assert out.drop_reason in (None, "filters:unparseable", "filters:frac_chars_digital")

    def test_password_is_not_a_pass_line(self) -> None:
        """Whole-word matching: assignments to ``password`` are not ``pass`` statements."""
        body = "\n".join(f"password{i} = 'secret{i}'" for i in range(30))
        doc = Document(body, "Python", "a.py", "python")
        assert SIGNALS["py_frac_lines_pass"].fn(doc) == 0.0
        doc = Document(body + "\n" + "\n".join(["pass"] * 10), "Python", "a.py", "python")
        assert SIGNALS["py_frac_lines_pass"].fn(doc) == pytest.approx(10 / 40)

    def test_reprint_is_not_a_print_line(self) -> None:
        """``reprint(x)`` and ``printer = 1`` are not print lines; ``print(x)`` is."""
        doc = Document("reprint(x)\nprinter = 1\nprint(x)\n", "Python", "a.py", "python")
        assert SIGNALS["py_frac_lines_print"].fn(doc) == pytest.approx(1 / 3)

    def test_no_variable_file_is_dropped(self) -> None:
        """A file of bare calls with no assignment, loop target or argument fires no_var."""
        text = "\n".join(
            f"{word(i)}_{word(i + 40)}({word(i + 80)!r}, {word(i + 120)!r})" for i in range(40)
        )
        (out,) = run(HeuristicFilterStage(), rec(text))
        assert out.drop_reason == "filters:py_cate_no_var"

    def test_print_heavy_file_is_dropped(self) -> None:
        """A file that is mostly print calls fires the print-line rule."""
        lines = [f"{word(i)} = {word(i + 50)}({i}) * 2" for i in range(10)]
        lines += [f'print("{word(i + 100)} {word(i + 200)}", {word(i % 10)})' for i in range(20)]
        (out,) = run(HeuristicFilterStage(), rec("\n".join(lines)))
        assert out.drop_reason == "filters:py_frac_lines_print"

    def test_docstrings_count_as_comments(self) -> None:
        """Triple-quoted strings that start a line are comments, other literals are strings."""
        doc = Document('"""Doc."""\nx = """not a doc"""\n', "Python", "a.py", "python")
        assert doc.comment_chars == len('"""Doc."""')
        assert doc.strings == ['"""not a doc"""']


class TestSharedRules:
    def test_short_file_dropped_with_rule_name(self) -> None:
        """Too few words: reason names the rule and the detail shows value and threshold."""
        (out,) = run(HeuristicFilterStage(), rec("x = 1\n" * 3))
        assert out.drop_reason == "filters:num_words"
        assert "num_words=" in out.meta["filter_detail"]
        assert "< 30" in out.meta["filter_detail"]

    def test_autogen_marker_needs_whole_phrase(self) -> None:
        """ "generated by" marks a file; an identifier like regenerate_cache does not."""
        marked = Document("# Code generated by protoc. DO NOT EDIT.\n", "Go", "a.go")
        plain = Document("def regenerate_cache(generate=True):\n    pass\n", "Python", "a.py")
        assert SIGNALS["cate_autogen"].fn(marked) == 1.0
        assert SIGNALS["cate_autogen"].fn(plain) == 0.0

    def test_encoded_blob_detected(self) -> None:
        """A 2 KB base64 run marks the file as encoded data."""
        blob = "QUJD" * 600
        doc = Document(f'DATA = "{blob}"\n', "Python", "a.py")
        assert SIGNALS["cate_encoded_data"].fn(doc) == 1.0
        assert SIGNALS["cate_encoded_data"].fn(Document(GOOD_PYTHON, "Python")) == 0.0

    def test_dupe_ngrams_measure_repetition(self) -> None:
        """A text repeated twice is fully covered by duplicate 5-grams; distinct words are not."""
        words = " ".join(f"w{i}" for i in range(200))
        assert SIGNALS["frac_chars_dupe_5grams"].fn(Document(words)) == 0.0
        assert SIGNALS["frac_chars_dupe_5grams"].fn(Document(words + " " + words)) == 1.0

    def test_top_ngram_share(self) -> None:
        """ "a b" repeated 10 times among 20 other words: top 2-gram chars share is 20/40."""
        text = "a b " * 10 + " ".join(chr(ord("c") + i % 20) for i in range(20))
        doc = Document(text)
        assert SIGNALS["frac_chars_top_2grams"].fn(doc) == pytest.approx(20 / 40)

    def test_todo_default_is_upstreams(self) -> None:
        """One TODO in a 40-line file drops it, as upstream's 1% does; gt: 0.05 keeps it."""
        text = GOOD_PYTHON.replace("import logging", "import logging  # TODO: structlog")
        (dropped,) = run(HeuristicFilterStage(), rec(text))
        assert dropped.drop_reason == "filters:frac_lines_prompt_comments"
        lenient = HeuristicFilterStage(
            overrides={"*": {"frac_lines_prompt_comments": {"gt": 0.05}}}
        )
        (kept,) = run(lenient, rec(text))
        assert kept.drop_reason is None

    def test_prose_goes_to_text_table(self) -> None:
        """A record typed prose is judged by the text table, Chinese prose by text_zh."""
        stage = HeuristicFilterStage()
        assert stage.route(rec("hello", lang="Markdown", lang_type="prose")).name == "text"
        zh = rec("这是一个中文句子。" * 20, lang="Text", lang_type="prose")
        assert stage.route(zh).name == "text_zh"
        assert stage.route(rec("a: 1", lang="YAML", lang_type="data")).name == "data"
        assert stage.route(rec("x", lang="Rust", lang_type="programming")).name == "others"


class TestProbabilisticRules:
    def test_same_document_same_decision(self) -> None:
        """The p = 0.8 coin is a function of the document: two stages agree on every record."""
        texts = [
            "\n".join(f"import mod_{i}_{j}" for j in range(12)) + "\nvalue = 1\n" for i in range(60)
        ]
        a = [r.drop_reason for r in run(HeuristicFilterStage(), *map(rec, texts))]
        b = [r.drop_reason for r in run(HeuristicFilterStage(), *map(rec, texts))]
        assert a == b

    def test_share_dropped_follows_p(self) -> None:
        """Over many documents above the threshold, about p of them fire."""
        stage = HeuristicFilterStage(overrides={"python": {"py_score_no_logic": {"p": 0.5}}})
        rule = next(r for r in stage.ruleset.table("python").rules if r.name == "py_score_no_logic")
        from codekiln.stream.filters.heuristic import rule_draw

        draws = [rule_draw(Document(f"doc {i}").digest, rule.name, 0) for i in range(4000)]
        share = sum(d < rule.p for d in draws) / len(draws)
        assert 0.45 < share < 0.55

    def test_seed_changes_draws(self) -> None:
        """Another seed gives other coins (a reproducible but tunable choice)."""
        from codekiln.stream.filters.heuristic import rule_draw

        digest = Document("some text").digest
        assert rule_draw(digest, "r", 0) != rule_draw(digest, "r", 1)


# Test-only signals, registered once for this module.
@signal("test_always_fails")
def _fails(doc: Document) -> float:
    raise ZeroDivisionError("boom")


@signal("test_sleeps")
def _sleeps(doc: Document) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pass
    return 0.0


for _i in range(4):
    signal(f"test_sleeps_{_i}")(_sleeps)


def _rules_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(body, encoding="utf-8")
    return path


class TestFailuresAndBudgets:
    def test_failing_signal_counted_others_still_run(self, tmp_path: Path) -> None:
        """A signal that raises is counted; the later rules of the table still decide."""
        path = _rules_file(
            tmp_path,
            "tables:\n  python:\n    rules:\n"
            "      boom: {signal: test_always_fails, gt: 0}\n"
            "      tiny: {signal: num_chars, lt: 100000}\n",
        )
        stage = HeuristicFilterStage(rules=str(path))
        (out,) = run(stage, rec(GOOD_PYTHON))
        assert out.drop_reason == "filters:tiny"
        assert stage.report()["signal_failures"] == {"test_always_fails": {"ZeroDivisionError": 1}}

    def test_slow_signal_is_stopped_and_counted(self, tmp_path: Path) -> None:
        """A signal stuck in a loop is preempted at its budget; the next rule still fires."""
        path = _rules_file(
            tmp_path,
            "tables:\n  python:\n    rules:\n"
            "      stuck: {signal: test_sleeps, gt: 0}\n"
            "      tiny: {signal: num_chars, lt: 100000}\n",
        )
        stage = HeuristicFilterStage(rules=str(path), signal_budget_s=0.2)
        start = time.monotonic()
        (out,) = run(stage, rec(GOOD_PYTHON))
        assert time.monotonic() - start < 10
        assert out.drop_reason == "filters:tiny"
        assert stage.report()["signal_timeouts"] == {"test_sleeps": 1}

    def test_document_budget_drops_as_timeout(self, tmp_path: Path) -> None:
        """When signals together exceed the document budget, the record drops as timeout."""
        rules = "".join(f"      stuck{i}: {{signal: test_sleeps_{i}, gt: 0}}\n" for i in range(4))
        rules += "      tiny: {signal: num_chars, lt: 100000}\n"
        path = _rules_file(tmp_path, "tables:\n  python:\n    rules:\n" + rules)
        stage = HeuristicFilterStage(rules=str(path), signal_budget_s=0.2, doc_budget_s=0.5)
        (out,) = run(stage, rec(GOOD_PYTHON))
        assert out.drop_reason == "filters:timeout"


class TestConfig:
    def test_override_moves_threshold(self) -> None:
        """Raising num_words' threshold via options drops a file the default keeps."""
        stage = HeuristicFilterStage(overrides={"python": {"num_words": {"lt": 10_000}}})
        (out,) = run(stage, rec(GOOD_PYTHON))
        assert out.drop_reason == "filters:num_words"

    def test_disable_turns_rule_off(self) -> None:
        """A disabled rule no longer fires."""
        stage = HeuristicFilterStage(disable=["num_words", "num_chars", "num_lines"])
        (out,) = run(stage, rec("x = 1\n" * 3))
        assert out.drop_reason != "filters:num_words"

    def test_rules_file_merges_over_builtin(self, tmp_path: Path) -> None:
        """A user YAML changes one field of one rule; the rest of the table stays."""
        path = _rules_file(
            tmp_path, "tables:\n  python:\n    rules:\n      py_frac_lines_print: {gt: 0.9}\n"
        )
        table = load_rules(path).table("python")
        rules = {r.name: r for r in table.rules}
        assert rules["py_frac_lines_print"].gt == 0.9
        assert rules["num_words"].lt == 30

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"python": {"num_words": {"lt": "many"}}}, "lt must be a number"),
            ({"python": {"num_words": {"below": 3}}}, "unknown key"),
            ({"python": {"new_rule": {"signal": "nope", "gt": 1}}}, "unknown signal 'nope'"),
            ({"cobol": {"num_words": {"lt": 3}}}, "unknown table 'cobol'"),
            ({"python": {"num_words": {"p": 2}}}, "p must be within"),
        ],
    )
    def test_bad_config_fails_with_exact_message(self, overrides: dict, message: str) -> None:
        """Malformed overrides fail at construction with a message naming the problem."""
        with pytest.raises(RuleConfigError, match=message):
            HeuristicFilterStage(overrides=overrides)

    def test_unknown_disable_name_fails(self) -> None:
        """Disabling a rule that no table has is an error, not a silent no-op."""
        with pytest.raises(RuleConfigError, match="unknown rule"):
            HeuristicFilterStage(disable=["no_such_rule"])


class TestReport:
    def test_counts_per_rule_and_language(self) -> None:
        """report() counts drops per rule and per language."""
        stage = HeuristicFilterStage()
        run(stage, rec(GOOD_PYTHON), rec("x = 1\n"), rec("short", lang="Rust"))
        report = stage.report()
        assert report["docs_in"] == 3
        assert report["docs_dropped"] == 2
        assert report["drops_by_rule"] == {"num_words": 2}
        assert report["by_language"]["Python"]["dropped"] == 1
        assert report["by_language"]["Rust"]["drops_by_rule"] == {"num_words": 1}

    def test_worker_counts_reach_the_runtime_copy(self) -> None:
        """Counts a pool worker's copy takes after a batch add up in the runtime's copy."""
        parent = HeuristicFilterStage()
        workers = [pickle.loads(pickle.dumps(parent)) for _ in range(2)]
        run(workers[0], rec("x = 1\n"), rec(GOOD_PYTHON))
        run(workers[1], rec("short", lang="Rust"))
        for worker in workers:
            stats = worker.take_stats()
            assert stats is not None
            parent.absorb_stats(stats)
            assert worker.take_stats() is None  # taken once, then forgotten
        # The parent processed nothing itself, yet reports both workers' records.
        report = parent.report()
        assert report["docs_in"] == 3
        assert report["drops_by_rule"] == {"num_words": 2}
        assert report["by_language"]["Rust"]["drops_by_rule"] == {"num_words": 1}
        assert merge_reports([{"a": {"b": 1}}, {"a": {"b": 2, "c": 1}}]) == {"a": {"b": 3, "c": 1}}

    def test_counts_survive_a_checkpoint(self) -> None:
        """state_dict() carries the counts; a restored copy reports them and adds new ones."""
        stage = HeuristicFilterStage()
        worker = pickle.loads(pickle.dumps(stage))
        run(worker, rec("x = 1\n"))
        stage.absorb_stats(worker.take_stats() or {})
        restored = HeuristicFilterStage()
        restored.load_state_dict(pickle.loads(pickle.dumps(stage.state_dict())))
        assert restored.report() == stage.report()
        run(restored, rec("y = 2\n"))
        assert restored.report()["drops_by_rule"] == {"num_words": 2}

    def test_already_dropped_records_pass_through(self) -> None:
        """A record dropped by an earlier stage is not judged again."""
        record = rec(GOOD_PYTHON)
        record.drop_reason = "preprocess:binary"
        (out,) = run(HeuristicFilterStage(), record)
        assert out.drop_reason == "preprocess:binary"

    def test_annotate_stores_signal_values(self) -> None:
        """annotate + evaluate_all stores every computed signal value in meta."""
        stage = HeuristicFilterStage(annotate=True, evaluate_all=True)
        (out,) = run(stage, rec(GOOD_PYTHON))
        signals = out.meta["quality_signals"]
        assert signals["py_unparseable"] == 0.0
        assert 0 < signals["frac_chars_alphabet"] <= 1


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gets_a_verdict(text: str) -> None:
    """Arbitrary text in any table gives keep or a filters: reason, never an exception."""
    stage = HeuristicFilterStage()
    for lang, lang_type in (("Python", ""), ("Rust", ""), ("Markdown", "prose"), ("JSON", "data")):
        (out,) = run(stage, rec(text, lang=lang, lang_type=lang_type))
        assert out.drop_reason is None or out.drop_reason.startswith("filters:")
        assert "error" not in (out.drop_reason or "")


def test_exported_members() -> None:
    """The public surfaces of the stage-2 packages are exactly what we mean to export."""
    from codekiln.stream import filters, sampling, webclf

    assert set(filters.__all__) == {
        "REPRODUCE_ALL", "SIGNALS", "HeuristicFilterStage", "Rule", "RuleConfigError", "RuleSet",
        "RuleTable", "Unparseable", "load_rules", "merge_reports",
    }  # fmt: skip
    assert set(sampling.__all__) == {
        "AnnealRouteStage", "DownsampleStage", "MixSpec", "MixtureError", "build_mixture",
    }  # fmt: skip
    assert set(webclf.__all__) == {
        "CodeWebClassifier", "TrainParams", "WebClfError", "aggregate", "domain_of", "evaluate",
        "iterate", "select_domains",
    }  # fmt: skip
    for module in (filters, sampling, webclf):
        assert all(hasattr(module, name) for name in module.__all__)
