"""End to end on CPU: `codekiln-train run` trains the tiny preset and resumes exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from codekiln.train.cli import main


def _losses(cfg_path: Path) -> list[tuple[int, float]]:
    lines = (cfg_path.parent / "ckpt" / "metrics.jsonl").read_text().splitlines()
    return [(d["step"], d["loss"]) for d in map(json.loads, lines)]


def test_loss_falls(write_config: Any) -> None:
    """Eight steps of the tiny model on the corpus lower the loss."""
    cfg = write_config()
    assert main(["run", "--config", str(cfg)]) == 0
    losses = _losses(cfg)
    assert [s for s, _ in losses] == list(range(1, 9))
    assert losses[-1][1] < losses[0][1] - 0.5


def test_resume_matches_uninterrupted(write_config: Any, tmp_path: Path) -> None:
    """Stopping at step 3 and resuming gives the same loss curve as one uninterrupted run."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = write_config(
        "a/train.yaml", checkpoint={"dir": str(tmp_path / "a" / "ckpt"), "every_steps": 3}
    )
    assert main(["run", "--config", str(full)]) == 0
    split = write_config(
        "b/train.yaml", checkpoint={"dir": str(tmp_path / "b" / "ckpt"), "every_steps": 3}
    )
    assert main(["run", "--config", str(split), "--stop-at-step", "3"]) == 0
    assert [s for s, _ in _losses(split)] == [1, 2, 3]
    assert main(["run", "--config", str(split)]) == 0
    assert _losses(split) == _losses(full)


@pytest.mark.slow
def test_torchrun_two_ranks_match_one(write_config: Any, tmp_path: Path) -> None:
    """Two torchrun ranks (gloo, CPU) give the loss curve of one process on the same batch."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = write_config("one/train.yaml", checkpoint={"dir": str(tmp_path / "one" / "ckpt")})
    two = write_config("two/train.yaml", checkpoint={"dir": str(tmp_path / "two" / "ckpt")})
    assert main(["run", "--config", str(one)]) == 0
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PET_", "WORLD_SIZE", "RANK"))}
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "codekiln.train.cli",
            "run",
            "--config",
            str(two),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = _losses(one), _losses(two)
    assert [s for s, _ in a] == [s for s, _ in b]
    assert all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(a, b, strict=True))


def test_sft_run_exports_servable_model(write_config: Any, tmp_path: Path) -> None:
    """An SFT run trains on conversations and exports weights + a tokenizer with the template."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from .conftest import write_shard

    convs = [
        {"instruction": f"Write add_{i}.", "response": f"def add_{i}(a, b):\n    return a + b"}
        for i in range(20)
    ] + [{"messages": [{"role": "user", "content": "hi"}]}]  # no assistant turn: skipped
    write_shard(tmp_path / "sft" / "s.jsonl.zst", convs)
    cfg = write_config(
        stage="sft1",
        data={
            "corpus_dir": str(tmp_path / "sft"),
            "tokenizer_path": str(Path(write_config.tokenizer)),
            "seq_len_schedule": [{"seq_len": 48}],
        },
        optim={"lr": 3e-3, "warmup_steps": 1, "decay_steps": 1, "total_steps": 6},
        checkpoint={
            "dir": str(tmp_path / "ckpt"),
            "every_steps": 6,
            "export_dir": str(tmp_path / "model"),
        },
    )
    assert main(["run", "--config", str(cfg)]) == 0
    losses = _losses(cfg)
    assert losses[-1][1] < losses[0][1]
    model = LlamaForCausalLM.from_pretrained(tmp_path / "model")
    assert model.config.num_hidden_layers == 2
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    text = tok.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
