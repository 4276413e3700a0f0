"""The synth config object and package API introspection."""

from __future__ import annotations

from pathlib import Path

import pytest
from codekiln.synth.config import SynthConfig
from codekiln.synth.errors import ConfigError
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
