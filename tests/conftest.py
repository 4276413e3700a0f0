"""Shared test configuration. Component fixtures live in tests/fixtures/ as pytest plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.redis", "tests.fixtures.sandbox", "tests.fixtures.vllm"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data (HumanEval+, MBPP+, MBPP): CODEKILN_DATA_DIR, else ../shared/data."""
    path = Path(os.environ.get("CODEKILN_DATA_DIR") or REPO.parent / "shared" / "data")
    if not (path / "HumanEvalPlus.jsonl.gz").exists():
        pytest.fail(f"benchmark data not found at {path} (set CODEKILN_DATA_DIR)")
    return path
