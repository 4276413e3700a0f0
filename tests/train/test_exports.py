"""The public surface of codekiln.train is what we mean to export."""

from __future__ import annotations

import types

import codekiln.train
import codekiln.train.kube
import codekiln.train.launcher

#: codekiln.train's error tree, rooted at TrainError.
ERRORS = ["CheckpointError", "ConfigError", "DataError", "LaunchError", "ManifestError"]


def test_train_exports() -> None:
    """codekiln.train exports the config and the error tree, which has one root."""
    assert sorted(codekiln.train.__all__) == sorted(["TrainConfig", "TrainError", *ERRORS])
    for name in ERRORS:
        assert issubclass(getattr(codekiln.train, name), codekiln.train.TrainError)


def test_kube_exports() -> None:
    """codekiln.train.kube exports every public name it defines or imports, and only those (the
    job builders, rendering and validation; httpx's tests/test_exported_members.py)."""
    public = {
        name
        for name, value in vars(codekiln.train.kube).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(codekiln.train.kube.__all__) == sorted(public)
    assert {"build_eval_objects", "build_train_objects", "render_kustomization"} <= public
    assert {"validate_all", "validate_object"} <= public


def test_launcher_exports() -> None:
    """The launcher exports what the eval CLI and the stream runtime call."""
    assert {
        "eval_launch_main",
        "on_corpus_committed",
        "validate_launch_config",
        "train_launch_main",
    } <= set(codekiln.train.launcher.__all__)
    for name in codekiln.train.launcher.__all__:
        assert hasattr(codekiln.train.launcher, name)
