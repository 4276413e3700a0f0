"""The report's language chart: a hand-written SVG bar chart of the corpus languages."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from codekiln.stream.report import PLOT, plot_languages, write_report

SVG = "{http://www.w3.org/2000/svg}"


def _chart(tmp_path: Path, langs: dict[str, int], top: int = 20) -> ElementTree.Element:
    path = tmp_path / "chart.svg"
    assert plot_languages(langs, path, top=top) is True
    return ElementTree.parse(path).getroot()


def _bars(root: ElementTree.Element) -> list[tuple[float, float]]:
    """(y, width) of every bar, top to bottom (the first rect is the background)."""
    rects = list(root.iter(f"{SVG}rect"))[1:]
    return [(float(r.get("y", "nan")), float(r.get("width", "nan"))) for r in rects]


def _texts(root: ElementTree.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


class TestLanguageChart:
    def test_nothing_to_plot_writes_no_file(self, tmp_path: Path) -> None:
        """An empty corpus gives no chart and no file."""
        assert plot_languages({}, tmp_path / "chart.svg") is False
        assert not (tmp_path / "chart.svg").exists()

    def test_bars_are_ordered_by_count_and_proportional(self, tmp_path: Path) -> None:
        """Bars run from the largest language down, lengths proportional on a linear axis."""
        root = _chart(tmp_path, {"Shell": 20, "Python": 40, "JSON": 10})
        bars = _bars(root)
        assert [y for y, _ in bars] == sorted(y for y, _ in bars)
        widths = [w for _, w in bars]
        assert widths[0] > widths[1] > widths[2]
        assert abs(widths[0] / widths[1] - 2) < 0.01
        assert abs(widths[1] / widths[2] - 2) < 0.02
        texts = _texts(root)
        assert texts.index("Python") < texts.index("Shell") < texts.index("JSON")
        assert "records in corpus" in texts

    def test_dominant_language_switches_to_a_log_axis(self, tmp_path: Path) -> None:
        """When one language has over 50x the smallest, the axis is logarithmic."""
        root = _chart(tmp_path, {"Python": 5000, "C": 50, "Go": 5})
        texts = _texts(root)
        assert "records in corpus (log scale)" in texts
        assert {"1", "10", "100", "1,000", "10,000"} <= set(texts)
        widths = [w for _, w in _bars(root)]
        # equal ratios (x100 then x10) give widths in the ratio of their logarithms (2 : 1)
        assert abs((widths[0] - widths[1]) / (widths[1] - widths[2]) - 2) < 0.01

    def test_small_counts_get_whole_number_ticks(self, tmp_path: Path) -> None:
        """Record counts are whole: a corpus of one record has ticks 0 and 1, none between."""
        texts = _texts(_chart(tmp_path, {"Python": 1}))
        assert "0" in texts
        assert "0.2" not in texts
        assert texts.count("1") == 2  # the tick and the bar's own label

    def test_only_the_top_languages_are_drawn(self, tmp_path: Path) -> None:
        """``top`` caps the number of bars; the smallest languages are left out."""
        langs = {f"lang{i:02d}": 100 - i for i in range(30)}
        root = _chart(tmp_path, langs, top=20)
        assert len(_bars(root)) == 20
        assert "lang19" in _texts(root)
        assert "lang20" not in _texts(root)

    def test_language_names_are_escaped(self, tmp_path: Path) -> None:
        """Names with XML metacharacters come back intact from a parsed chart."""
        root = _chart(tmp_path, {"F# & <x>": 3, 'say "hi"': 2})
        assert {"F# & <x>", 'say "hi"'} <= set(_texts(root))

    def test_report_embeds_the_chart(self, tmp_path: Path) -> None:
        """write_report writes the chart beside report.md and links it from there."""
        report = write_report(tmp_path, {"langs": {"Python": 3}})
        assert (tmp_path / PLOT).is_file()
        assert f"![language distribution]({PLOT})" in report.read_text()
