"""Settings of the Ray executor: one frozen object, built by the CLI and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from codekiln.stream.runtime.errors import ConfigError


@dataclass(frozen=True)
class RayOptions:
    """How a run is spread over a Ray cluster (the pipeline itself comes from the config file).

    ``address`` ``None`` starts a local Ray instance on this machine (bound to 127.0.0.1);
    ``"auto"`` joins the cluster this process runs in (a RayJob's driver pod); ``host:port``
    joins that cluster's GCS (``ray://host:10001`` goes through Ray Client).
    """

    address: str | None = None
    #: Most shard tasks in flight at once; 0 = the cluster's CPU count. The bench uses 1 and 2.
    parallelism: int = 0
    #: Files per shard when an input is a directory tree (JSONL / Parquet: one file per shard).
    shard_files: int = 500
    #: Hash partitions of the exact-dedup shuffle, and partitions per band group of the fuzzy
    #: shuffle. More partitions = smaller reducers: memory per reducer is about
    #: (distinct hashes or band entries) / partitions, whatever the size of the largest bucket.
    partitions: int = 8
    #: Deadline of one task (a shard, a reducer, the clustering): past it the task is cancelled
    #: and the run stops with an error instead of hanging. Resume with the same command.
    task_timeout_s: float = 3600.0
    #: Local instance only: CPUs and object store size (the object store spills to disk beyond).
    num_cpus: int | None = None
    object_store_mb: int = 400
    #: Retries of a task whose worker process or node died (Ray's lineage retry).
    max_retries: int = 3
    #: How long joining ``address`` may take before the run stops with an error.
    connect_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        checks = {
            "parallelism": self.parallelism >= 0,
            "shard_files": self.shard_files >= 1,
            "partitions": 1 <= self.partitions <= 4096,
            "task_timeout_s": self.task_timeout_s > 0,
            "object_store_mb": self.object_store_mb >= 75,
            "max_retries": self.max_retries >= 0,
            "connect_timeout_s": self.connect_timeout_s > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"ray: {name}: invalid value {getattr(self, name)!r}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ConfigError(f"ray: num_cpus: must be >= 1, got {self.num_cpus!r}")
