"""Every YAML under k8s/ validates against the Kubernetes OpenAPI schemas or its CRD schema."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.train import ManifestError, TrainConfig
from codekiln.train.distributed import deepspeed_config
from codekiln.train.kube import custom_kinds, render_kustomization, validate_object

K8S = Path(__file__).resolve().parents[2] / "k8s"
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml")


def _kustomization_dirs() -> list[Path]:
    return sorted({p.parent for n in KUSTOMIZATION_NAMES for p in K8S.rglob(n)})


def _generator_inputs() -> set[Path]:
    """Files pulled into ConfigMaps by a configMapGenerator: data, not manifests."""
    out = set()
    for d in _kustomization_dirs():
        k = yaml.safe_load(
            next(d / n for n in KUSTOMIZATION_NAMES if (d / n).is_file()).read_text()
        )
        for gen in k.get("configMapGenerator") or []:
            for f in gen.get("files") or []:
                out.add((d / f.rpartition("=")[2]).resolve())
    return out


def _yaml_files() -> list[Path]:
    return sorted(
        p
        for ext in ("*.yaml", "*.yml")
        for p in K8S.rglob(ext)
        if p.name not in KUSTOMIZATION_NAMES
    )


def _rel(p: Path) -> str:
    return str(p.relative_to(K8S))


@pytest.mark.parametrize("path", _yaml_files(), ids=_rel)
def test_yaml_file_validates(path: Path) -> None:
    """A YAML file is either a valid manifest or a config file a ConfigMap generator uses."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    if all("apiVersion" in d and "kind" in d for d in docs):
        for d in docs:
            validate_object(d)
    else:
        assert path.resolve() in _generator_inputs(), f"{_rel(path)}: neither a manifest nor config"


@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=_rel)
def test_kustomization_renders_and_validates(directory: Path) -> None:
    """Each kustomization renders (built-in renderer) and every rendered object validates."""
    objs = render_kustomization(directory)
    assert objs
    for o in objs:
        validate_object(o)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=_rel)
def test_renderer_matches_kubectl(directory: Path) -> None:
    """The built-in renderer gives exactly what `kubectl kustomize` gives."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    def key(o: dict[str, Any]) -> tuple[str, ...]:
        m = o["metadata"]
        return (o["apiVersion"], o["kind"], m.get("namespace", ""), m["name"])

    ref = {key(o): o for o in yaml.safe_load_all(out) if o}
    mine = {key(o): o for o in render_kustomization(directory)}
    assert mine == ref


def _world_size(objs: list[dict[str, Any]]) -> int:
    for o in objs:
        if o["kind"] == "PyTorchJob":
            reps = o["spec"]["pytorchReplicaSpecs"].values()
            return sum(r.get("replicas", 1) for r in reps) * int(o["spec"]["nprocPerNode"])
        if o["kind"] == "Job" and o["spec"].get("completionMode") == "Indexed":
            env = {
                e["name"]: e.get("value")
                for e in o["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            return int(o["spec"]["completions"]) * int(env["PET_NPROC_PER_NODE"])
    raise AssertionError("no training job")


TRAINING_DIRS = sorted(p.parent for p in K8S.glob("training/*/train.yaml"))


@pytest.mark.parametrize("directory", TRAINING_DIRS, ids=_rel)
def test_training_config_and_deepspeed_agree(directory: Path) -> None:
    """The mounted train.yaml is valid for the job's world size and ds_config.json matches it."""
    objs = render_kustomization(directory)
    world = _world_size(objs)
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    cfg = TrainConfig.from_dict(yaml.safe_load(cm["data"]["train.yaml"]))
    cfg.validate(world)
    assert json.loads(cm["data"]["ds_config.json"]) == deepspeed_config(cfg, world, bf16=True)


class TestSchemas:
    def _job(self) -> dict[str, Any]:
        return copy.deepcopy(
            next(
                o
                for o in render_kustomization(K8S / "training" / "pretrain")
                if o["kind"] == "PyTorchJob"
            )
        )

    def test_pytorchjob_schema_is_per_kind(self) -> None:
        """Custom kinds are found by apiVersion and kind in the schema folder."""
        assert ("kubeflow.org/v1", "PyTorchJob") in custom_kinds()

    def test_misspelt_pytorchjob_field(self) -> None:
        """A misspelt PyTorchJob field is rejected with its path."""
        job = self._job()
        job["spec"]["pytorchReplicaSpec"] = job["spec"].pop("pytorchReplicaSpecs")
        with pytest.raises(ManifestError, match="PyTorchJob/codekiln-pretrain"):
            validate_object(job)

    def test_pod_template_inside_crd_is_checked(self) -> None:
        """The embedded pod template is validated against the Kubernetes PodTemplateSpec."""
        job = self._job()
        job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
            "imagePullPolcy"
        ] = "Always"
        with pytest.raises(ManifestError, match="imagePullPolcy"):
            validate_object(job)

    def test_bad_restart_policy(self) -> None:
        """restartPolicy outside Always/OnFailure/Never/ExitCode is rejected."""
        job = self._job()
        job["spec"]["pytorchReplicaSpecs"]["Worker"]["restartPolicy"] = "Sometimes"
        with pytest.raises(ManifestError, match="restartPolicy"):
            validate_object(job)

    def test_builtin_kind_strict(self) -> None:
        """A Deployment with an unknown field fails strict Kubernetes validation."""
        dep = next(o for o in render_kustomization(K8S / "base") if o["kind"] == "Deployment")
        dep["spec"]["replica"] = 3
        with pytest.raises(ManifestError, match="replica"):
            validate_object(dep)

    def test_unknown_custom_kind(self) -> None:
        """A kind with no schema anywhere is an error that says where a schema goes."""
        with pytest.raises(ManifestError, match=r"example.com_v1_Widget.json"):
            validate_object(
                {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
            )


def test_launcher_matches_static_pytorchjob() -> None:
    """The launcher's PyTorchJob runs the same container as k8s/training: command, mounts."""
    from codekiln.train.kube import TrainJobParams, build_train_objects

    static = next(
        o for o in render_kustomization(K8S / "training" / "pretrain") if o["kind"] == "PyTorchJob"
    )
    cm = next(
        o for o in render_kustomization(K8S / "training" / "pretrain") if o["kind"] == "ConfigMap"
    )
    built = build_train_objects(
        TrainJobParams(
            name="codekiln-pretrain",
            image="codekiln:0.1.0",
            nodes=2,
            gpus_per_node=8,
            train_config=yaml.safe_load(cm["data"]["train.yaml"]),
        )
    )
    job = next(o for o in built if o["kind"] == "PyTorchJob")

    def container(o: dict[str, Any]) -> dict[str, Any]:
        c = o["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
        return {
            "name": c["name"],
            "command": c["command"],
            "args": c["args"],
            "mounts": sorted((m["name"], m["mountPath"]) for m in c["volumeMounts"]),
        }

    assert container(job) == container(static)
    assert job["spec"]["nprocPerNode"] == static["spec"]["nprocPerNode"]
    built_cm = next(o for o in built if o["kind"] == "ConfigMap")
    assert json.loads(built_cm["data"]["ds_config.json"]) == json.loads(
        cm["data"]["ds_config.json"]
    )


def test_static_eval_job_runs_what_run_argv_spells() -> None:
    """Every ``codekiln-eval run`` of k8s/eval, split as the shell splits it, parses with the
    eval CLI's parser and is exactly :func:`codekiln.eval.cli.run_argv` of the values it
    parsed to, one per evaluation dataset: the static manifest and the launcher cannot drift."""
    from codekiln.eval.cli import build_parser, run_argv
    from codekiln.train.kube import EVAL_DATASETS

    from tests.eval.helpers import job_commands

    commands = job_commands(render_kustomization(K8S / "eval"))
    for command in commands:
        assert command[:2] == ["codekiln-eval", "run"], command
        args = build_parser().parse_args(command[1:])
        assert command == run_argv(
            endpoint=args.endpoint,
            model=args.model,
            dataset=args.dataset,
            mode=args.mode,
            samples=args.samples,
            temperature=args.temperature,
            out=args.out,
        )
        assert args.endpoint == "http://codekiln-vllm:8000/v1"
    assert [c[c.index("--dataset") + 1] for c in commands] == list(EVAL_DATASETS)
