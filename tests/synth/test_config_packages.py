"""The synth config object and package API introspection."""

from __future__ import annotations

from pathlib import Path

import pytest
from codekiln.synth.config import SynthConfig
from codekiln.synth.errors import ConfigError
from codekiln.synth.llm import LLMConfig
from codekiln.synth.packages import api_docs


class TestConfig:
    def test_from_mapping(self) -> None:
        """Lists become tuples and values are kept."""
        config = SynthConfig.from_mapping({"generators": ["snippets"], "max_seeds": 3})
        assert config.generators == ("snippets",)
        assert config.max_seeds == 3

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ({"bogus": 1}, "unknown key"),
            ({"generators": ["nope"]}, "unknown"),
            ({"generators": "snippets"}, "must be a list"),
            ({"max_seeds": -1}, "max_seeds"),
            ({"autods_top_fraction": None}, "autods_threshold or autods_top_fraction"),
            ({"autods_threshold": 2}, "autods_threshold"),
            ({"ingest_classifier": "svm"}, "ingest_classifier"),
        ],
    )
    def test_bad_values(self, raw: dict[str, object], message: str) -> None:
        """Each bad key or value fails with a message naming it."""
        with pytest.raises(ConfigError, match=message):
            SynthConfig.from_mapping(raw)

    def test_from_file_reads_synth_section(self, tmp_path: Path) -> None:
        """A config file's synth: section is used."""
        path = tmp_path / "c.yaml"
        path.write_text("synth:\n  max_seeds: 5\n")
        assert SynthConfig.from_file(path).max_seeds == 5


class TestFieldMessages:
    """SynthConfig and LLMConfig share one validator per rule: the exact messages."""

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ({"max_seeds": True}, "synth.max_seeds must be an integer >= 0, got True"),
            ({"exec_memory_mb": 1.5}, "synth.exec_memory_mb must be an integer >= 0, got 1.5"),
            ({"deadline_s": 0}, "synth.deadline_s must be a number > 0, got 0"),
            ({"exec_timeout_s": "9"}, "synth.exec_timeout_s must be a number > 0, got '9'"),
        ],
    )
    def test_synth_config(self, raw: dict[str, object], message: str) -> None:
        """A bad integer or duration field of the synth: section names it and its value."""
        with pytest.raises(ConfigError) as info:
            SynthConfig(**raw)  # type: ignore[arg-type]
        assert str(info.value) == message

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ({"breaker_failures": 0}, "llm.breaker_failures must be an integer >= 1, got 0"),
            (
                {"max_stop_strings": False},
                "llm.max_stop_strings must be an integer >= 1, got False",
            ),
            ({"max_retries": -1}, "llm.max_retries must be an integer >= 0, got -1"),
            ({"max_retries": 2.0}, "llm.max_retries must be an integer >= 0, got 2.0"),
            ({"read_timeout_s": -3}, "llm.read_timeout_s must be a number > 0, got -3"),
            ({"breaker_reset_s": None}, "llm.breaker_reset_s must be a number > 0, got None"),
        ],
    )
    def test_llm_config(self, raw: dict[str, object], message: str) -> None:
        """A bad integer or duration field of the LLM client's config names it and its value."""
        with pytest.raises(ConfigError) as info:
            LLMConfig(endpoints=("http://127.0.0.1:1",), **raw)  # type: ignore[arg-type]
        assert str(info.value) == message


class TestPackages:
    def test_stdlib_module(self) -> None:
        """heapq functions come with signatures, docstrings and the Python version."""
        docs = api_docs(["heapq"], max_per_package=50)
        apis = {d.meta["api"]: d for d in docs}
        assert "heapq.nlargest" in apis
        assert apis["heapq.nlargest"].meta["signature"].startswith("(n, iterable")
        assert "standard library" in apis["heapq.nlargest"].meta["version"]

    def test_installed_distribution_version(self) -> None:
        """A third-party package reports its installed version."""
        import numpy

        (doc, *_) = api_docs(["numpy"], max_per_package=1)
        assert doc.meta["version"] == numpy.__version__

    def test_unknown_package(self) -> None:
        """A package that is not installed is a configuration error."""
        with pytest.raises(ConfigError, match="not importable"):
            api_docs(["no_such_package_xyz"])
