"""The signal definitions codekiln shares with OpenCoder's reference, one small case each.

The differential test (test_opc_reference.py) checks them on real files; these pin each
definition on a hand-made text whose value follows from the definition (docs/stream-stage2.md,
"Definitions worth knowing"), with the C extension's loops and with the numpy paths.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from codekiln.stream.filters import SIGNALS
from codekiln.stream.filters.document import Document, normal_words

from tests.stream.native import BUILT, numpy_only


@pytest.fixture(params=["native", "numpy"])
def paths(request: pytest.FixtureRequest) -> Iterator[None]:
    """The C extension's loops, then the numpy paths."""
    if request.param == "numpy":
        with numpy_only():
            yield
        return
    if not BUILT:
        pytest.skip("the C extension is not built here")
    yield


def value(signal: str, text: str, lang: str = "", path: str = "") -> float:
    return SIGNALS[signal].fn(Document(text, lang, path))


class TestWords:
    def test_underscore_and_punctuation_separate_words(self, paths: None) -> None:
        doc = Document("foo_bar Baz_1, x.y")
        assert doc.word_lengths.tolist() == [3, 3, 3, 1, 1, 1]
        assert value("num_words", "foo_bar Baz_1, x.y") == 6

    def test_non_ascii_symbols_are_words_and_text_is_nfkc(self) -> None:
        assert normal_words("x\u00a9y \ufb01le caf\u00e9\uff0cok") == [
            "x",
            "\u00a9",
            "y",
            "file",
            "caf\u00e9",
            "ok",
        ]

    def test_control_characters(self) -> None:
        """NUL and the like are removed (joining what they separated); ESC is a word."""
        assert normal_words("ab\x00cd e\x1bf") == ["abcd", "e", "\x1b", "f"]

    def test_ascii_fast_path_equals_the_normaliser(self, paths: None) -> None:
        text = "def f_x(a1, B2):\n    return a1__B2 + 0x1F  # ok\n"
        doc = Document(text)
        assert doc.word_lengths.tolist() == [len(w) for w in normal_words(text)]


class TestLines:
    def test_line_length_counts_the_line_break(self, paths: None) -> None:
        assert value("num_chars_line_max", "abcd\nab") == 5
        assert value("num_chars_line_max", "ab\nabcd") == 4
        assert value("num_chars_line_max", "abc\nabc") == 4

    def test_mean_has_no_phantom_last_line(self, paths: None) -> None:
        assert value("num_lines", "ab\ncd\n") == 2
        assert value("num_chars_line_mean", "ab\ncd\n") == 3.0
        assert value("num_chars_line_mean", "ab\ncd") == 2.5


def test_tied_top_ngram_is_the_first_in_the_text(paths: None) -> None:
    """(x, y), (y, aa) and (aa, bb) occur twice each: the first, (x, y), counts."""
    assert value("frac_chars_top_2grams", "x y aa bb x y aa bb") == pytest.approx(4 / 12)


def test_duplicate_lines_count_every_occurrence(paths: None) -> None:
    """x=1 twice (both count); '}' (one character) and '},' never count; 7 code lines."""
    text = "x = 1\n  x  =  1\n}\n}\n},\n },\ny = 2\n"
    assert value("frac_lines_dupe_lines", text, "C") == pytest.approx(2 / 7)


class TestStrings:
    def test_length_without_quotes(self) -> None:
        text = 'x = "abcd"\n'
        assert value("frac_chars_string_length", text, "Python") == pytest.approx(4 / len(text))

    def test_long_strings_counted_per_line(self) -> None:
        long = " ".join(["w"] * 21)
        text = f'x = """{long}\nshort\n{long}"""\ny = 1\nz = 2\n'
        # two lines of 21 tokens; the code lines: the 3 of the literal and 2 more
        assert value("frac_lines_long_string", text, "Python") == pytest.approx(2 / 5)

    def test_long_words_except_http_urls(self) -> None:
        url, ftp = "https://example.org/a/long/path", "ftp://example.org/a/long/path"
        text = f'a = "{url}"\nb = "{ftp}"\n'
        assert value("frac_chars_long_word_length", text, "Python") == pytest.approx(
            len(ftp) / len(text)
        )


class TestComments:
    def test_line_comment_counts_its_line_break(self) -> None:
        assert Document("echo 1 # hi\necho 2\n", "Shell").comment_chars == 5
        assert Document("echo 1 # hi", "Shell").comment_chars == 4

    def test_line_break_is_code_where_the_lexer_says_so(self) -> None:
        """pygments' Ruby and Lua lexers end a line comment before its line break."""
        assert Document("x = 1 # hi\ny = 2\n", "Ruby").comment_chars == 4
        assert Document("x = 1 -- hi\ny = 2\n", "Lua").comment_chars == 5
        assert Document("select 1 -- hi\nselect 2\n", "SQL").comment_chars == 6

    @pytest.mark.parametrize("lang", ["C", "C#", "Rust", "Scala"])
    def test_line_comment_joins_code_lines_where_the_lexer_takes_its_break(self, lang: str) -> None:
        """pygments' C, C#, Rust and Scala lexers take a line comment's break with it: the code
        after it joins the line before (Java's and Go's do not)."""
        text = "a(); // x\nb();\nc();\n"
        assert Document(text, lang).num_code_lines == 2
        assert Document(text, "Java").num_code_lines == 3

    def test_shell_length_of_a_variable_is_code(self) -> None:
        """``${#name}`` is a length in shell (pygments' Bash lexer), ``$#`` a count; only the
        ``#`` after a blank starts a comment."""
        doc = Document("n=${#words[@]} # c\necho $# x\n", "Shell")
        assert doc.comment_texts == ["# c"]

    def test_python_share_is_cleaned_docstrings_and_comment_text(self) -> None:
        text = '"""Doc."""\n# a #b\nx = 1\n'
        # "Doc." + "\n" + " a b" (the # signs removed)
        assert value("frac_chars_comments", text, "Python") == pytest.approx(9 / len(text))

    def test_perl_comments_are_lines_and_column_zero_pod(self) -> None:
        text = "my $x\n    = 1;\n=head1 X\ntext\n=cut\nprint 1; # inline\n  # comment\n"
        doc = Document(text, "Perl")
        assert doc.comment_chars == len("=head1 X\ntext\n=cut\n") + len("  # comment\n")
        assert "    = 1;" in doc.code_text
        assert "# inline" in doc.code_text


@pytest.mark.parametrize(
    ("head", "want"),
    [
        ("# This file is generated.\n", 1.0),
        ("// Generated automatically from foo.in\n", 1.0),
        ("# autogenerated by protoc\n", 1.0),
        ("# DO NOT EDIT\n", 1.0),
        ("# regenerate_cache() rebuilds it\n", 0.0),
    ],
)
def test_autogen_phrases(head: str, want: float) -> None:
    assert value("cate_autogen", head + "x = 1\n" * 10) == want


def test_assert_at_word_starts_with_underscore_separating() -> None:
    text = "openssl_assert(x)\nreassert(y)\nself.assertTrue(z)\nw = 1\n"
    assert value("frac_lines_assert", text, "Python") == pytest.approx(2 / 4)


def test_todo_word_with_underscore_separating() -> None:
    text = "// TODO_LIST\n// todos\nx = 1;\ny = 2;\n"  # C: each comment its own line
    assert value("frac_lines_prompt_comments", text, "C") == pytest.approx(1 / 4)


def test_single_return_functions_count_a_docstring_as_a_statement() -> None:
    text = 'def f():\n    "doc"\n    return 1\n\n\ndef g():\n    return 2\n'
    assert value("py_frac_lines_single_return_func", text, "Python") == pytest.approx(1 / 5)
