"""Where this process sits in a distributed run, and the DeepSpeed config for it.

Processes are started by ``torchrun``. On Kubernetes the training operator (and our Indexed
Job) hands torchrun its arguments through ``PET_NNODES``, ``PET_NPROC_PER_NODE``,
``PET_NODE_RANK``, ``PET_MASTER_ADDR`` and ``PET_MASTER_PORT``; torchrun then sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` for each process it starts. The training operator also sets
``WORLD_SIZE`` on the pod to the number of *pods*: read outside torchrun it is a node count, not
a process count, which is why :func:`dist_env` refuses it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from codekiln.train.config import TrainConfig
from codekiln.train.errors import ConfigError

# torchrun (torch.distributed.run) sets these in every worker it starts.
_TORCHRUN_MARKERS = ("TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE", "GROUP_RANK")


@dataclass(frozen=True, slots=True)
class DistEnv:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The process's place in the run, from the variables torchrun sets."""
    env = os.environ if environ is None else environ
    under_torchrun = any(k in env for k in _TORCHRUN_MARKERS)
    if not under_torchrun:
        if any(k.startswith("PET_") for k in env) and int(env.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError(
                "PET_* variables are set but this process was not started by torchrun: "
                "WORLD_SIZE here is the number of pods, not processes; start the trainer with "
                "`torchrun -m codekiln.train.cli run --config FILE`"
            )
        return DistEnv()
    try:
        return DistEnv(
            world_size=int(env["WORLD_SIZE"]),
            rank=int(env["RANK"]),
            local_rank=int(env.get("LOCAL_RANK", "0")),
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"torchrun environment incomplete or invalid: {exc}") from exc


def deepspeed_config(cfg: TrainConfig, world_size: int, *, bf16: bool) -> dict[str, Any]:
    """The DeepSpeed JSON config for ``cfg`` on ``world_size`` processes.

    Batch fields satisfy DeepSpeed's own check (train_batch_size = micro x accumulation x
    world size) because they come from the same :meth:`BatchConfig.accumulation`. The optimiser
    and the WSD scheduler stay torch objects passed to ``deepspeed.initialize``, so ZeRO and
    plain runs share one schedule implementation.
    """
    stage = cfg.deepspeed.zero_stage
    if stage not in (1, 2, 3):
        raise ConfigError(f"deepspeed.zero_stage must be 1, 2 or 3 for DeepSpeed, got {stage}")
    accum = cfg.batch.accumulation(world_size)
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": 5e8,
    }
    if stage >= 2:
        zero["allgather_bucket_size"] = 5e8
    if stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        zero["stage3_prefetch_bucket_size"] = 5e8
        zero["stage3_param_persistence_threshold"] = 1e6
    if cfg.deepspeed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if cfg.deepspeed.offload_param:
        if stage != 3:
            raise ConfigError("deepspeed.offload_param needs zero_stage 3")
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_batch_size": cfg.batch.global_batch,
        "train_micro_batch_size_per_gpu": cfg.batch.micro_batch,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": cfg.optim.grad_clip,
        # precision: fp32 wins over a bf16-capable device (the trainer's own rule, resolve_bf16).
        "bf16": {"enabled": bf16 and cfg.precision != "fp32"},
        "fp16": {"enabled": False},
        "zero_optimization": zero,
        "steps_per_print": cfg.log_every_steps,
        "wall_clock_breakdown": False,
    }


def load_deepspeed_config(cfg: TrainConfig, world_size: int, *, bf16: bool) -> dict[str, Any]:
    """The generated config, or ``deepspeed.config_file`` checked against this config."""
    generated = deepspeed_config(cfg, world_size, bf16=bf16)
    if not cfg.deepspeed.config_file:
        return generated
    import json
    from pathlib import Path

    path = Path(cfg.deepspeed.config_file)
    try:
        given: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"deepspeed.config_file {path}: {exc}") from exc
    for key in (
        "train_batch_size",
        "train_micro_batch_size_per_gpu",
        "gradient_accumulation_steps",
    ):
        if key in given and given[key] != generated[key]:
            raise ConfigError(
                f"deepspeed.config_file {path}: {key}={given[key]} but the training config "
                f"gives {generated[key]} on {world_size} processes"
            )
    if cfg.precision == "fp32" and given.get("bf16", {}).get("enabled") is True:
        raise ConfigError(
            f"deepspeed.config_file {path}: bf16.enabled is true but precision is fp32"
        )
    stage = given.get("zero_optimization", {}).get("stage")
    if stage is not None and stage != cfg.deepspeed.zero_stage:
        raise ConfigError(
            f"deepspeed.config_file {path}: zero stage {stage} != deepspeed.zero_stage "
            f"{cfg.deepspeed.zero_stage}"
        )
    return given
