"""Render a kustomization in Python: the subset of Kustomize that codekiln's manifests use.

``kubectl kustomize`` is the reference (a test compares the two where kubectl is installed); this
renderer exists so tests and ``codekiln-train launch`` work on machines without it. Supported:
``resources`` (files and nested kustomization directories), ``namespace``, ``labels`` (without
selectors), ``images``, ``replicas``, ``patches`` in JSON 6902 form (with a ``target``), and
``configMapGenerator`` with ``files``/``literals`` when ``generatorOptions.disableNameSuffixHash``
is true. Anything else is an error naming the field, never a silent difference.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from codekiln.train.errors import ManifestError

_SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "replicas",
    "patches",
    "configMapGenerator",
    "generatorOptions",
}
_CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
}
_SCALABLE = {"Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"}
_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    for d in docs:
        if not isinstance(d, dict):
            raise ManifestError(f"{path}: a YAML document is not a mapping")
    return docs


def _kustomization_file(directory: Path) -> Path:
    for name in _KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise ManifestError(f"{directory}: no kustomization.yaml")


def render_kustomization(directory: str | Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize DIRECTORY`` would print (order aside)."""
    directory = Path(directory)
    kfile = _kustomization_file(directory)
    docs = load_yaml_documents(kfile)
    if len(docs) != 1:
        raise ManifestError(f"{kfile}: expected one YAML document")
    k = docs[0]
    unknown = sorted(set(k) - _SUPPORTED)
    if unknown:
        raise ManifestError(
            f"{kfile}: field(s) {', '.join(unknown)} not supported by the built-in renderer "
            "(use kubectl kustomize)"
        )
    objs: list[dict[str, Any]] = []
    for res in k.get("resources") or []:
        p = (directory / res).resolve()
        if p.is_dir():
            objs.extend(render_kustomization(p))
        elif p.is_file():
            objs.extend(copy.deepcopy(load_yaml_documents(p)))
        else:
            raise ManifestError(f"{kfile}: resource {res} not found")
    objs.extend(_generate_configmaps(directory, k, kfile))
    for patch in k.get("patches") or []:
        _apply_patch(directory, objs, patch, kfile)
    for rep in k.get("replicas") or []:
        hits = [
            o
            for o in objs
            if o["metadata"].get("name") == rep["name"] and o["kind"] in _SCALABLE and "spec" in o
        ]
        if not hits:
            raise ManifestError(f"{kfile}: replicas: no resource named {rep['name']}")
        for o in hits:
            o["spec"]["replicas"] = int(rep["count"])
    for img in k.get("images") or []:
        for o in objs:
            _set_images(o, img)
    for lab in k.get("labels") or []:
        if lab.get("includeSelectors") or lab.get("includeTemplates"):
            raise ManifestError(f"{kfile}: labels with selectors/templates not supported")
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab.get("pairs") or {})
    if k.get("namespace"):
        for o in objs:
            if o["kind"] not in _CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
    _check_unique(objs, kfile)
    return objs


def _generate_configmaps(directory: Path, k: dict[str, Any], kfile: Path) -> list[dict[str, Any]]:
    gens = k.get("configMapGenerator") or []
    if not gens:
        return []
    if not (k.get("generatorOptions") or {}).get("disableNameSuffixHash"):
        raise ManifestError(
            f"{kfile}: configMapGenerator needs generatorOptions.disableNameSuffixHash: true "
            "with the built-in renderer"
        )
    out = []
    for g in gens:
        if g.get("behavior", "create") != "create":
            raise ManifestError(f"{kfile}: configMapGenerator behavior {g['behavior']} unsupported")
        data: dict[str, str] = {}
        for f in g.get("files") or []:
            key, _, rel = f.partition("=") if "=" in f else (Path(f).name, "", f)
            data[key] = (directory / rel).read_text(encoding="utf-8")
        for lit in g.get("literals") or []:
            key, _, value = lit.partition("=")
            data[key] = value
        out.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": g["name"]}, "data": data}
        )
    return out


def _apply_patch(
    directory: Path, objs: list[dict[str, Any]], patch: dict[str, Any], kfile: Path
) -> None:
    target = patch.get("target") or {}
    if "path" in patch:
        ops = yaml.safe_load((directory / patch["path"]).read_text(encoding="utf-8"))
    else:
        ops = yaml.safe_load(patch.get("patch", ""))
    if not isinstance(ops, list) or not target:
        raise ManifestError(
            f"{kfile}: only JSON 6902 patches (a list of operations with a target) are "
            "supported by the built-in renderer"
        )
    hits = [o for o in objs if _matches(o, target)]
    if not hits:
        raise ManifestError(f"{kfile}: patch target {target} matches nothing")
    for o in hits:
        for op in ops:
            json_patch(o, op)


def _matches(o: dict[str, Any], target: dict[str, Any]) -> bool:
    if "kind" in target and o.get("kind") != target["kind"]:
        return False
    if "name" in target and o["metadata"].get("name") != target["name"]:
        return False
    group = o.get("apiVersion", "").rpartition("/")[0]
    return "group" not in target or target["group"] == group


def json_patch(doc: dict[str, Any], op: dict[str, Any]) -> None:
    """Apply one RFC 6902 ``add``/``replace``/``remove`` operation in place."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    if not parts:
        raise ManifestError("a JSON patch cannot replace the whole object")
    parent: Any = doc
    for p in parts[:-1]:
        try:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        except (KeyError, IndexError, ValueError) as exc:
            raise ManifestError(f"JSON patch path {op['path']} does not exist") from exc
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(idx, op["value"])
        elif kind == "replace":
            parent[idx] = op["value"]
        elif kind == "remove":
            del parent[idx]
        else:
            raise ManifestError(f"JSON patch op {kind} unsupported")
        return
    if kind in ("replace", "remove") and last not in parent:
        raise ManifestError(f"JSON patch {kind} {op['path']}: no such field")
    if kind in ("add", "replace"):
        parent[last] = op["value"]
    elif kind == "remove":
        del parent[last]
    else:
        raise ManifestError(f"JSON patch op {kind} unsupported")


def _set_images(node: Any, img: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key in ("containers", "initContainers"):
            for c in node.get(key) or []:
                if isinstance(c, dict) and "image" in c:
                    c["image"] = _new_image(c["image"], img)
        for v in node.values():
            _set_images(v, img)
    elif isinstance(node, list):
        for v in node:
            _set_images(v, img)


def _split_image(ref: str) -> tuple[str, str]:
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, "@" + digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon:]
    return ref, ""


def _new_image(ref: str, img: dict[str, Any]) -> str:
    name, suffix = _split_image(ref)
    if name != img["name"]:
        return ref
    name = str(img.get("newName", name))
    if "digest" in img:
        return f"{name}@{img['digest']}"
    if "newTag" in img:
        return f"{name}:{img['newTag']}"
    return name + suffix


def _check_unique(objs: list[dict[str, Any]], kfile: Path) -> None:
    seen = set()
    for o in objs:
        key = (
            o.get("apiVersion"),
            o.get("kind"),
            o["metadata"].get("namespace"),
            o["metadata"].get("name"),
        )
        if key in seen:
            raise ManifestError(f"{kfile}: duplicate resource {key}")
        seen.add(key)
