"""Sinks: sharded JSONL.zst and Parquet writers with atomic commit, and the run's sink."""

from codekiln.stream.writers.base import ShardWriter
from codekiln.stream.writers.jsonl import JsonlZstWriter, read_jsonl_zst
from codekiln.stream.writers.parquet import ParquetWriter
from codekiln.stream.writers.sink import RunSink, make_writer

__all__ = [
    "JsonlZstWriter",
    "ParquetWriter",
    "RunSink",
    "ShardWriter",
    "make_writer",
    "read_jsonl_zst",
]
