"""MinHash signatures and LSH banding: definition, S-curve, agreement with datasketch."""

from __future__ import annotations

import re

import numpy as np
import pytest
from codekiln.stream.dedup import minhash as mh
from codekiln.stream.dedup.lsh import DatasketchIndex, cluster_labels, components
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.stream.native import implementations

MASK = (1 << 64) - 1
WORD = re.compile(rb"[A-Za-z0-9_\x80-\xff]+")


def _mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def reference_shingles(text: str, n: int = 5) -> set[int]:
    """Word n-gram hashes written the slow, obvious way (one loop per byte)."""
    words = []
    for w in WORD.findall(text.encode("utf-8", "surrogatepass")):
        h = sum((b + 1) * pow(mh._R, k, 1 << 64) for k, b in enumerate(w)) & MASK
        words.append(_mix(h ^ ((len(w) * int(mh._SHINGLE_MUL)) & MASK)))
    grams = [words[i : i + n] for i in range(len(words) - n + 1)] or ([words] if words else [])
    out = set()
    for gram in grams:
        acc = 0
        for w in gram:
            acc = (acc * int(mh._SHINGLE_MUL) + w) & MASK
        out.add(_mix(acc))
    return out


class TestShingles:
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.text(max_size=80), min_size=1, max_size=6))
    def test_vectorised_equals_reference(self, texts: list[str]) -> None:
        """The batched shingler (C words, and numpy) gives exactly the per-byte reference's
        shingle sets."""
        want = [reference_shingles(t) for t in texts]
        for _ in implementations():
            assert mh.shingle_sets(texts) == want

    def test_words_not_punctuation(self) -> None:
        """Shingles are word 5-grams: spacing and punctuation between words do not matter."""
        a, b = mh.shingle_sets(["foo(bar, baz) + qux - quux", "foo bar baz qux quux"])
        assert a == b
        assert len(a) == 1

    def test_batch_composition_irrelevant(self) -> None:
        """A text's signature does not depend on the other texts of its batch."""
        p = mh.MinHashParams(num_perm=256, bands=16, rows=16)
        text = "def f(x):\n    return x + 1  # é ü\n" * 20
        alone, _ = mh.signatures([text], p)
        mixed, _ = mh.signatures(["other words here", text, ""], p)
        assert np.array_equal(alone[0], mixed[1])

    def test_no_words_no_shingles(self) -> None:
        """Texts without any word have no shingles (and are flagged so)."""
        _, has = mh.signatures(
            ["+-*/ {}", "", "ok"], mh.MinHashParams(num_perm=64, bands=8, rows=8)
        )
        assert has.tolist() == [False, False, True]

    def test_repository_signature_is_union(self) -> None:
        """The element-wise minimum of signatures is the signature of the union of shingles."""
        import rensa

        p = mh.MinHashParams()
        rng = np.random.default_rng(3)
        a = rng.integers(0, 2**63, 3000, dtype=np.uint64)
        b = np.concatenate([a[:1000], rng.integers(0, 2**63, 500, dtype=np.uint64)])
        union = np.union1d(a, b)
        flat = np.concatenate([a, b, union])
        offsets = np.array([0, a.size, a.size + b.size, flat.size], dtype=np.uint64)
        m = rensa.RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, p.num_perm, p.seed)
        sa, sb, su = (np.array(r, dtype=np.uint32) for r in m.to_rows())
        assert np.array_equal(mh.repository_signature(np.stack([sa, sb])), su)


class TestParams:
    def test_thresholds_of_both_readings(self) -> None:
        """16 x 128 is about 0.98 (near-exact), 128 x 16 about 0.74."""
        assert mh.PRESETS["opencoder"].threshold == pytest.approx(0.979, abs=1e-3)
        assert mh.PRESETS["opencoder-128x16"].threshold == pytest.approx(0.738, abs=1e-3)

    @pytest.mark.parametrize("name", ["t0.7", "t0.75", "t0.8", "t0.85"])
    def test_threshold_presets(self, name: str) -> None:
        """The t0.x presets put the S-curve's midpoint within 0.03 of their name."""
        assert mh.PRESETS[name].threshold == pytest.approx(float(name[1:]), abs=0.03)

    def test_bands_rows_bound(self) -> None:
        """bands x rows over num_perm is refused with the numbers in the message."""
        with pytest.raises(ValueError, match="32 x 128 = 4096"):
            mh.MinHashParams(bands=32, rows=128)


def planted_pairs(n: int, max_change: float, seed: int) -> tuple[list[str], list[str]]:
    """Pairs of 400-word documents, the second with a random fraction of words replaced."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for i in range(n):
        base = [f"w{i}x{j}" for j in range(400)]
        changed = list(base)
        k = round(rng.uniform(0, max_change) * 400)
        for pos in rng.choice(400, size=k, replace=False):
            changed[pos] = f"z{i}y{pos}"
        a.append(" ".join(base))
        b.append(" ".join(changed))
    return a, b


def jaccards(a: list[str], b: list[str]) -> np.ndarray:
    sa, sb = mh.shingle_sets(a), mh.shingle_sets(b)
    return np.array([len(x & y) / len(x | y) for x, y in zip(sa, sb, strict=True)])


@pytest.mark.parametrize(
    ("preset", "max_change"), [("opencoder", 0.012), ("opencoder-128x16", 0.12)]
)
def test_detection_follows_s_curve(preset: str, max_change: float) -> None:
    """Detection rate per similarity bin matches 1-(1-s^r)^b within 4 standard errors."""
    p = mh.PRESETS[preset]
    a, b = planted_pairs(600, max_change, seed=11)
    sim = jaccards(a, b)
    ka = mh.band_keys(mh.signatures(a, p)[0], p)
    kb = mh.band_keys(mh.signatures(b, p)[0], p)
    detected = (ka == kb).any(axis=1)
    expected = mh.detection_probability(sim, p.bands, p.rows)
    order = np.argsort(sim)
    checked = 0
    for chunk in np.array_split(order, 6):
        exp = expected[chunk]
        se = np.sqrt((exp * (1 - exp)).sum()) / chunk.size
        assert abs(detected[chunk].mean() - exp.mean()) <= 4 * se + 0.01, (
            sim[chunk].min(),
            sim[chunk].max(),
        )
        checked += 0.02 < exp.mean() < 0.98
    assert checked >= 2  # the planted set really spans the steep part of the curve


def test_datasketch_index_agrees_on_pairs() -> None:
    """datasketch's MinHashLSH at the same bands/rows, given the same signatures, makes the
    same decision as our band keys on at least 99% of pairs (by construction: all)."""
    p = mh.PRESETS["opencoder-128x16"]
    a, b = planted_pairs(300, 0.12, seed=5)
    sa, sb = mh.signatures(a, p)[0], mh.signatures(b, p)[0]
    ours = (mh.band_keys(sa, p) == mh.band_keys(sb, p)).any(axis=1)
    theirs = []
    for x, y in zip(sa, sb, strict=True):
        index = DatasketchIndex(p)
        index.query_insert(0, x)
        theirs.append(index.query_insert(1, y) == [0])
    agreement = float((np.array(theirs) == ours).mean())
    assert agreement >= 0.99
    assert 0.1 < ours.mean() < 0.9  # both kinds of decision occur


def test_independent_datasketch_sketch_agrees_as_theory_says() -> None:
    """Against datasketch's own MinHash (other hash functions), agreement equals the expected
    agreement of two independent sketches, 1 - mean(2p(1-p)), within sampling error."""
    from datasketch import MinHash, MinHashLSH

    p = mh.PRESETS["opencoder-128x16"]
    a, b = planted_pairs(250, 0.12, seed=9)
    sim = jaccards(a, b)
    ours = (mh.band_keys(mh.signatures(a, p)[0], p) == mh.band_keys(mh.signatures(b, p)[0], p)).any(
        axis=1
    )
    theirs = []
    for x, y in zip(mh.shingle_sets(a), mh.shingle_sets(b), strict=True):
        ma, mb = MinHash(num_perm=p.num_perm), MinHash(num_perm=p.num_perm)
        ma.update_batch([v.to_bytes(8, "little") for v in x])
        mb.update_batch([v.to_bytes(8, "little") for v in y])
        lsh = MinHashLSH(num_perm=p.num_perm, params=(p.bands, p.rows))
        lsh.insert("a", ma)
        theirs.append(bool(lsh.query(mb)))
    prob = mh.detection_probability(sim, p.bands, p.rows)
    disagree = 2 * prob * (1 - prob)
    observed = float((np.array(theirs) != ours).mean())
    se = float(np.sqrt((disagree * (1 - disagree)).sum()) / sim.size)
    assert abs(observed - disagree.mean()) <= 4 * se + 0.01


def test_clusters_are_transitive() -> None:
    """Documents chained by shared bands form one cluster; others stay alone."""
    keys = np.array([[1, 2], [1, 3], [4, 3], [5, 6]], dtype=np.uint64)
    labels = cluster_labels(keys)
    assert labels[0] == labels[1] == labels[2] != labels[3]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 80).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)))
        )
    )
)
def test_components_equal_scipy(graph: tuple[int, list[tuple[int, int]]]) -> None:
    """The numpy union-find labels every graph exactly as scipy's connected_components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, edges = graph
    rows = np.array([a for a, _ in edges], dtype=np.int64)
    cols = np.array([b for _, b in edges], dtype=np.int64)
    ones = np.ones(len(edges), dtype=np.int8)
    _, expected = connected_components(coo_matrix((ones, (rows, cols)), shape=(n, n)))
    assert components(n, rows, cols).tolist() == expected.tolist()


def test_components_long_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 100,000-node path in random order is one component, without the scipy fallback."""
    from codekiln.stream.dedup import lsh

    def no_fallback(*_: object) -> None:
        raise AssertionError("the union-find ran out of rounds")

    monkeypatch.setattr(lsh, "_scipy_components", no_fallback)
    order = np.random.default_rng(0).permutation(100_000)
    labels = components(100_000, order[:-1].astype(np.int64), order[1:].astype(np.int64))
    assert labels.max() == 0
