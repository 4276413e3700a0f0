"""Fixtures of the Kubernetes tests: the fake API server on port 0 and a kubeconfig for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from .fake_api import FakeKubeAPI


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[tuple[FakeKubeAPI, Path]]:
    """The running fake API and the path of a kubeconfig that points at it."""
    api = FakeKubeAPI()
    async with api.running():
        cfg = tmp_path / "kubeconfig"
        cfg.write_text(yaml.safe_dump(api.kubeconfig()))
        yield api, cfg
