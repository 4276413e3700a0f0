"""Kubernetes support for codekiln: manifest builders, offline validation, kustomize rendering."""

from codekiln.train.kube._kustomize import render_kustomization
from codekiln.train.kube._schema import custom_kinds, validate_all, validate_object

__all__ = ["custom_kinds", "render_kustomization", "validate_all", "validate_object"]
