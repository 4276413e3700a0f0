"""Helpers shared by synth tests."""

from __future__ import annotations

from codekiln.synth.llm import LLMConfig


def fast_config(*urls: str, **overrides: object) -> LLMConfig:
    """A client config with short backoffs, so retry tests run quickly."""
    settings: dict[str, object] = {
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 10.0,
        "breaker_reset_s": 0.2,
    }
    settings.update(overrides)
    return LLMConfig(endpoints=tuple(urls), **settings)  # type: ignore[arg-type]
