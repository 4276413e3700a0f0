"""Exports that real servers load as is: special-token ids from the tokenizer, everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from codekiln.train.cli import main
from codekiln.train.config import DataConfig
from codekiln.train.errors import DataError
from codekiln.train.export import check_export, special_token_ids
from codekiln.train.presets import PRESETS, model_config


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, tokenizer_path: Path
) -> Path:
    import yaml

    from .conftest import tiny_config

    tmp = tmp_path_factory.mktemp("export")
    cfg = tiny_config(tmp, corpus_dir, tokenizer_path)
    cfg["optim"]["total_steps"] = 4
    cfg["checkpoint"].update(every_steps=4, export_dir=str(tmp / "model"))
    (tmp / "train.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", "--config", str(tmp / "train.yaml")]) == 0
    return tmp / "model"


def test_ids_agree_with_the_tokenizer(exported: Path) -> None:
    """config.json, generation_config.json and the tokenizer carry the same special-token ids."""
    from transformers import AutoTokenizer

    ids = check_export(exported)
    tok = AutoTokenizer.from_pretrained(exported)
    config = json.loads((exported / "config.json").read_text())
    gen = json.loads((exported / "generation_config.json").read_text())
    endoftext = tok.convert_tokens_to_ids("<|endoftext|>")
    assert (config["bos_token_id"], config["eos_token_id"]) == (endoftext, endoftext)
    assert (tok.eos_token_id, tok.pad_token_id) == (endoftext, tok.convert_tokens_to_ids("<|pad|>"))
    assert config["pad_token_id"] == gen["pad_token_id"] == tok.pad_token_id == ids.pad
    assert gen["eos_token_id"] == [endoftext, tok.convert_tokens_to_ids("<|im_end|>")]


def test_transformers_loads_and_generates(exported: Path) -> None:
    """AutoModelForCausalLM and AutoTokenizer load the export with no flags and generate."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(exported)
    model = AutoModelForCausalLM.from_pretrained(exported)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "add"}], tokenize=False, add_generation_prompt=True
    )
    inputs = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert isinstance(tok.decode(out[0], skip_special_tokens=True), str)


def test_disagreeing_export_is_refused(exported: Path, tmp_path: Path) -> None:
    """An export whose config names another eos than its tokenizer fails the check, naming it."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    config = json.loads((bad / "config.json").read_text())
    config["eos_token_id"] = 2
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"config\.eos_token_id=2 \(tokenizer: 0\)"):
        check_export(bad)


def test_pad_falls_back_to_eos(tokenizer_path: Path) -> None:
    """A tokenizer without the pad token pads with its end-of-text token."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    ids = special_token_ids(tok, DataConfig(pad_token="<|no-such-pad|>"))
    assert ids.pad == ids.eos == tok.token_to_id("<|endoftext|>")
    assert ids.pad_token == "<|endoftext|>"


def test_missing_eos_is_a_data_error(tokenizer_path: Path) -> None:
    """A tokenizer without the end-of-text token cannot be exported."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    with pytest.raises(DataError, match="no end-of-text"):
        special_token_ids(tok, DataConfig(eos_token="<|missing|>"))


# Head sizes real backends serve: vLLM's CPU attention (CpuAttentionBackend in vllm 0.32) and
# FlashAttention (multiples of 8 up to 256) both take these.
SERVED_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_head_size_is_served(preset: str) -> None:
    """Every preset's attention head size is one vLLM's CPU and GPU attention serve."""
    cfg: Any = model_config(preset, tokenizer_vocab=400, max_seq_len=64)
    head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    assert head in SERVED_HEAD_SIZES


def test_export_command_writes_the_same_model(exported: Path, tmp_path: Path) -> None:
    """`codekiln-train export` of the run's last step gives the weights and ids the run wrote."""
    from safetensors.torch import load_file

    out = tmp_path / "again"
    assert main(["export", "--config", str(exported.parent / "train.yaml"), "--out", str(out)]) == 0
    assert check_export(out) == check_export(exported)
    ours, theirs = load_file(out / "model.safetensors"), load_file(exported / "model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(bool((ours[k] == theirs[k]).all()) for k in ours)


def test_export_without_a_checkpoint_is_a_data_error(
    tmp_path: Path, corpus_dir: Path, tokenizer_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing trained yet: exit 2 and a message naming the checkpoint folder."""
    import yaml

    from .conftest import tiny_config

    (tmp_path / "train.yaml").write_text(
        yaml.safe_dump(tiny_config(tmp_path, corpus_dir, tokenizer_path))
    )
    assert (
        main(["export", "--config", str(tmp_path / "train.yaml"), "--out", str(tmp_path / "m")])
        == 2
    )
    assert f"no checkpoint under {tmp_path / 'ckpt'}" in capsys.readouterr().err
