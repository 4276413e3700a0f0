"""The end of the pipeline's flow: train on a committed corpus, then evaluate the checkpoint.

:mod:`codekiln.flow` calls :func:`on_corpus_committed` after a corpus commits when its config has
a ``launch:`` section, and :func:`validate_launch_config` to check that section before any work
starts. The jobs are rendered by :mod:`codekiln.train.kube` and run by
:mod:`codekiln.train.submit`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from codekiln.train.errors import ConfigError, DataError, LaunchError
from codekiln.train.kube import (
    EvalJobParams,
    TrainJobParams,
    Volumes,
    build_eval_objects,
    build_train_objects,
    validate_all,
)
from codekiln.train.submit import api_client, delete_object, submit_and_watch

__all__ = ["on_corpus_committed", "validate_launch_config"]


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
# The keys of the launch sections that fill a job parameter as they are, by the parameter's
# name; one left out keeps the parameter's default (codekiln.train.kube, one definition).
_TRAIN_FIELDS = {"nodes": "nodes", "gpus": "gpus_per_node", "kind": "kind"}
_EVAL_FIELDS = {
    "model_name": "model_name",
    "datasets": "datasets",
    "mode": "mode",
    "samples": "samples",
    "temperature": "temperature",
    "vllm_image": "vllm_image",
    "gpus": "vllm_gpus",
    "out_dir": "out_dir",
}
_VOLUME_FIELDS = {"data_pvc": "data_pvc", "checkpoints_pvc": "checkpoints_pvc"}
_TRAIN_KEYS = {"config", "name", "tokenizer_path", "checkpoint_dir", *_TRAIN_FIELDS}
_EVAL_KEYS = {"name", *_EVAL_FIELDS}


def _check_keys(raw: Any, known: set[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return raw


def _given(section: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {field: section[key] for key, field in fields.items() if key in section}


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
    volumes = Volumes(**_given(launch, _VOLUME_FIELDS))
    tparams = TrainJobParams(
        name=name,
        image=launch["image"],
        train_config=cfg,
        volumes=volumes,
        **_given(launch, {"namespace": "namespace"}),
        **_given(train, _TRAIN_FIELDS),
    )
    tparams.validated_config()
    eparams = None
    if launch.get("eval") is not None:
        ev = _check_keys(launch["eval"], _EVAL_KEYS, "launch.eval")
        given = _given(ev, _EVAL_FIELDS)
        if "datasets" in given:
            given["datasets"] = tuple(given["datasets"])
        eparams = EvalJobParams(
            name=ev.get("name") or f"codekiln-eval-{run_id}",
            image=launch["image"],
            namespace=tparams.namespace,
            model_path=f"{ckpt}/export",
            volumes=volumes,
            **given,
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
