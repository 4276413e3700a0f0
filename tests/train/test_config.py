"""Config validation: bad input is refused with an exact message before anything starts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from codekiln.train import ConfigError, DataError, TrainConfig
from codekiln.train.cli import main
from codekiln.train.config import BatchConfig
from hypothesis import given
from hypothesis import strategies as st


class TestBatchSplit:
    def test_impossible_split_is_refused(self) -> None:
        """1000 sequences cannot be split into micro-batches of 3 on 8 ranks."""
        with pytest.raises(ConfigError, match=r"global_batch=1000 is not divisible"):
            BatchConfig(global_batch=1000, micro_batch=3).accumulation(8)

    def test_explicit_accum_must_multiply_out(self) -> None:
        """An explicit grad_accum that does not give the global batch is refused."""
        with pytest.raises(ConfigError, match=r"global_batch=1024 != batch.micro_batch=4"):
            BatchConfig(global_batch=1024, micro_batch=4, grad_accum=4).accumulation(8)

    @given(micro=st.integers(1, 16), accum=st.integers(1, 64), world=st.integers(1, 128))
    def test_accumulation_multiplies_back(self, micro: int, accum: int, world: int) -> None:
        """micro x accumulation x world size always equals the global batch."""
        b = BatchConfig(global_batch=micro * accum * world, micro_batch=micro)
        assert b.micro_batch * b.accumulation(world) * world == b.global_batch

    def test_opencoder_batch(self) -> None:
        """OpenCoder's 1024-sequence batch on 64 GPUs with micro-batch 4 needs 4 accumulations."""
        assert BatchConfig(global_batch=1024, micro_batch=4).accumulation(64) == 4


def test_unknown_preset(tmp_path: Path) -> None:
    """An unknown preset names the known ones."""
    with pytest.raises(ConfigError, match=r"unknown preset 'gpt-9'.*opencoder-1.5b"):
        TrainConfig.from_dict({"model": {"preset": "gpt-9"}})


def test_unknown_key() -> None:
    """A misspelt key is an error, not silently ignored."""
    with pytest.raises(ConfigError, match=r"optim.lr_max"):
        TrainConfig.from_dict({"optim": {"lr_max": 1.0}})


def test_wsd_must_fit() -> None:
    """Warmup plus decay longer than the run is refused."""
    with pytest.raises(ConfigError, match="WSD schedule has no room"):
        TrainConfig.from_dict({"optim": {"warmup_steps": 2000, "total_steps": 1000}})


def test_seq_len_switch_defaults_to_opencoder() -> None:
    """The default schedule is 4096 tokens until step 130k, then 8192."""
    cfg = TrainConfig()
    assert cfg.seq_len_at(0) == 4096
    assert cfg.seq_len_at(129_999) == 4096
    assert cfg.seq_len_at(130_000) == 8192


def test_defaults_are_opencoders() -> None:
    """Defaults: AdamW lr 3e-4, warmup 2000, global batch 1024 sequences."""
    cfg = TrainConfig()
    assert (cfg.optim.lr, cfg.optim.warmup_steps, cfg.batch.global_batch) == (3e-4, 2000, 1024)


def test_missing_tokenizer_fails_before_training(
    write_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing tokenizer is a clear error (exit 2) and no checkpoint is written."""
    cfg = write_config(data={"corpus_dir": str(tmp_path), "tokenizer_path": "/nope/tok.json"})
    assert main(["run", "--config", str(cfg)]) == 2
    assert "tokenizer not found: /nope/tok.json" in capsys.readouterr().err
    assert not (tmp_path / "ckpt" / "latest").exists()


def test_impossible_split_from_cli(write_config: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI refuses an impossible batch split with exit code 2."""
    cfg = write_config(batch={"global_batch": 10, "micro_batch": 4})
    assert main(["run", "--config", str(cfg)]) == 2
    assert "global_batch=10 is not divisible" in capsys.readouterr().err


def test_missing_corpus_is_data_error(tmp_path: Path, tokenizer_path: Path) -> None:
    """A corpus directory without shards is a DataError naming it."""
    from codekiln.train.data import prepare_tokens

    cfg = TrainConfig.from_dict(
        {"data": {"corpus_dir": str(tmp_path), "tokenizer_path": str(tokenizer_path)}}
    )
    with pytest.raises(DataError, match="no corpus shards"):
        prepare_tokens(cfg, tmp_path / "cache")


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({"data": {"corpus_dir": 5}}, "data.corpus_dir must be a string, got 5"),
        ({"optim": {"lr": "fast"}}, "optim.lr must be a number, got 'fast'"),
        ({"batch": {"micro_batch": "4"}}, "batch.micro_batch must be an integer, got '4'"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
        ({"deterministic": "yes"}, "deterministic must be true or false, got 'yes'"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_config_error(raw: dict[str, Any], said: str) -> None:
    """A wrong type is a ConfigError naming the key (data.corpus_dir: 5 was an internal error,
    a TypeError deep in the data loader)."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        TrainConfig.from_dict(raw)


def test_yaml_1_1_exponents_are_numbers(tmp_path: Path) -> None:
    """`lr: 3e-4` (text in YAML 1.1: no dot) is the number 3e-4."""
    path = tmp_path / "t.yaml"
    path.write_text("optim: {lr: 3e-4, weight_decay: 1e-1}\n")
    cfg = TrainConfig.load(path)
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (3e-4, 0.1)
