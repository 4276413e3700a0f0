"""The KubeRay manifests in k8s/ray/: schema checks that bite, and a command the CLI accepts."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

import pytest
from codekiln.stream.cli import build_parser
from codekiln.train import ManifestError
from codekiln.train.kube import custom_kinds, render_kustomization, validate_object

RAY_K8S = Path(__file__).resolve().parents[3] / "k8s" / "ray"


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in render_kustomization(RAY_K8S)}


def test_kuberay_kinds_have_schemas():
    """RayCluster and RayJob are validated against their own schemas, not skipped."""
    assert {("ray.io/v1", "RayCluster"), ("ray.io/v1", "RayJob")} <= set(custom_kinds())


def test_number_in_ray_start_params_is_rejected(objects: dict[str, dict[str, Any]]):
    """rayStartParams values must be strings, as KubeRay's Go type requires."""
    cluster = copy.deepcopy(objects["RayCluster"])
    cluster["spec"]["workerGroupSpecs"][0]["rayStartParams"]["num-cpus"] = 4
    with pytest.raises(ManifestError, match="rayStartParams"):
        validate_object(cluster)


def test_misspelt_worker_field_is_rejected(objects: dict[str, dict[str, Any]]):
    """A misspelt worker group field fails instead of being pruned by the API server."""
    cluster = copy.deepcopy(objects["RayCluster"])
    cluster["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(ManifestError, match="maxReplica"):
        validate_object(cluster)


def test_rayjob_needs_a_cluster(objects: dict[str, dict[str, Any]]):
    """A RayJob with neither rayClusterSpec nor clusterSelector is invalid."""
    job = copy.deepcopy(objects["RayJob"])
    del job["spec"]["clusterSelector"]
    with pytest.raises(ManifestError, match="RayJob/codekiln-stream-ray"):
        validate_object(job)


def test_rayjob_entrypoint_is_a_valid_command(objects: dict[str, dict[str, Any]]):
    """The RayJob's entrypoint parses with the real CLI: Ray executor, config from the map."""
    argv = shlex.split(objects["RayJob"]["spec"]["entrypoint"])
    assert argv[0] == "codekiln-stream"
    args = build_parser().parse_args(argv[1:])
    assert args.executor == "ray"
    assert args.address == "auto"
    mounted = objects["RayCluster"]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert any(str(args.config).startswith(m["mountPath"]) for m in mounted["volumeMounts"])


def test_job_targets_the_cluster(objects: dict[str, dict[str, Any]]):
    """The RayJob's clusterSelector names the RayCluster of the same kustomization."""
    selector = objects["RayJob"]["spec"]["clusterSelector"]
    assert selector["ray.io/cluster"] == objects["RayCluster"]["metadata"]["name"]
