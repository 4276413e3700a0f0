"""Tokenising, packing, mixtures and SFT label masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from codekiln.train import TrainConfig
from codekiln.train.data import PackedMixture, load_tokenizer, prepare_tokens
from codekiln.train.sft import IGNORE_INDEX, ChatEncoder, SFTBatches, messages_of

from codekiln import shards

from .conftest import write_shard


def _cfg(corpus: Path, tok: Path, **data: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "stage": data.pop("stage", "pretrain"),
            "data": {"corpus_dir": str(corpus), "tokenizer_path": str(tok), **data},
        }
    )


def test_tokens_round_trip(corpus_dir: Path, tokenizer_path: Path, tmp_path: Path) -> None:
    """Every record is tokenised once, each followed by the end-of-text token."""
    cfg = _cfg(corpus_dir, tokenizer_path)
    store = prepare_tokens(cfg, tmp_path)
    toks = np.asarray(store.tokens("original"))
    tok = load_tokenizer(tokenizer_path)
    eos = tok.token_to_id("<|endoftext|>")
    assert int((toks == eos).sum()) == 120
    first_doc = toks[: int(np.argmax(toks == eos))]
    assert "def add_" in tok.decode(first_doc.tolist())


def test_every_shard_kind_codekiln_writes_is_read(
    corpus_dir: Path, tokenizer_path: Path, tmp_path: Path
) -> None:
    """The same corpus as .jsonl.gz shards (codekiln.shards writes them) gives the same tokens;
    only .jsonl.zst, .jsonl and .parquet were found before ("no corpus shards")."""
    gz = tmp_path / "gz"
    for shard in sorted(corpus_dir.rglob("*.jsonl.zst")):
        rel = shard.relative_to(corpus_dir)
        target = gz / rel.parent / rel.name.replace(".jsonl.zst", ".jsonl.gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        shards.write_objects(target, shards.read_objects(shard))
    want = prepare_tokens(_cfg(corpus_dir, tokenizer_path), tmp_path / "a").tokens("original")
    got = prepare_tokens(_cfg(gz, tokenizer_path), tmp_path / "b").tokens("original")
    assert len(want) > 0
    assert np.array_equal(np.asarray(got), np.asarray(want))


def test_packed_sequences_have_fixed_length(
    corpus_dir: Path, tokenizer_path: Path, tmp_path: Path
) -> None:
    """Packing yields (n, seq_len) blocks that tile the token stream without gaps."""
    cfg = _cfg(corpus_dir, tokenizer_path)
    store = prepare_tokens(cfg, tmp_path)
    mix = PackedMixture(store, cfg.streams(), seed=1)
    a = mix.next_batch(4, 16)
    b = mix.next_batch(4, 32)
    toks = np.asarray(store.tokens("original"), dtype=np.int64)
    assert a.shape == (4, 16)
    assert b.shape == (4, 32)
    assert np.array_equal(np.concatenate([a.ravel(), b.ravel()]), toks[: 64 + 128])


def test_anneal_mixture_proportions(corpus_dir: Path, tokenizer_path: Path, tmp_path: Path) -> None:
    """The annealing mix draws ~84% original and ~16% high-quality sequences."""
    cfg = _cfg(corpus_dir, tokenizer_path, stage="anneal")
    store = prepare_tokens(cfg, tmp_path)
    assert store.meta["streams"]["high_quality"]["documents"] == 24
    mix = PackedMixture(store, cfg.streams(), seed=3)
    for _ in range(20):
        mix.next_batch(256, 8, keep=slice(0, 0))
    share = mix.drawn["high_quality"] / (20 * 256)
    assert 0.14 < share < 0.18


def test_mixture_state_resumes(corpus_dir: Path, tokenizer_path: Path, tmp_path: Path) -> None:
    """Restoring a mixture's state reproduces the batches that followed it."""
    cfg = _cfg(corpus_dir, tokenizer_path, stage="anneal")
    store = prepare_tokens(cfg, tmp_path)
    mix = PackedMixture(store, cfg.streams(), seed=5)
    mix.next_batch(8, 16)
    state = mix.state_dict()
    expected = [mix.next_batch(8, 16) for _ in range(3)]
    other = PackedMixture(store, cfg.streams(), seed=99)
    other.load_state_dict(state)
    for want in expected:
        assert np.array_equal(other.next_batch(8, 16), want)


def test_malformed_lines_are_counted(tokenizer_path: Path, tmp_path: Path) -> None:
    """Bad JSON lines are counted in the token store's stats; good records still train."""
    corpus = tmp_path / "corpus"
    write_shard(corpus / "a.jsonl.zst", [{"id": "1", "text": "x = 1\n"}])
    (corpus / "b.jsonl").write_text('{"id": "2", "text": "y = 2"}\nnot json\n{"id": 3}\n')
    store = prepare_tokens(_cfg(corpus, tokenizer_path), tmp_path / "cache")
    assert store.meta["stats"]["malformed"] == 2
    assert store.meta["streams"]["original"]["documents"] == 2


class TestSFT:
    def test_loss_only_on_responses(self, tokenizer_path: Path) -> None:
        """Labels equal the ids on assistant content + <|im_end|> and are -100 elsewhere."""
        cfg = _cfg(Path("."), tokenizer_path, stage="sft1")
        enc = ChatEncoder.from_config(cfg)
        tok = enc.tokenizer
        msgs = messages_of(
            {
                "system": "You are helpful.",
                "instruction": "Write add.",
                "response": "def add(a, b):\n    return a + b",
            }
        )
        ids, labels = enc.encode(msgs, 96)
        kept = labels != IGNORE_INDEX
        assert np.array_equal(labels[kept], ids[kept])
        text = tok.decode(ids[kept].tolist(), skip_special_tokens=False)
        assert text == "def add(a, b):\n    return a + b<|im_end|>"
        masked = tok.decode(ids[~kept].tolist(), skip_special_tokens=False)
        assert "Write add." in masked
        assert "You are helpful." in masked
        assert "return a + b" not in masked

    def test_padding_is_masked(self, tokenizer_path: Path) -> None:
        """Padding positions carry the pad id and label -100."""
        enc = ChatEncoder.from_config(_cfg(Path("."), tokenizer_path, stage="sft1"))
        ids, labels = enc.encode(
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], 64
        )
        assert ids[-1] == enc.pad_id
        assert labels[-1] == IGNORE_INDEX

    def test_multi_turn_masks_every_assistant_turn(self, tokenizer_path: Path) -> None:
        """Two assistant turns are both trained on; the user turn between them is not."""
        enc = ChatEncoder.from_config(_cfg(Path("."), tokenizer_path, stage="sft2"))
        msgs = [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "1"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "2"},
        ]
        ids, labels = enc.encode(msgs, 128)
        kept = enc.tokenizer.decode(ids[labels != IGNORE_INDEX].tolist(), skip_special_tokens=False)
        assert kept == "1<|im_end|>2<|im_end|>"

    def test_conversation_needs_assistant(self) -> None:
        """A record without an assistant turn is rejected with a reason."""
        from codekiln.train import DataError

        with pytest.raises(DataError, match="assistant"):
            messages_of({"messages": [{"role": "user", "content": "hi"}]})

    def test_sft_batches_are_seeded(self, tokenizer_path: Path) -> None:
        """Same seed, same order; state round-trips."""
        enc = ChatEncoder.from_config(_cfg(Path("."), tokenizer_path, stage="sft1"))
        convs = [
            [{"role": "user", "content": str(i)}, {"role": "assistant", "content": str(i)}]
            for i in range(10)
        ]
        a, b = SFTBatches(enc, convs, 1), SFTBatches(enc, convs, 1)
        a.next_batch(7, 16)
        b.load_state_dict(a.state_dict())
        assert np.array_equal(a.next_batch(7, 16)[0], b.next_batch(7, 16)[0])
