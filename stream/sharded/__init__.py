"""A pipeline run shard by shard, for an executor that runs tasks in parallel (the Ray
executor, :mod:`codekiln.stream.ray`, is the one there is; it adds only what is Ray's: remote
tasks, object refs, the cluster).

- :mod:`.plan`: the input cut into shards and the pipeline cut into steps by each stage's
  declared scope (map steps, the global dedup steps, serial steps);
- :mod:`.tasks`: the work of one task (a map step over one shard, a global step's per-shard
  and per-partition parts, a serial step), idempotent, committing its files then a marker;
- :mod:`.files`: the intermediate shard files and markers, committed atomically;
- :mod:`.collect`: the finished run as the checkpoint the local runtime would leave, for the
  run protocol's commit (:func:`codekiln.stream.runtime.protocol.commit_run`).

The global steps' algorithms are the stages' own (:mod:`codekiln.stream.dedup.exact_shards`,
:mod:`codekiln.stream.dedup.fuzzy_shards`).
"""
