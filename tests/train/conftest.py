"""Fixtures for the trainer tests: a corpus, a BPE tokenizer trained on it, a tiny config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
import zstandard

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]


def _code_docs(n: int) -> list[str]:
    docs = []
    for i in range(n):
        docs.append(
            f"def add_{i}(a, b):\n    return a + b + {i}\n\n"
            f"class Box{i}:\n    def __init__(self, v):\n        self.v = v * {i % 7}\n"
        )
    return docs


def write_shard(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data))


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed-corpus layout: two zstd JSONL shards, some records marked for annealing."""
    root = tmp_path_factory.mktemp("out") / "corpus"
    docs = _code_docs(120)
    recs = [
        {
            "id": f"r{i}",
            "text": t,
            "lang": "python",
            "path": f"m{i}.py",
            "repo": "x/y",
            "meta": {"corpus": "anneal"} if i % 5 == 0 else {},
        }
        for i, t in enumerate(docs)
    ]
    write_shard(root / "shard-00000.jsonl.zst", recs[:60])
    write_shard(root / "shard-00001.jsonl.zst", recs[60:])
    return root


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE tokenizer trained here with `tokenizers` (nothing downloaded)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    texts = _code_docs(200) + ["You are helpful. Write a function that adds numbers."] * 5
    tok.train_from_iterator(texts, trainer=trainer)
    out = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(out))
    return out


def tiny_config(tmp: Path, corpus: Path, tokenizer: Path, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "stage": "pretrain",
        "seed": 7,
        "precision": "fp32",
        "log_every_steps": 1,
        "model": {"preset": "tiny"},
        "data": {
            "corpus_dir": str(corpus),
            "tokenizer_path": str(tokenizer),
            "seq_len_schedule": [{"seq_len": 32, "until_step": 4}, {"seq_len": 64}],
        },
        "optim": {"lr": 3e-3, "warmup_steps": 2, "decay_steps": 2, "total_steps": 8},
        "batch": {"global_batch": 8, "micro_batch": 4},
        "checkpoint": {"dir": str(tmp / "ckpt"), "every_steps": 2},
    }
    for key, value in over.items():
        section, _, field = key.partition("__")
        if field:
            cfg[section][field] = value
        else:
            cfg[section] = value
    return cfg


@pytest.fixture
def write_config(tmp_path: Path, corpus_dir: Path, tokenizer_path: Path) -> Any:
    def make(name: str = "train.yaml", **over: Any) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(tiny_config(tmp_path, corpus_dir, tokenizer_path, **over)))
        return path

    make.tokenizer = tokenizer_path  # type: ignore[attr-defined]
    return make
