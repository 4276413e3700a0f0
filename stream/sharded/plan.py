"""The plan of a Ray run: input shards, and the pipeline cut into distributed steps.

Shards
    An input directory tree is cut into ranges of ``shard_files`` entries of the reader's own
    (sorted) walk; a JSONL or Parquet input gives one shard per file. Each shard is read by its
    own task with the very reader the single-machine runtime uses, so records, ids and reader
    rejects are identical. The plan is written once and reused by every resume.

Steps
    The planner reads each stage's declared scope (:meth:`~codekiln.stream.stage.Stage.scope`).
    ``record`` stages run per shard, fused into one **map** step between two others. ``global``
    stages with a step this executor distributes (``global_step`` ``exact``: ``exact_dedup``,
    ``fuzzy``: ``fuzzy_dedup``) become **dedup** steps (a shuffle and a reduce, see
    :mod:`codekiln.stream.dedup.exact_shards`, :mod:`codekiln.stream.dedup.fuzzy_shards`) whose
    result is applied by the next map step as it reads
    its shard. Any other stateful stage (its state depends on every record before it) runs as a
    **serial** step: one task streams every shard through it, in input order, unless its
    declared scope (:meth:`~codekiln.stream.stage.Stage.scope`) is ``shard``: it decides each
    record on its own with counters as its only state (``anneal_route``, ``downsample``
    without byte budgets); those run per shard inside map steps, from zeroed counters, and the
    shards' states are merged by the stage for the report
    (:meth:`~codekiln.stream.stage.Stage.merge_states`). The last map step writes the corpus and
    rejects. ::

        map[preprocess] -> dedup[exact] -> map[apply exact; minhash] -> dedup[fuzzy]
          -> map[apply fuzzy; copyright, filters, downsample, anneal_route; write]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codekiln.stream.config import InputConfig
from codekiln.stream.readers.files import FileTreeReader
from codekiln.stream.readers.inputs import detect_format
from codekiln.stream.readers.inputs import shard_files as list_shard_files
from codekiln.stream.runtime.pipeline import checkpointed
from codekiln.stream.stage import GLOBAL, STREAM, Stage

from codekiln.shards import JSONL_SUFFIXES, PARQUET_SUFFIXES


@dataclass(frozen=True)
class Shard:
    """One unit of input: ``kind`` tree (walk entries [start, end)), file (one JSONL/Parquet
    file of an input) or missing (an input path that does not exist)."""

    index: int
    input: int
    path: str
    kind: str
    start: int = 0
    end: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Shard:
        return cls(**obj)


def plan_shards(inputs: list[str], cfg: InputConfig, shard_files: int) -> list[Shard]:
    """Cut the inputs into shards, in the order the single-machine source reads them."""
    shards: list[Shard] = []
    for i, raw in enumerate(inputs):
        path = Path(raw)
        if not path.exists():
            shards.append(Shard(len(shards), i, raw, "missing"))
            continue
        fmt = detect_format(path, cfg.format)
        if fmt == "files":
            reader = FileTreeReader(
                path, max_file_bytes=cfg.max_file_bytes, exclude_dirs=cfg.exclude_dirs
            )
            # The walk lists folders without reading files: cheap next to the reading itself.
            entries = sum(1 for _ in reader.walk())
            for start in range(0, max(entries, 1), shard_files):
                end = start + shard_files
                # The last range stays open: a file added since planning is still read.
                last = end >= entries
                shards.append(Shard(len(shards), i, raw, "tree", start, None if last else end))
        else:
            suffixes = JSONL_SUFFIXES if fmt == "jsonl" else PARQUET_SUFFIXES
            for f, _ in enumerate(list_shard_files(path, suffixes)):
                shards.append(Shard(len(shards), i, raw, "file", f, f + 1))
    return shards


@dataclass
class MapStep:
    """Stateless stages over each shard; applies the previous dedup result as it reads."""

    index: int
    stages: list[str] = field(default_factory=list)
    #: Stages among ``stages`` whose per-shard states are merged (``shard`` scope, pool).
    counted: list[str] = field(default_factory=list)
    #: Key of the dedup stage whose result is applied to the records read (or None).
    apply: str | None = None
    #: Key of the dedup stage that follows: its per-record steps before the shuffle (the
    #: stage's ``admit``: MinHash where still missing, the checks that quarantine a record).
    prepare: str | None = None
    final: bool = False
    kind: str = "map"


@dataclass
class DedupStep:
    index: int
    stage: str
    method: str  # a stage's global_step, one of GLOBAL_STEPS
    kind: str = "dedup"


@dataclass
class SerialStep:
    index: int
    stage: str
    kind: str = "serial"


Step = MapStep | DedupStep | SerialStep

#: The global steps this executor distributes (shuffle and reduce); a global stage with
#: another runs as a serial step.
GLOBAL_STEPS = ("exact", "fuzzy")


def compile_steps(stages: list[tuple[str, Stage]]) -> list[Step]:
    """The pipeline as map / dedup / serial steps (see the module docstring)."""
    steps: list[Step] = []
    current = MapStep(0)
    for key, stage in stages:
        scope = stage.scope()
        if scope not in (GLOBAL, STREAM):
            current.stages.append(key)
            # Per-shard states, merged by the driver: every stage the local runtime
            # checkpoints (shard-scope stages, and pool stages, whose state_dict() holds what
            # they counted: Stage.take_stats).
            if checkpointed(stage):
                current.counted.append(key)
            continue
        if scope == GLOBAL and stage.global_step in GLOBAL_STEPS:
            method = str(stage.global_step)
            current.prepare = key
            steps.append(current)
            steps.append(DedupStep(len(steps), key, method))
            current = MapStep(len(steps), apply=key)
        else:  # a stream stage, or a global step this executor does not distribute
            # Two serial stages in a row need no (copying) map step between them.
            idle = not (current.stages or current.apply or current.prepare)
            if not (idle and steps and isinstance(steps[-1], SerialStep)):
                steps.append(current)
            steps.append(SerialStep(len(steps), key))
            current = MapStep(len(steps))
    current.final = True
    steps.append(current)
    return steps
