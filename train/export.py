"""A Hugging Face checkpoint that real servers load as is: weights, config, tokenizer, ids.

``config.json``, ``generation_config.json`` and ``tokenizer_config.json`` carry the same
special-token ids, read from the tokenizer (never LlamaConfig's defaults of bos 1 / eos 2):

- ``eos``: ``data.eos_token`` (``<|endoftext|>``), the end of every packed document;
- ``bos``: the same token (the tokenizer has no separate BOS, as in Qwen2.5 and OpenCoder);
- ``pad``: ``data.pad_token`` when the tokenizer has it, else the eos token;
- ``generation_config.eos_token_id`` also lists ``data.im_end`` when the tokenizer has it, so a
  server stops at the end of an assistant turn as well as at the end of a document.

The chat template (:data:`codekiln.train.sft.CHAT_TEMPLATE`) is the training format, so
``vllm serve DIR`` and ``transformers`` prompt the model the way it was trained.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codekiln.train.config import DataConfig, TrainConfig
from codekiln.train.data import load_tokenizer, token_id
from codekiln.train.errors import DataError
from codekiln.train.sft import CHAT_TEMPLATE

__all__ = [
    "SpecialTokenIds",
    "apply_ids",
    "check_export",
    "export_checkpoint",
    "special_token_ids",
    "write_export",
]


@dataclass(frozen=True, slots=True)
class SpecialTokenIds:
    """The ids an export writes everywhere; ``stop`` is what generation ends on."""

    bos: int
    eos: int
    pad: int
    stop: tuple[int, ...]
    eos_token: str
    pad_token: str


def special_token_ids(tokenizer: Any, data: DataConfig) -> SpecialTokenIds:
    """Ids from ``tokenizer`` (a ``tokenizers.Tokenizer``); :class:`DataError` without eos."""
    eos = token_id(tokenizer, data.eos_token, "end-of-text (data.eos_token)")
    pad_id = tokenizer.token_to_id(data.pad_token)
    pad, pad_token = (eos, data.eos_token) if pad_id is None else (int(pad_id), data.pad_token)
    im_end = tokenizer.token_to_id(data.im_end)
    stop = (eos,) if im_end is None or int(im_end) == eos else (eos, int(im_end))
    return SpecialTokenIds(
        bos=eos, eos=eos, pad=pad, stop=stop, eos_token=data.eos_token, pad_token=pad_token
    )


def apply_ids(model: Any, ids: SpecialTokenIds) -> None:
    """Set the ids on a transformers model's config and generation config before saving."""
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is None:
            continue
        cfg.bos_token_id = ids.bos
        cfg.pad_token_id = ids.pad
        cfg.eos_token_id = ids.eos
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.eos_token_id = list(ids.stop) if len(ids.stop) > 1 else ids.eos


def write_export(
    out: Path,
    model: Any,
    data: DataConfig,
    *,
    state_dict: dict[str, Any] | None = None,
    max_position_embeddings: int | None = None,
) -> SpecialTokenIds:
    """Save ``model`` (weights, config, generation config) and the tokenizer files to ``out``."""
    src = Path(data.tokenizer_path)
    src_file = src / "tokenizer.json" if src.is_dir() else src
    tokenizer = load_tokenizer(src_file)
    ids = special_token_ids(tokenizer, data)
    apply_ids(model, ids)
    out.mkdir(parents=True, exist_ok=True)
    if state_dict is None:
        model.save_pretrained(out)
    else:
        model.save_pretrained(out, state_dict=state_dict)
    shutil.copy(src_file, out / "tokenizer.json")
    tok_config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": ids.eos_token,
        "eos_token": ids.eos_token,
        "pad_token": ids.pad_token,
        "add_bos_token": False,
        "add_eos_token": False,
        "chat_template": CHAT_TEMPLATE,
    }
    if max_position_embeddings:
        tok_config["model_max_length"] = max_position_embeddings
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=1))
    (out / "special_tokens_map.json").write_text(
        json.dumps(
            {"bos_token": ids.eos_token, "eos_token": ids.eos_token, "pad_token": ids.pad_token},
            indent=1,
        )
    )
    return ids


def export_checkpoint(cfg: TrainConfig, out: Path, step_dir: Path | None = None) -> Path:
    """Export a saved training step (default: ``checkpoint.dir``'s latest) to ``out``.

    ``codekiln-train export``: the same files a run writes to ``checkpoint.export_dir`` at its
    end, for a run stopped early or a chosen step. Plain-torch checkpoints only (``model.pt``);
    a DeepSpeed run exports at its end.
    """
    import torch
    from codekiln.train import checkpoint as ckpt
    from codekiln.train.presets import model_config
    from transformers import LlamaForCausalLM

    root = Path(cfg.checkpoint.dir)
    path = step_dir or ckpt.latest(root)
    if path is None:
        raise DataError(f"no checkpoint under {root} to export (codekiln-train run writes them)")
    weights = path / "model.pt"
    if not weights.is_file():
        raise DataError(
            f"{path} has no model.pt (a DeepSpeed checkpoint: set checkpoint.export_dir and the "
            "run exports at its end)"
        )
    if cfg.model.init_from:
        model: Any = LlamaForCausalLM.from_pretrained(cfg.model.init_from)
    else:
        tokenizer = load_tokenizer(cfg.data.tokenizer_path)
        model = LlamaForCausalLM(
            model_config(
                cfg.model.preset,
                tokenizer_vocab=tokenizer.get_vocab_size(),
                max_seq_len=cfg.max_seq_len,
                overrides=cfg.model.overrides,
            )
        )
    try:
        model.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    except (OSError, RuntimeError) as exc:
        raise DataError(f"cannot load {weights} into the configured model: {exc}") from exc
    write_export(out, model, cfg.data, max_position_embeddings=model.config.max_position_embeddings)
    return out


def check_export(path: Path) -> SpecialTokenIds:
    """Read an export back and check that config, generation config and tokenizer agree."""
    try:
        config = json.loads((path / "config.json").read_text())
        gen = json.loads((path / "generation_config.json").read_text())
        tok_config = json.loads((path / "tokenizer_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a complete export: {exc}") from exc
    tokenizer = load_tokenizer(path / "tokenizer.json")

    def tid(name: str) -> int:
        token = tok_config.get(name)
        value = None if token is None else tokenizer.token_to_id(token)
        if value is None:
            raise DataError(f"{path}: tokenizer_config {name} {token!r} is not in the tokenizer")
        return int(value)

    bos, eos, pad = tid("bos_token"), tid("eos_token"), tid("pad_token")
    gen_eos = gen.get("eos_token_id")
    stop = tuple(gen_eos) if isinstance(gen_eos, list) else (gen_eos,)
    checks = {
        "config.bos_token_id": (config.get("bos_token_id"), bos),
        "config.eos_token_id": (config.get("eos_token_id"), eos),
        "config.pad_token_id": (config.get("pad_token_id"), pad),
        "generation_config.bos_token_id": (gen.get("bos_token_id"), bos),
        "generation_config.pad_token_id": (gen.get("pad_token_id"), pad),
        "generation_config.eos_token_id[0]": (stop[0], eos),
    }
    wrong = [f"{k}={got} (tokenizer: {want})" for k, (got, want) in checks.items() if got != want]
    if wrong:
        raise DataError(f"{path}: special-token ids disagree: {'; '.join(wrong)}")
    if not tok_config.get("chat_template"):
        raise DataError(f"{path}: tokenizer_config.json has no chat_template")
    return SpecialTokenIds(
        bos=bos,
        eos=eos,
        pad=pad,
        stop=tuple(int(s) for s in stop),
        eos_token=tok_config["eos_token"],
        pad_token=tok_config["pad_token"],
    )
