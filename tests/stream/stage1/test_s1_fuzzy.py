"""FuzzyDedupStage (+ MinHashStage): survivors, levels, indexes, checkpoint and resume."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage, MinHashStage
from codekiln.stream.record import Record
from hypothesis import given, settings
from hypothesis import strategies as st
from s1_helpers import make_record, run_stage

PRESET = "opencoder-128x16"  # threshold ~0.74: small edits are near-duplicates


def body(seed: int, words: int = 300) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(0, words, 6):
        names = [f"v{rng.randrange(10**6)}" for _ in range(6)]
        lines.append(
            f"def f{seed}_{i}({names[0]}, {names[1]}):\n    return {' + '.join(names[2:])}\n"
        )
    return "".join(lines)


def corpus() -> list[Record]:
    """Three families of near-duplicates (one edited line each) and four unique files."""
    out = []
    for fam in range(3):
        text = body(fam)
        for k in range(3):
            edited = text.replace(f"f{fam}_{6 * k}(", f"g{fam}_{k}(", 1)
            out.append(make_record(f"fam{fam}/copy{k}.py", edited, repo=f"repo{k}", stars=k))
    for u in range(4):
        out.append(make_record(f"uniq{u}.py", body(100 + u), repo="solo"))
    return out


def fuzzy(tmp: Path, **kw: object) -> FuzzyDedupStage:
    return FuzzyDedupStage(preset=PRESET, spill_dir=str(tmp), **kw)  # type: ignore[arg-type]


def kept(out: list[Record]) -> set[str]:
    return {r.path for r in out if r.drop_reason is None}


def test_one_survivor_per_family(tmp_path: Path) -> None:
    """Each family keeps one file (the most-starred copy); unique files are all kept."""
    out = run_stage(fuzzy(tmp_path), corpus())
    assert kept(out) == {"fam0/copy2.py", "fam1/copy2.py", "fam2/copy2.py"} | {
        f"uniq{u}.py" for u in range(4)
    }
    dropped = [r for r in out if r.drop_reason]
    assert {r.drop_reason for r in dropped} == {"fuzzy_dedup:duplicate"}
    assert len(out) == len(corpus())


def test_report_has_clusters(tmp_path: Path) -> None:
    """The report lists clusters, their sizes, the threshold and the shingle kind."""
    stage = fuzzy(tmp_path)
    run_stage(stage, corpus())
    rep = stage.report()
    assert rep["clusters"] == 3
    assert rep["cluster_sizes"] == {"3": 3}
    assert rep["shingles"] == "word 5-grams"
    assert rep["threshold"] == pytest.approx(0.738, abs=1e-3)
    assert all(c["size"] == 3 and len(c["members"]) == 3 for c in rep["largest_clusters"])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 8))
def test_survivors_independent_of_order(
    tmp_path_factory: pytest.TempPathFactory, seed: int, batch: int
) -> None:
    """Shuffled input and any batch size give the same survivors."""
    base = kept(run_stage(fuzzy(tmp_path_factory.mktemp("a")), corpus()))
    records = corpus()
    random.Random(seed).shuffle(records)
    assert kept(run_stage(fuzzy(tmp_path_factory.mktemp("b")), records, batch_size=batch)) == base


def test_minhash_stage_feeds_fuzzy(tmp_path: Path) -> None:
    """Signatures made by the (picklable) minhash stage are used, not recomputed."""
    sig_stage = pickle.loads(pickle.dumps(MinHashStage(preset=PRESET)))
    stage = fuzzy(tmp_path)
    records = sig_stage.process(corpus())
    out = run_stage(stage, records)
    assert stage.report()["signatures_computed_here"] == 0
    assert not any(k.startswith("_minhash") for r in out for k in r.meta)


def test_mismatched_minhash_is_recomputed(tmp_path: Path) -> None:
    """Records signed with other parameters are signed again here, and counted."""
    records = MinHashStage(preset="opencoder").process(corpus())
    stage = fuzzy(tmp_path)
    out = run_stage(stage, records)
    assert stage.report()["signatures_computed_here"] == len(records)
    assert len(kept(out)) == 7


def test_datasketch_index_same_decisions(tmp_path: Path) -> None:
    """index: datasketch (MinHashLSH) keeps exactly the records the band index keeps."""
    a = run_stage(fuzzy(tmp_path / "a"), corpus())
    b = run_stage(fuzzy(tmp_path / "b", index="datasketch"), corpus())
    assert kept(a) == kept(b)


def test_no_word_documents_kept(tmp_path: Path) -> None:
    """A document without words cannot be compared: it is kept, and counted."""
    records = [make_record("a.txt", "+++ --- ***"), make_record("b.txt", "+++ --- ***")]
    stage = fuzzy(tmp_path)
    out = run_stage(stage, records)
    assert kept(out) == {"a.txt", "b.txt"}
    assert stage.report()["no_shingles"] == 2


@pytest.mark.parametrize("index", ["bands", "datasketch"])
def test_resume_after_crash_is_exactly_once(tmp_path: Path, index: str) -> None:
    """State at a checkpoint, then more input, then a crash: resuming gives the same output."""
    expected = run_stage(fuzzy(tmp_path / "ref", index=index), corpus())
    records = corpus()
    first = fuzzy(tmp_path / "run", index=index)
    first.process(records[:4])
    state = pickle.loads(pickle.dumps(first.state_dict()))
    first.process(records[4:9])  # after the checkpoint: lost with the process
    first.close()
    second = fuzzy(tmp_path / "run", index=index)
    second.load_state_dict(state)
    out = run_stage(second, corpus()[4:])
    assert [(r.id, r.drop_reason) for r in out] == [(r.id, r.drop_reason) for r in expected]


class TestRepositoryLevel:
    def repos(self) -> list[Record]:
        """repoA and its fork repoB (one file edited), repoC unrelated."""
        out = []
        for f in range(4):
            out.append(make_record(f"m{f}.py", body(10 + f), repo="repoA", stars=1))
            text = body(10 + f)
            if f == 0:
                text = text.replace("def f10_0(", "def changed(", 1)
            out.append(make_record(f"m{f}.py", text, repo="repoB", stars=9))
            out.append(make_record(f"m{f}.py", body(50 + f), repo="repoC"))
        return out

    def test_fork_dropped_whole(self, tmp_path: Path) -> None:
        """The less-starred repository of a near-duplicate pair is dropped with all its files."""
        stage = fuzzy(tmp_path, level="repository")
        out = run_stage(stage, self.repos())
        assert {r.repo for r in out if r.drop_reason is None} == {"repoB", "repoC"}
        dropped = [r for r in out if r.drop_reason]
        assert len(dropped) == 4
        assert {r.meta["duplicate_of_repository"] for r in dropped} == {"repoB"}
        assert stage.report()["cluster_unit"] == "repositories"

    def test_resume(self, tmp_path: Path) -> None:
        """Repository signatures are in the checkpoint: a resumed run decides the same."""
        expected = run_stage(fuzzy(tmp_path / "ref", level="repository"), self.repos())
        first = fuzzy(tmp_path / "run", level="repository")
        first.process(self.repos()[:5])
        state = pickle.loads(pickle.dumps(first.state_dict()))
        second = fuzzy(tmp_path / "run", level="repository")
        second.load_state_dict(state)
        out = run_stage(second, self.repos()[5:])
        assert [(r.id, r.drop_reason) for r in out] == [(r.id, r.drop_reason) for r in expected]


def test_checkpoint_with_other_parameters_refused(tmp_path: Path) -> None:
    """Resuming with different MinHash parameters fails with both fingerprints named."""
    stage = fuzzy(tmp_path)
    stage.process(corpus()[:2])
    state = stage.state_dict()
    with pytest.raises(ValueError, match="resume with the same parameters"):
        FuzzyDedupStage(preset="opencoder").load_state_dict(state)


def test_checkpoint_of_another_spill_format_refused(tmp_path: Path) -> None:
    """A state without this version's spill format fails loudly instead of misreading files."""
    stage = fuzzy(tmp_path)
    stage.process(corpus()[:2])
    state = stage.state_dict()
    del state["format"]
    with pytest.raises(ValueError, match="spill format"):
        fuzzy(tmp_path).load_state_dict(state)


def test_held_texts_come_back_byte_identical(tmp_path: Path) -> None:
    """Texts spilled raw (surrogates, non-BMP, CRLF) come back as they went in, with meta."""
    texts = ["a\udcff = 1\r\n" + body(7), "x = '😀'\n" + body(8), body(9) + "\x00"]
    records = [make_record(f"t{i}.py", t, stars=i, tags=["k", i]) for i, t in enumerate(texts)]
    out = run_stage(fuzzy(tmp_path), records)
    assert [(r.id, r.text, r.meta) for r in out] == [
        (r.id, t, {"stars": i, "tags": ["k", i]})
        for i, (r, t) in enumerate(zip(records, texts, strict=True))
    ]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"preset": "nope"}, "unknown preset"),
        ({"level": "repo"}, "level"),
        ({"index": "faiss"}, "index"),
        ({"storage_config": {"type": "redis"}}, "storage_config"),
        ({"bands": 64}, "exceeds num_perm"),
    ],
)
def test_bad_config(kw: dict[str, object], match: str) -> None:
    """Bad options fail at construction with an exact message."""
    with pytest.raises(ValueError, match=match):
        FuzzyDedupStage(**kw)  # type: ignore[arg-type]
