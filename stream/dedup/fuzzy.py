"""Fuzzy dedup: MinHash (word 5-grams, 2048 permutations) + LSH, file or repository level.

Two stages, so that the CPU-heavy part runs in the process pool and the index in one place:

- :class:`MinHashStage` (``minhash``, ``cpu_bound``): shingles and signatures of a batch
  (:mod:`.minhash`), attached to each record as band keys (or, for repository level or the
  datasketch index, the whole signature). Pure, picklable, no state.
- :class:`FuzzyDedupStage` (``fuzzy_dedup``, ``stateful``): indexes them, clusters at the end of
  the stream, and keeps one survivor per cluster by the same priority as exact dedup. If a
  record arrives without the MinHash it needs (no ``minhash`` stage before it, or one configured
  differently), it computes it in-process: correct, only slower (counted in the report as
  ``signatures_computed_here``).

Both take the same parameters (``preset``, ``num_perm``, ``bands``, ``rows``, ``ngram``,
``seed``, ``level``, ``index``); give both the same values.

One file on purpose: the two stages share their parameters, fingerprint and record meta keys
(:class:`_MinHashConfig`), and read best side by side. The global step's parts every executor
uses are the stage's ``mark_*``, ``file_report`` and ``repository_report`` methods and
:mod:`.clusters`; its form over shards is :mod:`.fuzzy_shards`.

State and memory: held records and band keys are appended to spill files (their committed
lengths are the checkpoint, see :mod:`.spill`); memory while streaming is constant at file level
(plus the datasketch index, when chosen) and one 8 KiB signature per repository at repository
level. Clusters are computed at :meth:`FuzzyDedupStage.finish` from the band keys (a sort per
band and scipy's connected components); the small survivor-key file then gives the best priority
key of each cluster, and the held records are streamed out once. Clusters are transitive
(connected components), like datatrove's and NeMo Curator's.
"""

from __future__ import annotations

import base64
import inspect
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
from codekiln.stream.dedup.clusters import (
    ClusterInfo,
    HeldCounts,
    RepoClusters,
    RepoTable,
    Survivors,
    cluster_sizes,
    repository_of,
)
from codekiln.stream.dedup.lsh import DatasketchIndex, cluster_labels, components
from codekiln.stream.dedup.minhash import (
    PRESETS,
    MinHashParams,
    band_keys,
    signatures,
)
from codekiln.stream.dedup.priority import DEFAULT_PRIORITY, parse_priority, sort_key
from codekiln.stream.dedup.spill import SpillingStage, held_entry, held_fields, read_held
from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage

#: Held records (:func:`~.spill.held_entry` layout), in arrival order.
RECORDS = "records.bin"
#: Private meta keys carrying MinHash from MinHashStage to FuzzyDedupStage (removed on the way).
META_FP = "_minhash_fp"
META_BANDS = "_minhash_bands"
META_SIG = "_minhash_sig"

#: Bumped when the spill layout changes: a checkpoint of another layout is refused.
SPILL_FORMAT = 2

LEVELS = ("file", "repository")
INDEXES = ("bands", "datasketch")


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field}: must be one of {list(choices)}, got {value!r}")


class _MinHashConfig:
    """Parameters shared by both stages, and the fingerprint that says what a record carries.

    :meth:`_configure`'s keyword parameters are both stages' MinHash options, defined here
    once; each stage's ``__init__`` takes them as ``**minhash`` and declares them as its own
    (:func:`_takes_minhash_options`)."""

    def _configure(
        self,
        *,
        preset: str | None = "opencoder",
        num_perm: int | None = None,
        bands: int | None = None,
        rows: int | None = None,
        ngram: int | None = None,
        seed: int | None = None,
        level: str = "file",
        index: str = "bands",
    ) -> None:
        # A preset, with any field given explicitly overriding it.
        if preset is None:
            base = MinHashParams()
        elif preset in PRESETS:
            base = PRESETS[preset]
        else:
            raise ValueError(f"minhash.preset: unknown preset {preset!r}; known: {sorted(PRESETS)}")
        self.params = MinHashParams(
            num_perm=base.num_perm if num_perm is None else num_perm,
            bands=base.bands if bands is None else bands,
            rows=base.rows if rows is None else rows,
            ngram=base.ngram if ngram is None else ngram,
            seed=base.seed if seed is None else seed,
        )
        _check_choice("fuzzy_dedup.level", level, LEVELS)
        _check_choice("fuzzy_dedup.index", index, INDEXES)
        self.level = level
        self.index = index
        #: Whole signatures are needed to merge files into a repository, or by datasketch.
        self.ships_signature = level == "repository" or index == "datasketch"
        payload = "sig" if self.ships_signature else "bands"
        self.fingerprint = f"{self.params.fingerprint()}:{payload}"

    def annotate(self, records: list[Record]) -> None:
        """Attach MinHash to each live record (band keys, or the whole signature)."""
        if not records:
            return
        sig, has = signatures([r.text for r in records], self.params)
        keys = None if self.ships_signature else band_keys(sig, self.params)
        for i, record in enumerate(records):
            record.meta[META_FP] = self.fingerprint
            if not has[i]:
                record.meta[META_BANDS] = None
                record.meta[META_SIG] = None
            elif keys is not None:
                record.meta[META_BANDS] = keys[i].tolist()
            else:
                record.meta[META_SIG] = base64.b64encode(sig[i].tobytes()).decode("ascii")


InitT = TypeVar("InitT", bound=Callable[..., None])


def _takes_minhash_options(init: InitT) -> InitT:
    """Declare the MinHash options (:meth:`_MinHashConfig._configure`'s) in the signature and
    annotations of a stage's ``__init__`` that passes them on as ``**minhash``: after ``self``,
    before the stage's own keyword options. The config checker reads both
    (:func:`codekiln.stream.config.stage_option_names`), so every option of both stages is
    still checked by name and type, from one definition."""
    shared = inspect.signature(_MinHashConfig._configure).parameters
    own = inspect.signature(init).parameters
    kw_only = inspect.Parameter.KEYWORD_ONLY
    params = [
        own["self"],
        *(p for name, p in shared.items() if name != "self"),
        *(p for p in own.values() if p.kind is kw_only),
    ]
    setattr(init, "__signature__", inspect.Signature(params))  # noqa: B010 - not a typed name
    init.__annotations__ = {**_MinHashConfig._configure.__annotations__, **init.__annotations__}
    return init


class MinHashStage(_MinHashConfig, BatchStage):
    """Shingles and MinHash signatures of a batch, in the process pool."""

    name: ClassVar[str] = "minhash"
    cpu_bound: ClassVar[bool] = True

    @_takes_minhash_options
    def __init__(self, **minhash: Any) -> None:
        self._configure(**minhash)

    @classmethod
    def preload(cls) -> None:
        import rensa  # noqa: F401 - its extension, imported on first use otherwise

    def process_batch(self, batch: list[Record]) -> list[Record]:
        self.annotate([r for r in batch if r.drop_reason is None])
        return batch


class FuzzyDedupStage(_MinHashConfig, SpillingStage):
    """MinHash + LSH near-duplicate removal with deterministic, priority-chosen survivors."""

    name: ClassVar[str] = "fuzzy_dedup"
    global_step: ClassVar[str | None] = "fuzzy"

    @_takes_minhash_options
    def __init__(
        self,
        *,
        storage_config: dict[str, Any] | None = None,
        priority: Iterable[str] = DEFAULT_PRIORITY,
        spill_dir: str | None = None,
        top_clusters: int = 20,
        **minhash: Any,
    ) -> None:
        self._configure(**minhash)
        index, level = self.index, self.level
        self.priority = parse_priority(priority)
        self.storage_config = storage_config
        if storage_config is not None and index != "datasketch":
            raise ValueError("fuzzy_dedup.storage_config: only used with index: datasketch")
        if index == "datasketch" and level == "repository":
            raise ValueError(
                "fuzzy_dedup.index: datasketch works at file level only (a repository's "
                "signature is complete only at the end of the stream); use index: bands"
            )
        self.top_clusters = top_clusters
        self._spill_to(spill_dir, "fuzzy_dedup")
        self._held = 0
        self._no_shingles = 0
        self._computed_here = 0
        self._repos = RepoTable(self.priority)
        self._ds: DatasketchIndex | None = (
            DatasketchIndex(self.params, storage_config) if index == "datasketch" else None
        )
        self._report: dict[str, Any] = {}

    # -- streaming ---------------------------------------------------------------------------

    def process_batch(self, batch: list[Record]) -> list[Record]:
        passed: list[Record] = []
        self._computed_here += self.annotate_missing(batch)
        prepared: list[tuple[Record, Any, Any, tuple[bytes, bytes, bytes], bytes | None]] = []
        for record in batch:
            bands, sig_b64 = take_minhash(record)
            if record.drop_reason is not None:
                passed.append(record)
                continue
            if self.mark_without_shingles(record, bands, sig_b64):
                self._no_shingles += 1
                passed.append(record)
                continue
            held_as = self.held_parts(record, bands, sig_b64)
            if held_as is None:  # quarantined
                passed.append(record)
                continue
            prepared.append((record, *held_as))
        held: list[bytes] = []
        for record, sig, keys, entry, prio_bytes in prepared:
            if self.level == "repository":
                self._repos.add(record, sig)
            elif self._ds is not None:
                for other in self._ds.query_insert(self._held, sig):
                    if other != self._held:
                        edge = np.array([self._held, other], "<i8").tobytes()
                        self._spill.append("edges.bin", edge)
            else:
                self._spill.append("keys.bin", keys)
            held += entry
            if prio_bytes is not None:
                # Survivor keys apart from the records, so picking survivors skips the texts.
                self._spill.append("prio.pkl", prio_bytes)
            self._held += 1
        self._spill.append_parts(RECORDS, held)
        return passed

    # -- the global step's parts every executor uses (over shards: see .fuzzy_shards) ---------

    def annotate_missing(self, records: list[Record]) -> int:
        """MinHash for the live records that came without this stage's (no ``minhash`` stage
        before, or one configured differently); one bad text does not sink its batch: a
        record whose MinHash fails is quarantined in place (``fuzzy_dedup:error:<type>``).
        Returns how many were computed here (the report's ``signatures_computed_here``)."""
        missing = [
            r for r in records if r.drop_reason is None and r.meta.get(META_FP) != self.fingerprint
        ]
        if not missing:
            return 0
        try:
            self.annotate(missing)
        except Exception:  # find the culprit(s): each record alone
            for record in missing:
                try:
                    self.annotate([record])
                except Exception as exc:
                    self._quarantine(record, exc)
        return len(missing)

    def held_parts(
        self, record: Record, bands: Any, sig_b64: Any
    ) -> tuple[Any, bytes | None, tuple[bytes, bytes, bytes], bytes | None] | None:
        """A live record with shingles as the stage holds it (signature, band keys, held
        entry, pickled survivor key), from the MinHash it carried; ``None`` when it cannot be
        held (malformed MinHash, fields that cannot be pickled, no priority key): then it is
        quarantined in place, the run goes on."""
        try:
            sig = None if sig_b64 is None else _decode_sig(sig_b64, self.params.num_perm)
            keys = None if bands is None else _encode_bands(bands, self.params.bands)
            entry = held_entry(held_fields(record), record.text.encode("utf-8", "surrogatepass"))
            prio_bytes = None
            if self.level == "file":
                prio_bytes = _pickle((sort_key(record, self.priority), record.id, record.path))
        except Exception as exc:  # quarantine the record, the run goes on
            self._quarantine(record, exc)
            return None
        return sig, keys, entry, prio_bytes

    def admit(self, records: list[Record]) -> int:
        """The stage's per-record steps before its global step, for a shard executor (in the
        map step before the shuffle): MinHash where missing (:meth:`annotate_missing`), then
        :meth:`held_parts`'s checks on every live record with shingles. Each record the stage
        would quarantine in :meth:`process_batch` is quarantined here, with the same reason;
        the MinHash stays in meta for the shuffle. Returns the signatures computed here."""
        computed = self.annotate_missing(records)
        for record in records:
            if record.drop_reason is not None:
                continue
            bands, sig_b64 = record.meta.get(META_BANDS), record.meta.get(META_SIG)
            if not self.without_shingles(bands, sig_b64):
                self.held_parts(record, bands, sig_b64)
        return computed

    def without_shingles(self, bands: Any, sig: Any) -> bool:
        """Whether a record carrying ``bands`` / ``sig`` is kept at once: at file level, one
        without a word at all (no band keys, no signature) has nothing to compare."""
        return self.level == "file" and bands is None and sig is None

    def mark_without_shingles(self, record: Record, bands: Any, sig: Any) -> bool:
        """Whether a live record is kept at once, marked: at file level, one without a word at
        all (no band keys, no signature) has nothing to compare, never a near-duplicate."""
        if not self.without_shingles(bands, sig):
            return False
        record.meta["fuzzy"] = "no_shingles"
        return True

    def mark_clustered(self, record: Record, survivor_id: str, size: int) -> bool:
        """The decision on a member of a file cluster of ``size``: the survivor is kept (with
        the cluster's size), the others dropped naming it. Whether it was kept."""
        if record.id == survivor_id:
            record.meta["fuzzy_cluster_size"] = size
            return True
        record.drop_reason = f"{self.name}:duplicate"
        record.meta["duplicate_of"] = survivor_id
        return False

    def mark_repository(self, record: Record, losers: Mapping[str, str]) -> bool:
        """The decision on a file at repository level: dropped when its repository lost to a
        near-duplicate one (``losers``: repository -> winner). Whether it was kept."""
        winner = losers.get(repository_of(record))
        if winner is None:
            return True
        record.drop_reason = f"{self.name}:duplicate_repository"
        record.meta["duplicate_of_repository"] = winner
        return False

    def repository_table(self) -> RepoTable:
        """An empty repository table with this stage's priority (a shard's partial)."""
        return RepoTable(self.priority)

    def add_to_repositories(self, table: RepoTable, record: Record) -> None:
        """Add a live record carrying its signature (``minhash`` before) to ``table``."""
        sig_b64 = record.meta.get(META_SIG)
        sig = None if sig_b64 is None else np.frombuffer(base64.b64decode(sig_b64), np.uint32)
        table.add(record, sig)

    # -- checkpoint --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "format": SPILL_FORMAT,
            "spill": self._spill.commit(),
            "held": self._held,
            "no_shingles": self._no_shingles,
            "computed_here": self._computed_here,
            "fingerprint": self.fingerprint,
        }
        if self.level == "repository":
            state.update(self._repos.state())
        if self._ds is not None:
            # In-memory datasketch storage is part of the state; an external one (Redis) is
            # not, and is rolled back to the checkpoint on load instead.
            external = self.storage_config is not None and self.storage_config.get("type") not in (
                None,
                "dict",
            )
            state["datasketch"] = None if external else self._ds.lsh
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != SPILL_FORMAT:
            raise ValueError(
                f"fuzzy_dedup: checkpoint spill format {state.get('format')!r}, this version "
                f"reads {SPILL_FORMAT}; finish that run with the version that started it, or "
                f"start over"
            )
        if state["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"fuzzy_dedup: checkpoint was made with MinHash {state['fingerprint']}, "
                f"this run uses {self.fingerprint}; resume with the same parameters"
            )
        self._spill.restore(state["spill"])
        self._held = int(state["held"])
        self._no_shingles = int(state["no_shingles"])
        self._computed_here = int(state["computed_here"])
        if self.level == "repository":
            self._repos.load(state)
        if self._ds is not None:
            if state.get("datasketch") is not None:
                self._ds.lsh = state["datasketch"]
            else:
                self._ds.remove_from(self._held)

    # -- end of stream -----------------------------------------------------------------------

    def finish(self) -> Iterator[Record]:
        """Every held record, duplicates marked dropped, streamed from the spill in arrival
        order (a generator: the report is complete once it is exhausted)."""
        if self.level == "repository":
            yield from self._finish_repositories()
        else:
            yield from self._finish_files()
        self.close()

    def close(self) -> None:
        """Close spill files and index connections (spill files stay: a resume from an older
        state may still name them)."""
        self._spill.close()
        if self._ds is not None:
            self._ds.close()

    def _labels(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        if self._ds is not None:
            edges = np.frombuffer(self._spill.read_bytes("edges.bin"), dtype="<i8").reshape(-1, 2)
            labels = components(self._held, edges[:, 0].copy(), edges[:, 1].copy())
        else:
            keys = np.frombuffer(self._spill.read_bytes("keys.bin"), dtype="<u8")
            labels = cluster_labels(keys.reshape(-1, self.params.bands))
        return np.asarray(labels, dtype=np.int64)

    def _finish_files(self) -> Iterator[Record]:
        labels = self._labels()
        if labels.size != self._held:
            raise RuntimeError(
                f"fuzzy_dedup: {labels.size} index entries for {self._held} held records"
            )
        sizes = np.bincount(labels) if labels.size else np.zeros(0, np.int64)
        survivors = Survivors()
        for i, (key, rid, path) in enumerate(self._spill.read_pickles("prio.pkl")):
            label = int(labels[i])
            if sizes[label] >= 2:
                survivors.add(label, key, rid, path or rid)
        dropped = 0
        for i, record in enumerate(self._held_records()):
            label = int(labels[i])
            if sizes[label] >= 2:
                dropped += not self.mark_clustered(
                    record, survivors.winner(label), int(sizes[label])
                )
            yield record
        self._report = self.file_report(self._counts(), dropped, survivors.clusters())

    def _finish_repositories(self) -> Iterator[Record]:
        decided = self._repos.cluster(self.params)
        losers = decided.losers()
        for record in self._held_records():
            self.mark_repository(record, losers)
            yield record
        self._report = self.repository_report(self._counts(), decided)

    def _held_records(self) -> Iterator[Record]:
        with self._spill.view(RECORDS) as view:
            yield from read_held(view)

    def _counts(self) -> HeldCounts:
        return HeldCounts(self._held, self._no_shingles, self._computed_here)

    def file_report(
        self, counts: HeldCounts, dropped: int, clusters: list[ClusterInfo]
    ) -> dict[str, Any]:
        """The report of file-level dedup from its global step's counts, whichever executor
        ran it: ``dropped`` records of ``counts.held``, and the clusters."""
        return self._report_of(counts, dropped, clusters, "files")

    def repository_report(self, counts: HeldCounts, decided: RepoClusters) -> dict[str, Any]:
        """The report of repository-level dedup from its global step's counts and decision,
        whichever executor ran it."""
        report = self._report_of(counts, decided.dropped_files, decided.clusters, "repositories")
        report["repositories"] = decided.repositories
        report["repositories_without_shingles"] = decided.repositories - decided.with_signature
        return report

    def _report_of(
        self, counts: HeldCounts, dropped: int, clusters: list[ClusterInfo], unit: str
    ) -> dict[str, Any]:
        clusters.sort(key=lambda c: (-c["size"], c["survivor"]))
        return {
            "level": self.level,
            "index": self.index,
            "shingles": f"word {self.params.ngram}-grams",
            "num_perm": self.params.num_perm,
            "bands": self.params.bands,
            "rows": self.params.rows,
            "threshold": round(self.params.threshold, 4),
            "records_held": counts.held,
            "kept": counts.held - dropped + counts.no_shingles,
            "duplicates": dropped,
            "no_shingles": counts.no_shingles,
            "signatures_computed_here": counts.computed_here,
            "cluster_unit": unit,
            "clusters": len(clusters),
            "cluster_sizes": cluster_sizes(clusters),
            "largest_clusters": clusters[: self.top_clusters],
            "priority": [f"{f}:{'desc' if d else 'asc'}" for f, d in self.priority],
        }

    def report(self) -> dict[str, Any]:
        return self._report or {
            "records_held": self._held,
            "threshold": round(self.params.threshold, 4),
        }


def take_minhash(record: Record) -> tuple[Any, Any]:
    """Remove the private MinHash keys from a record; returns its (band keys, signature)."""
    record.meta.pop(META_FP, None)
    return record.meta.pop(META_BANDS, None), record.meta.pop(META_SIG, None)


def _pickle(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _decode_sig(sig_b64: str, num_perm: int) -> np.ndarray[Any, np.dtype[np.uint32]]:
    sig = np.frombuffer(base64.b64decode(sig_b64, validate=True), dtype=np.uint32)
    if sig.size != num_perm:
        raise ValueError(f"MinHash signature has {sig.size} slots, expected {num_perm}")
    return sig


def _encode_bands(bands: Any, n_bands: int) -> bytes:
    keys = np.asarray(bands, dtype="<u8")
    if keys.shape != (n_bands,):
        raise ValueError(f"MinHash band keys have shape {keys.shape}, expected ({n_bands},)")
    return keys.tobytes()
