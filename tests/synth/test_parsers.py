"""Validating parsers of model outputs."""

from __future__ import annotations

import pytest
from codekiln.synth.errors import ParseError
from codekiln.synth.parsers import code_blocks, parse, sections
from hypothesis import given
from hypothesis import strategies as st

from tests.synth import scripted


class TestHelpers:
    def test_sections_need_every_name(self) -> None:
        """A missing section raises ParseError with a missing_<name> rule."""
        with pytest.raises(ParseError) as info:
            sections("### Code\nx\n", ("Code", "Tests"))
        assert info.value.rule == "missing_tests"

    def test_sections_accept_bold_and_colon_headings(self) -> None:
        """'## **Tests**:' counts as the Tests heading."""
        assert sections("## **Tests**:\nbody\n", ("Tests",)) == {"tests": "body"}

    def test_unclosed_fence_runs_to_end(self) -> None:
        """A truncated answer's last code block is still extracted."""
        assert code_blocks("```python\nx = 1\ny = 2") == [("python", "x = 1\ny = 2")]

    @given(
        st.text(alphabet=st.characters(blacklist_characters="`\r"), min_size=1).filter(
            lambda s: s.strip("\n") == s and s.strip()
        )
    )
    def test_code_block_round_trip(self, body: str) -> None:
        """Any fenced body without backticks comes back unchanged."""
        assert code_blocks(f"text\n```py\n{body}\n```\nmore") == [("python", body)]


class TestCodeAndTests:
    def test_valid_snippet(self) -> None:
        """A well-formed answer yields code and tests."""
        out = parse("code_and_tests", scripted.SNIPPET)
        assert out["code"].startswith("def running_total")
        assert "assert running_total([1, 2, 3])" in out["tests"]

    @pytest.mark.parametrize(
        ("text", "rule"),
        [
            ("", "empty_output"),
            ("### Code\n```python\ndef f(:\n```\n### Tests\n```python\nassert f()\n```",
             "syntax_error_code"),
            ("### Code\n```python\nx = 1\n```\n### Tests\n```python\nassert x\n```",
             "no_function"),
            ("### Code\n```python\ndef f(): return 1\n```\n### Tests\n```python\nf()\n```",
             "no_asserts"),
            ("### Code\n```python\ndef f(): return input()\n```\n### Tests\n```python\n"
             "assert f()\n```", "reads_stdin"),
            ("### Code\nno block here\n### Tests\n```python\nassert 1\n```", "no_code_code"),
        ],
    )  # fmt: skip
    def test_invalid_snippets_name_the_rule(self, text: str, rule: str) -> None:
        """Each kind of bad output is rejected with its own rule."""
        with pytest.raises(ParseError) as info:
            parse("code_and_tests", text)
        assert info.value.rule == rule


class TestOtherParsers:
    def test_textbook(self) -> None:
        """A headed prose section is accepted."""
        assert parse("textbook", scripted.TEXTBOOK)["text"].startswith("## Prefix sums")

    def test_textbook_too_short(self) -> None:
        """A two-line answer is not a textbook section."""
        with pytest.raises(ParseError, match="too_short"):
            parse("textbook", "## Title\nshort text")

    def test_edu_task(self) -> None:
        """Task, analysis, solution and tests are all extracted."""
        out = parse("edu_task", scripted.EDU)
        assert set(out) == {"task", "analysis", "solution", "tests"}

    def test_package_task_must_be_self_contained(self) -> None:
        """A problem that points at 'the documentation' is rejected."""
        text = scripted.PACKAGE.replace("Given a list", "Using the documentation above, given")
        with pytest.raises(ParseError, match="not_self_contained"):
            parse("package_task", text)

    def test_diverse_task_language(self) -> None:
        """The response's last code block and its language are returned."""
        out = parse("diverse_task", scripted.DIVERSE)
        assert out["code_language"] == "python"
        assert out["code"].startswith("def count_words")

    @pytest.mark.parametrize(("text", "answer"), [("YES", "yes"), (" no.", "no")])
    def test_yes_no(self, text: str, answer: str) -> None:
        """YES/NO answers are normalised."""
        assert parse("yes_no", text) == {"answer": answer}
