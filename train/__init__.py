"""codekiln.train: pretrain / anneal / SFT trainer, DeepSpeed configs, Kubernetes launchers."""

from codekiln.train._errors import (
    CheckpointError,
    ConfigError,
    DataError,
    LaunchError,
    ManifestError,
    TrainError,
)
from codekiln.train.config import TrainConfig

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "LaunchError",
    "ManifestError",
    "TrainConfig",
    "TrainError",
]
