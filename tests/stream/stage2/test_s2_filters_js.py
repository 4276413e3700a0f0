"""The JavaScript parse-failure rule on tree-sitter-javascript: verdicts, reasons and bounds."""

from __future__ import annotations

import importlib.metadata
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from codekiln.stream.filters import SIGNALS, HeuristicFilterStage, Unparseable
from codekiln.stream.filters.budget import DEADLINE, SignalTimeout
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals import javascript
from codekiln.stream.record import Record
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stream.stage2.samples import GOOD_JS

REPO = Path(__file__).resolve().parents[3]


#: Input tree-sitter needs a long time for (linear, ~0.25 MB/s here: about 2.5 s).
SLOW_GARBAGE = "({" * 300_000


def js(text: str) -> float:
    return SIGNALS["js_unparseable"].fn(Document(text, "JavaScript", "a.js"))


def reason(text: str) -> str:
    with pytest.raises(Unparseable) as info:
        js(text)
    assert info.value.parser == javascript.JS_PARSER
    return info.value.detail


def rec(text: str) -> Record:
    return Record(id=str(hash(text)), text=text, lang="JavaScript", path="a.js", meta={})


MODERN = {
    "class fields and private names": (
        "class A {\n  count = 0;\n  static x;\n  #secret = 1;\n  static #make() {}\n"
        "  get value() { return this.#secret; }\n}"
    ),
    "static block": "class A { static { init(); } }",
    "optional chaining": "const a = b?.c?.[d]?.(e);",
    "nullish and logical assignment": "let a = b ?? c;\na ??= 1;\na ||= 2;\na &&= 3;",
    "async/await and for await": (
        "async function f(xs) {\n  for await (const x of xs) {\n    await x;\n  }\n}"
    ),
    "top-level await": "const r = await fetch(url);\nexport default r;",
    "import and export": (
        'import x, { y as z } from "m";\nimport * as ns from "n";\n'
        'export const a = 1;\nexport { z };\nexport * from "o";'
    ),
    "dynamic import and import.meta": 'const m = await import("./m.js");\nlog(import.meta.url);',
    "import attributes": 'import data from "./d.json" with { type: "json" };',
    "JSX": (
        'const el = <div className="a" onClick={() => f()}>\n'
        "  {items.map((i) => <Item key={i} />)}\n</div>;"
    ),
    "JSX fragment": "const el = <><A /><B></B></>;",
    "BigInt and numeric separators": "const n = 1_000_000n;",
    "optional catch binding": "try { f(); } catch { g(); }",
    "regex named groups": r"const r = /(?<year>\d{4})/u;",
    "generators and spread": "function* g(...args) { yield* other(...args); }",
    "destructuring with defaults and rest": "const { a, ...rest } = o;\nconst [x, , y = 2] = arr;",
    "nested template literals": "const s = tag`a ${b} c ${`nested ${d}`}`;",
    "automatic semicolon insertion": "const a = 1\nlet b = a + 2\nb++\n",
    "hashbang": "#!/usr/bin/env node\nconsole.log(1)\n",
    "decorators": "@dec class A { @m method() {} }",
    "object literal accessors and computed keys": (
        "const o = { get a() { return 1; }, set a(v) {}, [k]: 1, async *g() {} };"
    ),
    "sloppy-mode with statement": "with (obj) { a = b; }",
}


@pytest.mark.parametrize("source", MODERN.values(), ids=list(MODERN))
def test_modern_syntax_parses(source: str) -> None:
    """Current ECMAScript and JSX parse: the signal is 0."""
    assert js(source) == 0.0


#: (source, the whole reason)
BROKEN = {
    "unbalanced braces": (
        "function f() {\n  if (a) {\n    return 1;\n  }\n",
        "missing '}' at line 4, column 4",
    ),
    "extra closing brace": (
        "function f() {\n  return 1;\n}\n}\n",
        "syntax error at line 4, column 1: '}'",
    ),
    "function (": ("function (", "syntax error at line 1, column 1: 'function ('"),
    "dangling operator": ("const x = 1 +;\n", "syntax error at line 1, column 13: '+;'"),
    "Python code": (
        "def f(x):\n    return x + 1\n",
        "syntax error at line 1, column 1: 'def f(x):'",
    ),
    "C code": (
        '#include <stdio.h>\nint main(void) { printf("hi"); }\n',
        "syntax error at line 1, column 1: '#include <stdio.h>'",
    ),
    "TypeScript annotations": (
        "function f(x: number): string {\n  return '';\n}\n",
        "syntax error at line 1, column 12: 'x: number): string {'",
    ),
    "TypeScript interface": (
        "interface A {\n  x: number;\n}\n",
        "syntax error at line 1, column 1: 'interface A {'",
    ),
    "TypeScript as": (
        "const x = y as string;\n",
        "syntax error at line 1, column 11: 'y as string;'",
    ),
    "unterminated string": (
        'const s = "open;\nconst t = 1;\n',
        "syntax error at line 1, column 11: '\"open;'",
    ),
    "binary-ish text": (
        "\x7fELF\x02\x01\x01\x00",
        "syntax error at line 1, column 1: '\\x7fELF\\x02\\x01\\x01\\x00'",
    ),
    "markdown": (
        "# Title\n\nSome text with a [link](http://x).\n",
        "syntax error at line 1, column 1: '# Title'",
    ),
}


@pytest.mark.parametrize(("source", "detail"), BROKEN.values(), ids=list(BROKEN))
def test_broken_file_is_unparseable_with_location(source: str, detail: str) -> None:
    """A syntax error raises Unparseable naming the parser and the first error's place."""
    assert reason(source) == detail


def test_column_counts_characters_not_bytes() -> None:
    """The reason's column counts characters, so non-ASCII text before the error is one each."""
    assert reason("// é\nlet ééé = ;\n") == "syntax error at line 2, column 9: '= ;'"


def test_broken_file_dropped_as_unparseable_first() -> None:
    """In the stage the parse rule runs first: a broken, minified file is charged to it."""
    minified = "var a=1;" * 400 + "}"
    stage = HeuristicFilterStage()
    (out,) = stage.process([rec(minified)])
    assert out.drop_reason == "filters:unparseable"
    assert out.meta["filter_detail"] == (
        f"{javascript.JS_PARSER}: syntax error at line 1, column 3201: '}}'"
    )
    assert stage.report()["unparseable_by_parser"] == {javascript.JS_PARSER: 1}


def test_good_modern_file_is_kept_without_failures() -> None:
    """A modern file passes every JavaScript rule and no signal fails."""
    text = GOOD_JS + "\nconst port = options?.port ?? 8080;\nclass Page {\n  size = 20;\n}\n"
    stage = HeuristicFilterStage()
    (out,) = stage.process([rec(text)])
    assert out.drop_reason is None
    report = stage.report()
    assert report["signal_failures"] == {}
    assert report["unparseable_by_parser"] == {}


class TestBadInput:
    @pytest.mark.parametrize(
        "source",
        [
            "x = " + "(" * 50_000 + "1" + ")" * 50_000 + ";",
            "x = " + "[" * 50_000 + "]" * 50_000 + ";",
            "{" * 50_000 + "}" * 50_000,
            "x = " + "{a:" * 30_000 + "1" + "}" * 30_000 + ";",
            "<a>" * 20_000 + "</a>" * 20_000,
        ],
        ids=["parens", "arrays", "blocks", "objects", "jsx"],
    )
    def test_deep_balanced_nesting_parses(self, source: str) -> None:
        """Nesting 20k-50k deep parses (no recursion limit in the C parser)."""
        assert js(source) == 0.0

    @pytest.mark.parametrize(
        "source",
        ["(" * 200_000, "[" * 200_000, "`${" * 50_000, "function (\n" * 20_000],
        ids=["parens", "brackets", "templates", "headers"],
    )
    def test_deep_unbalanced_nesting_is_unparseable(self, source: str) -> None:
        """Deep unclosed nesting is unparseable with a reason, not a crash."""
        assert "line 1, column 1" in reason(source)

    def test_nul_bytes_are_unparseable(self) -> None:
        """NUL bytes in the code are an error at their position."""
        assert "line 2, column 1" in reason("const a = 1;\n\x00\x00const b = 2;\n")

    def test_one_megabyte_line_parses(self) -> None:
        """A 1 MB single-line array literal parses."""
        assert js("var a = [" + "1," * 500_000 + "];") == 0.0

    def test_one_megabyte_garbage_line_is_unparseable(self) -> None:
        """A 1 MB single line of punctuation is unparseable, and the quote is short."""
        detail = reason("x" + "@#$%^" * 200_000)
        assert len(detail) < 120

    def test_lone_surrogates_do_not_crash(self) -> None:
        """Lone surrogates (undecodable in UTF-8) in a string or the code give a verdict."""
        assert js('const s = "\ud800\udfff\udc00";\n') == 0.0
        assert (
            reason("const \ud800 = 1;\n")
            == "syntax error at line 1, column 1: 'const \\ud800 = 1;'"
        )

    @settings(max_examples=80, deadline=None)
    @given(st.text(max_size=300))
    def test_any_text_gives_a_verdict(self, text: str) -> None:
        """Arbitrary text (surrogates included) parses or is unparseable; nothing else."""
        detail = ""
        try:
            value = js(text)
        except Unparseable as exc:
            detail = exc.detail
        if detail:
            assert detail.startswith(("syntax error at line ", "missing "))
        else:
            assert value == 0.0


class TestBounds:
    def test_larger_than_cap_is_unparseable_without_parse(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file over JS_MAX_PARSE_BYTES is unparseable with the cap in the reason."""
        monkeypatch.setattr(javascript, "JS_MAX_PARSE_BYTES", 100)
        assert reason("const a = 1;\n" * 10) == "larger than 100 bytes"

    def test_armed_deadline_stops_the_parse(self) -> None:
        """With the budget's deadline cell set, a slow parse stops with SignalTimeout."""
        started = time.perf_counter()
        DEADLINE[0] = started + 0.05
        try:
            with pytest.raises(SignalTimeout):
                js(SLOW_GARBAGE)
            assert DEADLINE[0] == started + 0.05  # restored for the stage loop to clear
        finally:
            DEADLINE[0] = 0.0

    def test_unarmed_parse_has_its_own_cap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an armed deadline, a parse past JS_MAX_PARSE_S is unparseable."""
        monkeypatch.setattr(javascript, "JS_MAX_PARSE_S", 0.05)
        assert reason(SLOW_GARBAGE) == "parse ran past 0.05s"

    def test_parser_is_usable_after_a_stopped_parse(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A cancelled parse does not leak into the next one (the parser is reset)."""
        monkeypatch.setattr(javascript, "JS_MAX_PARSE_S", 0.05)
        reason(SLOW_GARBAGE)
        assert js(GOOD_JS) == 0.0
        assert "line 1, column 1" in reason("function (")

    def test_stage_budget_drops_slow_file_as_unparseable(self) -> None:
        """Under the stage's alarm, a parse past signal_budget_s is dropped and counted."""
        stage = HeuristicFilterStage(signal_budget_s=0.05)
        records = [rec(SLOW_GARBAGE), rec(GOOD_JS)]
        slow, good = stage.process(records)
        assert slow.drop_reason == "filters:unparseable"
        assert slow.meta["filter_detail"] == "parser ran past 0.05s"
        assert good.drop_reason is None
        assert stage.report()["signal_timeouts"] == {"js_unparseable": 1}


def test_parsers_in_threads_agree() -> None:
    """Parsing from several threads at once (one parser per thread) gives each its verdict."""
    sources = [GOOD_JS, "function (", *MODERN.values()] * 5

    def verdict(text: str) -> tuple[str, bool]:
        try:
            return threading.current_thread().name, js(text) == 0.0
        except Unparseable:
            return threading.current_thread().name, False

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(verdict, sources))
    assert [ok for _, ok in results] == [text != "function (" for text in sources]


def test_parser_name_matches_installed_and_pinned_versions() -> None:
    """JS_PARSER names the installed tree-sitter and grammar, which pyproject pins exactly."""
    installed = {
        name: importlib.metadata.version(name) for name in ("tree-sitter", "tree-sitter-javascript")
    }
    assert installed == {
        "tree-sitter": javascript.TREE_SITTER_VERSION,
        "tree-sitter-javascript": javascript.GRAMMAR_VERSION,
    }
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["stream"]
    for name, version in installed.items():
        assert f"{name}=={version}" in extra
