"""The built-in kustomize renderer: supported features work, unsupported ones fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from codekiln.train import ManifestError
from codekiln.train.kube import render_kustomization
from codekiln.train.kube._kustomize import json_patch


def _write(d: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return d


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n"


def test_strategic_merge_patch_is_refused(tmp_path: Path) -> None:
    """A strategic-merge patch is an explicit error, not a silent no-op."""
    _write(
        tmp_path,
        {
            "cm.yaml": CM,
            "kustomization.yaml": "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap}\n"
            "  patch: |-\n    data: {k: w}\n",
        },
    )
    with pytest.raises(ManifestError, match="JSON 6902"):
        render_kustomization(tmp_path)


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    """A kustomization field the renderer does not implement is named in the error."""
    _write(
        tmp_path, {"cm.yaml": CM, "kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: x-\n"}
    )
    with pytest.raises(ManifestError, match="namePrefix"):
        render_kustomization(tmp_path)


def test_generator_needs_fixed_names(tmp_path: Path) -> None:
    """configMapGenerator without disableNameSuffixHash is refused (hash names not implemented)."""
    _write(
        tmp_path,
        {"f.txt": "x", "kustomization.yaml": "configMapGenerator:\n- name: c\n  files: [f.txt]\n"},
    )
    with pytest.raises(ManifestError, match="disableNameSuffixHash"):
        render_kustomization(tmp_path)


def test_json_patch_ops() -> None:
    """add (incl. list append), replace and remove behave as RFC 6902 says."""
    doc = {"a": {"b": [1, 2]}, "c": 1}
    json_patch(doc, {"op": "add", "path": "/a/b/-", "value": 3})
    json_patch(doc, {"op": "replace", "path": "/c", "value": 2})
    json_patch(doc, {"op": "remove", "path": "/a/b/0"})
    json_patch(doc, {"op": "add", "path": "/a~1x", "value": 0})
    assert doc == {"a": {"b": [2, 3]}, "c": 2, "a/x": 0}


def test_replace_missing_path() -> None:
    """Replacing a field that does not exist is an error."""
    with pytest.raises(ManifestError, match="no such field"):
        json_patch({"a": {}}, {"op": "replace", "path": "/a/b", "value": 1})
