"""The run's sink: live records to ``corpus/``, quarantined ones (with ``reason``) to
``rejects/``, plus the counts the manifest and report show."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from codekiln.stream.config import OutputConfig
from codekiln.stream.record import Record
from codekiln.stream.writers.base import ShardWriter
from codekiln.stream.writers.jsonl import JsonlZstWriter
from codekiln.stream.writers.parquet import ParquetWriter


def make_writer(folder: Path, cfg: OutputConfig, prefix: str = "part") -> ShardWriter:
    common: dict[str, Any] = {
        "prefix": prefix,
        "max_records": cfg.shard_max_records,
        "max_bytes": cfg.shard_max_bytes,
    }
    if cfg.format == "parquet":
        return ParquetWriter(folder, **common)
    return JsonlZstWriter(folder, level=cfg.zstd_level, **common)


class RunSink:
    """Writes ``corpus/`` and ``rejects/`` under ``out_dir``; its state goes into checkpoints.
    ``prefix`` names the shards (a sharded executor gives each input shard its own)."""

    def __init__(self, out_dir: Path, cfg: OutputConfig, prefix: str = "part") -> None:
        self.corpus = make_writer(out_dir / "corpus", cfg, prefix)
        self.rejects = make_writer(out_dir / "rejects", cfg, prefix)
        self.langs: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def write(self, live: list[Record], dropped: list[Record]) -> None:
        if live:
            self.corpus.write(live)
            self.langs.update(r.lang or "unknown" for r in live)
        if dropped:
            self.rejects.write(dropped)
            self.reasons.update(r.drop_reason or "?" for r in dropped)

    def commit(self) -> dict[str, Any]:
        """Make every open shard durable; returns the state a checkpoint stores."""
        self.corpus.commit()
        self.rejects.commit()
        return self.state()

    def finish(self) -> dict[str, Any]:
        """The run's last commit: like :meth:`commit`, and an empty corpus or rejects folder
        gets one empty shard (see ShardWriter.finish)."""
        self.corpus.finish()
        self.rejects.finish()
        return self.state()

    def state(self) -> dict[str, Any]:
        return {
            "corpus": [dict(s) for s in self.corpus.shards],
            "rejects": [dict(s) for s in self.rejects.shards],
            "langs": dict(self.langs),
            "reasons": dict(self.reasons),
        }

    def restore(self, state: dict[str, Any] | None) -> None:
        state = state or {"corpus": [], "rejects": [], "langs": {}, "reasons": {}}
        self.corpus.restore(state["corpus"])
        self.rejects.restore(state["rejects"])
        self.langs = Counter(state["langs"])
        self.reasons = Counter(state["reasons"])

    def abort(self) -> None:
        self.corpus.abort()
        self.rejects.abort()
