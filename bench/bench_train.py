"""Training data path and loop overhead, each against a baseline measured in the same run.

1. Tokenising a corpus: ``prepare_tokens`` (batched Rust encoding, flat uint32 files) against
   encoding one document at a time into Python lists.
2. Packing: ``PackedMixture.next_batch`` (slices of a memory-mapped token file) against
   concatenating Python token lists and slicing them.
3. Loop overhead: ``codekiln-train``'s trainer (checkpointing off) against a bare torch loop on
   the same tiny model and batches: the ratio is the cost of the framework around the step.

Run: ``python bench/bench_train.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import zstandard
from codekiln.train import TrainConfig
from codekiln.train.data import PackedMixture, prepare_tokens
from codekiln.train.trainer import Trainer, build_optimizer, build_scheduler
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]


def docs(n: int) -> list[str]:
    return [
        f"def f_{i}(xs):\n    total = 0\n    for x in xs:\n        total += x * {i % 13}\n"
        f"    return total\n\n# note {i}: " + "word " * (i % 50) + "\n"
        for i in range(n)
    ]


def timed(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    texts = docs(20_000)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts[:2000],
        trainer=trainers.BpeTrainer(
            vocab_size=2000,
            special_tokens=SPECIAL,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.save(str(work / "tok.json"))
    (work / "corpus").mkdir()
    data = "".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts))
    (work / "corpus" / "a.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(data.encode())
    )
    cfg = TrainConfig.from_dict(
        {
            "data": {"corpus_dir": str(work / "corpus"), "tokenizer_path": str(work / "tok.json")},
            "precision": "fp32",
        }
    )

    # 1. tokenising
    runs = iter(range(100))

    def ours() -> None:
        prepare_tokens(cfg, work / f"cache-{next(runs)}")

    def baseline_tok() -> None:
        eos = tok.token_to_id("<|endoftext|>")
        out: list[int] = []
        for t in texts:
            out.extend(tok.encode(t, add_special_tokens=False).ids)
            out.append(eos)

    t_ours, t_base = timed(ours, 2), timed(baseline_tok, 2)
    store = prepare_tokens(cfg, work / "cache-0")
    n_tokens = store.meta["streams"]["original"]["tokens"]
    print(
        f"tokenise {len(texts)} docs ({n_tokens} tokens): prepare_tokens {t_ours:.2f}s, "
        f"per-document encode {t_base:.2f}s -> {t_base / t_ours:.2f}x"
    )

    # 2. packing
    seq_len, batch, steps = 512, 64, 20
    mix = PackedMixture(store, cfg.streams(), seed=0)
    flat_lists = [
        list(map(int, store.tokens("original")[i : i + 500])) for i in range(0, 200_000, 500)
    ]

    def pack_ours() -> None:
        for _ in range(steps):
            mix.next_batch(batch, seq_len)

    def pack_base() -> None:
        buf: list[int] = []
        pos = 0
        for _ in range(steps):
            rows = []
            for _ in range(batch):
                while len(buf) < seq_len:
                    buf.extend(flat_lists[pos % len(flat_lists)])
                    pos += 1
                rows.append(buf[:seq_len])
                buf = buf[seq_len:]
            np.asarray(rows, dtype=np.int64)

    t_pack, t_pack_base = timed(pack_ours), timed(pack_base)
    print(
        f"pack {steps}x{batch}x{seq_len} tokens: PackedMixture {t_pack * 1e3:.1f} ms, "
        f"python lists {t_pack_base * 1e3:.1f} ms -> {t_pack_base / t_pack:.2f}x"
    )

    # 3. loop overhead
    steps = 12
    run_cfg = TrainConfig.from_dict(
        {
            "precision": "fp32",
            "log_every_steps": 1000,
            "data": {
                "corpus_dir": str(work / "corpus"),
                "tokenizer_path": str(work / "tok.json"),
                "seq_len_schedule": [{"seq_len": 128}],
            },
            "optim": {"lr": 1e-3, "warmup_steps": 1, "decay_steps": 1, "total_steps": steps},
            "batch": {"global_batch": 16, "micro_batch": 8},
            "checkpoint": {"dir": str(work / "ckpt"), "every_steps": 10_000},
        }
    )
    Trainer(run_cfg, log=lambda _: None).run()  # warm-up: token cache, imports
    for p in (work / "ckpt").glob("step-*"):
        import shutil

        shutil.rmtree(p)
    (work / "ckpt" / "latest").unlink()
    t = time.perf_counter()
    Trainer(run_cfg, log=lambda _: None).run()
    t_trainer = time.perf_counter() - t

    from codekiln.train.presets import model_config
    from transformers import LlamaForCausalLM

    torch.manual_seed(run_cfg.seed)
    model = LlamaForCausalLM(
        model_config("tiny", tokenizer_vocab=tok.get_vocab_size(), max_seq_len=128)
    )
    opt = build_optimizer(model, run_cfg)
    sched = build_scheduler(opt, run_cfg)
    mix = PackedMixture(store, run_cfg.streams(), seed=run_cfg.seed)
    t = time.perf_counter()
    for _ in range(steps):
        x = torch.from_numpy(mix.next_batch(16, 128))
        for k in range(2):
            loss = model(input_ids=x[k * 8 : (k + 1) * 8], labels=x[k * 8 : (k + 1) * 8]).loss
            (loss / 2).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    t_bare = time.perf_counter() - t
    print(
        f"{steps} steps tiny model (16x128 tokens/step): trainer {t_trainer:.2f}s "
        f"(model build, final checkpoint included), bare torch loop {t_bare:.2f}s -> "
        f"trainer/bare {t_trainer / t_bare:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
