"""The C extension (``codekiln.stream._native``) computes what the numpy implementations do."""

from __future__ import annotations

import shutil
import signal
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
from codekiln.stream.dedup import minhash
from codekiln.stream.filters import document
from codekiln.stream.filters.budget import DEADLINE, SignalTimeout, alarm_handler
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals import SIGNALS, code
from codekiln.stream.sampling import anneal
from codekiln.stream.sampling.anneal import AnnealRouteStage
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stream.native import BUILT, implementations, numpy_only

#: Pieces of text that the annealing router's hints and patterns react to.
_ANNEAL_PIECES = [
    *("def solution(", "class Solution:", "LeetCode", "Sample Input\n1\nsample output"),
    *("# Constraints:", "time complexity: O(n)", "spoj", "ACM-ICPC", "usaco-", "FOO", "é-x"),
    *("x", "\n", " ", "é"),
]

needs_native = pytest.mark.skipif(not BUILT, reason="the C extension is not built here")

#: ASCII texts with what the loops tell apart: word bytes of both cases, digits, ``_``, every
#: whitespace byte, line breaks, punctuation, NUL and DEL.
_ASCII_TEXT = st.text(
    alphabet=st.sampled_from("aZz_09 \t\n\r\x0b\x0c.,(){}#'\"\x00\x7fQq"), max_size=300
)


def _first_seen(ids: np.ndarray) -> list[int]:
    """Each id replaced by the position where it first occurs: equal ids, equal labels."""
    seen: dict[int, int] = {}
    return [seen.setdefault(int(x), i) for i, x in enumerate(ids)]


def test_extension_is_built_where_a_compiler_is() -> None:
    """With a C compiler and Python's headers the install builds the extension (a failed build
    would otherwise go unnoticed: the numpy paths give the same values, only slower)."""
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not (shutil.which("cc") or shutil.which("gcc")) or not headers.exists():
        pytest.skip("no C compiler or no Python headers: the extension is optional")
    assert BUILT, "codekiln.stream._native is not importable: run `make venv` (pip install -e .)"


@needs_native
class TestAsciiWords:
    @settings(max_examples=200, deadline=None)
    @given(_ASCII_TEXT)
    def test_same_words_as_numpy(self, text: str) -> None:
        """Same word lengths, and equal ids exactly where the numpy ids are equal."""
        ids, lengths = Document(text).word_arrays
        with numpy_only():
            want_ids, want_lengths = Document(text).word_arrays
        assert lengths.tolist() == want_lengths.tolist()
        assert _first_seen(ids) == _first_seen(want_ids)

    def test_case_folded(self) -> None:
        """Words differing only in case get one id; digits are word bytes, ``_`` separates
        words (upstream replaces ASCII punctuation, ``_`` included, by a space)."""
        ids, lengths = Document("Foo fOO foo1_x FOO1_X bar").word_arrays
        assert lengths.tolist() == [3, 3, 4, 1, 4, 1, 3]
        assert ids[0] == ids[1]
        assert ids[2] == ids[4]
        assert ids[3] == ids[5]
        assert len({ids[0], ids[2], ids[3], ids[6]}) == 4


#: Any text, with the characters whose case mapping or class is unusual made likely: full-width
#: digits, ligatures that lower-case to two letters, dotted capital I, Kelvin sign, combining
#: marks, non-ASCII spaces, the information separators, a lone surrogate.
_UNICODE_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            "aZ_09 \n\t.\u00e9\u00df\u0130\u212a\ufb01\uff12\u0301\u3000\u00a0\x1c\u4e2d\ud800"
        ),
        st.characters(),
    ),
    max_size=120,
)


@needs_native
class TestStrWordsAndClasses:
    @settings(max_examples=300, deadline=None)
    @given(_UNICODE_TEXT)
    def test_same_as_python(self, text: str) -> None:
        """Words (lengths, and equal ids exactly where the words are equal) and character
        classes of any text equal the Python paths' (regex words, str.isalpha and co.)."""
        doc = Document(text)
        ids, lengths = doc.word_arrays
        classes = doc.char_classes
        with numpy_only():
            want = Document(text)
            want_ids, want_lengths = want.word_arrays
            assert classes == want.char_classes
        assert lengths.tolist() == want_lengths.tolist()
        assert _first_seen(ids) == _first_seen(want_ids)


@needs_native
def test_tokens_need_no_separator() -> None:
    """A word and a run of symbols touch: one token a character at most, never past the
    buffer (20,000 tokens in 20,000 characters)."""
    text = "a\u00a9" * 10_000
    ids, lengths = Document(text).word_arrays
    assert lengths.tolist() == [1] * 20_000
    assert len(set(ids[0::2].tolist())) == 1
    assert ids[0] != ids[1]


@needs_native
class TestAsciiProfile:
    @settings(max_examples=200, deadline=None)
    @given(_ASCII_TEXT)
    def test_same_counts_as_numpy(self, text: str) -> None:
        """Letters, digits, whitespace and the longest line equal the numpy figures."""
        doc = Document(text)
        with numpy_only():
            want = Document(text)
            assert (doc.char_classes, doc.max_line_length) == (
                want.char_classes,
                want.max_line_length,
            )

    def test_longest_line_at_either_end(self) -> None:
        """The first and the last line count (no break before or after them)."""
        assert Document("abcdef\nab\nabc").max_line_length == 6
        assert Document("ab\nabc\nabcdefg").max_line_length == 7
        assert Document("").max_line_length == 0


@needs_native
class TestNgramSignals:
    def test_buffers_of_different_sizes_are_refused(self) -> None:
        """Ids and lengths of different sizes are a ValueError, not a read past the end."""
        from codekiln.stream import _native

        ids = np.arange(4, dtype=np.int64)
        with pytest.raises(ValueError, match="one size"):
            _native.ngram_signals(ids, np.ones(3, dtype=np.int64))

    def test_refuses_arrays_that_are_not_int64(self) -> None:
        """An int32 array (whose byte size may still be a multiple of 8) is a TypeError."""
        from codekiln.stream import _native

        ids = np.arange(4, dtype=np.int32)
        with pytest.raises(TypeError, match="int64"):
            _native.ngram_signals(ids, ids)

    def test_stopped_by_the_signal_budget(self) -> None:
        """A long repetitive text is stopped by the filter stage's SIGALRM budget inside the C
        loop (it checks for signals as it goes), instead of running to completion."""
        text = "a b " * 2_000_000
        doc = Document(text)
        doc.word_arrays  # noqa: B018 - the words first, outside the budget
        fn = SIGNALS["frac_chars_dupe_10grams"].fn
        # The first tick (50 ms) finds the deadline passed; the loop takes about 0.5 s.

        def budgeted() -> None:
            # The deadline is cleared the moment the signal returns or raises: a later tick
            # (a loaded machine may run one before pytest.raises has handled the exception)
            # must not raise again.
            try:
                fn(doc)
            finally:
                DEADLINE[0] = 0.0

        with alarm_handler(0.05) as armed:
            if not armed:
                pytest.skip("SIGALRM cannot be armed here")
            DEADLINE[0] = time.perf_counter() + 0.01
            with pytest.raises(SignalTimeout):
                budgeted()
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

    def test_non_ascii_words_use_the_c_loop_too(self) -> None:
        """Texts with non-ASCII words (Python word ids) give the numpy values as well."""
        text = "é ß a b é ß a b é ß a b c d e f g é ß a b c d e"
        got = [SIGNALS[f"frac_chars_dupe_{n}grams"].fn(Document(text)) for n in range(5, 11)]
        with numpy_only():
            want = [SIGNALS[f"frac_chars_dupe_{n}grams"].fn(Document(text)) for n in range(5, 11)]
        assert got == want
        assert got[0] > 0


@needs_native
class TestMinhashWords:
    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.text(max_size=120), max_size=8))
    def test_same_hashes_as_numpy(self, texts: list[str]) -> None:
        """Word hashes and per-text counts equal the numpy ones bit for bit (any Unicode,
        lone surrogates, empty texts), so signatures do not depend on the build."""
        hashes, counts = minhash.word_hashes(texts)
        bufs = [t.encode("utf-8", "surrogatepass") for t in texts]
        want_hashes, want_counts = minhash.word_hashes_numpy(bufs)
        assert hashes.tolist() == want_hashes.tolist()
        assert counts.tolist() == want_counts.tolist()

    def test_refuses_str(self) -> None:
        """The C loop takes UTF-8 bytes; a str is a TypeError, not a guess at an encoding."""
        from codekiln.stream import _native

        with pytest.raises(TypeError, match="bytes"):
            _native.minhash_words(["text"])  # type: ignore[list-item]


#: Texts made of what the encoded-data patterns look at: hex pairs with and without prefixes,
#: their separators, base64 characters, and a few characters that break both.
_ENCODED_PIECES = st.sampled_from(
    [
        *("0x1f", "A0", "ab", "\\x7f", "de", "QUJD", "+/="),
        *(", ", ",", " ", "\n  ", "\x1c"),
        *("g", ";", "é"),
    ]
)


class TestEncodedRuns:
    @settings(max_examples=300, deadline=None)
    @given(st.lists(_ENCODED_PIECES, max_size=80), st.integers(1, 40))
    def test_match_sizes_equal_the_patterns(self, pieces: list[str], repeat: int) -> None:
        """The base64 and hex-run sizes found from byte runs (C, and numpy) are exactly the
        sizes of the patterns' matches over the whole text."""
        text = "".join(pieces) * repeat
        want = [[m.end() - m.start() for m in code._ENCODED[k].finditer(text)] for k in (0, 1)]
        for _ in implementations():
            doc = Document(text)
            assert [code._base64_sizes(doc), code._hex_sizes(doc)] == want

    def test_hex_dump_without_digits(self) -> None:
        """A dump of letter-only hex bytes ("ab ab ..."), which the pattern matches, is found
        (an earlier shortcut skipped texts with few digits and no 0x prefixes)."""
        text = "x = 1\n" + "ab " * 600
        for _ in implementations():
            assert SIGNALS["cate_encoded_data"].fn(Document(text)) == 1.0


#: Python source made of what the comment and string scanner looks at: quotes of both kinds
#: alone and tripled, escapes (also of a line break), comments, indentation, string prefixes.
_PY_PIECES = st.sampled_from(
    [
        *['"', "'", '"""', "'''", "\\", "\\\n", "\n", "\n    ", " ", "\t", "#", "r", "U", "b"],
        # non-ASCII: the C scan runs on UTF-8 bytes (2-, 3- and 4-byte characters, a lone
        # surrogate, Unicode line and paragraph separators, NEL)
        *["x = ", "é", "中", "\U0001f600", "\udc80", "\u2028", "\x85"],
    ]
)


class TestScanPython:
    @needs_native  # without the extension both sides are the regular expression
    @settings(max_examples=400, deadline=None)
    @given(st.lists(_PY_PIECES, max_size=60))
    def test_same_split_as_the_regex(self, pieces: list[str]) -> None:
        """Code, comments and strings equal the regular expression's split, piece for piece."""
        text = "".join(pieces)
        got = Document(text, "Python")._scan
        with numpy_only():
            assert got == Document(text, "Python")._scan

    def test_docstring_and_comment(self) -> None:
        """A docstring starting its line and a # comment are comments; other literals strings."""
        code, comments, strings = Document(
            'def f():\n    r"""Doc."""\n    return "#x"  # note\n', "Python"
        )._scan
        assert comments == ['\n    r"""Doc."""', "# note"]
        assert strings == ['"#x"']
        assert code == 'def f():\n\n    return "#x"  \n'


def _code_line_figures(text: str, lang: str) -> tuple[int, float]:
    doc = Document(text, lang)
    return doc.num_code_lines, SIGNALS["frac_lines_dupe_lines"].fn(doc)


@needs_native
class TestCodeLines:
    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [
                    *["a", "abcde", "x = 1", "\n", "\n\n", " ", "\t", "\r", "\x0c", "\x1c"],
                    # non-ASCII: letters of 2-4 bytes, Unicode spaces (strip() and the line
                    # keys remove them), NEL, a lone surrogate
                    *["é", "中文", "\U0001f600", "\u3000", "\xa0", "\x85", "\udc80"],
                ]
            ),
            max_size=40,
        ),
        st.sampled_from(["Python", "C", "Markdown"]),
    )
    def test_same_as_numpy(self, pieces: list[str], lang: str) -> None:
        """Code lines and the duplicate-line share equal the numpy figures (blanks, tabs, CR,
        FF, the U+001C separators and Unicode spaces, which strip() and the line keys remove;
        lengths in characters)."""
        text = "".join(pieces)
        got = _code_line_figures(text, lang)
        with numpy_only():
            assert got == _code_line_figures(text, lang)

    def test_line_length_counts_characters_not_bytes(self) -> None:
        """A repeated line of 1 CJK character (3 bytes) is trivial, one of 2 is a duplicate;
        a line of Unicode spaces is blank."""
        assert _code_line_figures("中\n中\n\u3000\xa0\n", "C") == (2, 0.0)
        assert _code_line_figures("中文\n中 文\n", "C") == (2, 1.0)

    def test_repeated_lines_every_occurrence(self) -> None:
        """Lines equal once whitespace is removed repeat, every occurrence counted (upstream's
        definition); one-character lines and ``},`` never count as repeats."""
        text = "x = f(a)\n  x  =  f(a)\n}\n}\n},\n },\ny = 2 + 3\n"
        assert _code_line_figures(text, "C") == (7, 2 / 7)


@needs_native
class TestFindNeedles:
    @settings(max_examples=300, deadline=None)
    @given(
        st.text(alphabet=st.sampled_from("abAB -xX"), max_size=60),
        st.lists(st.text(alphabet=st.sampled_from("ab -x"), min_size=1, max_size=4), max_size=8),
        st.integers(0, 70),
    )
    def test_same_as_substring_search(self, text: str, needles: list[str], limit: int) -> None:
        """Bit k is set exactly when needle k is in the lower-cased text's first limit chars."""
        from codekiln.stream import _native

        got = _native.find_needles(text, tuple(n.encode() for n in needles), limit)
        lowered = text[:limit].lower()
        assert [bool(got >> k & 1) for k in range(len(needles))] == [n in lowered for n in needles]

    def test_refuses_non_ascii_text(self) -> None:
        """A non-ASCII text is refused (its lower-casing is not the bytes')."""
        from codekiln.stream import _native

        with pytest.raises(ValueError, match="ASCII"):
            _native.find_needles("\u212a", (b"k",), 10)  # KELVIN SIGN lower-cases to "k"

    def test_anneal_route_ascii_head_of_a_longer_text(self) -> None:
        """Only the scanned head must be ASCII: a non-ASCII tail past max_scan_chars is fine."""
        stage = AnnealRouteStage(max_scan_chars=10)
        assert stage.match("see leetcode " + "é" * 50) is None  # cut inside the keyword
        assert stage.match("leetcode x" + "é" * 50) == "kw:leetcode"

    def test_anneal_route_negative_scan_limit_cuts_as_a_slice(self) -> None:
        """A negative max_scan_chars scans text[:max_scan_chars], with the C search as without."""
        stage = AnnealRouteStage(max_scan_chars=-2)
        got = stage.match("see leetcode now")
        saved, anneal._native = anneal._native, None
        try:
            assert got == stage.match("see leetcode now") == "kw:leetcode"
        finally:
            anneal._native = saved

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.sampled_from(_ANNEAL_PIECES), max_size=14))
    def test_anneal_route_decides_the_same(self, pieces: list[str]) -> None:
        """The annealing router picks the same label with the C search as without it."""
        text = "".join(pieces)
        stages = (AnnealRouteStage(), AnnealRouteStage(keywords=["Foo", "é-x"], patterns={}))
        got = [stage.match(text) for stage in stages]
        saved, anneal._native = anneal._native, None
        try:
            assert got == [stage.match(text) for stage in stages]
        finally:
            anneal._native = saved


def test_a_stale_build_is_set_aside(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A built extension of another VERSION (left from an older checkout) is not used: the
    loader gives None and says so in the log."""
    import importlib
    import sys
    import types

    from codekiln.stream import native_loader

    stale = types.ModuleType("codekiln.stream._native")
    stale.VERSION = native_loader.EXPECTED_VERSION - 1  # type: ignore[attr-defined]
    stale.__file__ = "/old/_native.so"
    import codekiln.stream

    monkeypatch.setitem(sys.modules, "codekiln.stream._native", stale)
    monkeypatch.setattr(codekiln.stream, "_native", stale, raising=False)
    try:
        with caplog.at_level("WARNING"):
            reloaded = importlib.reload(native_loader)
        assert reloaded.native is None
        assert "not used" in caplog.text
    finally:
        monkeypatch.undo()
        importlib.reload(native_loader)
    assert (native_loader.native is not None) == BUILT


def test_numpy_only_restores_the_extension() -> None:
    """The test helper puts the extension back after a numpy-only block."""
    before = document.native, minhash._native
    with numpy_only():
        assert document.native is None
        assert minhash._native is None
    assert (document.native, minhash._native) == before
