"""Distributed exact and fuzzy dedup, as plain functions over shards (no Ray needed): the same
decisions (drop reasons and what they write in meta) and the same reports as the
single-machine stages, whatever the sharding."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from codekiln.stream.dedup import exact_shards as rexact
from codekiln.stream.dedup import fuzzy_shards as rfuzzy
from codekiln.stream.dedup.clusters import HeldCounts
from codekiln.stream.dedup.exact import ExactDedupStage
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage, MinHashStage
from codekiln.stream.record import Record, record_id
from codekiln.stream.runtime.builtin import NoopStage
from codekiln.stream.sharded.plan import DedupStep, MapStep, SerialStep, compile_steps
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stream.ray.corpus import near_copy, python_file

PARAMS = {"num_perm": 256, "bands": 32, "rows": 8}  # threshold about 0.65

#: A corpus seed, up to four cut points (taken modulo the corpus size) and a partition count.
any_sharding = given(
    seed=st.integers(0, 10**6),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    partitions=st.integers(1, 5),
)


def _records(texts: list[str], stars: list[int]) -> list[Record]:
    return [
        Record(
            id=record_id("t", f"{i}"),
            text=t,
            path=f"p{i}.py",
            repo=f"r{i % 3}",
            meta={"stars": s},
        )
        for i, (t, s) in enumerate(zip(texts, stars, strict=True))
    ]


def _split(records: list[Record], cuts: list[int]) -> list[list[Record]]:
    bounds = [0, *sorted({c % (len(records) + 1) for c in cuts}), len(records)]
    return [records[a:b] for a, b in itertools.pairwise(bounds)]


def _copy(record: Record) -> Record:
    return Record(**{f: getattr(record, f) for f in record.__slots__})


#: What a dedup decision writes on a record besides its drop reason.
DECISION_META = (
    "duplicates",
    "duplicate_of",
    "fuzzy",
    "fuzzy_cluster_size",
    "duplicate_of_repository",
)


def _decision(r: Record) -> str:
    return repr((r.drop_reason or "kept", {k: r.meta[k] for k in DECISION_META if k in r.meta}))


def _apply_shards(
    shards: list[list[Record]], apply_for: Callable[[int], Callable[[Record, int], None]]
) -> dict[str, str]:
    """Each shard's records (copies) through its apply step: record id -> decision (drop reason
    or kept, and what it wrote in meta)."""
    out = {}
    for i, shard in enumerate(shards):
        apply = apply_for(i)
        for local, original in enumerate(shard):
            r = _copy(original)
            apply(r, local)
            out[r.id] = _decision(r)
    return out


def _local(stage: ExactDedupStage | FuzzyDedupStage, records: list[Record]) -> dict[str, str]:
    out = stage.process([_copy(r) for r in records])
    out += stage.finish()
    return {r.id: _decision(r) for r in out}


def _exact_distributed(
    records: list[Record], cuts: list[int], partitions: int
) -> tuple[dict[str, str], dict[str, Any]]:
    """(decisions, report) of exact dedup over shards."""
    stage = ExactDedupStage(top_clusters=3)
    shards = _split(records, cuts)
    keys = [rexact.shard_keys(s, i, stage, partitions) for i, s in enumerate(shards)]
    per_shard: dict[int, rexact.ShardResult] = {}
    reduced = [rexact.reduce_partition([k[p] for k in keys], stage) for p in range(partitions)]
    for part in reduced:
        for shard, hits in part.per_shard.items():
            per_shard.setdefault(shard, {}).update(hits)
    decisions = _apply_shards(shards, lambda i: rexact.ExactApply(stage, i, per_shard.get(i, {})))
    return decisions, rexact.merge_reports(stage, reduced)


class TestExact:
    @settings(max_examples=40, deadline=None)
    @given(
        picks=st.lists(st.integers(0, 5), min_size=1, max_size=40),
        stars=st.lists(st.integers(0, 3), min_size=40, max_size=40),
        cuts=st.lists(st.integers(0, 40), max_size=5),
        partitions=st.integers(1, 4),
    )
    def test_any_sharding_gives_the_stage_decisions(self, picks, stars, cuts, partitions):
        """Survivors and duplicates equal ExactDedupStage's for any shards and partitions."""
        records = _records([f"text {p}" for p in picks], stars[: len(picks)])
        stage = ExactDedupStage(top_clusters=3)
        decisions, report = _exact_distributed(records, cuts, partitions)
        assert decisions == _local(stage, records)
        assert report == {k: v for k, v in stage.report().items() if k != "spilled"}

    @pytest.mark.parametrize("odd", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_priority_values_keep_the_order_total(self, odd: float):
        """A NaN priority value (JSON input may carry one) sorts as a missing value: with it
        compared as a number, keys are not totally ordered and the survivor depended on the
        grouping (5, NaN | 7: one pass kept 7, shards [5, NaN] [7] kept 5). Infinities are
        numbers and sort as such."""
        records = _records(["same"] * 3, [5, odd, 7])  # type: ignore[list-item]
        whole = _local(ExactDedupStage(), records)
        for cuts in ([1], [2], [1, 2]):
            assert _exact_distributed(records, cuts, 2)[0] == whole
        survivor = next(i for i, r in enumerate(records) if "duplicates" in whole[r.id])
        assert survivor == (1 if odd == float("inf") else 2)

    def test_bucket_entries_bounded_by_shards(self):
        """A hash repeated 1,000 times in a shard is one shuffle entry per shard."""
        records = _records(["same"] * 1000, [0] * 1000)
        keys = rexact.shard_keys(records, 0, ExactDedupStage(), 4)
        assert sum(len(p) for p in keys) == 1
        assert keys[rexact.partition_of(rexact.content_hash("same"), 4)][0][4] == 1000


def _fuzzy_distributed(
    records: list[Record], cuts: list[int], partitions: int
) -> tuple[dict[str, str], dict[str, Any]]:
    """(decisions, report) of file-level fuzzy dedup over shards."""
    stage = FuzzyDedupStage(**PARAMS)
    MinHashStage(**PARAMS).process(records)
    shards = _split(records, cuts)
    keys = [rfuzzy.shard_keys(s, i, stage.params, partitions) for i, s in enumerate(shards)]
    edges = [rfuzzy.partition_edges([k[0][p] for k in keys]) for p in range(partitions)]
    nodes, labels = rfuzzy.cluster(edges + [k[1] for k in keys])
    members = rfuzzy.members_by_shard(nodes, labels)
    found = [
        rfuzzy.shard_members(shards[s], s, m, stage.priority) for s, m in sorted(members.items())
    ]
    per_shard, clusters, dropped = rfuzzy.winners(found)
    decisions = _apply_shards(shards, lambda i: rfuzzy.FuzzyApply(stage, per_shard.get(i, {})))
    counts = HeldCounts()
    for c in keys:
        counts.add(c[2])
    return decisions, stage.file_report(counts, dropped, clusters)


class TestFuzzy:
    @settings(max_examples=15, deadline=None)
    @any_sharding
    def test_any_sharding_gives_the_stage_decisions(self, seed, cuts, partitions):
        """Clusters and survivors equal FuzzyDedupStage's for any shards and partitions."""
        rng = random.Random(seed)
        texts: list[str] = []
        for _ in range(30):
            if texts and rng.random() < 0.5:
                texts.append(near_copy(rng, rng.choice(texts)))
            else:
                texts.append(python_file(rng, lines=15))
        stars = [rng.randrange(4) for _ in texts]
        texts.append("")  # no word: kept at once by both
        stars.append(0)
        stage = FuzzyDedupStage(**PARAMS)
        annotated = _records(texts, stars)
        MinHashStage(**PARAMS).process(annotated)
        local = _local(stage, annotated)
        assert any("fuzzy_dedup:duplicate" in d for d in local.values())
        decisions, report = _fuzzy_distributed(_records(texts, stars), cuts, partitions)
        assert decisions == local
        assert report == stage.report()

    def test_bucket_gives_a_path_not_all_pairs(self):
        """One bucket of m documents in a band yields m - 1 edges, not m(m-1)/2."""
        m = 500
        table = np.zeros((m, 3), np.uint64)
        table[:, 1] = 42
        table[:, 2] = np.arange(m, dtype=np.uint64)
        edges = rfuzzy.partition_edges([table])
        assert edges.shape == (m - 1, 2)
        nodes, labels = rfuzzy.cluster([edges])
        assert nodes.size == m
        assert np.unique(labels).size == 1

    def test_big_bucket_is_combined_in_its_shard(self):
        """1,000 copies in one shard send one row per band to the shuffle, not 1,000."""
        from codekiln.stream.dedup.fuzzy import META_BANDS

        params = FuzzyDedupStage(**PARAMS).params
        records = _records(["x"] * 1000, [0] * 1000)
        for r in records:
            r.meta[META_BANDS] = list(range(params.bands))
        parts, local_edges, counts = rfuzzy.shard_keys(records, 3, params, 4)
        assert sum(p.shape[0] for p in parts) == params.bands
        assert local_edges.shape == (999, 2)
        assert counts == HeldCounts(held=1000, no_shingles=0)
        nodes, labels = rfuzzy.cluster([local_edges])
        assert nodes.size == 1000
        assert np.unique(labels).size == 1

    def test_same_key_in_other_band_is_not_a_match(self):
        """Equal keys in different bands do not join documents."""
        table = np.array([[0, 7, 1], [1, 7, 2]], dtype=np.uint64)
        assert rfuzzy.partition_edges([table]).shape == (0, 2)


def _repo_distributed(
    records: list[Record], cuts: list[int], partitions: int
) -> tuple[dict[str, str], dict[str, Any]]:
    """(decisions, report) of repository-level fuzzy dedup over shards."""
    import pickle

    stage = FuzzyDedupStage(level="repository", **PARAMS)
    MinHashStage(level="repository", **PARAMS).process(records)
    shards = _split(records, cuts)
    fresh = pickle.dumps(stage)
    partials = [rfuzzy.repo_partials(s, pickle.loads(fresh), partitions) for s in shards]
    keys = [k for k, _ in partials]
    merged = [rfuzzy.merge_repos([k[p] for k in keys], stage) for p in range(partitions)]
    decided = rfuzzy.cluster_repos(merged, pickle.loads(fresh))
    apply = rfuzzy.RepoApply(stage, decided.losers())
    report = stage.repository_report(HeldCounts(held=sum(h for _, h in partials)), decided)
    return _apply_shards(shards, lambda _: apply), report


class TestFuzzyRepositories:
    @settings(max_examples=10, deadline=None)
    @any_sharding
    def test_any_sharding_gives_the_stage_decisions(self, seed, cuts, partitions):
        """Repository level: same repositories dropped as FuzzyDedupStage(level=repository)."""
        rng = random.Random(seed)
        base = [python_file(rng, lines=12) for _ in range(4)]
        texts, repos, stars = [], [], []
        for r in range(6):
            for i, text in enumerate(base if r % 2 == 0 else [python_file(rng, 12)] * 2):
                texts.append(near_copy(rng, text) if r > 1 and i == 0 else text)
                repos.append(f"repo{r}")
                stars.append(rng.randrange(5))

        def records() -> list[Record]:
            out = _records(texts, stars)
            for rec, repo in zip(out, repos, strict=True):
                rec.repo = repo
            return out

        stage = FuzzyDedupStage(level="repository", **PARAMS)
        annotated = records()
        MinHashStage(level="repository", **PARAMS).process(annotated)
        local = _local(stage, annotated)
        assert any("fuzzy_dedup:duplicate_repository" in d for d in local.values())
        decisions, report = _repo_distributed(records(), cuts, partitions)
        assert decisions == local
        assert report == stage.report()


class TestShardScope:
    @settings(max_examples=20, deadline=None)
    @given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 60), max_size=4))
    def test_shards_states_merged_equal_one_pass(self, seed, cuts):
        """Shard-scope stages run per shard from zeroed counters; the stage's merge_states of
        the shards' states, loaded into one instance, reports what one pass over all does."""
        from codekiln.stream.sampling.anneal import AnnealRouteStage
        from codekiln.stream.sampling.downsample import DownsampleStage

        rng = random.Random(seed)
        langs = ["Python", "Java", "C", None]
        texts = [
            python_file(rng, lines=3) + ("import torch\n" * rng.randrange(2)) for _ in range(60)
        ]
        for make in (
            lambda: DownsampleStage(targets={"Python": 0.5, "Java": 0.2}, seed=3),
            AnnealRouteStage,
        ):
            records = _records(texts, [0] * len(texts))
            for i, r in enumerate(records):
                r.lang = langs[i % len(langs)]
            whole = make()
            whole.process([_copy(r) for r in records])
            states = []
            for shard in _split(records, cuts):
                part = make()
                part.process([_copy(r) for r in shard])
                states.append(part.state_dict())
            merged = make()
            merged.load_state_dict(merged.merge_states(states))
            assert merged.report() == whole.report()
            assert merged.scope() == "shard"


class TestPlan:
    def test_default_shape(self):
        """Stateless runs fuse into map steps; dedups and other stateful stages split them."""
        stages = [
            ("noop", NoopStage()),
            ("exact_dedup", ExactDedupStage()),
            ("minhash", MinHashStage()),
            ("fuzzy_dedup", FuzzyDedupStage()),
            ("noop_2", NoopStage()),
        ]
        steps = compile_steps(stages)
        kinds = [type(s) for s in steps]
        assert kinds == [MapStep, DedupStep, MapStep, DedupStep, MapStep]
        assert steps[2].apply == "exact_dedup"
        assert steps[2].prepare == "fuzzy_dedup"
        assert steps[0].prepare == "exact_dedup"  # its admit quarantines before the shuffle
        assert steps[4].final
        assert steps[4].stages == ["noop_2"]

    def test_serial_stages_in_a_row_share_no_copy_step(self):
        """Two order-dependent stages back to back run as two serial steps, no map between."""
        from codekiln.stream.sampling.downsample import DownsampleStage

        budget = {"Java": {"max_bytes": 10}}
        steps = compile_steps(
            [("d", DownsampleStage(targets=budget)), ("d_2", DownsampleStage(targets=budget))]
        )
        assert [type(s) for s in steps] == [MapStep, SerialStep, SerialStep, MapStep]

    def test_per_record_stateful_stages_join_map_steps(self):
        """anneal_route and ratio-only downsample run per shard, flagged for counter summing."""
        from codekiln.stream.sampling.anneal import AnnealRouteStage
        from codekiln.stream.sampling.downsample import DownsampleStage

        steps = compile_steps([("d", DownsampleStage()), ("a", AnnealRouteStage())])
        assert [type(s) for s in steps] == [MapStep]
        assert steps[0].counted == ["d", "a"]

    def test_planner_reads_the_declared_scope(self):
        """A plugin's declared scope places it, whatever its class: shard -> map step (counted),
        stream -> serial step, global with a step this executor does not know -> serial."""
        from codekiln.stream.stage import GLOBAL, SHARD, STREAM, BatchStage, Scope

        def plugin(scope: Scope, step: str | None = None) -> BatchStage:
            cls = type(
                f"Plugin_{scope}",
                (BatchStage,),
                {
                    "stateful": True,
                    "global_step": step,
                    "scope": lambda self: scope,
                    "process_batch": lambda self, batch: batch,
                },
            )
            return cls()

        steps = compile_steps(
            [
                ("s", plugin(SHARD)),
                ("t", plugin(STREAM)),
                ("g", plugin(GLOBAL, "sorted_merge")),
                ("x", plugin(GLOBAL, "exact")),
            ]
        )
        assert [type(s) for s in steps] == [
            MapStep,
            SerialStep,
            SerialStep,
            MapStep,
            DedupStep,
            MapStep,
        ]
        assert steps[0].counted == ["s"]
        assert [steps[1].stage, steps[2].stage, steps[4].stage] == ["t", "g", "x"]
        assert steps[4].method == "exact"
