"""Dedup throughput and index memory, each against a baseline measured in the same run.

Corpus: the Python files of this interpreter's standard library, then of site-packages, in path
order, capped at --mb megabytes (default 24): fixed for a given machine and venv.

Figures (per core = MB of input per CPU-second of this process, all threads counted, so
rensa's internal threads cannot inflate it):

1. fuzzy dedup, codekiln: word 5-gram shingles + 2048-permutation signatures + LSH
   (band keys, clustering) -- the ``minhash`` and ``fuzzy_dedup`` stages' compute path;
   and the same through the stage objects end to end (spill to disk, read back, survivors).
2. fuzzy dedup, datasketch baseline: the same stage done the usual datasketch way
   (regex words, 5-gram shingles, ``MinHash(num_perm=2048).update_batch``, ``MinHashLSH``
   16 x 128 query + insert), on a prefix of the corpus (it is slow), against codekiln on the
   same prefix. Goals: >= 10x datasketch, >= 20 MB/s per core.
3. exact dedup: SHA-256 path and the whole stage (hash, hold, survivors, every record out),
   against raw hashlib SHA-256 over the same bytes, median of 3 runs each. Goal: >= 500 MB/s
   per core, checked on three paths: the default memory budget (64 MB: this corpus is held in
   memory, nothing is written), forced spill (``memory_mb=0``: every held record written to disk
   and read back), and the default budget with a checkpoint (spill + fsync) every 500 records,
   as a long run does.
4. LSH index memory per document: band-key index vs datasketch MinHashLSH (tracemalloc).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import sys
import sysconfig
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from codekiln.stream.dedup import minhash as mh
from codekiln.stream.dedup.exact import ExactDedupStage, content_hash
from codekiln.stream.dedup.fuzzy import FuzzyDedupStage, MinHashStage
from codekiln.stream.dedup.lsh import cluster_labels
from codekiln.stream.record import Record, record_id

BATCH = 256
#: Checkpoint cadence of the exact-dedup run that spills at checkpoints (the runtime's default
#: is 5000 source records; this corpus has about 2200 files, so a shorter one shows its cost).
CHECKPOINT_EVERY = 500


def load_corpus(limit_mb: float) -> list[Record]:
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    out: list[Record] = []
    total = 0
    limit = int(limit_mb * 1e6)
    seen: set[Path] = set()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if total >= limit:
                return out
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if not text.strip() or len(text) > 2_000_000:
                continue
            rel = str(path)
            out.append(Record(id=record_id("bench", rel), text=text, path=rel, repo=str(root)))
            total += len(text.encode("utf-8", "surrogatepass"))
    return out


def mb_of(records: list[Record]) -> float:
    return sum(len(r.text.encode("utf-8", "surrogatepass")) for r in records) / 1e6


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w0, time.process_time() - c0


def fresh(records: list[Record]) -> list[Record]:
    return [Record(id=r.id, text=r.text, path=r.path, repo=r.repo) for r in records]


def ours_core(records: list[Record], params: mh.MinHashParams) -> int:
    keys = []
    for i in range(0, len(records), BATCH):
        sig, has = mh.signatures([r.text for r in records[i : i + BATCH]], params)
        keys.append(mh.band_keys(sig[has], params))
    labels = cluster_labels(np.concatenate(keys))
    return int(labels.size - np.unique(labels).size)


def ours_stage(records: list[Record], preset: str, spill: str) -> int:
    sig_stage = MinHashStage(preset=preset)
    stage = FuzzyDedupStage(preset=preset, spill_dir=spill)
    for i in range(0, len(records), BATCH):
        stage.process(sig_stage.process(records[i : i + BATCH]))
    return sum(r.drop_reason is not None for r in stage.finish())


WORDS = re.compile(r"[A-Za-z0-9_\x80-\U0010ffff]+")


def datasketch_stage(records: list[Record], params: mh.MinHashParams) -> int:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=params.num_perm, params=(params.bands, params.rows))
    dropped = 0
    for i, r in enumerate(records):
        words = WORDS.findall(r.text)
        grams = {" ".join(words[j : j + params.ngram]) for j in range(max(1, len(words) - 4))}
        m = MinHash(num_perm=params.num_perm, seed=params.seed)
        m.update_batch([g.encode("utf-8", "surrogatepass") for g in grams])
        if lsh.query(m):
            dropped += 1
        lsh.insert(i, m, check_duplication=False)
    return dropped


def exact_stage(
    records: list[Record], spill: str, memory_mb: float, checkpoint_every: int = 0
) -> tuple[int, int]:
    """(duplicates, records spilled)."""
    stage = ExactDedupStage(spill_dir=spill, memory_mb=memory_mb)
    since = 0
    for i in range(0, len(records), BATCH):
        stage.process(records[i : i + BATCH])
        since += BATCH
        if checkpoint_every and since >= checkpoint_every:
            stage.state_dict()
            since = 0
    dups = sum(r.drop_reason is not None for r in stage.finish())
    return dups, stage.report()["spilled"]


def exact_cpu(
    corpus: list[Record], memory_mb: float, checkpoint_every: int = 0
) -> tuple[float, int, int]:
    """Median CPU seconds of 3 runs of the whole stage (fresh records, built outside the
    timing), with (duplicates, records spilled) of the last."""
    cpus = []
    for _ in range(3):
        records = fresh(corpus)
        with tempfile.TemporaryDirectory() as spill:
            (dups, spilled), _, cpu = timed(
                lambda r=records, d=spill: exact_stage(r, d, memory_mb, checkpoint_every)
            )
        cpus.append(cpu)
    return statistics.median(cpus), dups, spilled


def median_cpu(fn: Callable[[], Any]) -> float:
    return statistics.median(timed(fn)[2] for _ in range(3))


def verdict(rate: float, goal: float) -> str:
    return f"{rate / goal:4.2f}x of goal {goal:.0f} ({'met' if rate >= goal else 'NOT met'})"


def index_bytes_per_doc(records: list[Record], params: mh.MinHashParams) -> tuple[float, float]:
    from datasketch import LeanMinHash, MinHashLSH

    sigs = [mh.signatures([r.text for r in records[i : i + BATCH]], params)[0] for i in
            range(0, len(records), BATCH)]  # fmt: skip
    sig = np.concatenate(sigs)
    n = sig.shape[0]
    keys = mh.band_keys(sig, params)
    tracemalloc.start()
    index = keys.copy()  # what the band-key index stores: the keys, nothing else
    cluster_labels(index)  # and what clustering it at the end takes on top
    _, peak_ours = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lean = [
        LeanMinHash(seed=params.seed, hashvalues=s.astype(np.uint64), scheme="legacy") for s in sig
    ]
    tracemalloc.start()
    lsh = MinHashLSH(num_perm=params.num_perm, params=(params.bands, params.rows))
    for i, m in enumerate(lean):
        lsh.insert(i, m, check_duplication=False)
    current_ds, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak_ours / n, current_ds / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=24.0, help="corpus size cap in MB")
    ap.add_argument("--baseline-mb", type=float, default=1.0, help="datasketch prefix in MB")
    args = ap.parse_args()

    corpus = load_corpus(args.mb)
    total_mb = mb_of(corpus)
    params = mh.PRESETS["opencoder"]
    print(f"corpus: {len(corpus)} Python files, {total_mb:.1f} MB (stdlib + site-packages)")
    shape = f"{params.bands} bands x {params.rows} rows"
    print(f"fuzzy: word {params.ngram}-grams, {params.num_perm} permutations, {shape}, "
          f"threshold ~{params.threshold:.3f}")  # fmt: skip

    # Warm up (imports, rensa tables, power tables) outside the timings.
    ours_core(corpus[:50], params)

    dup_core, wall, cpu = timed(lambda: ours_core(corpus, params))
    core_rate = total_mb / cpu
    print(f"fuzzy core (codekiln): {total_mb / wall:7.1f} MB/s wall, {core_rate:7.1f} MB/s per core"
          f" ({dup_core} near-duplicates)")  # fmt: skip
    with tempfile.TemporaryDirectory() as spill:
        dup_stage, wall, cpu = timed(lambda: ours_stage(fresh(corpus), "opencoder", spill))
    stage_rate = total_mb / cpu
    print(f"fuzzy stages end to end (codekiln, spill included): {stage_rate:7.1f} MB/s per core"
          f" ({dup_stage} dropped)")  # fmt: skip

    prefix: list[Record] = []
    size = 0.0
    for r in corpus:
        if size >= args.baseline_mb:
            break
        prefix.append(r)
        size += len(r.text.encode("utf-8", "surrogatepass")) / 1e6
    _, _, cpu_ds = timed(lambda: datasketch_stage(prefix, params))
    _, _, cpu_ours_prefix = timed(lambda: ours_core(prefix, params))
    ds_rate = size / cpu_ds
    ours_prefix_rate = size / cpu_ours_prefix
    print(f"fuzzy datasketch baseline on the first {size:.1f} MB: {ds_rate:7.2f} MB/s per core; "
          f"codekiln on the same files {ours_prefix_rate:7.1f} MB/s per core")  # fmt: skip
    ratio = ours_prefix_rate / ds_rate
    print(f"  ratio codekiln / datasketch (same files): {ratio:6.1f}x  (goal >= 10x)")
    print(f"  ratio codekiln full corpus / datasketch:  {core_rate / ds_rate:6.1f}x")
    print(f"  per-core goal 20 MB/s: core {core_rate / 20:5.2f}x of goal, "
          f"stages end to end {stage_rate / 20:5.2f}x of goal")  # fmt: skip

    data = [r.text.encode("utf-8", "surrogatepass") for r in corpus]
    cpu_raw = median_cpu(lambda: [hashlib.sha256(b).digest() for b in data])
    cpu_hash = median_cpu(lambda: [content_hash(r.text) for r in corpus])
    raw_rate, hash_rate = total_mb / cpu_raw, total_mb / cpu_hash
    print(f"exact (median of 3, load average {os.getloadavg()[0]:.2f}):")
    print(f"  raw hashlib sha256 {raw_rate:7.1f} MB/s per core (baseline)")
    print(f"  content_hash (encode + sha256 + hex) {hash_rate:7.1f} MB/s per core"
          f" = {hash_rate / raw_rate:4.2f}x raw; {verdict(hash_rate, 500)}")  # fmt: skip
    paths = [
        ("default budget (64 MB)", 64.0, 0),
        ("forced spill (memory_mb=0)", 0.0, 0),
        (f"64 MB + checkpoint every {CHECKPOINT_EVERY} records", 64.0, CHECKPOINT_EVERY),
    ]
    for label, memory_mb, every in paths:
        cpu, dups, spilled = exact_cpu(corpus, memory_mb, every)
        rate = total_mb / cpu
        print(f"  whole stage, {label}: {rate:7.1f} MB/s per core = {rate / raw_rate:4.2f}x raw;"
              f" {verdict(rate, 500)} [{dups} dups, {spilled}/{len(corpus)} records"
              f" spilled]")  # fmt: skip

    sample = corpus[: min(len(corpus), 3000)]
    ours_b, ds_b = index_bytes_per_doc(sample, params)
    print(f"LSH index memory ({len(sample)} docs): band-key index {ours_b:7.0f} bytes/doc "
          f"(peak while clustering; {8 * params.bands} bytes/doc on disk), datasketch MinHashLSH "
          f"{ds_b:7.0f} bytes/doc; ratio datasketch / codekiln {ds_b / ours_b:5.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
