"""fastText code-web classifier: real training on generated data, domains, stage, CLI."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
from codekiln.stream.record import Record
from codekiln.stream.webclf import (
    CodeWebClassifier,
    TrainParams,
    WebClfError,
    aggregate,
    domain_of,
    evaluate,
    iterate,
    select_domains,
)
from codekiln.stream.webclf.cli import main as webclf_main
from codekiln.stream.webclf.domains import IterationParams
from codekiln.stream.webclf.stage import WebScoreStage

_NAMES = ["items", "count", "result", "node", "buffer", "user", "config", "index", "value", "cache"]
_FUNCS = ["parse", "load", "render", "update", "fetch", "merge", "sort", "build", "check", "send"]
_TOPICS = ["weather", "football", "recipe", "garden", "travel", "music", "election", "market"]
_WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "that",
    "it",
    "be",
    "are",
    "people",
    "city",
    "team",
    "season",
    "rain",
    "sunny",
    "afternoon",
    "soup",
    "onion",
    "garlic",
    "flowers",
    "summer",
    "concert",
    "band",
    "vote",
    "council",
    "prices",
    "shares",
    "morning",
    "village",
    "river",
    "museum",
    "holiday",
    "guests",
    "delicious",
    "fresh",
    "local",
    "report",
]
_SHARED = [
    "use",
    "set",
    "get",
    "make",
    "run",
    "list",
    "value",
    "result",
    "data",
    "new",
    "update",
    "check",
]


def code_page(rng: random.Random) -> str:
    """A page about code: a sentence or two of explanation and a snippet."""
    f, a, b = rng.choice(_FUNCS), rng.choice(_NAMES), rng.choice(_NAMES)
    snippets = [
        f"def {f}_{a}({a}, {b}=None):\n    for {b} in {a}:\n        if {b} is None:\n"
        f"            continue\n        yield {b} * 2\n    return {a}\n",
        f"function {f}{a.title()}({a}) {{\n  const {b} = {a}.map((x) => x + 1);\n"
        f"  return {b}.filter(Boolean);\n}}\n",
        f"int {f}_{a}(int *{a}, size_t n) {{\n    int {b} = 0;\n"
        f"    for (size_t i = 0; i < n; i++) {b} += {a}[i];\n    return {b};\n}}\n",
        f"SELECT {a}, COUNT(*) FROM {b} WHERE {a} > 10 GROUP BY {a};\n",
    ]
    intro = f"How to {rng.choice(_SHARED)} the {a} in {rng.choice(['Python', 'JavaScript', 'C'])}"
    return intro + ":\n\n" + rng.choice(snippets) + f"\nThis {rng.choice(_SHARED)}s the {b}."


def prose_page(rng: random.Random) -> str:
    """A general web page: sentences of everyday vocabulary (with some shared words)."""
    sentences = []
    for _ in range(rng.randint(3, 7)):
        words = [rng.choice(_WORDS + _SHARED) for _ in range(rng.randint(8, 16))]
        sentences.append(" ".join(words).capitalize() + ".")
    return f"{rng.choice(_TOPICS).title()} news. " + " ".join(sentences)


def dataset(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    data = [(code_page(rng), "code") for _ in range(n)] + [
        (prose_page(rng), "other") for _ in range(n)
    ]
    rng.shuffle(data)
    return data


SMALL = TrainParams(dim=16, epoch=10, lr=0.5, word_ngrams=2, bucket=20_000)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clf = CodeWebClassifier.train(dataset(300, seed=1), SMALL)
    path = tmp_path_factory.mktemp("webclf") / "model.bin"
    clf.save(path)
    return path


class TestClassifier:
    def test_separates_code_from_prose(self, model_path: Path) -> None:
        """A model trained on generated data reaches F1 >= 0.95 on unseen generated pages."""
        clf = CodeWebClassifier.load(model_path)
        result = evaluate(clf, dataset(200, seed=99))
        assert result.f1 >= 0.95, result.as_dict()
        assert result.n == 400

    def test_scores_are_probabilities_ordered_by_class(self, model_path: Path) -> None:
        """Code pages score high, prose pages low, all within [0, 1]."""
        clf = CodeWebClassifier.load(model_path)
        rng = random.Random(5)
        code = clf.scores([code_page(rng) for _ in range(50)])
        prose = clf.scores([prose_page(rng) for _ in range(50)])
        assert all(0.0 <= s <= 1.0 for s in code + prose)
        assert min(code) > max(prose)

    def test_single_text_scoring_works_with_numpy2(self, model_path: Path) -> None:
        """score() on one string works (the fastText wrapper's copy=False path is avoided)."""
        clf = CodeWebClassifier.load(model_path)
        assert clf.score("def f(x):\n    return x + 1\n") > 0.5

    def test_training_is_deterministic(self, tmp_path: Path) -> None:
        """One thread, a seed and a fresh child process: two trainings give equal scores."""
        # Load the filter stage's state first (its JavaScript parser, tree-sitter): importing
        # esprima, its parser before, made in-process fastText training fail.
        from codekiln.stream.filters import SIGNALS
        from codekiln.stream.filters.document import Document

        assert SIGNALS["js_unparseable"].fn(Document("let a = 1;", "JavaScript")) == 0.0

        data = dataset(100, seed=3)
        probe = [t for t, _ in dataset(20, seed=4)]
        a = CodeWebClassifier.train(data, SMALL).scores(probe)
        b = CodeWebClassifier.train(data, SMALL).scores(probe)
        assert a == b

    def test_one_class_is_an_error(self) -> None:
        """Training data with a single class fails with a clear message."""
        with pytest.raises(WebClfError, match="both classes"):
            CodeWebClassifier.train([("x = 1", "code")] * 10, SMALL)

    def test_missing_model_is_clear_error(self, tmp_path: Path) -> None:
        """Loading a model that does not exist names the path."""
        with pytest.raises(WebClfError, match="model not found"):
            CodeWebClassifier.load(tmp_path / "nope.bin")


class TestDomains:
    def test_domain_of_url_forms(self) -> None:
        """Hosts come from url, meta.url or a URL path; www. is dropped."""
        assert domain_of({"url": "https://www.Example.org/a"}) == "example.org"
        assert domain_of({"meta": {"url": "http://docs.x.dev/p"}}) == "docs.x.dev"
        assert domain_of({"path": "https://blog.y.io/post"}) == "blog.y.io"
        assert domain_of({"path": "src/main.py"}) == "(none)"

    def test_select_domains_by_share(self) -> None:
        """Domains with at least 10% code pages are selected; others and (none) are not."""
        pairs = [("docs.dev", 0.9)] * 3 + [("docs.dev", 0.1)] * 7
        pairs += [("news.com", 0.2)] * 30 + [("news.com", 0.8)] * 2
        pairs += [("(none)", 0.99)] * 5
        stats = aggregate(pairs)
        assert stats["docs.dev"].share == pytest.approx(0.3)
        assert [s.domain for s in select_domains(stats, min_share=0.1)] == ["docs.dev"]

    def test_iteration_recalls_code_domains(self) -> None:
        """AutoDS rounds select the code domains of a pool and keep held-out F1 high."""
        rng = random.Random(11)
        pool = []
        for i in range(60):
            pool.append({"url": f"https://pydocs.example/page{i}", "text": code_page(rng)})
            pool.append({"url": f"https://dailynews.example/{i}", "text": prose_page(rng)})
            pool.append({"url": f"https://recipes.example/{i}", "text": prose_page(rng)})
        seeds = dataset(40, seed=12)
        params = IterationParams(rounds=2, train=SMALL)
        _, reports = iterate(seeds, pool, params, heldout=dataset(50, seed=13))
        assert reports[-1].selected_domains == ["pydocs.example"]
        assert reports[-1].positives > 40
        assert reports[-1].heldout is not None
        assert reports[-1].heldout["f1"] >= 0.9


class TestStage:
    def test_tags_scores_and_pickles_without_model(self, model_path: Path) -> None:
        """The stage adds code_score/code_related; pickling drops the loaded model."""
        stage = WebScoreStage(model=str(model_path))
        rng = random.Random(21)
        records = [
            Record(id="c", text=code_page(rng), meta={"lang_type": "prose"}),
            Record(id="p", text=prose_page(rng), meta={"lang_type": "prose"}),
            Record(id="s", text="int main() {}", lang="C", meta={"lang_type": "programming"}),
        ]
        out = stage.process(records)
        assert out[0].meta["code_related"] is True
        assert out[1].meta["code_related"] is False
        assert "code_score" not in out[2].meta
        copy = pickle.loads(pickle.dumps(stage))
        assert copy._clf is None
        assert copy.process([Record(id="x", text=code_page(rng))])[0].meta["code_related"]

    def test_drop_below_threshold(self, model_path: Path) -> None:
        """drop_below drops prose pages with reason webclf:not_code."""
        stage = WebScoreStage(model=str(model_path), drop_below=True)
        (out,) = stage.process([Record(id="p", text=prose_page(random.Random(2)))])
        assert out.drop_reason == "webclf:not_code"

    def test_missing_model_fails_at_construction(self, tmp_path: Path) -> None:
        """A config naming a missing model fails before any work."""
        with pytest.raises(WebClfError, match="not found"):
            WebScoreStage(model=str(tmp_path / "missing.bin"))


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class TestCli:
    def test_train_evaluate_score_domains(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The four subcommands run end to end on files and print their figures."""
        labelled = _write(
            tmp_path / "train.jsonl", [{"text": t, "label": y} for t, y in dataset(200, seed=31)]
        )
        heldout = _write(
            tmp_path / "test.jsonl", [{"text": t, "label": y} for t, y in dataset(50, seed=32)]
        )
        model = tmp_path / "m.bin"
        common = ["--dim", "16", "--epoch", "10"]
        assert (
            webclf_main(["webclf", "train", "--data", str(labelled), "--out", str(model), *common])
            == 0
        )
        assert "held-out" in capsys.readouterr().out
        assert (
            webclf_main(
                ["webclf", "evaluate", "--model", str(model), "--data", str(heldout), "--json"]
            )
            == 0
        )
        figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert figures["f1"] >= 0.9
        rng = random.Random(33)
        pages = [{"url": f"https://code.dev/{i}", "text": code_page(rng)} for i in range(10)]
        pages += [{"url": f"https://news.com/{i}", "text": prose_page(rng)} for i in range(10)]
        pages_path = _write(tmp_path / "pages.jsonl", pages)
        scored = tmp_path / "scored.jsonl"
        argv = ["webclf", "score", str(pages_path), "--model", str(model), "--out", str(scored)]
        assert webclf_main(argv) == 0
        assert (
            webclf_main(["webclf", "domains", str(scored), "--out", str(tmp_path / "d.json")]) == 0
        )
        chosen = json.loads((tmp_path / "d.json").read_text())
        assert [row["domain"] for row in chosen] == ["code.dev"]

    def test_bad_label_is_reported(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown label exits 2 naming the file and line."""
        bad = _write(tmp_path / "bad.jsonl", [{"text": "x", "label": "maybe"}])
        code = webclf_main(["webclf", "train", "--data", str(bad), "--out", str(tmp_path / "m")])
        assert code == 2
        assert "bad.jsonl:1" in capsys.readouterr().err
