"""Sources: directory trees of files, JSONL / JSONL.zst and Parquet shards."""

from codekiln.stream.readers.base import Budget, Item, Position, Reader
from codekiln.stream.readers.files import FileTreeReader
from codekiln.stream.readers.inputs import InputSet, detect_format, make_reader
from codekiln.stream.readers.jsonl import JsonlReader
from codekiln.stream.readers.parquet import ParquetReader

__all__ = [
    "Budget",
    "FileTreeReader",
    "InputSet",
    "Item",
    "JsonlReader",
    "ParquetReader",
    "Position",
    "Reader",
    "detect_format",
    "make_reader",
]
