"""The pipeline engine: order, quarantine, crashes, process pool, backpressure, no blocking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import rt_stages
from codekiln.stream.metrics import RunMetrics
from codekiln.stream.readers.base import Item, Position
from codekiln.stream.record import Record
from codekiln.stream.runtime.builtin import NoopStage
from codekiln.stream.runtime.errors import StageCrashed
from codekiln.stream.runtime.pipeline import Barrier, Pipeline, PipelineOptions
from codekiln.stream.stage import Scope, Stage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


class ListSource:
    """Records from a list; position = (index,)."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.pulled = 0

    def items(self, after: Position | None) -> Iterator[Item]:
        start = after[0] + 1 if after else 0
        for i in range(start, len(self.records)):
            self.pulled = i + 1
            yield (i,), self.records[i]

    def state(self) -> dict[str, Any]:
        return {}


class MemorySink:
    def __init__(self) -> None:
        self.live: list[Record] = []
        self.dropped: list[Record] = []
        self.commits = 0

    def write(self, live: list[Record], dropped: list[Record]) -> None:
        self.live.extend(live)
        self.dropped.extend(dropped)

    def commit(self) -> dict[str, Any]:
        self.commits += 1
        return {"live": len(self.live), "dropped": len(self.dropped)}

    def abort(self) -> None:
        pass


def make_records(n: int, text: str = "doc {i}") -> list[Record]:
    return [Record(id=f"r{i:05d}", text=text.format(i=i)) for i in range(n)]


async def run(
    records: list[Record],
    stages: list[tuple[str, Stage]],
    *,
    batch_size: int = 16,
    batch_max_chars: int = 0,
    queue_batches: int = 2,
    checkpoint_every: int = 1000,
    workers: int = 2,
    barriers: list[tuple[Barrier, dict[str, Any]]] | None = None,
    source: Any = None,
) -> tuple[MemorySink, RunMetrics]:
    sink = MemorySink()
    metrics = RunMetrics(Pipeline.step_keys([k for k, _ in stages]))

    async def on_checkpoint(barrier: Barrier, state: dict[str, Any]) -> None:
        if barriers is not None:
            barriers.append((barrier, state))

    pipeline = Pipeline(
        source or ListSource(records),
        stages,
        sink,
        options=PipelineOptions(
            batch_size=batch_size,
            batch_max_chars=batch_max_chars,
            queue_batches=queue_batches,
            workers=workers,
            checkpoint_every=checkpoint_every,
        ),
        metrics=metrics,
        on_checkpoint=on_checkpoint,
    )
    await pipeline.run()
    return sink, metrics


class TestFlow:
    async def test_records_pass_every_stage_in_order(self, no_blocking: Any) -> None:
        """Every record reaches the sink once, in input order, having passed each stage in turn."""
        records = make_records(100)
        stages: list[tuple[str, Stage]] = [
            ("a", rt_stages.TagStage("a")),
            ("n", NoopStage()),
            ("b", rt_stages.TagStage("b")),
        ]
        sink, metrics = await run(records, stages)
        assert [r.id for r in sink.live] == [r.id for r in records]
        assert all(r.meta["trail"] == ["a", "b"] for r in sink.live)
        assert metrics["a"].records_in == 100
        assert metrics["sink"].records_in == 100

    async def test_dropped_records_reach_rejects_with_reason_in_order(self) -> None:
        """Filtered records go to the rejects side with 'stage:rule', still in input order."""
        records = make_records(50, "doc {i}")
        for r in records[::5]:
            r.text += " DROP"
        sink, metrics = await run(records, [("f", rt_stages.DropMarkedStage())])
        assert [r.id for r in sink.dropped] == [r.id for r in records[::5]]
        assert {r.drop_reason for r in sink.dropped} == {"dropper:marked"}
        assert metrics["f"].dropped == {"dropper:marked": 10}
        assert len(sink.live) == 40

    async def test_raising_record_is_quarantined_and_run_goes_on(self) -> None:
        """A record whose filter raises is quarantined as '<stage>:error:<Type>'; others pass."""
        records = make_records(20)
        records[7].text = "boom"
        sink, _ = await run(records, [("f", rt_stages.DropMarkedStage())])
        assert [r.id for r in sink.dropped] == ["r00007"]
        assert sink.dropped[0].drop_reason == "dropper:error:ValueError"
        assert "boom in text" in sink.dropped[0].meta["error"]
        assert len(sink.live) == 19

    async def test_batch_stage_failure_isolates_the_bad_record(self) -> None:
        """A BatchStage that raises on a batch is re-run per record: only the bad one is dropped."""
        records = make_records(40)
        records[13].text = "poison"
        sink, _ = await run(records, [("p", rt_stages.PoisonBatchStage())], batch_size=10)
        assert [r.id for r in sink.dropped] == ["r00013"]
        assert sink.dropped[0].drop_reason == "poison:error:RuntimeError"
        assert [r.id for r in sink.live] == [r.id for r in records if r.id != "r00013"]
        assert all(r.meta.get("seen_by_poison") for r in sink.live)

    async def test_crashed_stage_stops_the_run_with_a_clear_error(self) -> None:
        """A stage whose process() raises stops the run with StageCrashed naming the stage."""
        with pytest.raises(
            StageCrashed, match=r"stage 'c' crashed: process\(\) raised RuntimeError: disk on fire"
        ):
            await run(make_records(200), [("n", NoopStage()), ("c", rt_stages.CrashStage(after=2))])

    async def test_crash_does_not_read_the_whole_input(self) -> None:
        """After a crash the source stops: bounded channels cap what was read ahead."""
        records = make_records(100_000)
        source = ListSource(records)
        with pytest.raises(StageCrashed):
            await run(records, [("c", rt_stages.CrashStage(after=1))], batch_size=10, source=source)
        assert source.pulled < 1000

    async def test_slow_sink_backpressures_the_reader(self) -> None:
        """With the sink stuck, the reader stops after the channels and stages are full."""
        import asyncio
        import threading

        gate = threading.Event()

        class StuckSink(MemorySink):
            def write(self, live: list[Record], dropped: list[Record]) -> None:
                gate.wait(timeout=60)
                super().write(live, dropped)

        records = make_records(50_000)
        source = ListSource(records)
        sink = StuckSink()
        stages: list[tuple[str, Stage]] = [("a", NoopStage()), ("b", NoopStage())]
        pipeline = Pipeline(
            source,
            stages,
            sink,
            options=PipelineOptions(batch_size=10, queue_batches=2, checkpoint_every=10**9),
            metrics=RunMetrics(Pipeline.step_keys(["a", "b"])),
        )
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(pipeline.run())
            last = -1
            while True:  # until the reader stops advancing
                await asyncio.sleep(0.2)
                if source.pulled == last:
                    break
                last = source.pulled
            # 3 channels x 2 batches, plus one batch held by each of source, 2 stages and sink
            assert source.pulled <= (3 * 2 + 4) * 10
            gate.set()
            await task
        assert len(sink.live) == 50_000

    async def test_finish_records_flow_downstream(self) -> None:
        """Records a stage holds until finish() still reach the sink (and later stages)."""
        records = make_records(30)
        stages: list[tuple[str, Stage]] = [
            ("h", rt_stages.HoldStage()),
            ("t", rt_stages.TagStage("t")),
        ]
        sink, _ = await run(records, stages)
        assert sorted(r.id for r in sink.live) == [r.id for r in records]
        assert all(r.meta["trail"] == ["t"] for r in sink.live)

    async def test_finish_output_is_rebatched(self) -> None:
        """A stage that emits everything from finish() feeds later stages in batch_size chunks."""
        records = make_records(100)
        stages: list[tuple[str, Stage]] = [
            ("g", rt_stages.GateStage()),
            ("t", rt_stages.TagStage()),
        ]
        sink, metrics = await run(records, stages, batch_size=16)
        assert [r.id for r in sink.live] == [r.id for r in records]
        assert metrics["t"].batches == 7  # ceil(100 / 16), not one batch of 100

    async def test_finish_output_is_rebatched_by_characters(self) -> None:
        """finish() output is also cut at batch_max_chars (large held records, small batches)."""
        records = make_records(40, "{i:04d}" + "x" * 996)  # 1000 characters each
        stages: list[tuple[str, Stage]] = [
            ("g", rt_stages.GateStage()),
            ("t", rt_stages.TagStage()),
        ]
        sink, metrics = await run(records, stages, batch_size=16, batch_max_chars=4000)
        assert [r.id for r in sink.live] == [r.id for r in records]
        assert metrics["t"].batches == 10  # 4 records each instead of 16

    async def test_cpu_bound_stage_runs_in_worker_processes(self, no_blocking: Any) -> None:
        """A cpu_bound stage's batches run in other processes; results keep input order."""
        import os

        records = make_records(200)
        for r in records[::7]:
            r.text += " DROP"
        sink, metrics = await run(
            records, [("c", rt_stages.CpuDropStage(record_pid=True))], batch_size=8
        )
        pids = {r.meta["pid"] for r in sink.live}
        assert os.getpid() not in pids
        assert [r.id for r in sink.live] == [r.id for r in records if "DROP" not in r.text]
        assert [r.id for r in sink.dropped] == [r.id for r in records[::7]]
        assert metrics["c"].busy_s > 0

    @pytest.mark.parametrize("scope", ["record", "shard", "stream", "global"])
    async def test_the_plan_reads_each_stage_scope(self, scope: Scope, no_blocking: Any) -> None:
        """Where a cpu_bound stage runs and whether it is checkpointed follow its declared scope
        (not its class flags): ``record`` in the pool, checkpointed for its counters; any other
        scope in this process, one instance seeing every record, its state in each barrier."""
        import os
        import pickle

        stage = rt_stages.ScopedCounterStage(scope)
        barriers: list[tuple[Barrier, dict[str, Any]]] = []
        sink, _ = await run(
            make_records(60), [("s", stage)], batch_size=8, checkpoint_every=20, barriers=barriers
        )
        assert len(sink.live) == 60
        assert [pickle.loads(b.states["s"]) for b, _ in barriers][-1] == {
            "seen": 0 if scope == "record" else 60
        }
        if scope == "record":
            assert stage.seen == 0  # the workers' copies counted
            assert stage.pids == set()
        else:
            assert stage.seen == 60
            assert stage.pids == {os.getpid()}

    async def test_batches_close_at_the_character_limit(self, no_blocking: Any) -> None:
        """Large records make smaller batches (batch_max_chars), in order, nothing lost."""
        records = make_records(40, "{i:04d}" + "x" * 996)  # 1000 characters each
        sink, metrics = await run(
            records, [("c", rt_stages.CpuDropStage())], batch_size=16, batch_max_chars=4000
        )
        assert [r.id for r in sink.live] == [r.id for r in records]
        assert metrics["c"].batches == 10  # 4 records each instead of 16

    async def test_barriers_carry_stage_state_and_counters(self, no_blocking: Any) -> None:
        """Each barrier holds the dedup state and counters as of the same cut of the stream."""
        records = make_records(100, "same {i}")
        for r in records[50:]:
            r.text = "dup"
        barriers: list[tuple[Barrier, dict[str, Any]]] = []
        await run(
            records,
            [("d", rt_stages.ExactDedupStage())],
            checkpoint_every=25,
            batch_size=10,
            barriers=barriers,
        )
        import pickle

        assert [b.position for b, _ in barriers] == [(24,), (49,), (74,), (99,)]
        for barrier, sink_state in barriers:
            n = barrier.position[0] + 1 if barrier.position else 0
            state = pickle.loads(barrier.states["d"])
            assert state["dups"] == max(0, n - 51)
            assert barrier.metrics["d"]["in"] == n
            assert sink_state["live"] + sink_state["dropped"] == n


@st.composite
def _scenario(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 300))
    drops = draw(st.sets(st.integers(0, max(0, n - 1)), max_size=n))
    return {
        "n": n,
        "drops": drops,
        "batch_size": draw(st.integers(1, 40)),
        "batch_max_chars": draw(st.sampled_from([0, 1, 7, 60])),
        "queue_batches": draw(st.integers(1, 5)),
        "checkpoint_every": draw(st.integers(1, 120)),
        "hold": draw(st.booleans()),
    }


class TestInvariants:
    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(_scenario())
    async def test_no_record_lost_or_duplicated(self, sc: dict[str, Any]) -> None:
        """Whatever the batch size, queue bound, checkpoint interval and drops: each id once."""
        records = make_records(sc["n"])
        for i in sc["drops"]:
            records[i].text += " DROP"
        stages: list[tuple[str, Stage]] = [("f", rt_stages.DropMarkedStage()), ("n", NoopStage())]
        if sc["hold"]:
            stages.insert(1, ("h", rt_stages.HoldStage()))
        sink, metrics = await run(
            records,
            stages,
            batch_size=sc["batch_size"],
            batch_max_chars=sc["batch_max_chars"],
            queue_batches=sc["queue_batches"],
            checkpoint_every=sc["checkpoint_every"],
        )
        out = [r.id for r in sink.live] + [r.id for r in sink.dropped]
        assert sorted(out) == [r.id for r in records]
        assert {r.id for r in sink.dropped} == {records[i].id for i in sc["drops"]}
        assert metrics["f"].dropped_total == len(sc["drops"])

    @settings(max_examples=5, deadline=None)
    @given(
        n=st.integers(0, 400),
        batch_size=st.integers(1, 64),
        workers=st.integers(1, 2),
        drop_every=st.integers(1, 9),
    )
    async def test_process_pool_keeps_order_and_loses_nothing(
        self, n: int, batch_size: int, workers: int, drop_every: int
    ) -> None:
        """Through a cpu_bound stage in the pool: input order kept, every id exactly once."""
        records = make_records(n)
        for r in records[::drop_every]:
            r.text += " DROP"
        sink, _ = await run(
            records, [("c", rt_stages.CpuDropStage())], batch_size=batch_size, workers=workers
        )
        assert [r.id for r in sink.live] == [r.id for r in records if "DROP" not in r.text]
        assert [r.id for r in sink.dropped] == [r.id for r in records[::drop_every]]
