"""Presets, the WSD schedule, DeepSpeed configs and the torchrun environment."""

from __future__ import annotations

import pytest
from codekiln.train import ConfigError, TrainConfig
from codekiln.train.distributed import deepspeed_config, dist_env
from codekiln.train.presets import model_config, parameter_count


class TestPresets:
    @pytest.mark.parametrize(
        ("preset", "billions"), [("opencoder-1.5b", 1.9), ("opencoder-8b", 7.8)]
    )
    def test_opencoder_sizes(self, preset: str, billions: float) -> None:
        """The OpenCoder shapes have their published parameter counts (with embeddings)."""
        cfg = model_config(preset, tokenizer_vocab=96_640, max_seq_len=4096)
        assert cfg.model_type == "llama"
        assert abs(parameter_count(cfg) / 1e9 - billions) < 0.1

    def test_count_matches_torch(self) -> None:
        """parameter_count agrees with a built tiny model."""
        from transformers import LlamaForCausalLM

        cfg = model_config("tiny", tokenizer_vocab=300, max_seq_len=64)
        model = LlamaForCausalLM(cfg)
        assert parameter_count(cfg) == sum(p.numel() for p in model.parameters())

    def test_tokenizer_too_big(self) -> None:
        """A tokenizer larger than the preset's vocabulary is refused."""
        with pytest.raises(ConfigError, match="vocab_size=96640"):
            model_config("opencoder-8b", tokenizer_vocab=100_000, max_seq_len=8192)


def test_wsd_shape() -> None:
    """Warmup rises linearly, the stable phase holds the peak, decay ends at min_lr."""
    import torch
    from codekiln.train.trainer import build_optimizer, build_scheduler

    cfg = TrainConfig.from_dict(
        {"optim": {"warmup_steps": 10, "decay_steps": 10, "total_steps": 100}}
    )
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg)
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(1.5e-4)
    assert all(lr == pytest.approx(3e-4) for lr in lrs[10:90])
    assert lrs[99] < 1e-5


class TestDeepSpeed:
    @pytest.mark.parametrize("stage", [1, 2, 3])
    def test_batch_fields_agree(self, stage: int) -> None:
        """train_batch_size = micro x accumulation x world size for every ZeRO stage."""
        cfg = TrainConfig.from_dict(
            {"batch": {"global_batch": 1024, "micro_batch": 2}, "deepspeed": {"zero_stage": stage}}
        )
        ds = deepspeed_config(cfg, 64, bf16=True)
        assert ds["zero_optimization"]["stage"] == stage
        assert ds["train_batch_size"] == 1024
        assert ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"] * 64 == 1024
        assert ds["gradient_clipping"] == 1.0

    def test_deepspeed_accepts_batch_fields(self) -> None:
        """DeepSpeed's own config parser accepts the generated config."""
        from deepspeed.runtime.config import DeepSpeedConfig

        cfg = TrainConfig.from_dict(
            {"batch": {"global_batch": 8, "micro_batch": 4}, "deepspeed": {"zero_stage": 2}}
        )
        parsed = DeepSpeedConfig(deepspeed_config(cfg, 1, bf16=False))
        assert parsed.gradient_accumulation_steps == 2
        assert parsed.zero_optimization_stage == 2

    def test_offload_param_needs_stage3(self) -> None:
        """Parameter offload on ZeRO-2 is refused."""
        cfg = TrainConfig.from_dict({"deepspeed": {"zero_stage": 2, "offload_param": True}})
        with pytest.raises(ConfigError, match="zero_stage 3"):
            deepspeed_config(cfg, 8, bf16=True)


class TestDistEnv:
    def test_torchrun_variables(self) -> None:
        """Under torchrun, WORLD_SIZE and RANK count processes."""
        env = dist_env(
            {
                "TORCHELASTIC_RUN_ID": "x",
                "WORLD_SIZE": "16",
                "RANK": "9",
                "LOCAL_RANK": "1",
                "PET_NNODES": "2",
            }
        )
        assert (env.world_size, env.rank, env.local_rank) == (16, 9, 1)

    def test_operator_world_size_is_not_a_process_count(self) -> None:
        """The operator's WORLD_SIZE (pods) outside torchrun is refused, not trusted."""
        with pytest.raises(ConfigError, match="number of pods"):
            dist_env({"PET_NNODES": "2", "WORLD_SIZE": "2", "RANK": "0"})

    def test_single_process(self) -> None:
        """No distributed variables: one process."""
        assert dist_env({}).world_size == 1
