"""The public surface of codekiln.train is what we mean to export."""

from __future__ import annotations

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
    """codekiln.train.kube exports the job builders, rendering and validation."""
    assert sorted(codekiln.train.kube.__all__) == [
        "DEFAULT_NAMESPACE",
        "EVAL_DATASETS",
        "EvalJobParams",
        "TRAIN_KINDS",
        "TrainJobParams",
        "VLLM_IMAGE",
        "Volumes",
        "build_eval_objects",
        "build_train_objects",
        "custom_kinds",
        "render_kustomization",
        "validate_all",
        "validate_object",
    ]


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
