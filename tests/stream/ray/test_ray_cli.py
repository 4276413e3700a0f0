"""``codekiln-stream run --executor ray``: option checks that need no cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from codekiln.stream.cli import main
from codekiln.stream.config import load_config
from codekiln.stream.ray import RayOptions, run_ray_job
from codekiln.stream.runtime.errors import ConfigError
from codekiln.stream.runtime.job import JobSpec


def test_address_without_ray_executor_is_an_error(tmp_path: Path, capsys):
    """--address with the local executor exits 2 with a message naming the fix."""
    code = main(["run", str(tmp_path), "--out", str(tmp_path / "o"), "--address", "auto"])
    assert code == 2
    assert "--address is for --executor ray" in capsys.readouterr().err


def test_input_caps_are_refused_before_any_work(tmp_path: Path):
    """Sequential input caps cannot be honoured by parallel shards: a clear error, no output."""
    config = load_config(None)
    config = type(config)(input=type(config.input)(max_files=3))
    spec = JobSpec((str(tmp_path),), tmp_path / "out", config)
    with pytest.raises(ConfigError, match="cannot apply the sequential input caps"):
        asyncio.run(run_ray_job(spec, RayOptions()))
    assert not (tmp_path / "out").exists()


def test_bad_option_values_are_refused():
    """RayOptions validates its values with the option's name in the message."""
    with pytest.raises(ConfigError, match="ray: partitions"):
        RayOptions(partitions=0)


def test_public_surface():
    """codekiln.stream.ray exports the executor entry point and its options, nothing else."""
    import codekiln.stream.ray as package

    assert package.__all__ == ["RayOptions", "run_ray_job"]
    assert all(callable(getattr(package, name)) for name in package.__all__)


def test_cli_import_does_not_import_ray():
    """Building the CLI parser (every codekiln-stream command) does not import Ray."""
    import subprocess
    import sys

    code = (
        "import sys; from codekiln.stream.cli import build_parser; build_parser(); "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_unreachable_address_fails_fast(tmp_path: Path, capsys):
    """An address nothing listens on stops the run with exit 1, instead of Ray's long retries."""
    import socket

    with socket.socket() as s:  # a free loopback port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.py").write_text("x = 1\n")
    argv = ["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]
    code = main([*argv, "--executor", "ray", "--address", f"127.0.0.1:{port}"])
    assert code == 1
    assert "cannot reach the Ray cluster" in capsys.readouterr().err


def test_out_of_range_option_exits_2(tmp_path: Path, capsys):
    """A count below 1, a timeout not above 0 or a word: exit 2, the option and value named."""

    def refused(option: str, value: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(["run", str(tmp_path), "--out", str(tmp_path / "o"), option, value])
        assert exit_info.value.code == 2
        return capsys.readouterr().err

    assert "argument --partitions: must be >= 1, got 0" in refused("--partitions", "0")
    assert "argument --shard-files: not an integer: 'x'" in refused("--shard-files", "x")
    assert "argument --task-timeout-s: must be > 0, got 0.0" in refused("--task-timeout-s", "0")
    assert "argument --task-timeout-s: not a number: 'y'" in refused("--task-timeout-s", "y")
