"""Offline validation of Kubernetes objects.

Built-in kinds are checked against the Kubernetes OpenAPI schemas shipped in
``kubernetes-validate`` (strict: unknown fields are errors). Custom kinds are checked against the
JSON Schemas in ``schemas/`` beside this file, looked up by ``apiVersion`` and ``kind``; they may
reference Kubernetes types through kubernetes-validate's ``_definitions.json``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from codekiln.train.errors import ManifestError

DEFAULT_K8S_VERSION = "1.32"
SCHEMA_DIR = Path(__file__).with_name("schemas")
_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


def crd_schema_path(api_version: str, kind: str) -> Path:
    group_version = api_version.replace("/", "_")
    return SCHEMA_DIR / f"{group_version}_{kind}.json"


def custom_kinds() -> list[tuple[str, str]]:
    """(apiVersion, kind) of every custom resource with a schema here."""
    out = []
    for p in sorted(SCHEMA_DIR.glob("*_*_*.json")):
        group, version, kind = p.stem.rsplit("_", 2)
        out.append((f"{group}/{version}", kind))
    return out


@functools.cache
def _definitions(version: str) -> dict[str, Any]:
    import kubernetes_validate.utils as kv

    full = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(version)]
    if not full:
        raise ManifestError(f"kubernetes-validate has no schemas for Kubernetes {version}")
    ref = resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{full[-1]}-local-strict/_definitions.json"
    )
    defs: dict[str, Any] = json.loads(ref.read_text())
    return defs


@functools.cache
def _crd_validator(api_version: str, kind: str, version: str) -> Any:
    import jsonschema
    from referencing import Registry, Resource

    path = crd_schema_path(api_version, kind)
    schema = json.loads(path.read_text())
    registry: Registry[Any] = Registry().with_resources(
        [
            (_DEFINITIONS_ID, Resource.from_contents(_definitions(version))),
            (schema["$id"], Resource.from_contents(schema)),
        ]
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_object(obj: dict[str, Any], *, k8s_version: str = DEFAULT_K8S_VERSION) -> None:
    """Raise :class:`ManifestError` naming the object and the failing path when invalid."""
    import jsonschema
    import kubernetes_validate.utils as kv

    if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
        raise ManifestError(f"not a Kubernetes object (no apiVersion/kind): {str(obj)[:200]}")
    api_version, kind = obj["apiVersion"], obj["kind"]
    name = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
    if crd_schema_path(api_version, kind).is_file():
        validator = _crd_validator(api_version, kind, k8s_version)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            path = ".".join(str(p) for p in e.absolute_path) or "<root>"
            raise ManifestError(f"{name} ({api_version}): {path}: {e.message}")
        return
    try:
        kv.validate(obj, k8s_version, strict=True)
    except kv.SchemaNotFoundError as exc:
        raise ManifestError(
            f"{name}: no schema for apiVersion {api_version} kind {kind} (built-in kinds come "
            f"from kubernetes-validate; add a CRD schema as {crd_schema_path(api_version, kind)})"
        ) from exc
    except jsonschema.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path) or "<root>"
        raise ManifestError(f"{name} ({api_version}): {path}: {exc.message}") from exc


def validate_all(objs: Iterable[dict[str, Any]], *, k8s_version: str = DEFAULT_K8S_VERSION) -> int:
    n = 0
    for obj in objs:
        validate_object(obj, k8s_version=k8s_version)
        n += 1
    return n
