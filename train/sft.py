"""Supervised fine-tuning data: a chat template with loss only on the assistant's turns.

The template is ChatML, as OpenCoder-Instruct uses::

    <|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n...<|im_end|>\\n
    <|im_start|>assistant\\n...<|im_end|>\\n

Each piece is tokenised on its own, so the label mask is exact: labels are the token ids for
the assistant's content and its closing ``<|im_end|>``, and ``-100`` (ignored by the loss)
everywhere else: system and user turns, role headers, separators and padding.

Records are JSON objects with ``messages`` (a list of ``{"role", "content"}``), or with
``instruction`` and ``response`` (or ``output``), optionally ``system``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from codekiln.train.config import TrainConfig
from codekiln.train.data import corpus_shards, iter_records, load_tokenizer, token_id
from codekiln.train.errors import DataError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")

# A Jinja chat template equal to the training format, saved with exported tokenizers so a
# server (vLLM) prompts the trained model the way it was trained.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def messages_of(record: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation in ``record``; raises :class:`DataError` when there is none."""
    if isinstance(record.get("messages"), list):
        msgs = record["messages"]
    elif "instruction" in record and ("response" in record or "output" in record):
        msgs = []
        if record.get("system"):
            msgs.append({"role": "system", "content": str(record["system"])})
        msgs.append({"role": "user", "content": str(record["instruction"])})
        msgs.append(
            {"role": "assistant", "content": str(record.get("response", record.get("output")))}
        )
    else:
        raise DataError("an SFT record needs messages, or instruction and response")
    out = []
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise DataError(f"bad message {m!r}: role must be one of {', '.join(ROLES)}")
        out.append({"role": m["role"], "content": str(m.get("content", ""))})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError("an SFT conversation needs at least one assistant turn")
    return out


@dataclass(frozen=True, slots=True)
class ChatEncoder:
    tokenizer: Any
    im_start: str
    im_end: str
    pad_id: int

    @classmethod
    def from_config(cls, cfg: TrainConfig, tokenizer: Any | None = None) -> ChatEncoder:
        tok = tokenizer or load_tokenizer(cfg.data.tokenizer_path)
        token_id(tok, cfg.data.im_start, "chat start")
        token_id(tok, cfg.data.im_end, "chat end")
        return cls(
            tok, cfg.data.im_start, cfg.data.im_end, token_id(tok, cfg.data.pad_token, "pad")
        )

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, messages: list[dict[str, str]], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, labels)``, both of length ``seq_len`` (truncated or padded)."""
        ids: list[int] = []
        labels: list[int] = []
        for m in messages:
            head = self._ids(f"{self.im_start}{m['role']}\n")
            body = self._ids(m["content"]) + self._ids(self.im_end)
            tail = self._ids("\n")
            ids += head + body + tail
            labels += [IGNORE_INDEX] * len(head)
            labels += body if m["role"] == "assistant" else [IGNORE_INDEX] * len(body)
            labels += [IGNORE_INDEX] * len(tail)
        ids, labels = ids[:seq_len], labels[:seq_len]
        pad = seq_len - len(ids)
        ids += [self.pad_id] * pad
        labels += [IGNORE_INDEX] * pad
        return np.asarray(ids, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def load_sft_examples(cfg: TrainConfig) -> tuple[list[list[dict[str, str]]], dict[str, int]]:
    """Every conversation under ``data.corpus_dir``; bad records are counted, not fatal."""
    stats: dict[str, int] = {}
    convs = []
    for shard in corpus_shards(cfg.data.corpus_dir):
        for rec in iter_records(shard, stats, require_text=False):
            try:
                convs.append(messages_of(rec))
            except DataError:
                stats["not_a_conversation"] = stats.get("not_a_conversation", 0) + 1
    if not convs:
        raise DataError(f"no SFT conversations under {cfg.data.corpus_dir} ({json.dumps(stats)})")
    return convs, stats


class SFTBatches:
    """Epochs over the conversations in a seeded order, one permutation per epoch."""

    def __init__(self, encoder: ChatEncoder, convs: list[list[dict[str, str]]], seed: int) -> None:
        self._enc = encoder
        self._convs = convs
        self._seed = seed
        self._epoch = 0
        self._pos = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self._seed, epoch]).permutation(len(self._convs))

    def next_batch(
        self, n_sequences: int, seq_len: int, *, keep: slice | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        picks = []
        for _ in range(n_sequences):
            if self._pos >= len(self._order):
                self._epoch += 1
                self._pos = 0
                self._order = self._permutation(self._epoch)
            picks.append(int(self._order[self._pos]))
            self._pos += 1
        rows = picks[keep] if keep is not None else picks
        pairs = [self._enc.encode(self._convs[i], seq_len) for i in rows]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "pos": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch = int(state["epoch"])
        self._pos = int(state["pos"])
        self._order = self._permutation(self._epoch)
