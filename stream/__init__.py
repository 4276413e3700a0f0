"""codekiln.stream: the streaming RefineCode pipeline."""

from codekiln.stream.record import Record, record_id
from codekiln.stream.stage import BatchStage, FilterStage, FlatMapStage, MapStage, Stage

__all__ = [
    "BatchStage",
    "FilterStage",
    "FlatMapStage",
    "MapStage",
    "Record",
    "Stage",
    "record_id",
]
