"""codekiln.train: pretrain / anneal / SFT trainer, DeepSpeed configs, Kubernetes launchers."""

from codekiln.train.config import TrainConfig
from codekiln.train.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    LaunchError,
    ManifestError,
    TrainError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "LaunchError",
    "ManifestError",
    "TrainConfig",
    "TrainError",
]
