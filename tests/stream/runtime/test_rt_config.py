"""Config: exact error messages before any work starts; stage options from __init__."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from codekiln.stream.config import StreamConfig, config_from_dict, load_config
from codekiln.stream.record import Record
from codekiln.stream.runtime.errors import ConfigError
from codekiln.stream.stage import FilterStage


class ThresholdStage(FilterStage):
    name: ClassVar[str] = "thresh"

    def __init__(self, threshold: float = 0.5, max_len: int = 100, *, mode: str = "a") -> None:
        self.threshold = threshold

    def filter(self, record: Record) -> str | None:
        return None


class NeedsModelStage(FilterStage):
    name: ClassVar[str] = "needs"

    def __init__(self, model_path: str) -> None:
        if not model_path.endswith(".bin"):
            raise ValueError("model_path must name a .bin file")

    def filter(self, record: Record) -> str | None:
        return None


T = f"{__name__}:ThresholdStage"
N = f"{__name__}:NeedsModelStage"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"stages": ["noop", "noop", {"name": T, "options": {"thresold": 1}}]},
            f"config: stages[2].options: unknown key 'thresold' for stage '{T}' "
            "(known: threshold, max_len, mode)",
        ),
        (
            {"stages": [{"name": T, "options": {"threshold": "high"}}]},
            f"config: stages[0].options.threshold: expected float for stage '{T}', got str 'high'",
        ),
        (
            {"stages": [{"name": N}]},
            f"config: stages[0].options: missing required option 'model_path' for stage '{N}'",
        ),
        ({"stages": ["nope"]}, "config: stages[0]: unknown stage 'nope' (known: "),
        (
            {"stages": [{"name": "noop", "opts": {}}]},
            "config: stages[0]: unknown key 'opts' (known: name, options)",
        ),
        (
            {"stages": []},
            "config: stages: the list is empty (omit the key for the default pipeline)",
        ),
        ({"runtime": {"batch_size": 0}}, "config: runtime.batch_size: must be >= 1, got 0"),
        (
            {"runtime": {"batch_size": "10"}},
            "config: runtime.batch_size: expected an integer, got str '10'",
        ),
        (
            {"runtime": {"batchsize": 10}},
            "config: runtime: unknown key 'batchsize' (known: batch_size, ",
        ),
        (
            {"output": {"format": "csv"}},
            "config: output.format: expected one of jsonl.zst, parquet, got str 'csv'",
        ),
        (
            {"stagez": []},
            "config: unknown key 'stagez' (known: input, runtime, output, worker, stages)",
        ),
        ({"input": ["a"]}, "config: input: expected a mapping, got list ['a']"),
        ([1, 2], "config: the file must hold a mapping at the top, got list [1, 2]"),
    ],
)
def test_bad_config_fails_with_exact_message(raw: Any, message: str) -> None:
    """Each kind of mistake is reported with the key path and what was expected."""
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert str(info.value).startswith(message)


def test_valid_file_gives_frozen_config(tmp_path: Path) -> None:
    """A valid YAML file loads into frozen dataclasses with the given values."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f"stages:\n  - noop\n  - name: {T}\n    options: {{threshold: 2}}\nruntime:\n  workers: 1\n"
    )
    config = load_config(path)
    assert isinstance(config, StreamConfig)
    assert config.stages is not None
    assert [s.name for s in config.stages] == ["noop", T]
    assert config.stages[1].options == {"threshold": 2}
    assert config.runtime.workers == 1
    with pytest.raises(AttributeError):
        config.runtime.workers = 3  # type: ignore[misc]


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not YAML fails with the file name in the message."""
    path = tmp_path / "c.yaml"
    path.write_text("stages: [noop\n")
    with pytest.raises(ConfigError, match=r"c\.yaml is not valid YAML"):
        load_config(path)


async def test_stage_constructor_rejection_is_a_config_error(tmp_path: Path) -> None:
    """A stage whose __init__ rejects its options fails before any work, naming the stage."""
    from codekiln.stream.runtime.job import build_stages

    config = config_from_dict({"stages": [{"name": N, "options": {"model_path": "x.txt"}}]})
    with pytest.raises(
        ConfigError, match=r"stages\[0\]\.options: stage .* rejected its options: ValueError"
    ):
        build_stages(config)
