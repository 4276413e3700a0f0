"""Kubernetes support for codekiln: manifest builders, offline validation, kustomize rendering."""

from codekiln.train.kube._kustomize import render_kustomization
from codekiln.train.kube._objects import (
    DEFAULT_NAMESPACE,
    EVAL_DATASETS,
    TRAIN_KINDS,
    VLLM_IMAGE,
    EvalJobParams,
    TrainJobParams,
    Volumes,
    build_eval_objects,
    build_train_objects,
)
from codekiln.train.kube._schema import custom_kinds, validate_all, validate_object

__all__ = [
    "DEFAULT_NAMESPACE",
    "EVAL_DATASETS",
    "TRAIN_KINDS",
    "VLLM_IMAGE",
    "EvalJobParams",
    "TrainJobParams",
    "Volumes",
    "build_eval_objects",
    "build_train_objects",
    "custom_kinds",
    "render_kustomization",
    "validate_all",
    "validate_object",
]
