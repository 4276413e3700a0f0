"""Submit training and evaluation jobs to Kubernetes, watch them, stream their logs.

``codekiln-train launch`` and ``codekiln-eval launch`` (:func:`eval_launch_main`) render the
objects from :mod:`codekiln.train.kube._objects`, validate every one offline, then either print
them (``--dry-run``) or create them with the official ``kubernetes`` client, follow the job's
status with a watch, stream the main pod's log, and exit with the job's outcome.

:func:`on_corpus_committed` is the end of the pipeline's flow: the stream runtime calls it after a
corpus commits when its config has a ``launch:`` section; it trains on the corpus and, when
training succeeds, evaluates the trained checkpoint. :func:`validate_launch_config` checks that
section before any work starts.

Exit codes of the launch commands: 0 the job succeeded, 1 it failed (or timed out, or the API
refused it), 2 bad input.
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
from codekiln.train.kube import (
    DEFAULT_NAMESPACE,
    EVAL_DATASETS,
    TRAIN_KINDS,
    VLLM_IMAGE,
    EvalJobParams,
    TrainJobParams,
    Volumes,
    build_eval_objects,
    build_train_objects,
    validate_all,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "JobOutcome",
    "eval_launch_main",
    "on_corpus_committed",
    "submit_and_watch",
    "train_launch_main",
    "validate_launch_config",
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


# ---------------------------------------------------------------- CLIs


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (configs in ConfigMaps, scripts) as readable ``|`` blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def _print_yaml(objects: list[dict[str, Any]], out: IO[str]) -> None:
    out.write(yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False, width=100))


def _common_args(parser: argparse.ArgumentParser) -> None:
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


def _train_params(args: argparse.Namespace) -> TrainJobParams:
    try:
        raw = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read training config {args.config}: {exc}") from exc
    for key, value in (("corpus_dir", args.corpus_dir), ("tokenizer_path", args.tokenizer)):
        if value:
            raw.setdefault("data", {})[key] = value
    if args.checkpoint_dir:
        raw.setdefault("checkpoint", {})["dir"] = args.checkpoint_dir
    return TrainJobParams(
        name=args.name,
        image=args.image,
        train_config=raw,
        namespace=args.namespace,
        nodes=args.nodes,
        gpus_per_node=args.gpus,
        kind=args.kind,
        volumes=Volumes(args.data_pvc, args.checkpoints_pvc),
    )


def _launch(
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


def train_launch_main(argv: list[str] | None = None) -> int:
    """``codekiln-train launch``."""
    parser = argparse.ArgumentParser(
        prog="codekiln-train launch",
        description="Render, submit and watch a training job (PyTorchJob or Indexed Job).",
    )
    _common_args(parser)
    parser.add_argument("--config", required=True, help="training config YAML (pod paths)")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus", type=int, default=8, help="GPUs per node (0: CPU only)")
    parser.add_argument("--kind", choices=TRAIN_KINDS, default="pytorchjob")
    parser.add_argument("--corpus-dir", default=None, help="overrides data.corpus_dir")
    parser.add_argument("--tokenizer", default=None, help="overrides data.tokenizer_path")
    parser.add_argument("--checkpoint-dir", default=None, help="overrides checkpoint.dir")
    args = parser.parse_args(argv)
    return _launch(lambda: build_train_objects(_train_params(args)), args, parser.prog)


def _eval_params(args: argparse.Namespace) -> EvalJobParams:
    return EvalJobParams(
        name=args.name,
        image=args.image,
        namespace=args.namespace,
        model_path=args.model_path,
        endpoint=args.endpoint,
        model_name=args.model,
        datasets=tuple(args.dataset or ("humaneval+", "mbpp+")),
        mode=args.mode,
        samples=args.samples,
        temperature=args.temperature,
        vllm_image=args.vllm_image,
        vllm_gpus=args.gpus,
        out_dir=args.out_dir,
        volumes=Volumes(args.data_pvc, args.checkpoints_pvc),
    )


def eval_launch_main(argv: list[str] | None = None) -> int:
    """``codekiln-eval launch``: vLLM serving a checkpoint (or an endpoint) + the eval Job."""
    parser = argparse.ArgumentParser(
        prog="codekiln-eval launch",
        description="Serve a checkpoint with vLLM and run the evaluation Job against it.",
    )
    _common_args(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-path", help="checkpoint dir on the checkpoints volume")
    where.add_argument("--endpoint", help="an existing OpenAI-compatible endpoint (…/v1)")
    parser.add_argument("--model", default="codekiln", help="served model name")
    parser.add_argument("--dataset", action="append", choices=EVAL_DATASETS)
    parser.add_argument("--mode", choices=("base", "instruct"), default="base")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs for the vLLM server")
    parser.add_argument("--vllm-image", default=VLLM_IMAGE)
    parser.add_argument("--out-dir", default="/data/eval")
    args = parser.parse_args(argv)
    return _launch(
        lambda: build_eval_objects(_eval_params(args)),
        args,
        parser.prog,
        cleanup=lambda objs: [o for o in objs if o["kind"] in ("Deployment", "Service")],
    )


# ---------------------------------------------------------------- corpus -> jobs


_LAUNCH_KEYS = {
    "kubeconfig",
    "context",
    "namespace",
    "image",
    "train",
    "eval",
    "timeout_s",
    "poll_s",
    "data_pvc",
    "checkpoints_pvc",
    "corpus_mount",
    "dry_run",
}
_TRAIN_KEYS = {"config", "nodes", "gpus", "kind", "name", "tokenizer_path", "checkpoint_dir"}
_EVAL_KEYS = {
    "datasets",
    "gpus",
    "mode",
    "samples",
    "temperature",
    "vllm_image",
    "name",
    "model_name",
    "out_dir",
}


def _check_keys(raw: Any, known: set[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return raw


def _plan(
    launch: dict[str, Any], corpus_dir: str, run_id: str
) -> tuple[TrainJobParams, EvalJobParams | None]:
    launch = _check_keys(launch, _LAUNCH_KEYS, "launch")
    train = _check_keys(launch.get("train"), _TRAIN_KEYS, "launch.train")
    if "image" not in launch:
        raise ConfigError("launch.image: the codekiln container image is required")
    if "config" not in train:
        raise ConfigError(
            "launch.train.config: a training config (file path or mapping) is required"
        )
    cfg = train["config"]
    if isinstance(cfg, str):
        try:
            cfg = yaml.safe_load(Path(cfg).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"launch.train.config: cannot read {train['config']}: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ConfigError("launch.train.config: expected a mapping or a YAML file")
    cfg = json.loads(json.dumps(cfg))  # a private deep copy
    cfg.setdefault("data", {})["corpus_dir"] = corpus_dir
    if "tokenizer_path" in train:
        cfg["data"]["tokenizer_path"] = train["tokenizer_path"]
    name = train.get("name") or f"codekiln-train-{run_id}"
    ckpt = train.get("checkpoint_dir") or f"/checkpoints/{name}"
    cfg.setdefault("checkpoint", {})["dir"] = ckpt
    cfg["checkpoint"]["export_dir"] = f"{ckpt}/export"
    volumes = Volumes(
        launch.get("data_pvc", "codekiln-data"),
        launch.get("checkpoints_pvc", "codekiln-checkpoints"),
    )
    tparams = TrainJobParams(
        name=name,
        image=launch["image"],
        train_config=cfg,
        namespace=launch.get("namespace", DEFAULT_NAMESPACE),
        nodes=train.get("nodes", 1),
        gpus_per_node=train.get("gpus", 8),
        kind=train.get("kind", "pytorchjob"),
        volumes=volumes,
    )
    tparams.validated_config()
    eparams = None
    if launch.get("eval") is not None:
        ev = _check_keys(launch["eval"], _EVAL_KEYS, "launch.eval")
        eparams = EvalJobParams(
            name=ev.get("name") or f"codekiln-eval-{run_id}",
            image=launch["image"],
            namespace=tparams.namespace,
            model_path=f"{ckpt}/export",
            model_name=ev.get("model_name", "codekiln"),
            datasets=tuple(ev.get("datasets", ("humaneval+", "mbpp+"))),
            mode=ev.get("mode", "base"),
            samples=ev.get("samples", 1),
            temperature=ev.get("temperature", 0.0),
            vllm_image=ev.get("vllm_image", VLLM_IMAGE),
            vllm_gpus=ev.get("gpus", 1),
            out_dir=ev.get("out_dir", "/data/eval"),
            volumes=volumes,
        )
        eparams.validate()
    return tparams, eparams


def _job_kind(p: TrainJobParams) -> str:
    return "PyTorchJob" if p.kind == "pytorchjob" else "Job"


def _has_records(corpus: Path) -> bool:
    """False only when the local corpus folder exists and holds no record at all."""
    from codekiln.train.data import corpus_shards, iter_records

    if not corpus.is_dir():
        return True  # not visible from here (a corpus_mount elsewhere): let the job decide
    try:
        shards = corpus_shards(corpus)
    except DataError:
        return False
    stats: dict[str, int] = {}
    return any(next(iter_records(s, stats), None) is not None for s in shards)


def validate_launch_config(launch_config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` if the pipeline's ``launch:`` section cannot work.

    Called by the stream runtime before any work starts; the corpus path is a placeholder here.
    """
    tparams, eparams = _plan(launch_config, "/data/out/corpus", "check")
    validate_all(build_train_objects(tparams))
    if eparams is not None:
        validate_all(build_eval_objects(eparams))


def on_corpus_committed(manifest_path: str | Path, launch_config: dict[str, Any]) -> dict[str, Any]:
    """Train on the committed corpus, then evaluate the trained checkpoint.

    ``manifest_path`` is the run's ``manifest.json``; the corpus is ``corpus/`` beside it, seen in
    the pods under ``launch_config["corpus_mount"]`` (default: the same path, for a run whose
    output directory is on the shared data volume). Returns ``{"train": {...}, "eval": {...}}``
    with each job's name, kind and outcome (``eval`` is ``None`` when not configured, and
    ``{"outcome": "skipped"}`` when training failed). Blocks until the jobs end: call it from a
    worker thread, not an event loop.
    """
    manifest_path = Path(manifest_path)
    manifest: dict[str, Any] = {}
    if manifest_path.is_file():  # the runtime may call before it writes the final manifest
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise LaunchError(f"cannot read the run manifest {manifest_path}: {exc}") from exc
    run_id = str(manifest.get("run_id") or int(time.time()))
    run_id = "".join(c for c in run_id.lower() if c.isalnum())[:12] or "run"
    corpus = launch_config.get("corpus_mount") or str(manifest_path.parent / "corpus")
    tparams, eparams = _plan(launch_config, corpus, run_id)
    if not _has_records(manifest_path.parent / "corpus"):
        skipped = {"outcome": "skipped", "reason": "the corpus has no records"}
        return {
            "train": {"name": tparams.name, "kind": _job_kind(tparams), **skipped},
            "eval": None if eparams is None else {"name": eparams.name, "kind": "Job", **skipped},
        }
    train_objs = build_train_objects(tparams)
    eval_objs = build_eval_objects(eparams) if eparams is not None else None
    result: dict[str, Any] = {"train": None, "eval": None}
    if launch_config.get("dry_run"):
        result["train"] = {
            "name": tparams.name,
            "kind": train_objs[-1]["kind"],
            "outcome": "dry-run",
        }
        if eparams is not None:
            result["eval"] = {"name": eparams.name, "kind": "Job", "outcome": "dry-run"}
        return result
    api = api_client(launch_config.get("kubeconfig"), launch_config.get("context"))
    timeout_s = float(launch_config.get("timeout_s", 7 * 24 * 3600))
    poll_s = float(launch_config.get("poll_s", 2.0))
    trained = submit_and_watch(api, train_objs, timeout_s=timeout_s, poll_s=poll_s)
    result["train"] = trained.to_json()
    if eval_objs is None:
        return result
    if not trained.succeeded:
        result["eval"] = {
            "name": eparams.name if eparams else "",
            "kind": "Job",
            "outcome": "skipped",
            "reason": "training did not succeed",
        }
        return result
    try:
        evaluated = submit_and_watch(api, eval_objs, timeout_s=timeout_s, poll_s=poll_s)
    finally:
        for obj in eval_objs:
            if obj["kind"] in ("Deployment", "Service"):
                delete_object(api, obj)
    result["eval"] = evaluated.to_json()
    return result
