"""The launchers against a fake Kubernetes API on port 0 that validates what it receives."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.train import ConfigError, LaunchError
from codekiln.train.kube import validate_object
from codekiln.train.launcher import (
    api_client,
    create_object,
    eval_launch_main,
    on_corpus_committed,
    train_launch_main,
    validate_launch_config,
)

from .fake_api import FakeKubeAPI

TRAIN_CFG = {
    "stage": "pretrain",
    "model": {"preset": "opencoder-1.5b"},
    "data": {"corpus_dir": "/data/out/corpus", "tokenizer_path": "/data/tokenizer"},
    "batch": {"global_batch": 1024, "micro_batch": 4},
    "deepspeed": {"zero_stage": 2},
    "checkpoint": {"dir": "/checkpoints/run1"},
}


@pytest.fixture
def train_config(tmp_path: Path) -> Path:
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(TRAIN_CFG))
    return p


def _train_argv(cfg: Path, *extra: str) -> list[str]:
    return [
        "--name",
        "pre1",
        "--image",
        "reg/codekiln:1",
        "--config",
        str(cfg),
        "--namespace",
        "ml",
        *extra,
    ]


def _eval_argv(*extra: str) -> list[str]:
    return ["--name", "ev1", "--image", "reg/codekiln:1", "--model-path", "/checkpoints/x", *extra]


class TestDryRun:
    def test_train_yaml(self, train_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--dry-run prints a ConfigMap and a PyTorchJob sized by --nodes and --gpus."""
        assert (
            train_launch_main(_train_argv(train_config, "--nodes", "4", "--gpus", "8", "--dry-run"))
            == 0
        )
        objs = list(yaml.safe_load_all(capsys.readouterr().out))
        assert [o["kind"] for o in objs] == ["ConfigMap", "PyTorchJob"]
        for o in objs:
            validate_object(o)
        job = objs[1]
        assert job["spec"]["nprocPerNode"] == "8"
        assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3
        ds = json.loads(objs[0]["data"]["ds_config.json"])
        assert ds["train_batch_size"] == 1024
        assert ds["gradient_accumulation_steps"] == 1024 // (4 * 32)
        mounted = yaml.safe_load(objs[0]["data"]["train.yaml"])
        assert mounted["deepspeed"]["config_file"] == "/etc/codekiln/ds_config.json"

    def test_indexed_job_yaml(self, train_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The Indexed Job variant wires PET_* variables and a headless Service."""
        assert (
            train_launch_main(
                _train_argv(train_config, "--kind", "indexed-job", "--nodes", "2", "--dry-run")
            )
            == 0
        )
        objs = list(yaml.safe_load_all(capsys.readouterr().out))
        assert [o["kind"] for o in objs] == ["ConfigMap", "Service", "Job"]
        job = objs[2]
        env = {
            e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["PET_NNODES"] == "2"
        assert env["PET_MASTER_ADDR"] == "pre1-0.pre1"
        assert (
            'PET_NODE_RANK="$JOB_COMPLETION_INDEX"'
            in job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        )

    def test_eval_yaml(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Eval dry-run: vLLM Deployment + Service and a Job that waits for /v1/models."""
        argv = _eval_argv("--dataset", "humaneval+", "--dry-run")
        assert eval_launch_main(argv) == 0
        objs = list(yaml.safe_load_all(capsys.readouterr().out))
        assert [o["kind"] for o in objs] == ["Deployment", "Service", "Job"]
        probe = objs[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        assert probe["httpGet"]["path"] == "/v1/models"
        init = objs[2]["spec"]["template"]["spec"]["initContainers"][0]["command"][2]
        assert "http://ev1-vllm:8000/v1/models" in init


class TestBadInput:
    @pytest.mark.parametrize("gpus", ["-1", "17"])
    def test_invalid_gpu_count(
        self, train_config: Path, gpus: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A GPU count outside 0..16 is refused with exit code 2."""
        assert train_launch_main(_train_argv(train_config, "--gpus", gpus, "--dry-run")) == 2
        assert "invalid GPU count" in capsys.readouterr().err

    def test_batch_split_for_cluster(
        self, train_config: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """1024 sequences cannot be split over 3 nodes x 8 GPUs with micro-batch 4."""
        assert train_launch_main(_train_argv(train_config, "--nodes", "3", "--dry-run")) == 2
        assert "not divisible" in capsys.readouterr().err

    def test_unknown_preset(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown preset is refused before anything is rendered."""
        cfg = tmp_path / "t.yaml"
        cfg.write_text(yaml.safe_dump({**TRAIN_CFG, "model": {"preset": "llama-70b"}}))
        assert train_launch_main(_train_argv(cfg, "--dry-run")) == 2
        assert "unknown preset 'llama-70b'" in capsys.readouterr().err

    def test_relative_paths(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Paths in a launched config must be absolute pod paths."""
        cfg = tmp_path / "t.yaml"
        cfg.write_text(yaml.safe_dump({**TRAIN_CFG, "checkpoint": {"dir": "ckpt"}}))
        assert train_launch_main(_train_argv(cfg, "--dry-run")) == 2
        assert "checkpoint.dir must be an absolute path" in capsys.readouterr().err

    def test_vllm_needs_a_gpu(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Serving a checkpoint with 0 GPUs is refused."""
        argv = ["--name", "ev1", "--image", "i", "--model-path", "/c", "--gpus", "0", "--dry-run"]
        assert eval_launch_main(argv) == 2
        assert "invalid GPU count 0" in capsys.readouterr().err


class TestSubmit:
    async def test_pytorchjob_succeeds(
        self, kube: tuple[FakeKubeAPI, Path], train_config: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Submit, watch and stream logs of a PyTorchJob; exit 0 on success."""
        api, kubeconfig = kube
        rc = await asyncio.to_thread(
            train_launch_main,
            _train_argv(
                train_config, "--nodes", "2", "--kubeconfig", str(kubeconfig), "--poll-s", "0.05"
            ),
        )
        out = capsys.readouterr().out
        assert rc == 0
        assert api.invalid == []
        assert [o["kind"] for o in api.received] == ["ConfigMap", "PyTorchJob"]
        assert '"loss": 3.0' in out
        assert "pre1: done" in out
        assert json.loads(out.strip().splitlines()[-1])["outcome"] == "succeeded"
        assert any("watch=true" in r or "/pytorchjobs" in r for r in api.requests)

    async def test_failed_job_exits_1(
        self, kube: tuple[FakeKubeAPI, Path], train_config: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A job that fails gives exit code 1 and its reason."""
        api, kubeconfig = kube
        api.fail.add("pre1")
        rc = await asyncio.to_thread(
            train_launch_main,
            _train_argv(
                train_config,
                "--kind",
                "indexed-job",
                "--kubeconfig",
                str(kubeconfig),
                "--poll-s",
                "0.05",
            ),
        )
        out = capsys.readouterr().out
        assert rc == 1
        assert "pre1: boom" in out
        assert [o["kind"] for o in api.received] == ["ConfigMap", "Service", "Job"]

    async def test_existing_job_is_an_error(
        self, kube: tuple[FakeKubeAPI, Path], train_config: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Submitting a name that exists reports the API's 409 and exits 1."""
        _, kubeconfig = kube
        argv = _train_argv(train_config, "--kubeconfig", str(kubeconfig), "--poll-s", "0.05")
        assert await asyncio.to_thread(train_launch_main, argv) == 0
        assert await asyncio.to_thread(train_launch_main, argv) == 1
        assert "HTTP 409" in capsys.readouterr().err

    async def test_server_rejects_invalid_object(self, kube: tuple[FakeKubeAPI, Path]) -> None:
        """The fake validates what it receives: an invalid object gets 422, a LaunchError."""
        api, kubeconfig = kube
        client = api_client(str(kubeconfig))
        bad = {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "x"},
            "spec": {"pytorchReplicaSpecs": {"Master": {"restartPolicy": "Sometimes"}}},
        }
        with pytest.raises(LaunchError, match="HTTP 422"):
            await asyncio.to_thread(create_object, client, bad)
        assert len(api.invalid) == 1

    async def test_eval_launch_cleans_up_vllm(
        self, kube: tuple[FakeKubeAPI, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """eval launch creates vLLM + Job, follows the Job, then deletes the vLLM server."""
        api, kubeconfig = kube
        argv = _eval_argv("--kubeconfig", str(kubeconfig), "--poll-s", "0.05")
        assert await asyncio.to_thread(eval_launch_main, argv) == 0
        assert api.invalid == []
        assert sorted(api.deleted) == [("Deployment", "ev1-vllm"), ("Service", "ev1-vllm")]
        assert "ev1: done" in capsys.readouterr().out


class TestCorpusToJobs:
    def _launch(self, kubeconfig: Path, **over: Any) -> dict[str, Any]:
        return {
            "kubeconfig": str(kubeconfig),
            "image": "reg/codekiln:1",
            "namespace": "ml",
            "poll_s": 0.05,
            "timeout_s": 60,
            "train": {"config": TRAIN_CFG, "nodes": 1, "gpus": 8},
            "eval": {"datasets": ["humaneval+"]},
            **over,
        }

    def _manifest(self, tmp_path: Path) -> Path:
        m = tmp_path / "out" / "manifest.json"
        m.parent.mkdir()
        m.write_text(json.dumps({"run_id": "Run-42"}))
        return m

    async def test_train_then_eval(self, kube: tuple[FakeKubeAPI, Path], tmp_path: Path) -> None:
        """A committed corpus trains, then evaluates the trained checkpoint; outcomes returned."""
        api, kubeconfig = kube
        result = await asyncio.to_thread(
            on_corpus_committed, self._manifest(tmp_path), self._launch(kubeconfig)
        )
        assert result["train"]["outcome"] == "succeeded"
        assert result["eval"]["outcome"] == "succeeded"
        assert result["train"]["name"] == "codekiln-train-run42"
        cm = next(o for o in api.received if o["kind"] == "ConfigMap")
        mounted = yaml.safe_load(cm["data"]["train.yaml"])
        assert mounted["data"]["corpus_dir"] == str(tmp_path / "out" / "corpus")
        vllm = next(o for o in api.received if o["kind"] == "Deployment")
        args = vllm["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "/checkpoints/codekiln-train-run42/export"  # `vllm serve` positional
        assert api.invalid == []

    async def test_failed_training_skips_eval(
        self, kube: tuple[FakeKubeAPI, Path], tmp_path: Path
    ) -> None:
        """When training fails, evaluation is not submitted."""
        api, kubeconfig = kube
        api.fail.add("codekiln-train-run42")
        result = await asyncio.to_thread(
            on_corpus_committed, self._manifest(tmp_path), self._launch(kubeconfig)
        )
        assert result["train"]["outcome"] == "failed"
        assert result["eval"]["outcome"] == "skipped"
        assert not any(o["kind"] == "Deployment" for o in api.received)

    def test_dry_run_without_manifest(self, tmp_path: Path) -> None:
        """Called before the manifest is written, the corpus beside it is still used."""
        launch = {
            "image": "i",
            "dry_run": True,
            "corpus_mount": "/data/run7/corpus",
            "train": {"config": TRAIN_CFG, "gpus": 8},
            "eval": {},
        }
        result = on_corpus_committed(tmp_path / "manifest.json", launch)
        assert result["train"]["outcome"] == "dry-run"
        assert result["train"]["name"].startswith("codekiln-train-")
        assert result["eval"]["outcome"] == "dry-run"

    def test_validate_launch_config(self) -> None:
        """The runtime's pre-flight check accepts a good section and names a bad key."""
        good = {"image": "i", "train": {"config": TRAIN_CFG, "gpus": 8}}
        validate_launch_config(good)
        with pytest.raises(ConfigError, match=r"launch.train: unknown key\(s\) gpu"):
            validate_launch_config({"image": "i", "train": {"config": TRAIN_CFG, "gpu": 8}})
        with pytest.raises(ConfigError, match="invalid GPU count 99"):
            validate_launch_config({"image": "i", "train": {"config": TRAIN_CFG, "gpus": 99}})


def test_unreachable_api_is_a_clear_error(
    train_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no API server listening, launch exits 1 with a message, no traceback, no hang."""
    import socket

    with socket.socket() as s:  # a loopback port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    assert train_launch_main(_train_argv(train_config, "--kubeconfig", str(cfg))) == 1
    assert "cannot reach the Kubernetes API" in capsys.readouterr().err
