"""The two-stage SFT mixture writer (OpenCoder's two instruction-tuning stages).

- stage 1, theory: computer fundamentals, algorithms, data structures (large-scale diverse
  instructions, filtered Infinity-Instruct)
- stage 2, practical coding (educational, package-grounded, Evol-Instruct, McEval-Instruct)

Each SFT sample names its stage in ``meta["sft_stage"]`` and its origin in
``meta["source_kind"]``. Per-origin weights up- or down-sample (weight 2.5: every sample twice,
plus a third copy for half of them, chosen by a hash of the id, so the result is
reproducible); each stage is shuffled with a fixed seed and written as chat-format JSONL.zst
shards (``{"id", "messages", "source", "stage", "meta"}``) under ``sft/stage1`` and
``sft/stage2`` through the stream runtime's atomic shard writer, plus ``sft/manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codekiln.stream.record import Record
from codekiln.stream.writers.jsonl import JsonlZstWriter

from .errors import ConfigError

__all__ = ["SFTMixtureWriter", "chat_json"]

STAGE_NAMES = {1: "theory", 2: "practical"}


def chat_json(record: Record, stage: int) -> dict[str, Any]:
    meta = {k: v for k, v in record.meta.items() if k not in ("messages", "raw")}
    return {
        "id": record.id,
        "messages": record.meta["messages"],
        "source": record.source,
        "stage": stage,
        "meta": meta,
    }


class _ChatWriter(JsonlZstWriter):
    """The runtime's atomic shard writer, encoding chat records instead of plain records."""

    def __init__(self, folder: Path, stage: int, **kw: Any) -> None:
        self.stage = stage
        super().__init__(folder, **kw)

    def _write(self, records: list[Record]) -> int:
        data = "".join(
            json.dumps(chat_json(r, self.stage), ensure_ascii=False, separators=(",", ":")) + "\n"
            for r in records
        ).encode("utf-8", "surrogatepass")
        self._zw.write(data)
        return len(data)


def _fraction(record_id: str, copy: int) -> float:
    digest = hashlib.sha256(f"{record_id}:{copy}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SFTMixtureWriter:
    def __init__(
        self,
        out_dir: Path,
        *,
        weights: Mapping[str, float] | None = None,
        seed: int = 0,
        shard_max_records: int = 50_000,
    ) -> None:
        self.out_dir = out_dir
        self.weights = dict(weights or {})
        for key, w in self.weights.items():
            if not isinstance(w, int | float) or w < 0:
                raise ConfigError(f"mixture weight for {key!r} must be a number >= 0, got {w!r}")
        self.seed = seed
        self.shard_max_records = shard_max_records
        self._samples: dict[int, list[Record]] = {1: [], 2: []}

    def add(self, record: Record) -> None:
        stage = record.meta.get("sft_stage")
        if stage not in (1, 2) or not isinstance(record.meta.get("messages"), list):
            raise ConfigError(
                f"record {record.id} is not an SFT sample (needs sft_stage, messages)"
            )
        self._samples[int(stage)].append(record)

    def _expand(self, records: list[Record]) -> list[Record]:
        out = []
        for r in sorted(records, key=lambda r: r.id):
            w = float(self.weights.get(str(r.meta.get("source_kind", "")), 1.0))
            copies = int(w) + (1 if _fraction(r.id, int(w)) < w - int(w) else 0)
            out.extend([r] * copies)
        random.Random(self.seed).shuffle(out)
        return out

    def write(self) -> dict[str, Any]:
        sft = self.out_dir / "sft"
        manifest: dict[str, Any] = {"stages": {}}
        for stage, records in self._samples.items():
            mixed = self._expand(records)
            writer = _ChatWriter(
                sft / f"stage{stage}",
                stage,
                prefix="part",
                max_records=self.shard_max_records,
                max_bytes=1 << 30,
            )
            writer.write(mixed)
            writer.commit()
            manifest["stages"][f"stage{stage}"] = {
                "name": STAGE_NAMES[stage],
                "samples": len(records),
                "written": len(mixed),
                "by_source": dict(
                    sorted(Counter(str(r.meta.get("source_kind")) for r in records).items())
                ),
                "shards": writer.shards,
            }
        manifest["weights"] = self.weights
        manifest["seed"] = self.seed
        tmp = sft / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(sft / "manifest.json")
        return manifest
