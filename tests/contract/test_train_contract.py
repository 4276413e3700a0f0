"""Issue 19: train's DeepSpeed config follows precision, the launcher's namespace is k8s/'s,
Ctrl-C ends a run with one line and a resumable checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.train import ConfigError
from codekiln.train.cli import main as train_main
from codekiln.train.config import TrainConfig
from codekiln.train.distributed import deepspeed_config, load_deepspeed_config

from tests.train.conftest import corpus_dir, tiny_config, tokenizer_path  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]


def test_fp32_run_gets_no_bf16(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """precision: fp32 gives bf16.enabled false (was true) in the generated and printed config."""
    cfg = TrainConfig.from_dict({"precision": "fp32", "deepspeed": {"zero_stage": 2}})
    assert deepspeed_config(cfg, 1, bf16=True)["bf16"]["enabled"] is False
    auto = TrainConfig.from_dict({"deepspeed": {"zero_stage": 2}})
    assert deepspeed_config(auto, 1, bf16=True)["bf16"]["enabled"] is True
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"precision": "fp32", "deepspeed": {"zero_stage": 2}}))
    assert train_main(["deepspeed-config", "--config", str(path), "--world-size", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["bf16"]["enabled"] is False


def test_given_bf16_file_for_fp32_is_refused(tmp_path: Path) -> None:
    """A deepspeed.config_file enabling bf16 for an fp32 run is an exact config error."""
    given = tmp_path / "ds.json"
    given.write_text(json.dumps({"bf16": {"enabled": True}}))
    cfg = TrainConfig.from_dict(
        {"precision": "fp32", "deepspeed": {"zero_stage": 2, "config_file": str(given)}}
    )
    with pytest.raises(ConfigError, match="precision is fp32"):
        load_deepspeed_config(cfg, 1, bf16=False)


def test_launcher_namespace_is_the_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    """The launcher's default namespace is the one k8s/overlays/prod and k8s/README.md use."""
    from codekiln.train.launcher import DEFAULT_NAMESPACE

    prod = yaml.safe_load((REPO / "k8s/overlays/prod/kustomization.yaml").read_text())
    assert prod["namespace"] == DEFAULT_NAMESPACE
    assert f"-n {DEFAULT_NAMESPACE} " in (REPO / "k8s/README.md").read_text()


def test_dry_run_renders_into_the_manifests_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`codekiln-train launch --dry-run` without --namespace renders into k8s/'s namespace."""
    from codekiln.train.launcher import DEFAULT_NAMESPACE

    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"preset": "tiny"},
                "data": {"corpus_dir": "/data/corpus", "tokenizer_path": "/data/tok.json"},
                "batch": {"global_batch": 64, "micro_batch": 4},
                "checkpoint": {"dir": "/ckpt", "export_dir": "/ckpt/export"},
            }
        )
    )
    argv = ["launch", "--name", "t1", "--image", "img:1", "--config", str(config), "--dry-run"]
    assert train_main(argv) == 0
    objects = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]
    assert objects
    assert {o["metadata"].get("namespace") for o in objects} == {DEFAULT_NAMESPACE}


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_resumable(
    tmp_path: Path,
    corpus_dir: Path,  # noqa: F811 - the fixture imported above
    tokenizer_path: Path,  # noqa: F811 - the fixture imported above
) -> None:
    """SIGINT during a CPU run: exit 130, one line on stderr, no traceback; a rerun resumes."""
    raw: dict[str, Any] = tiny_config(tmp_path, corpus_dir, tokenizer_path)
    raw["optim"]["total_steps"] = 400
    raw["checkpoint"]["every_steps"] = 1
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "CODEKILN_LOG_DIR": str(tmp_path / "logs")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "codekiln.train.cli", "run", "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for the third logged step: a checkpoint exists
        if '"step": 3' in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("codekiln-train: interrupted")
    raw["optim"]["total_steps"] = 4
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run(
        [sys.executable, "-m", "codekiln.train.cli", "run", "--config", str(path)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["resumed_from"] is not None
