"""The two-stage SFT mixture writer."""

from __future__ import annotations

import json
from pathlib import Path

import zstandard
from codekiln.stream.record import Record
from codekiln.synth.mixture import SFTMixtureWriter
from codekiln.train.sft import messages_of


def _sample(i: int, stage: int, kind: str) -> Record:
    messages = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    return Record(id=f"{i:032x}", text=f"q{i} a{i}", source="synth:x",
                  meta={"messages": messages, "sft_stage": stage, "source_kind": kind})  # fmt: skip


def _read(folder: Path) -> list[dict[str, object]]:
    rows = []
    for shard in sorted(folder.glob("part-*.jsonl.zst")):
        with shard.open("rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        rows += [json.loads(line) for line in data.decode().splitlines()]
    return rows


def test_stages_and_weights(tmp_path: Path) -> None:
    """Samples land in their stage; weight 2 doubles, weight 0 removes."""
    writer = SFTMixtureWriter(tmp_path, weights={"diverse": 2, "package": 0})
    for i in range(10):
        writer.add(_sample(i, 1, "diverse"))
    for i in range(10, 14):
        writer.add(_sample(i, 2, "package"))
    for i in range(14, 17):
        writer.add(_sample(i, 2, "educational"))
    manifest = writer.write()
    assert manifest["stages"]["stage1"]["written"] == 20
    assert manifest["stages"]["stage2"]["written"] == 3
    assert len(_read(tmp_path / "sft" / "stage1")) == 20
    assert json.loads((tmp_path / "sft" / "manifest.json").read_text())["seed"] == 0


def test_fractional_weight_is_reproducible(tmp_path: Path) -> None:
    """Weight 1.5 gives between n and 2n samples, the same each time."""
    counts = []
    for run in range(2):
        writer = SFTMixtureWriter(tmp_path / str(run), weights={"k": 1.5}, seed=7)
        for i in range(40):
            writer.add(_sample(i, 2, "k"))
        counts.append(writer.write()["stages"]["stage2"]["written"])
    assert counts[0] == counts[1]
    assert 40 < counts[0] < 80


def test_output_is_trainable_chat_format(tmp_path: Path) -> None:
    """Written rows are what the SFT trainer reads (messages with an assistant turn)."""
    writer = SFTMixtureWriter(tmp_path)
    writer.add(_sample(1, 2, "educational"))
    writer.write()
    (row,) = _read(tmp_path / "sft" / "stage2")
    assert messages_of(row)[-1] == {"role": "assistant", "content": "a1"}
    assert row["stage"] == 2
