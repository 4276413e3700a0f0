"""Down-sampling, annealing routing and the annealing mixture writer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import zstandard
from codekiln.stream.record import Record
from codekiln.stream.sampling import AnnealRouteStage, DownsampleStage, MixSpec, build_mixture
from codekiln.stream.sampling.anneal import DEFAULT_HINTS, DEFAULT_KEYWORDS, DEFAULT_PATTERNS
from codekiln.stream.sampling.cli import main as mix_main
from codekiln.stream.sampling.downsample import DownsampleConfigError
from codekiln.stream.sampling.mixture import MixtureError
from hypothesis import given, settings
from hypothesis import strategies as st

_ANNEAL_PIECES = (
    "def solution(", "DEF  Solution (", "xdef solution(", "class Solution:", "class SolutionX",
    "Sample Input\n1 2\nSample Output", "sampleinput", "  # Constraints:", "x = 1 # constraints:",
    "// constraints :", "\n\n  * CONSTRAINTS\t:", "Time Complexity: O(n)", "time complexity o(",
    "LeetCode", "my-leetcode", "leetcodes", "_leetcode", "ACM-ICPC", "codeforces-", "SPOJ.",
)  # fmt: skip


def recs(lang: str, n: int, size: int = 100, prefix: str = "") -> list[Record]:
    return [
        Record(id=f"{lang}-{prefix}{i}", text=f"{prefix}{lang} file {i} " + "x" * size, lang=lang)
        for i in range(n)
    ]


class TestDownsample:
    def test_opencoder_defaults(self) -> None:
        """Without targets: Java keeps 200/409 and HTML 64/213 of their bytes, others all."""
        stage = DownsampleStage()
        stage.process(recs("Java", 4000) + recs("HTML", 4000) + recs("Python", 1000))
        langs = stage.report()["languages"]
        assert langs["Java"]["achieved_ratio"] == pytest.approx(200 / 409, abs=0.03)
        assert langs["HTML"]["achieved_ratio"] == pytest.approx(64 / 213, abs=0.03)
        assert langs["Python"]["achieved_ratio"] == 1.0

    def test_dropped_records_carry_language_reason(self) -> None:
        """Dropped records are marked downsample:<language>."""
        out = DownsampleStage(targets={"Java": 0.0}).process(recs("Java", 3))
        assert {r.drop_reason for r in out} == {"downsample:Java"}

    def test_decision_depends_only_on_the_record(self) -> None:
        """Batch order and batch boundaries do not change which records are kept."""
        records = recs("Java", 500)
        whole = DownsampleStage(targets={"Java": 0.5}).process(list(records))
        kept_whole = {r.id for r in whole if r.drop_reason is None}
        records = recs("Java", 500)[::-1]
        stage = DownsampleStage(targets={"Java": 0.5})
        kept_parts = set()
        for i in range(0, 500, 37):
            kept_parts |= {r.id for r in stage.process(records[i : i + 37]) if not r.drop_reason}
        assert kept_whole == kept_parts

    def test_byte_budget_caps_language(self) -> None:
        """max_bytes stops a language once its budget of characters is spent."""
        stage = DownsampleStage(targets={"Go": {"max_bytes": 1000}})
        out = stage.process(recs("Go", 50, size=100))
        kept = [r for r in out if r.drop_reason is None]
        assert sum(len(r.text) for r in kept) <= 1000
        assert len(kept) == 1000 // len(out[0].text)

    def test_state_round_trip_continues_budget(self) -> None:
        """A restored stage continues the spent budget (exactly-once resume)."""
        a = DownsampleStage(targets={"Go": {"max_bytes": 2000}})
        a.process(recs("Go", 10, size=100))
        b = DownsampleStage(targets={"Go": {"max_bytes": 2000}})
        b.load_state_dict(json.loads(json.dumps(a.state_dict())))
        assert b.report() == a.report()

    @pytest.mark.parametrize(
        ("targets", "message"),
        [
            ({"Java": 1.5}, "within"),
            ({"Java": {"ratio": 0.5, "to_bytes": 3}}, "not both"),
            ({"Java": {"speed": 1}}, "unknown key"),
            ({"Java": "half"}, "expected a ratio"),
        ],
    )
    def test_bad_targets_rejected(self, targets: dict, message: str) -> None:
        """Malformed targets fail at construction with a precise message."""
        with pytest.raises(DownsampleConfigError, match=message):
            DownsampleStage(targets=targets)


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=0.05, max_value=0.95), st.integers(0, 10))
def test_achieved_ratio_tracks_target(ratio: float, seed: int) -> None:
    """Over 3000 equal-size records the kept share is within 4 points of the ratio."""
    stage = DownsampleStage(targets={"Java": ratio}, seed=seed)
    stage.process(recs("Java", 3000))
    assert abs(stage.report()["languages"]["Java"]["achieved_ratio"] - ratio) < 0.04


class TestAnnealRoute:
    def test_solution_code_tagged(self) -> None:
        """LeetCode-style solutions are tagged for the annealing corpus with the match."""
        stage = AnnealRouteStage()
        texts = [
            "class Solution:\n    def twoSum(self, nums, target):\n        return []\n",
            "# https://leetcode.com/problems/two-sum\nx = 1\n",
            "def solution(a, b):\n    return a + b\n",
            "def parse_config(path):\n    return open(path).read()\n",
        ]
        out = stage.process([Record(id=str(i), text=t, lang="Python") for i, t in enumerate(texts)])
        assert [r.meta.get("corpus") for r in out] == ["anneal", "anneal", "anneal", None]
        assert out[0].meta["anneal_match"] == "class_solution"
        assert all(r.drop_reason is None for r in out)
        assert stage.report()["routed"] == 3

    def test_keywords_are_whole_words(self) -> None:
        """A keyword inside another word (``spojrzenie``) does not match."""
        stage = AnnealRouteStage(patterns={}, keywords=["spoj"])
        assert stage.match("spojrzenie = 1") is None
        assert stage.match("# SPOJ problem 42") == "kw:spoj"

    def test_exclusive_diverts_to_rejects(self) -> None:
        """exclusive=True drops matches from the main stream with reason anneal_route:anneal."""
        stage = AnnealRouteStage(exclusive=True)
        (out,) = stage.process([Record(id="1", text="class Solution {}", lang="Java")])
        assert out.drop_reason == "anneal_route:anneal"

    @settings(max_examples=500, deadline=None)
    @given(
        st.lists(
            st.sampled_from(_ANNEAL_PIECES)
            | st.text(alphabet="aAsS_-#*/: \n\t\u0130\u017f\u03a3", max_size=3),
            max_size=14,
        )
    )
    def test_lowered_forms_equal_originals(self, pieces: list[str]) -> None:
        """Matches are those of the documented patterns behind their key-word guard."""
        text = "".join(pieces)
        lowered = text.lower()
        originals = [
            (label, DEFAULT_HINTS[label], re.compile(pattern, re.I | re.M))
            for label, pattern in DEFAULT_PATTERNS.items()
        ] + [
            (f"kw:{w}", w, re.compile(rf"(?<![\w-]){re.escape(w)}(?![\w-])", re.I))
            for w in DEFAULT_KEYWORDS
        ]
        expected = next(
            (label for label, hint, rx in originals if hint in lowered and rx.search(text)), None
        )
        assert AnnealRouteStage().match(text) == expected

    def test_dotted_capital_i_is_a_word_character(self) -> None:
        """A non-ASCII text runs the patterns as written (lower() splits the dotted I in two)."""
        stage = AnnealRouteStage()
        assert stage.match("\u0130leetcode") is None
        assert stage.match("x\u0130def solution(x)") is None
        assert stage.match("\u0130 leetcode") == "kw:leetcode"

    def test_many_key_words_on_one_line(self) -> None:
        """Key words deep in one long line are checked against the line's head once."""
        stage = AnnealRouteStage()
        assert stage.match("x constraints:" * 14_000) is None
        assert stage.match("x constraints:" * 14_000 + "\n  # Constraints:") == (
            "problem_constraints"
        )

    def test_empty_keyword_is_config_error(self) -> None:
        """An empty keyword is refused (it would match everywhere)."""
        with pytest.raises(ValueError, match="must not be empty"):
            AnnealRouteStage(keywords=["leetcode", ""])

    def test_bad_pattern_is_config_error(self) -> None:
        """A pattern that does not compile names itself in the error."""
        with pytest.raises(ValueError, match="'broken'"):
            AnnealRouteStage(patterns={"broken": "(unclosed"})


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class TestMixture:
    def _inputs(self, tmp_path: Path) -> tuple[Path, Path, Path]:
        corpus = [{"id": f"p{i}", "text": "p" * 100, "meta": {}} for i in range(840)]
        corpus += [
            {"id": f"a{i}", "text": "a" * 100, "meta": {"corpus": "anneal"}} for i in range(20)
        ]
        synthetic = [{"id": f"s{i}", "text": "s" * 100} for i in range(200)]
        original = _write_jsonl(tmp_path / "corpus.jsonl", corpus)
        synth = _write_jsonl(tmp_path / "synthetic.jsonl", synthetic)
        return original, synth, tmp_path / "mix.jsonl.zst"

    def test_shares_follow_spec(self, tmp_path: Path) -> None:
        """84% original, the rest split by weight, small streams repeated up to max_repeat."""
        original, synth, out = self._inputs(tmp_path)
        spec = MixSpec(weights={"algorithmic": 1, "synthetic": 1}, max_repeat=10)
        report = build_mixture([original], {"synthetic": [synth]}, out, spec)
        streams = report["streams"]
        assert streams["original"]["share"] == pytest.approx(0.84, abs=0.01)
        assert streams["algorithmic"]["share"] == pytest.approx(0.08, abs=0.01)
        assert streams["synthetic"]["share"] == pytest.approx(0.08, abs=0.01)
        with zstandard.open(out, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle]
        assert sum(r["meta"]["mix_stream"] == "original" for r in rows) == 840
        assert {r["meta"]["mix_stream"] for r in rows[:20]} == {
            "original",
            "algorithmic",
            "synthetic",
        }

    def test_repeat_cap_reports_short_stream(self, tmp_path: Path) -> None:
        """A stream that cannot reach its share within max_repeat is flagged short."""
        original, synth, out = self._inputs(tmp_path)
        spec = MixSpec(weights={"algorithmic": 1, "synthetic": 1}, max_repeat=2)
        report = build_mixture([original], {"synthetic": [synth]}, out, spec)
        assert report["streams"]["algorithmic"]["short"] is True
        assert report["streams"]["algorithmic"]["output_records"] == 40

    def test_deterministic(self, tmp_path: Path) -> None:
        """Two runs give byte-identical output."""
        original, synth, out = self._inputs(tmp_path)
        spec = MixSpec(weights={"algorithmic": 1, "synthetic": 1}, max_repeat=10.5)
        build_mixture([original], {"synthetic": [synth]}, out, spec)
        first = out.read_bytes()
        build_mixture([original], {"synthetic": [synth]}, out, spec)
        assert out.read_bytes() == first

    def test_bad_lines_counted_not_fatal(self, tmp_path: Path) -> None:
        """Malformed JSONL lines are skipped and counted per stream."""
        original, synth, out = self._inputs(tmp_path)
        with synth.open("a", encoding="utf-8") as handle:
            handle.write("{not json\n")
        report = build_mixture([original], {"synthetic": [synth]}, out)
        assert report["streams"]["synthetic"]["bad_lines"] == 1

    def test_cli_unknown_weight_stream_is_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The CLI exits 2 with a message when weights name a stream that has no input."""
        original, _, out = self._inputs(tmp_path)
        code = mix_main(["anneal-mix", str(original), "--out", str(out), "--weights", "books=1"])
        assert code == 2
        assert "books" in capsys.readouterr().err

    def test_spec_validation(self) -> None:
        """An original share outside (0, 1] is rejected."""
        with pytest.raises(MixtureError, match="original_share"):
            MixSpec(original_share=1.5)
