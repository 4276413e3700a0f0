"""JavaScript structure signals count OpenCoder's esprima-tree terms on tree-sitter's tree.

Expected counts are worked out by hand from upstream's walkers (utils/code/js_utils.py at
OpenCoder-llm/opc_data_filtering@44b857e, esprima 4.0.1's node classes), one term per test.
"""

from __future__ import annotations

import pytest
from codekiln.stream.filters import SIGNALS, HeuristicFilterStage
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals.javascript import JsFacts, js_facts
from codekiln.stream.filters.signals.registry import Unparseable
from codekiln.stream.record import Record


def facts(text: str) -> JsFacts:
    return js_facts(Document(text, "JavaScript", "a.js"))


class TestFunctions:
    @pytest.mark.parametrize(
        ("code", "count"),
        [
            ("function a() {}\nasync function b() {}\nfunction* c() {}\n", 3),
            ("var f = function () {};\nconst g = function* () {};\n", 2),
            ("const h = async function () {};\n", 0),  # not a FunctionExpression instance
            ("const k = () => 1;\nitems.map((x) => x * 2);\nfoo(function () {});\n", 0),
            ("module.exports.run = () => 1;\nmodule.exports.go = async function () {};\n", 2),
            ("exports.run = function () {};\nmodule['exports'].x = function () {};\n", 0),
            ("const o = { m() {}, n: function () {} };\nclass A { m() {} }\n", 0),
        ],
    )
    def test_function_terms(self, code: str, count: int) -> None:
        """Declarations, function expressions held in variables and exported functions count;
        arrow callbacks, methods and anonymous function arguments do not."""
        assert facts(code).functions == count

    def test_ratio_is_over_code_lines(self) -> None:
        """js_frac_lines_func is functions over non-blank code lines (comments removed)."""
        text = "// one\nfunction a() {\n  return 1;\n}\n\nfunction b() {}\n"
        doc = Document(text, "JavaScript", "a.js")
        assert SIGNALS["js_frac_lines_func"].fn(doc) == pytest.approx(2 / 4)


class TestVariables:
    @pytest.mark.parametrize(
        ("code", "variables", "simple"),
        [
            ("let a;\nvar b = 1, c = 'x', d = -1, e = /re/g, f = undefined, g = (2);\n", 7, 7),
            ("const t = `x`;\nconst u = [1];\nconst n = null;\n", 3, 1),
            ("const fs = require('fs');\n", 1, 0),  # a call: a variable, not a simple one
            ("const {a, b} = obj;\nconst [x] = list;\n", 0, 2),  # no plain name
            ("for (const x of xs) {}\nfor (var k in o) {}\nfor (k in o) {}\n", 2, 2),
            ("const f = function () {};\nconst g = async function () {};\n", 1, 0),
            ("const h = () => 1;\n", 1, 0),  # an arrow function is a variable upstream
            ("module.exports.x = 1;\nmodule.exports.y = f();\nmodule.exports.z = () => 1;\n", 2, 1),
        ],
    )
    def test_variable_terms(self, code: str, variables: int, simple: int) -> None:
        """Declarators with a plain name not holding a function expression are variables;
        those with no value or a literal, identifier or unary value are simple ones."""
        got = facts(code)
        assert (got.variables, got.simple_variables) == (variables, simple)

    def test_no_variable_file(self) -> None:
        """A file of calls and function declarations has no variable (the rule fires)."""
        text = "function main() {\n  console.log('hi');\n}\nmain();\n"
        assert SIGNALS["js_cate_no_var"].fn(Document(text, "JavaScript", "a.js")) == 1.0
        assert SIGNALS["js_cate_no_var"].fn(Document("let a = f();\n", "JavaScript")) == 0.0


class TestNoLogicTerms:
    def test_returns(self) -> None:
        """Bare returns and returns of a literal, identifier or unary expression are simple."""
        text = (
            "function a() { return; }\nfunction b() { return x; }\nfunction c() { return -1; }\n"
            "function d() { return (1); }\nfunction e() { return f(x); }\n"
            "function g() { return a + b; }\nfunction h() { return /* c */ y; }\n"
        )
        assert facts(text).simple_returns == 5

    def test_imports_and_classes(self) -> None:
        """import declarations and named class declarations count; require() does not."""
        text = (
            "import a from 'a';\nimport { b } from 'b';\nconst c = require('c');\n"
            "class D {}\nconst E = class {};\nexport class F {}\n"
        )
        got = facts(text)
        assert (got.imports, got.classes) == (2, 2)

    def test_score_sums_the_terms(self) -> None:
        """js_score_no_logic is (functions + imports + simple variables + simple returns +
        classes) over code lines."""
        text = "import a from 'a';\nconst b = 1;\nfunction c() {\n  return b;\n}\nclass D {}\n"
        doc = Document(text, "JavaScript", "a.js")
        assert SIGNALS["js_score_no_logic"].fn(doc) == pytest.approx(5 / 6)


def test_unparseable_file_has_no_structure_signals() -> None:
    """On a file tree-sitter rejects, the structure signals raise Unparseable (skipped), and
    the parse rule drops the file."""
    text = "function (\n"
    with pytest.raises(Unparseable):
        SIGNALS["js_frac_lines_func"].fn(Document(text, "JavaScript", "a.js"))
    record = Record(id="a", text=text * 20, lang="JavaScript", path="a.js")
    (out,) = HeuristicFilterStage().process([record])
    assert out.drop_reason == "filters:unparseable"


def test_parse_is_shared() -> None:
    """The parse rule and the structure signals parse the document once."""
    doc = Document("const a = 1;\n", "JavaScript", "a.js")
    SIGNALS["js_unparseable"].fn(doc)
    tree = doc.__dict__["_js_tree"]
    SIGNALS["js_cate_no_var"].fn(doc)
    assert doc.__dict__["_js_tree"] is tree


class TestScanner:
    """JavaScript code text is what pygments' JavaScript lexer leaves once comments go."""

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            # a backtick in a regex opens no template string (the comment after it goes)
            ("const r = /`/g; // tick\nf();\n", "const r = /`/g; \nf();\n"),
            ("x = s.replace(/\\/*$/, '/'); // end\n", "x = s.replace(/\\/*$/, '/'); \n"),
            ("if (/'/.test(s)) a(); /* c */\n", "if (/'/.test(s)) a(); \n"),
            ("return /[/*]/.exec(s) // c\n", "return /[/*]/.exec(s) \n"),
            ("#!/usr/bin/env node\n// doc\nrun();\n", "\n\nrun();\n"),
            ("const q = a / b / c; // div\n", "const q = a / b / c; \n"),  # division
            ("const t = `a ${b} // not a comment`;\n", "const t = `a ${b} // not a comment`;\n"),
        ],
    )
    def test_regex_literals_and_shebang(self, text: str, code: str) -> None:
        """Regex literals are code (a quote, backtick or ``/*`` in one opens nothing), a
        ``#!`` first line is a comment, a division is not a regex."""
        assert Document(text, "JavaScript", "a.js").code_text == code

    def test_regex_is_not_a_string_literal(self) -> None:
        """A regex literal is not counted among the string literals."""
        doc = Document("const r = /ab+c/i;\nconst s = 'x';\n", "JavaScript", "a.js")
        assert doc.strings == ["'x'"]


def test_line_comment_break_is_code() -> None:
    """A JavaScript line comment's line break is not comment text (pygments' JavaScript lexer
    leaves it as code, unlike its C lexer): the comment share counts the comment alone."""
    text = "// one\nlet a = 1; // two\n"
    doc = Document(text, "JavaScript", "a.js")
    assert doc.comment_chars == len("// one") + len("// two")
    assert Document(text, "C", "a.c").comment_chars == len("// one\n") + len("// two\n")


def test_unclosed_regex_classes_stay_code() -> None:
    """Hostile text (a long line of "=/[" with no "]") is scanned to its end with nothing
    taken for a comment or string, and a long class still ends a regex."""
    text = "=/[" * 5000 + " // tail\n"
    assert Document(text, "JavaScript", "a.js").code_text == "=/[" * 5000 + " \n"
    ok = "r = /[" + "a-z" * 50 + "`]/; // c\n"
    assert Document(ok, "JavaScript", "a.js").code_text == ok[: ok.index("//")] + "\n"
