"""Fixtures of the stream runtime tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


@pytest.fixture
def no_blocking() -> Iterator[BlockBuster]:
    """Fail any blocking call made from the event loop's thread (file I/O, sleep, ...)."""
    with blockbuster_ctx() as bb:
        yield bb


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for a ``python -m codekiln.stream.cli`` subprocess that can import rt_stages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), env.get("PYTHONPATH", "")])
    env.pop("CODEKILN_LLM_URL", None)
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
