"""End to end: `codekiln-stream run` with a `launch:` section trains and evaluates on Kubernetes.

The stream runtime runs as a real subprocess; when its corpus commits it calls
codekiln.train.launcher.on_corpus_committed, which submits to the fake API server on port 0.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from .fake_api import FakeKubeAPI

STDLIB_FILES = ("textwrap.py", "colorsys.py", "bisect.py", "heapq.py", "shlex.py", "fnmatch.py")
TRAIN = {
    "model": {"preset": "opencoder-1.5b"},
    "data": {"tokenizer_path": "/data/tokenizer/tokenizer.json"},
    "batch": {"global_batch": 1024, "micro_batch": 4},
}


async def _stream_run(inputs: Path, out: Path, config: dict[str, Any]) -> dict[str, Any]:
    cfg = out.parent / "pipeline.yaml"
    cfg.write_text(yaml.safe_dump(config))
    exe = Path(sys.executable).with_name("codekiln-stream")
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        "run",
        str(inputs),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--no-progress",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(240):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, (stdout + stderr).decode()[-3000:]
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return manifest


def _inputs(tmp_path: Path) -> Path:
    src = Path(sysconfig.get_paths()["stdlib"])
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in STDLIB_FILES:
        shutil.copy(src / name, inputs / name)
    return inputs


@pytest.mark.slow
async def test_committed_corpus_trains_then_evaluates(
    kube: tuple[FakeKubeAPI, Path], tmp_path: Path
) -> None:
    """The run's manifest records the training and evaluation jobs and their outcomes."""
    api, kubeconfig = kube
    out = tmp_path / "out"
    launch = {
        "image": "reg/codekiln:1",
        "kubeconfig": str(kubeconfig),
        "poll_s": 0.05,
        "timeout_s": 120,
        "train": {"config": TRAIN, "gpus": 8},
        "eval": {"datasets": ["humaneval+"]},
    }
    manifest = await _stream_run(_inputs(tmp_path), out, {"launch": launch})
    assert manifest["launch"]["train"]["outcome"] == "succeeded"
    assert manifest["launch"]["eval"]["outcome"] == "succeeded"
    assert api.invalid == []
    cm = next(o for o in api.received if o["kind"] == "ConfigMap")
    assert yaml.safe_load(cm["data"]["train.yaml"])["data"]["corpus_dir"] == str(out / "corpus")
    assert [o["kind"] for o in api.received] == [
        "ConfigMap",
        "PyTorchJob",
        "Deployment",
        "Service",
        "Job",
    ]


async def test_empty_corpus_launches_nothing(
    kube: tuple[FakeKubeAPI, Path], tmp_path: Path
) -> None:
    """A run whose corpus has no records records the jobs as skipped and submits nothing."""
    api, kubeconfig = kube
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "tiny.py").write_text("x = 1\n")  # filtered out: the corpus stays empty
    launch = {
        "image": "reg/codekiln:1",
        "kubeconfig": str(kubeconfig),
        "train": {"config": TRAIN, "gpus": 8},
    }
    manifest = await _stream_run(inputs, tmp_path / "out", {"launch": launch})
    assert manifest["launch"]["train"]["outcome"] == "skipped"
    assert api.received == []
