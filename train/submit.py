"""Submit Kubernetes jobs, watch them to their end, stream their logs.

The launch commands (:mod:`codekiln.train.launcher`, :mod:`codekiln.train.eval_launch`) and the
pipeline's corpus hook (:mod:`codekiln.train.corpus_jobs`) render objects with
:mod:`codekiln.train.kube`, validate every one offline, then create them here with the official
``kubernetes`` client, follow the job's status with a watch and stream the main pod's log.
:func:`launch_objects` is the commands' shared tail: print the YAML (``--dry-run``) or submit and
wait; exit codes 0 the job succeeded, 1 it failed (or timed out, or the API refused it), 2 bad
input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from codekiln.train.errors import ConfigError, DataError, LaunchError, ManifestError, TrainError
from codekiln.train.kube import DEFAULT_NAMESPACE, validate_all

__all__ = [
    "JobOutcome",
    "add_launch_args",
    "api_client",
    "create_object",
    "delete_object",
    "job_container",
    "launch_objects",
    "submit_and_watch",
]

_PLURALS = {"PyTorchJob": ("kubeflow.org", "v1", "pytorchjobs")}
# (connect, read) seconds for plain API calls; a stuck API server is an error, not a hang.
_TIMEOUT = (10.0, 60.0)
_LOG_READ_TIMEOUT_S = 3600.0


@dataclass(frozen=True, slots=True)
class JobOutcome:
    name: str
    kind: str
    succeeded: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "outcome": "succeeded" if self.succeeded else "failed",
            "reason": self.reason,
        }


# ---------------------------------------------------------------- API access


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ApiClient from a kubeconfig file, else the in-cluster service account."""
    from kubernetes import client
    from kubernetes import config as _config

    config: Any = _config
    cfg = client.Configuration()
    try:
        if kubeconfig or not _in_cluster():
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=cfg
            )
        else:
            config.load_incluster_config(client_configuration=cfg)
    except (config.ConfigException, OSError, TypeError) as exc:
        raise LaunchError(f"no usable Kubernetes configuration: {exc}") from exc
    return client.ApiClient(cfg)


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()


def _api_error(exc: Any, what: str) -> LaunchError:
    body = getattr(exc, "body", "") or ""
    try:
        msg = json.loads(body).get("message", body)
    except (ValueError, AttributeError):
        msg = body
    return LaunchError(f"{what}: HTTP {getattr(exc, 'status', '?')}: {msg}".strip())


def create_object(api: Any, obj: dict[str, Any]) -> None:
    import urllib3
    from kubernetes import client as _client
    from kubernetes.client.exceptions import ApiException

    client: Any = _client  # bodies are plain dicts, already validated against the schemas
    ns = obj["metadata"].get("namespace", DEFAULT_NAMESPACE)
    kind = obj["kind"]
    what = f"create {kind}/{obj['metadata']['name']}"
    try:
        if kind in _PLURALS:
            group, version, plural = _PLURALS[kind]
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                group, version, ns, plural, obj, _request_timeout=_TIMEOUT
            )
        elif kind == "ConfigMap":
            client.CoreV1Api(api).create_namespaced_config_map(ns, obj, _request_timeout=_TIMEOUT)
        elif kind == "Service":
            client.CoreV1Api(api).create_namespaced_service(ns, obj, _request_timeout=_TIMEOUT)
        elif kind == "Deployment":
            client.AppsV1Api(api).create_namespaced_deployment(ns, obj, _request_timeout=_TIMEOUT)
        elif kind == "Job":
            client.BatchV1Api(api).create_namespaced_job(ns, obj, _request_timeout=_TIMEOUT)
        else:
            raise LaunchError(f"{what}: the launcher does not create {kind} objects")
    except ApiException as exc:
        raise _api_error(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise LaunchError(f"{what}: cannot reach the Kubernetes API: {exc}") from exc
    except ValueError as exc:  # the client's own model validation (pydantic)
        raise ManifestError(f"{what}: {exc}") from exc


def delete_object(api: Any, obj: dict[str, Any]) -> None:
    """Best-effort clean-up of helper objects (the vLLM server after an evaluation)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ns = obj["metadata"].get("namespace", DEFAULT_NAMESPACE)
    name = obj["metadata"]["name"]
    with contextlib.suppress(ApiException, ValueError):
        if obj["kind"] == "Deployment":
            client.AppsV1Api(api).delete_namespaced_deployment(name, ns, _request_timeout=_TIMEOUT)
        elif obj["kind"] == "Service":
            client.CoreV1Api(api).delete_namespaced_service(name, ns, _request_timeout=_TIMEOUT)


# ---------------------------------------------------------------- status


def _outcome_of(kind: str, obj: dict[str, Any]) -> tuple[bool, str] | None:
    """(succeeded, reason) once the job is finished, else None."""
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    for c in conditions:
        if c.get("status") != "True":
            continue
        ctype = c.get("type")
        if ctype in ("Succeeded", "Complete"):
            return True, c.get("reason") or ctype
        if ctype == "Failed":
            return False, c.get("message") or c.get("reason") or "Failed"
    return None


def _watch_job(api: Any, job: dict[str, Any], deadline: float) -> tuple[bool, str]:
    import urllib3
    from kubernetes import client
    from kubernetes import watch as _watch
    from kubernetes.client.exceptions import ApiException

    watch: Any = _watch

    ns, name, kind = (
        job["metadata"].get("namespace", DEFAULT_NAMESPACE),
        job["metadata"]["name"],
        job["kind"],
    )
    selector = f"metadata.name={name}"
    while True:
        remaining = int(deadline - time.monotonic())
        if remaining <= 0:
            return False, "timed out waiting for the job to finish"
        w = watch.Watch()
        try:
            if kind in _PLURALS:
                group, version, plural = _PLURALS[kind]
                stream = w.stream(
                    client.CustomObjectsApi(api).list_namespaced_custom_object,
                    group,
                    version,
                    ns,
                    plural,
                    field_selector=selector,
                    timeout_seconds=min(remaining, 300),
                    _request_timeout=(_TIMEOUT[0], min(remaining, 300) + 30),
                )
            else:
                stream = w.stream(
                    client.BatchV1Api(api).list_namespaced_job,
                    ns,
                    field_selector=selector,
                    timeout_seconds=min(remaining, 300),
                    _request_timeout=(_TIMEOUT[0], min(remaining, 300) + 30),
                )
            for event in stream:
                obj = event["raw_object"]
                if event["type"] == "DELETED":
                    return False, "the job was deleted"
                done = _outcome_of(kind, obj)
                if done is not None:
                    w.stop()
                    return done
        except ApiException as exc:
            raise _api_error(exc, f"watch {kind}/{name}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise LaunchError(f"watch {kind}/{name}: lost the Kubernetes API: {exc}") from exc


def _pod_selector(job: dict[str, Any]) -> str:
    name = job["metadata"]["name"]
    if job["kind"] == "PyTorchJob":
        return f"training.kubeflow.org/job-name={name},training.kubeflow.org/replica-type=master"
    if job["spec"].get("completionMode") == "Indexed":
        return f"job-name={name},batch.kubernetes.io/job-completion-index=0"
    return f"job-name={name}"


def _stream_logs(
    api: Any, job: dict[str, Any], out: IO[str], stop: threading.Event, poll_s: float
) -> None:
    """Follow the log of the job's main container (master / index 0) until it ends."""
    import urllib3
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core: Any = client.CoreV1Api(api)
    ns = job["metadata"].get("namespace", DEFAULT_NAMESPACE)
    container = job_container(job)
    seen: set[str] = set()
    while not stop.is_set():
        try:
            pods = core.list_namespaced_pod(
                ns, label_selector=_pod_selector(job), _request_timeout=_TIMEOUT
            ).items
        except ApiException:
            pods = []
        pod = next(
            (
                p
                for p in pods
                if p.status
                and p.status.phase in ("Running", "Succeeded", "Failed")
                and p.metadata.name not in seen
            ),
            None,
        )
        if pod is None:
            stop.wait(poll_s)
            continue
        try:
            resp = core.read_namespaced_pod_log(
                pod.metadata.name,
                ns,
                container=container,
                follow=True,
                _preload_content=False,
                # a training log can be quiet for long: an hour of silence ends the stream
                # (the status watch goes on; the outcome does not depend on the log)
                _request_timeout=(_TIMEOUT[0], _LOG_READ_TIMEOUT_S),
            )
        except ApiException:
            stop.wait(poll_s)  # still initialising: 400 until the container starts
            continue
        seen.add(pod.metadata.name)
        try:
            for chunk in resp.stream(4096):
                out.write(chunk.decode("utf-8", errors="replace"))
                out.flush()
                if stop.is_set():
                    break
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            out.write(f"\n[log stream of {pod.metadata.name} ended: {exc}]\n")
        finally:
            resp.release_conn()


def job_container(job: dict[str, Any]) -> str:
    if job["kind"] == "PyTorchJob":
        return "pytorch"
    return str(job["spec"]["template"]["spec"]["containers"][0]["name"])


def submit_and_watch(
    api: Any,
    objects: list[dict[str, Any]],
    *,
    timeout_s: float = 7 * 24 * 3600,
    poll_s: float = 2.0,
    log_out: IO[str] | None = None,
) -> JobOutcome:
    """Create ``objects`` (validated first) and follow the job among them to its end."""
    validate_all(objects)
    jobs = [o for o in objects if o["kind"] in ("Job", *_PLURALS)]
    if len(jobs) != 1:
        raise LaunchError(f"expected exactly one job among the objects, found {len(jobs)}")
    job = jobs[0]
    for obj in objects:
        create_object(api, obj)
    deadline = time.monotonic() + timeout_s
    stop = threading.Event()
    logs = threading.Thread(
        target=_stream_logs,
        args=(api, job, log_out or sys.stdout, stop, poll_s),
        name=f"logs-{job['metadata']['name']}",
        daemon=True,  # a log stream the server never closes must not keep the process alive
    )
    logs.start()
    try:
        ok, reason = _watch_job(api, job, deadline)
    finally:
        stop.set()
        logs.join(timeout=max(poll_s * 5, 5.0))
    return JobOutcome(job["metadata"]["name"], job["kind"], ok, reason)


# ---------------------------------------------------------------- the launch commands


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (configs in ConfigMaps, scripts) as readable ``|`` blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def _print_yaml(objects: list[dict[str, Any]], out: IO[str]) -> None:
    out.write(yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False, width=100))


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="job name (a DNS label)")
    parser.add_argument("--image", required=True, help="the codekiln container image")
    parser.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE, help=f"(default: {DEFAULT_NAMESPACE})"
    )
    parser.add_argument("--data-pvc", default="codekiln-data")
    parser.add_argument("--checkpoints-pvc", default="codekiln-checkpoints")
    parser.add_argument("--dry-run", action="store_true", help="print the YAML, submit nothing")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--context", default=None)
    parser.add_argument("--timeout-s", type=float, default=7 * 24 * 3600)
    parser.add_argument("--poll-s", type=float, default=2.0, help=argparse.SUPPRESS)


def launch_objects(
    build: Callable[[], list[dict[str, Any]]],
    args: argparse.Namespace,
    prog: str,
    cleanup: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> int:
    try:
        objects = build()
        validate_all(objects)
    except (ConfigError, DataError, ManifestError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        _print_yaml(objects, sys.stdout)
        return 0
    api = None
    try:
        api = api_client(args.kubeconfig, args.context)
        outcome = submit_and_watch(api, objects, timeout_s=args.timeout_s, poll_s=args.poll_s)
    except TrainError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if api is not None and cleanup is not None:
            for obj in cleanup(objects):
                delete_object(api, obj)
    print(json.dumps(outcome.to_json()), flush=True)
    return 0 if outcome.succeeded else 1
