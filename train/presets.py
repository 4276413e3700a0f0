"""Model presets as transformers ``LlamaConfig`` objects.

The OpenCoder shapes are the published ``config.json`` values of infly/OpenCoder-1.5B-Base and
infly/OpenCoder-8B-Base (Llama architecture, SwiGLU, RMSNorm, RoPE, vocabulary 96,640, untied
embeddings). ``tiny`` is for tests and CPU smoke runs; its vocabulary follows the tokenizer.
"""

from __future__ import annotations

from typing import Any

from codekiln.train.errors import ConfigError

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        # head size 32: the smallest real backends serve (vLLM's CPU attention: 32, 64, 80...)
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 8192,
        "rope_theta": 10000.0,
        "vocab_size": None,  # the tokenizer's size
    },
    "opencoder-1.5b": {
        "hidden_size": 2240,
        "intermediate_size": 6144,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 14,
        "head_dim": 160,
        "max_position_embeddings": 4096,
        "rope_theta": 10000.0,
        "vocab_size": 96640,
    },
    "opencoder-8b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
        "vocab_size": 96640,
    },
}

_COMMON: dict[str, Any] = {
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "initializer_range": 0.02,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "use_cache": False,
}


def model_config(
    preset: str,
    *,
    tokenizer_vocab: int,
    max_seq_len: int,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """A ``LlamaConfig`` for ``preset``; checks the tokenizer and sequence length fit it."""
    from transformers import LlamaConfig

    if preset not in PRESETS:
        raise ConfigError(
            f"model.preset: unknown preset {preset!r} (one of {', '.join(sorted(PRESETS))})"
        )
    values = {**_COMMON, **PRESETS[preset], **(overrides or {})}
    if values["vocab_size"] is None:
        # round up to a multiple of 64 so embedding matmuls stay aligned
        values["vocab_size"] = -(-tokenizer_vocab // 64) * 64
    if tokenizer_vocab > values["vocab_size"]:
        raise ConfigError(
            f"the tokenizer has {tokenizer_vocab} tokens but preset {preset!r} has "
            f"vocab_size={values['vocab_size']}"
        )
    if preset == "tiny":
        values["max_position_embeddings"] = max(values["max_position_embeddings"], max_seq_len)
    elif max_seq_len > values["max_position_embeddings"]:
        # OpenCoder trains 1.5B at 4096; longer sequences need RoPE changes, not a silent overrun
        values["max_position_embeddings"] = max_seq_len
    return LlamaConfig(**values)


def parameter_count(config: Any) -> int:
    """Parameters of a Llama model with this config, computed without building it."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    q = h * config.num_attention_heads * head_dim
    kv = 2 * h * config.num_key_value_heads * head_dim
    o = config.num_attention_heads * head_dim * h
    mlp = 3 * h * i
    norms = 2 * h
    emb = config.vocab_size * h * (1 if config.tie_word_embeddings else 2)
    return int(n * (q + kv + o + mlp + norms) + emb + h)
