"""ExactDedupStage: SHA-256 clusters, a priority-chosen survivor, bounded memory, checkpointing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from codekiln.stream.dedup import ExactDedupStage, content_hash
from codekiln.stream.dedup.spill import SpillError
from codekiln.stream.record import Record
from hypothesis import given, settings
from hypothesis import strategies as st
from s1_helpers import make_record, run_stage


def corpus() -> list[Record]:
    texts = ["alpha = 1\n", "beta = 2\n", "gamma = 3\n"]
    out = []
    for i in range(12):
        out.append(make_record(f"f{i:02d}.py", texts[i % 3], repo=f"repo{i % 4}", stars=i % 5))
    out.append(make_record("solo.py", "delta = 4\n", repo="solo", stars=0))
    return out


def survivors(out: list[Record]) -> set[str]:
    return {r.id for r in out if r.drop_reason is None}


def test_one_survivor_per_hash(tmp_path: Path) -> None:
    """Each distinct content keeps exactly one record; the rest are marked duplicate_of it."""
    out = run_stage(ExactDedupStage(spill_dir=str(tmp_path)), corpus())
    kept = [r for r in out if r.drop_reason is None]
    assert sorted(r.text for r in kept) == sorted({r.text for r in corpus()})
    dropped = [r for r in out if r.drop_reason is not None]
    assert {r.drop_reason for r in dropped} == {"exact_dedup:duplicate"}
    kept_ids = {r.id for r in kept}
    assert all(r.meta["duplicate_of"] in kept_ids for r in dropped)
    assert len(out) == len(corpus())


def test_priority_picks_most_stars_then_path(tmp_path: Path) -> None:
    """With stars:desc then path, the most-starred copy wins; ties go to the smaller path."""
    records = [
        make_record("b.py", "same\n", stars=3),
        make_record("a.py", "same\n", stars=3),
        make_record("c.py", "same\n", stars=1),
    ]
    out = run_stage(
        ExactDedupStage(priority=["stars:desc", "path"], spill_dir=str(tmp_path)), records
    )
    assert [r.path for r in out if r.drop_reason is None] == ["a.py"]


def test_recent_first_with_iso_dates(tmp_path: Path) -> None:
    """updated_at:desc keeps the most recent copy (ISO strings compare as dates)."""
    records = [
        make_record("old.py", "same\n", updated_at="2021-01-01T00:00:00Z"),
        make_record("new.py", "same\n", updated_at="2024-06-01T00:00:00Z"),
        make_record("none.py", "same\n"),
    ]
    out = run_stage(ExactDedupStage(priority=["updated_at:desc"], spill_dir=str(tmp_path)), records)
    assert [r.path for r in out if r.drop_reason is None] == ["new.py"]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    batch=st.integers(1, 9),
    memory_mb=st.sampled_from([0, 0.001, 64]),
)
def test_survivors_independent_of_order(
    tmp_path_factory: pytest.TempPathFactory, seed: int, batch: int, memory_mb: float
) -> None:
    """Shuffled input, any batch size or memory budget: the same survivors."""
    base = survivors(
        run_stage(ExactDedupStage(spill_dir=str(tmp_path_factory.mktemp("a"))), corpus())
    )
    shuffled = corpus()
    random.Random(seed).shuffle(shuffled)
    stage = ExactDedupStage(memory_mb=memory_mb, spill_dir=str(tmp_path_factory.mktemp("b")))
    assert survivors(run_stage(stage, shuffled, batch_size=batch)) == base


@pytest.mark.parametrize("memory_mb", [0, 2])
def test_memory_while_streaming_is_bounded(tmp_path: Path, memory_mb: int) -> None:
    """Holding 20 MB of records costs the memory budget plus a batch: the rest is spilled."""
    import tracemalloc

    stage = ExactDedupStage(spill_dir=str(tmp_path), memory_mb=memory_mb)
    filler = "x = 1  # padding padding padding\n" * 120  # ~4 KB
    tracemalloc.start()
    try:
        for b in range(50):
            batch = [make_record(f"f{b}_{i}.py", f"{b} {i}\n" + filler) for i in range(100)]
            stage.process(batch)
            del batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stage.state_dict()
    assert stage.report() == {"records_in": 5000, "spilled": 5000}
    assert peak < memory_mb * 1_000_000 + 4_000_000, peak


def test_finish_streams(tmp_path: Path) -> None:
    """finish() is lazy: records come out one by one, the report is complete at the end."""
    stage = ExactDedupStage(spill_dir=str(tmp_path), memory_mb=0)
    run = [make_record(f"f{i}.py", f"v{i} = {i}\n") for i in range(64)]
    stage.process(run)
    out = stage.finish()
    first = next(iter(out))
    assert first.id == run[0].id  # arrival order
    assert stage.report() == {"records_in": 64, "spilled": 64}  # not finished yet
    assert [r.id for r in [first, *out]] == [r.id for r in run]
    assert stage.report()["unique"] == 64


def test_finish_memory_does_not_hold_the_texts(tmp_path: Path) -> None:
    """Emitting 20 MB of spilled records one at a time costs a few MB, not the texts."""
    import tracemalloc

    stage = ExactDedupStage(spill_dir=str(tmp_path), memory_mb=0)
    filler = "y = 2  # padding padding padding\n" * 120  # ~4 KB
    for b in range(50):
        stage.process([make_record(f"f{b}_{i}.py", f"{i % 70}\n" + filler) for i in range(100)])
    tracemalloc.start()
    try:
        kept = sum(r.drop_reason is None for r in stage.finish())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept == 70
    assert stage.report()["duplicates"] == 5000 - 70
    assert peak < 4_000_000, peak


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), memory_mb=st.sampled_from([0, 0.0005, 0.002]))
def test_same_output_in_memory_and_spilled(
    tmp_path_factory: pytest.TempPathFactory, seed: int, memory_mb: float
) -> None:
    """Any memory budget (all held in memory, all spilled, spilled midway) gives the same
    records, decisions, metadata and order."""
    records = corpus()
    random.Random(seed).shuffle(records)

    def run(budget: float) -> list[tuple[object, ...]]:
        stage = ExactDedupStage(memory_mb=budget, spill_dir=str(tmp_path_factory.mktemp("m")))
        copies = [make_record(r.path, r.text, repo=r.repo, **r.meta) for r in records]
        return [(r.id, r.text, r.drop_reason, r.meta) for r in run_stage(stage, copies, 3)]

    assert run(memory_mb) == run(64)


def test_dropped_upstream_pass_through(tmp_path: Path) -> None:
    """A record already dropped upstream passes through at once and is not indexed."""
    r = make_record("x.py", "x\n")
    r.drop_reason = "preprocess:tiny"
    stage = ExactDedupStage(spill_dir=str(tmp_path))
    assert stage.process([r]) == [r]
    assert list(stage.finish()) == []


@pytest.mark.parametrize("memory_mb", [0, 64])
def test_resume_from_checkpoint_is_exactly_once(tmp_path: Path, memory_mb: int) -> None:
    """Checkpoint, keep writing, 'crash', restore: the result equals an uninterrupted run."""
    records = corpus()
    expected = run_stage(ExactDedupStage(spill_dir=str(tmp_path / "ref")), corpus())
    first = ExactDedupStage(spill_dir=str(tmp_path / "run"), memory_mb=memory_mb)
    first.process(records[:5])
    state = first.state_dict()
    first.process(records[5:9])  # written after the checkpoint: must be discarded on restore
    first.close()  # the process dies here
    second = ExactDedupStage(spill_dir=str(tmp_path / "run"), memory_mb=memory_mb)
    second.load_state_dict(state)
    out = run_stage(second, corpus()[5:])
    assert [(r.id, r.drop_reason, r.meta) for r in out] == [
        (r.id, r.drop_reason, r.meta) for r in expected
    ]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    checkpoints=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    lost=st.integers(0, 6),
    memory_mb=st.sampled_from([0, 0.0004, 0.001, 64]),
)
def test_any_checkpoint_then_crash_resumes_exactly_once(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    checkpoints: list[int],
    lost: int,
    memory_mb: float,
) -> None:
    """Checkpoints anywhere, more records, a crash, a resume from the last checkpoint: the
    same records, decisions, metadata and order as an uninterrupted run, at any budget."""
    records = corpus()
    random.Random(seed).shuffle(records)

    def copies(rs: list[Record]) -> list[Record]:
        return [make_record(r.path, r.text, repo=r.repo, **r.meta) for r in rs]

    def outcome(rs: list[Record]) -> list[tuple[object, ...]]:
        return [(r.id, r.text, r.drop_reason, r.meta) for r in rs]

    expected = run_stage(
        ExactDedupStage(spill_dir=str(tmp_path_factory.mktemp("ref"))), copies(records)
    )
    run = str(tmp_path_factory.mktemp("run"))
    first = ExactDedupStage(spill_dir=run, memory_mb=memory_mb)
    at, state = 0, None
    for n in checkpoints:
        first.process(copies(records[at : at + n]))
        at = min(at + n, len(records))
        state = first.state_dict()
    first.process(copies(records[at : at + lost]))  # after the last checkpoint: lost
    first.close()
    second = ExactDedupStage(spill_dir=run, memory_mb=memory_mb)
    second.load_state_dict(state)
    assert outcome(run_stage(second, copies(records[at:]), 2)) == outcome(expected)


def test_checkpoint_without_new_records_keeps_files(tmp_path: Path) -> None:
    """Two checkpoints in a row (no records between) restore the same held records."""
    expected = run_stage(ExactDedupStage(spill_dir=str(tmp_path / "ref")), corpus())
    stage = ExactDedupStage(spill_dir=str(tmp_path / "run"))
    stage.process(corpus())
    stage.state_dict()
    state = stage.state_dict()
    again = ExactDedupStage(spill_dir=str(tmp_path / "run"))
    again.load_state_dict(state)
    assert [r.id for r in again.finish()] == [r.id for r in expected]


def test_stale_spill_of_uncheckpointed_attempt_is_cleared(tmp_path: Path) -> None:
    """Records spilled by an attempt that died before any checkpoint are not held twice."""
    dead = ExactDedupStage(memory_mb=0)
    dead.open(tmp_path)
    dead.process(corpus())
    dead.close()
    assert any(p.stat().st_size for p in (tmp_path / "spill").iterdir())
    fresh = ExactDedupStage()
    fresh.open(tmp_path)
    out = run_stage(fresh, corpus())
    assert len(out) == len(corpus())


def test_open_uses_runtime_work_dir(tmp_path: Path) -> None:
    """Without spill_dir, spill files live in the folder the runtime gives to open()."""
    stage = ExactDedupStage()
    stage.open(tmp_path)
    stage.process([make_record("a.py", "a = 1\n")])
    state = stage.state_dict()
    assert Path(state["spill"]["dir"]).parent == tmp_path


def test_missing_spill_is_a_clear_error(tmp_path: Path) -> None:
    """A checkpoint whose spill files are gone fails loudly instead of losing records."""
    stage = ExactDedupStage(spill_dir=str(tmp_path))
    stage.process([make_record("a.py", "a = 1\n")])
    state = stage.state_dict()
    stage._spill.remove()
    with pytest.raises(SpillError, match="shorter than its checkpoint"):
        ExactDedupStage().load_state_dict(state)


def test_report_counts_clusters(tmp_path: Path) -> None:
    """The report has cluster counts and sizes matching the input."""
    stage = ExactDedupStage(spill_dir=str(tmp_path))
    run_stage(stage, corpus())
    rep = stage.report()
    assert (rep["unique"], rep["duplicates"], rep["clusters"]) == (4, 9, 3)
    assert rep["cluster_sizes"] == {"4": 3}


def test_surrogates_hash_without_crash() -> None:
    """Text with lone surrogates (undecodable input) still hashes deterministically."""
    assert content_hash("a\udcff") == content_hash("a\udcff") != content_hash("a")


def test_bad_config() -> None:
    """Bad priority directions and memory budgets fail with exact messages."""
    with pytest.raises(ValueError, match="direction"):
        ExactDedupStage(priority=["stars:down"])
    with pytest.raises(ValueError, match="memory_mb"):
        ExactDedupStage(memory_mb=-1)


def test_checkpoint_of_another_spill_format_is_refused(tmp_path: Path) -> None:
    """A state without this version's spill format fails loudly instead of misreading files."""
    stage = ExactDedupStage(spill_dir=str(tmp_path))
    stage.process([make_record("a.py", "a = 1\n")])
    state = stage.state_dict()
    del state["format"]
    with pytest.raises(ValueError, match="spill format"):
        ExactDedupStage(spill_dir=str(tmp_path)).load_state_dict(state)
