"""The pipeline on Ray: the same stages and config file, sharded over a cluster.

``codekiln-stream run INPUT... --out DIR --executor ray [--address ADDR]`` runs the configured
pipeline as Ray tasks over input shards, with exact and fuzzy dedup as distributed shuffles, and
writes the same output (same surviving record ids) as the single-machine runtime. See
``docs/ray.md``. Importing this package imports neither Ray nor the stages; running does.

Only what is Ray's lives here: the driver (:mod:`.job`: remote tasks, object refs, waits with
deadlines), the cluster (``_cluster``), the command-line options. The plan, the work of each
task and the shard files are :mod:`codekiln.stream.sharded`'s; the dedup steps over shards are
the stages' own (:mod:`codekiln.stream.dedup`); the run protocol is the runtime's
(:mod:`codekiln.stream.runtime.protocol`).
"""

from __future__ import annotations

from codekiln.stream.lazy import lazy_getattr

__all__ = ["RayOptions", "run_ray_job"]

# Lazy: the CLI imports codekiln.stream.ray.cli to add its options to every `run`.
__getattr__ = lazy_getattr(
    __name__,
    {"run_ray_job": "codekiln.stream.ray.job", "RayOptions": "codekiln.stream.ray.options"},
)
