"""Per-stage counters of a run: in, out, dropped by reason, queue depth, busy time.

The runtime updates plain Python counters once per batch (cheap); the Prometheus endpoint and the
rich progress display read them. Counters are snapshotted at each checkpoint barrier and restored
on resume, so the figures of a resumed run equal those of an uninterrupted one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from codekiln.stream.record import Record

#: The counters of one step as checkpoints, markers and manifest.json spell them (the one
#: definition of these keys; ``in`` is a keyword, hence the functional form).
StepCounts = TypedDict(
    "StepCounts",
    {"in": int, "out": int, "dropped": dict[str, int], "busy_s": float, "batches": int},
)


@dataclass
class StageMetrics:
    """Counters of one pipeline step (the source, a stage, or the sink)."""

    key: str
    records_in: int = 0
    records_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    busy_s: float = 0.0
    batches: int = 0
    #: Reads the depth of this step's input channel (batches waiting); set by the runtime.
    depth: Callable[[], int] = field(default=lambda: 0, repr=False, compare=False)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def snapshot(self) -> StepCounts:
        return {
            "in": self.records_in,
            "out": self.records_out,
            "dropped": dict(self.dropped),
            "busy_s": self.busy_s,
            "batches": self.batches,
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        self.records_in = int(snap["in"])
        self.records_out = int(snap["out"])
        self.dropped = Counter({str(k): int(v) for k, v in snap["dropped"].items()})
        self.busy_s = float(snap["busy_s"])
        self.batches = int(snap["batches"])

    def count(self, n_in: int, live: list[Record], dropped: Iterable[Record]) -> None:
        """One batch: ``n_in`` records came in, ``live`` went on, ``dropped`` were dropped."""
        self.records_in += n_in
        self.records_out += len(live)
        self.batches += 1
        for r in dropped:
            self.dropped[r.drop_reason or "?"] += 1

    def add(self, snap: Mapping[str, Any]) -> None:
        """Add another copy's :meth:`snapshot` (a shard's counters, summed by an executor)."""
        self.records_in += snap.get("in", 0)
        self.records_out += snap.get("out", 0)
        self.busy_s += snap.get("busy_s", 0)
        self.batches += snap.get("batches", 0)
        self.dropped.update(snap.get("dropped", {}))


@dataclass
class InputProgress:
    """How much of the run's input is read, and when the rest will be.

    ``fraction`` is of the whole input, what a resumed run read before it restarted included
    (``None``: not known, as for a stream, a worker's queue or a source that cannot say). The
    ETA uses only what this process read, over the time it took: ``since`` is the fraction and
    the ``time.monotonic()`` it counts from (0 at the start of a fresh run; the first fraction
    measured after a resume). Not checkpointed: a resumed run measures it again.
    """

    fraction: float | None = None
    since: tuple[float, float] | None = None

    def start(self, now: float) -> None:
        """The run starts at the beginning of its input: this process read it all."""
        self.since = (0.0, now)

    def update(self, fraction: float | None, now: float) -> None:
        if fraction is None:
            return
        # Never backwards (a file that shrank while read), never past the end.
        fraction = min(max(fraction, self.fraction or 0.0), 1.0)
        if self.since is None:
            self.since = (fraction, now)
        self.fraction = fraction

    def eta_s(self, now: float) -> float | None:
        """Seconds until the input is read at this process's rate so far; ``None`` when not
        known (no fraction, or nothing read yet in this process)."""
        if self.fraction is None or self.since is None:
            return None
        start_fraction, start = self.since
        done = self.fraction - start_fraction
        if self.fraction >= 1.0:
            return 0.0
        if done <= 0:
            return None
        return max(now - start, 0.0) * (1.0 - self.fraction) / done


class RunMetrics:
    """The ordered steps of one pipeline: ``source``, each stage by its key, ``sink``; and how
    much of the input is read (:class:`InputProgress`, set by the source when it can say)."""

    def __init__(self, keys: list[str]) -> None:
        self.steps: dict[str, StageMetrics] = {key: StageMetrics(key) for key in keys}
        self.input = InputProgress()

    def __getitem__(self, key: str) -> StageMetrics:
        return self.steps[key]

    def step(self, key: str) -> StageMetrics:
        """The step ``key``, added (after the others) when it is not there yet."""
        m = self.steps.get(key)
        if m is None:
            m = self.steps[key] = StageMetrics(key)
        return m

    def __iter__(self) -> Iterator[StageMetrics]:
        return iter(self.steps.values())

    def snapshot(self) -> dict[str, StepCounts]:
        return {key: m.snapshot() for key, m in self.steps.items()}

    def restore(self, snap: Mapping[str, Mapping[str, Any]]) -> None:
        for key, values in snap.items():
            if key in self.steps:
                self.steps[key].restore(values)


def prometheus_collector(get_metrics: Callable[[], RunMetrics | None]) -> Any:
    """A prometheus_client collector reading the live counters at scrape time."""
    # Imported here: only the worker's metrics endpoint needs prometheus_client, and importing
    # it (http.server, urllib) costs every CLI run about 20 ms.
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class _Collector:
        def collect(self) -> Iterator[Any]:
            metrics = get_metrics()
            records_in = CounterMetricFamily(
                "codekiln_stream_stage_records_in", "Records that entered a step", labels=["stage"]
            )
            records_out = CounterMetricFamily(
                "codekiln_stream_stage_records_out", "Records a step passed on", labels=["stage"]
            )
            dropped = CounterMetricFamily(
                "codekiln_stream_stage_dropped",
                "Records a step dropped, by reason",
                labels=["stage", "reason"],
            )
            busy = CounterMetricFamily(
                "codekiln_stream_stage_busy_seconds", "Time a step spent working", labels=["stage"]
            )
            depth = GaugeMetricFamily(
                "codekiln_stream_stage_queue_depth",
                "Batches waiting in a step's input queue",
                labels=["stage"],
            )
            if metrics is not None:
                for m in metrics:
                    records_in.add_metric([m.key], m.records_in)
                    records_out.add_metric([m.key], m.records_out)
                    busy.add_metric([m.key], m.busy_s)
                    depth.add_metric([m.key], m.depth())
                    for reason, n in sorted(m.dropped.items()):
                        dropped.add_metric([m.key, reason], n)
            yield from (records_in, records_out, dropped, busy, depth)

    return _Collector()
