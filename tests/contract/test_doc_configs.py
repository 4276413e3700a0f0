"""Issue 19: every pipeline step a docs page shows builds with its documented options."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from codekiln.stream.config import config_from_dict, resolve_stage, validate_stage_options
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage, MinHashStage
from codekiln.stream.record import Record, record_id
from codekiln.stream.sampling.downsample import DownsampleConfigError, DownsampleStage

from tests.contract.docblocks import Block, blocks, stage_entries

#: Steps a page shows as a shape to copy, not as something that runs as written.
PLACEHOLDERS = {"mypkg.stages:MyStage"}
#: Steps whose documented options name an external service: run by their own test below.
NEEDS_SERVICE = {("fuzzy_dedup", "storage_config")}

STEPS = [
    pytest.param(block, step, id=f"{block.where}:{step['name']}")
    for block in blocks("yaml")
    for step in stage_entries(block)
    if step["name"] not in PLACEHOLDERS
    and not any(step["name"] == n and k in (step.get("options") or {}) for n, k in NEEDS_SERVICE)
]


@pytest.mark.parametrize(("block", "step"), STEPS)
def test_documented_step_builds(block: Block, step: dict[str, Any], tmp_path: Path) -> None:
    """The step validates through the config loader and its class accepts the options."""
    options = dict(step.get("options") or {})
    if "spill_dir" in _option_names(step["name"]):
        options.setdefault("spill_dir", str(tmp_path))
    config = config_from_dict({"stages": [{"name": step["name"], "options": options}]})
    [stage_config] = config.stages or ()
    cls = resolve_stage(block.where, stage_config.name)
    validate_stage_options(block.where, stage_config.name, cls, stage_config.options)
    cls(**stage_config.options)


def _option_names(name: str) -> set[str]:
    import inspect

    cls = resolve_stage("test", name)
    return set(inspect.signature(cls.__init__).parameters)


def test_there_are_documented_steps() -> None:
    """The walk above finds the pages' examples (a broken extractor would test nothing)."""
    names = {step.values[1]["name"] for step in STEPS}  # type: ignore[index]
    assert {"downsample", "filters", "fuzzy_dedup", "exact_dedup"} <= names


class TestDownsampleSizes:
    def test_yaml_exponent_and_suffix_sizes(self) -> None:
        """409e9 (a string to YAML 1.1) and 500M are byte counts; garbage is a clear error."""
        stage = DownsampleStage(
            targets={
                "Java": {"from_bytes": "409e9", "to_bytes": "200e9"},
                "Go": {"max_bytes": "500M"},
            }
        )
        assert stage.targets["Java"].ratio == pytest.approx(200 / 409)
        assert stage.targets["Go"].max_bytes == 500 * 2**20
        with pytest.raises(DownsampleConfigError, match=r"targets\['Java'\]\.from_bytes"):
            DownsampleStage(targets={"Java": {"from_bytes": "lots", "to_bytes": 1}})


def test_redis_fuzzy_block_runs(redis_port: int, tmp_path: Path) -> None:
    """docs/stream-stage1.md's Redis-backed fuzzy_dedup (text basename) dedups for real."""
    [step] = [
        s
        for b in blocks("yaml")
        for s in stage_entries(b)
        if s["name"] == "fuzzy_dedup" and "storage_config" in (s.get("options") or {})
    ]
    options = copy.deepcopy(step["options"])
    assert isinstance(options["storage_config"]["basename"], str)
    options["storage_config"]["redis"]["port"] = redis_port
    fuzzy = FuzzyDedupStage(spill_dir=str(tmp_path), **options)
    text = "".join(f"def f{i}(a, b):\n    return a + b * {i}\n" for i in range(40))
    records = [
        Record(id=record_id("t", p), text=t, path=p, repo="r")
        for p, t in [("a.py", text), ("b.py", text + "# end\n"), ("c.py", "x = 1\n" * 50)]
    ]
    out = list(fuzzy.process(MinHashStage().process(records)))
    out += list(fuzzy.finish())
    assert sorted(r.path for r in out if r.drop_reason is None) == ["a.py", "c.py"]


class TestConfigSizes:
    def test_yaml_sizes_are_accepted(self, tmp_path: Path) -> None:
        """500M, 2G, 64KiB and 409e9 are byte counts in the stream config (were rejected)."""
        import yaml

        raw = yaml.safe_load(
            "input: {max_bytes: 500M, max_file_bytes: 64KiB}\noutput: {shard_max_bytes: 409e9}\n"
        )
        config = config_from_dict(raw)
        assert config.input.max_bytes == 500 * 2**20
        assert config.input.max_file_bytes == 64 * 2**10
        assert config.output.shard_max_bytes == 409 * 10**9

    @pytest.mark.parametrize("value", ["lots", "1.5.5M", -3, 2.5, True])
    def test_bad_sizes_name_the_key(self, value: object) -> None:
        """A value that is no size fails with the key path and examples."""
        from codekiln.stream.runtime.errors import ConfigError

        with pytest.raises(ConfigError, match=r"input\.max_bytes"):
            config_from_dict({"input": {"max_bytes": value}})
