"""The training loop: pretrain, anneal and SFT share it; only the batch source differs.

One optimiser step consumes ``batch.global_batch`` sequences: each of ``world_size`` ranks takes
its contiguous slice of the global batch and runs it as ``grad_accum`` micro-batches of
``micro_batch`` sequences. AdamW with the WSD schedule (transformers' ``get_wsd_schedule``),
gradient clipping, bf16 autocast where the device supports it. With ``deepspeed.zero_stage`` 1-3
the same model, optimiser and scheduler are handed to ``deepspeed.initialize`` with the config
from :func:`codekiln.train.distributed.deepspeed_config`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codekiln.train import checkpoint as ckpt
from codekiln.train.config import TrainConfig
from codekiln.train.data import PackedMixture, corpus_shards, load_tokenizer, prepare_tokens
from codekiln.train.distributed import DistEnv, dist_env, load_deepspeed_config
from codekiln.train.errors import ConfigError, DataError
from codekiln.train.presets import model_config
from codekiln.train.sft import ChatEncoder, SFTBatches, load_sft_examples


@dataclass(slots=True)
class TrainResult:
    steps_done: int
    resumed_from: int | None
    losses: list[tuple[int, float]] = field(default_factory=list)
    export_dir: str | None = None


def build_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW; no weight decay on norms and biases (the usual LLM recipe)."""
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    o = cfg.optim
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": o.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=o.lr,
        betas=(o.beta1, o.beta2),
        eps=o.eps,
    )


def build_scheduler(optimizer: Any, cfg: TrainConfig) -> Any:
    from transformers import get_wsd_schedule

    return get_wsd_schedule(
        optimizer,
        num_warmup_steps=cfg.optim.warmup_steps,
        num_decay_steps=cfg.decay_steps,
        num_training_steps=cfg.optim.total_steps,
        min_lr_ratio=cfg.optim.min_lr_ratio,
        decay_type=cfg.optim.decay_type,
    )


def resolve_bf16(cfg: TrainConfig, device: Any) -> bool:
    import torch

    has_bf16 = bool(device.type == "cuda" and torch.cuda.is_bf16_supported())
    if cfg.precision == "bf16" and not has_bf16:
        raise ConfigError("precision: bf16 was asked for but this device has no bf16 support")
    return cfg.precision != "fp32" and has_bf16


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        *,
        env: DistEnv | None = None,
        stop_at_step: int | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.cfg = cfg
        self.env = env or dist_env()
        cfg.validate(self.env.world_size)
        self.accum = cfg.batch.accumulation(self.env.world_size)
        # Fail on a missing tokenizer or corpus before torch, a GPU or a process group is touched.
        load_tokenizer(cfg.data.tokenizer_path)
        corpus_shards(cfg.data.corpus_dir)
        if cfg.model.init_from and not Path(cfg.model.init_from).is_dir():
            raise DataError(f"model.init_from: no checkpoint directory at {cfg.model.init_from}")
        self.stop_at_step = stop_at_step
        self.log = log

    # ------------------------------------------------------------------ set-up

    def _device(self) -> Any:
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_device(self.env.local_rank)
            return torch.device("cuda", self.env.local_rank)
        return torch.device("cpu")

    def _init_distributed(self, device: Any) -> None:
        import torch.distributed as dist

        if self.env.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def _batches(self, tokenizer: Any) -> Any:
        cfg = self.cfg
        if cfg.stage in ("sft1", "sft2"):
            convs, stats = load_sft_examples(cfg)
            self.log(json.dumps({"event": "sft_data", "conversations": len(convs), **stats}))
            return SFTBatches(ChatEncoder.from_config(cfg, tokenizer), convs, cfg.seed)
        cache = Path(cfg.checkpoint.dir) / "tokens"
        if self.env.is_main:
            store = prepare_tokens(cfg, cache)
        ckpt._barrier()
        if not self.env.is_main:
            store = prepare_tokens(cfg, cache)
        self.log(json.dumps({"event": "token_store", **store.meta["streams"]}))
        return PackedMixture(store, cfg.streams(), cfg.seed)

    # ------------------------------------------------------------------ loop

    def run(self) -> TrainResult:
        import torch
        from transformers import LlamaForCausalLM

        cfg, env = self.cfg, self.env
        if cfg.deterministic:
            # cuBLAS reads this when it initialises: set before the first CUDA call.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        torch.manual_seed(cfg.seed)
        device = self._device()
        self._init_distributed(device)
        tokenizer = load_tokenizer(cfg.data.tokenizer_path)
        bf16 = resolve_bf16(cfg, device)
        if cfg.model.init_from:
            model: Any = LlamaForCausalLM.from_pretrained(cfg.model.init_from)
        else:
            mcfg = model_config(
                cfg.model.preset,
                tokenizer_vocab=tokenizer.get_vocab_size(),
                max_seq_len=cfg.max_seq_len,
                overrides=cfg.model.overrides,
            )
            model = LlamaForCausalLM(mcfg)
        model.to(device)
        batches = self._batches(tokenizer)
        optimizer = build_optimizer(model, cfg)
        scheduler = build_scheduler(optimizer, cfg)
        engine = None
        if cfg.deepspeed.zero_stage:
            import deepspeed

            engine, optimizer, _, scheduler = deepspeed.initialize(
                model=model,
                optimizer=optimizer,
                lr_scheduler=scheduler,
                config=load_deepspeed_config(cfg, env.world_size, bf16=bf16),
            )
            model = engine
        elif env.distributed:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[env.local_rank] if device.type == "cuda" else None
            )

        root = Path(cfg.checkpoint.dir)
        root.mkdir(parents=True, exist_ok=True)
        metrics_path = root / "metrics.jsonl"
        start, resumed_from = 0, None
        last = ckpt.latest(root)
        if last is not None:
            r = ckpt.load(
                last,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                engine=engine,
                rank=env.rank,
            )
            batches.load_state_dict(r.data_state)
            start = resumed_from = r.step
            if env.is_main:
                _truncate_metrics(metrics_path, r.step)
            self.log(json.dumps({"event": "resumed", "step": r.step, "from": str(last)}))

        result = TrainResult(steps_done=start, resumed_from=resumed_from)
        end = cfg.optim.total_steps
        if self.stop_at_step is not None:
            end = min(end, self.stop_at_step)
        per_rank = cfg.batch.micro_batch * self.accum
        mine = slice(env.rank * per_rank, (env.rank + 1) * per_rank)
        autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16)
            if bf16
            else contextlib.nullcontext()
        )
        model.train()
        step = start
        t0 = time.perf_counter()
        tokens_since = 0
        for step in range(start, end):
            seq_len = cfg.seq_len_at(step)
            batch = batches.next_batch(cfg.batch.global_batch, seq_len, keep=mine)
            if isinstance(batch, tuple):
                inputs, labels = (torch.from_numpy(b) for b in batch)
            else:
                inputs = torch.from_numpy(batch)
                labels = inputs
            loss_sum = torch.zeros((), device=device)
            for k in range(self.accum):
                sl = slice(k * cfg.batch.micro_batch, (k + 1) * cfg.batch.micro_batch)
                x, y = inputs[sl].to(device), labels[sl].to(device)
                sync = engine is not None or not env.distributed or k == self.accum - 1
                ctx = contextlib.nullcontext() if sync else model.no_sync()
                with ctx, autocast:
                    loss = model(input_ids=x, labels=y).loss
                if engine is not None:
                    engine.backward(loss)
                    engine.step()
                else:
                    (loss / self.accum).backward()
                loss_sum += loss.detach()
            if engine is None:
                if cfg.optim.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            mean_loss = loss_sum / self.accum
            if env.distributed:
                import torch.distributed as dist

                dist.all_reduce(mean_loss, op=dist.ReduceOp.AVG)
            done = step + 1
            tokens_since += cfg.batch.global_batch * seq_len
            loss_value = float(mean_loss)
            result.losses.append((done, loss_value))
            result.steps_done = done
            if env.is_main and (done % cfg.log_every_steps == 0 or done == end):
                now = time.perf_counter()
                line = {
                    "step": done,
                    "loss": loss_value,
                    "lr": scheduler.get_last_lr()[0],
                    "seq_len": seq_len,
                    "tokens_per_s": round(tokens_since / max(now - t0, 1e-9), 1),
                }
                t0, tokens_since = now, 0
                self.log(json.dumps(line))
            if env.is_main:
                with metrics_path.open("a") as f:
                    f.write(json.dumps({"step": done, "loss": loss_value}) + "\n")
            if done % cfg.checkpoint.every_steps == 0 or done == end:
                ckpt.save(
                    root,
                    done,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    data_state=batches.state_dict(),
                    engine=engine,
                    is_main=env.is_main,
                    keep_last=cfg.checkpoint.keep_last,
                    rank=env.rank,
                )

        if result.steps_done >= cfg.optim.total_steps and cfg.checkpoint.export_dir:
            result.export_dir = self._export(model, engine)
        return result

    def _export(self, model: Any, engine: Any) -> str | None:
        """transformers-format weights + tokenizer (ids, chat template) for serving."""
        from codekiln.train.export import write_export

        out = Path(self.cfg.checkpoint.export_dir or "")
        module = getattr(model, "module", model)
        state = None
        if engine is not None and self.cfg.deepspeed.zero_stage == 3:
            state = engine._zero3_consolidated_16bit_state_dict()
        if self.env.is_main:
            write_export(
                out,
                module,
                self.cfg.data,
                state_dict=state,
                max_position_embeddings=module.config.max_position_embeddings,
            )
            self.log(json.dumps({"event": "exported", "dir": str(out)}))
        return str(out)


def _truncate_metrics(path: Path, step: int) -> None:
    if not path.is_file():
        return
    keep = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    path.write_text("".join(line + "\n" for line in keep))
