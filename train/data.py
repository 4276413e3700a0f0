"""Corpus shards -> token ids -> packed fixed-length sequences, mixed by stream.

The flow, as in Megatron-style trainers:

1. :func:`prepare_tokens` reads the corpus (``*.jsonl.zst`` / ``*.jsonl`` shards, one JSON record
   per line with at least ``id`` and ``text``), assigns each record to a mixture stream by its
   ``meta``, shuffles documents with the run's seed, tokenises them in batches with a local
   tokenizer, appends the end-of-text token and writes one flat ``uint32`` token file per stream.
   The result is cached by a fingerprint of the shards, the tokenizer and the stream rules.
2. :class:`PackedMixture` cuts those token files into sequences of the step's length (the
   sequence-length schedule) and picks, for each sequence of a global batch, a stream with the
   mixture weights. Its whole position (stream cursors and the RNG state) is a small dict that
   goes into every checkpoint, so a resumed run reads exactly the batches an uninterrupted run
   would have read.

Malformed lines are counted (``stats["malformed"]``) and skipped; nothing else is dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from codekiln.train.config import StreamSpec, TrainConfig
from codekiln.train.errors import DataError

from codekiln.progress import track
from codekiln.shards import SHARD_SUFFIXES, BadLine, iter_lines

TOKEN_DTYPE = np.uint32
_ENCODE_BATCH = 256  # documents per tokenizer call: big enough for the Rust thread pool


# ----------------------------------------------------------------- tokenizer


def load_tokenizer(path: str | Path) -> Any:
    """A ``tokenizers.Tokenizer`` from a ``tokenizer.json`` file or a directory holding one."""
    from tokenizers import Tokenizer

    if not path:
        raise DataError("data.tokenizer_path is not set: training needs a local tokenizer")
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise DataError(f"tokenizer not found: {p} (give a tokenizer.json or a directory with one)")
    try:
        return Tokenizer.from_file(str(p))
    except Exception as exc:  # the Rust binding raises a bare Exception on a bad file
        raise DataError(f"cannot load tokenizer {p}: {exc}") from exc


def token_id(tokenizer: Any, token: str, what: str) -> int:
    tid = tokenizer.token_to_id(token)
    if tid is None:
        raise DataError(f"the tokenizer has no {what} token {token!r}")
    return int(tid)


def tokenizer_fingerprint(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


# ----------------------------------------------------------------- corpus


def corpus_shards(corpus_dir: str | Path) -> list[Path]:
    root = Path(corpus_dir)
    if not root.is_dir():
        raise DataError(f"corpus directory not found: {root}")
    shards = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(SHARD_SUFFIXES))
    if not shards:
        names = ", ".join(f"*{suffix}" for suffix in SHARD_SUFFIXES)
        raise DataError(f"no corpus shards ({names}) under {root}")
    return shards


def iter_records(
    shard: Path, stats: dict[str, int], *, require_text: bool = True
) -> Iterator[dict[str, Any]]:
    """Records of one shard; malformed lines are counted in ``stats`` and skipped.

    A record is a JSON object; with ``require_text`` (corpus records) it must have a string
    ``text``. SFT conversations have none. Read by codekiln.shards (the readers every
    component shares): a line that is not UTF-8 JSON, or a shard cut off inside its zstd frame,
    counts as malformed.
    """
    fmt = "parquet" if shard.name.endswith(".parquet") else "jsonl"  # output.format: parquet
    for obj in iter_lines(shard, fmt=fmt):
        if isinstance(obj, BadLine) or (require_text and not isinstance(obj.get("text"), str)):
            stats["malformed"] = stats.get("malformed", 0) + 1
            continue
        yield obj


def assign_stream(record: dict[str, Any], streams: tuple[StreamSpec, ...]) -> str | None:
    """The first stream whose ``match`` the record's meta satisfies, else the catch-all stream."""
    meta = record.get("meta") or {}
    fallback = None
    for s in streams:
        if not s.match:
            fallback = s.name
            continue
        if all(meta.get(k) == v for k, v in s.match.items()):
            return str(s.name)
    return fallback


# ----------------------------------------------------------------- token files


@dataclass(frozen=True, slots=True)
class TokenStore:
    """Flat token files per stream, produced by :func:`prepare_tokens`."""

    root: Path
    meta: dict[str, Any]

    def tokens(self, stream: str) -> np.ndarray:
        path = self.root / f"{stream}.bin"
        n = int(self.meta["streams"][stream]["tokens"])
        if n == 0:
            return np.zeros(0, dtype=TOKEN_DTYPE)
        return np.memmap(path, dtype=TOKEN_DTYPE, mode="r", shape=(n,))


def prepare_tokens(cfg: TrainConfig, cache_dir: str | Path) -> TokenStore:
    """Tokenise the corpus into per-stream token files (cached by fingerprint)."""
    tokenizer = load_tokenizer(cfg.data.tokenizer_path)
    eos = token_id(tokenizer, cfg.data.eos_token, "end-of-text")
    shards = corpus_shards(cfg.data.corpus_dir)
    streams = cfg.streams()
    h = hashlib.sha256()
    for shard in shards:
        st = shard.stat()
        h.update(f"{shard}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
    h.update(tokenizer_fingerprint(cfg.data.tokenizer_path).encode())
    h.update(json.dumps([[s.name, s.match] for s in streams], sort_keys=True).encode())
    h.update(f"{cfg.seed}:{cfg.data.eos_token}".encode())
    fingerprint = h.hexdigest()[:20]
    root = Path(cache_dir) / f"tokens-{fingerprint}"
    meta_path = root / "meta.json"
    if meta_path.is_file():
        return TokenStore(root, json.loads(meta_path.read_text()))

    stats: dict[str, int] = {}
    docs: dict[str, list[str]] = {s.name: [] for s in streams}
    for shard in shards:
        for rec in iter_records(shard, stats):
            name = assign_stream(rec, streams)
            if name is None:
                stats["unassigned"] = stats.get("unassigned", 0) + 1
                continue
            if rec["text"]:
                docs[name].append(rec["text"])
    tmp = root.with_name(root.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"fingerprint": fingerprint, "streams": {}, "stats": stats}
    rng = np.random.default_rng(cfg.seed)
    for s in streams:
        texts = docs[s.name]
        order = rng.permutation(len(texts))
        n_tokens = 0
        with (tmp / f"{s.name}.bin").open("wb") as out:
            starts = range(0, len(order), _ENCODE_BATCH)
            # About a minute for a default run: count, rate and ETA on a terminal.
            for start in track(starts, description=f"tokenizing {s.name}", unit="batches"):
                batch = [texts[i] for i in order[start : start + _ENCODE_BATCH]]
                for enc in tokenizer.encode_batch(batch, add_special_tokens=False):
                    ids = np.asarray([*enc.ids, eos], dtype=TOKEN_DTYPE)
                    out.write(ids.tobytes())
                    n_tokens += len(ids)
        meta["streams"][s.name] = {"documents": len(texts), "tokens": n_tokens}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if root.exists():  # a concurrent rank finished first: theirs is identical
        return TokenStore(root, json.loads(meta_path.read_text()))
    tmp.rename(root)
    return TokenStore(root, meta)


# ----------------------------------------------------------------- packing + mixture


class PackedMixture:
    """Global batches of packed sequences drawn from several streams with fixed weights.

    Each stream is read as one endless token ring (wrapping starts a new epoch over the same
    shuffled order). The stream of each sequence is drawn from a seeded generator, so the batch
    sequence is a pure function of (seed, start state); :meth:`state_dict` captures it.
    """

    def __init__(self, store: TokenStore, streams: tuple[StreamSpec, ...], seed: int) -> None:
        self._tokens: dict[str, np.ndarray] = {}
        names, weights = [], []
        for s in streams:
            toks = store.tokens(s.name)
            if len(toks) == 0:
                raise DataError(
                    f"mixture stream {s.name!r} has no tokens (no corpus record matched "
                    f"{s.match or 'the catch-all rule'})"
                )
            self._tokens[s.name] = toks
            names.append(s.name)
            weights.append(s.weight)
        self._names = names
        w = np.asarray(weights, dtype=np.float64)
        self._p = w / w.sum()
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._cursor = dict.fromkeys(names, 0)
        self.drawn = dict.fromkeys(names, 0)

    def next_batch(
        self, n_sequences: int, seq_len: int, *, keep: slice | None = None
    ) -> np.ndarray:
        """The next global batch, shape ``(n, seq_len)``; only rows in ``keep`` are read."""
        choice = self._rng.choice(len(self._names), size=n_sequences, p=self._p)
        offsets: list[tuple[str, int]] = []
        for c in choice:
            name = self._names[int(c)]
            offsets.append((name, self._cursor[name]))
            self._cursor[name] += seq_len
            self.drawn[name] += 1
        rows = range(n_sequences)[keep] if keep is not None else range(n_sequences)
        out = np.empty((len(rows), seq_len), dtype=np.int64)
        for i, r in enumerate(rows):
            name, start = offsets[r]
            out[i] = self._read(name, start, seq_len)
        return out

    def _read(self, name: str, start: int, length: int) -> np.ndarray:
        toks = self._tokens[name]
        n = len(toks)
        start %= n
        if start + length <= n:
            return np.asarray(toks[start : start + length], dtype=np.int64)
        parts, need, pos = [], length, start
        while need:
            take = min(need, n - pos)
            parts.append(np.asarray(toks[pos : pos + take], dtype=np.int64))
            need -= take
            pos = 0
        return np.concatenate(parts)

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self._rng.bit_generator.state,
            "cursor": dict(self._cursor),
            "drawn": dict(self.drawn),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["cursor"]) != set(self._names):
            raise DataError(
                f"checkpoint streams {sorted(state['cursor'])} != config streams "
                f"{sorted(self._names)}"
            )
        self._rng.bit_generator.state = state["rng"]
        self._cursor = {k: int(v) for k, v in state["cursor"].items()}
        self.drawn = {k: int(v) for k, v in state["drawn"].items()}
