"""The unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), per task."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import ConfigError

KS: tuple[int, ...] = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n or k < 1 or n < 1:
        raise ConfigError(f"pass@k needs 0 <= c <= n, n >= 1 and k >= 1; got n={n} c={c} k={k}")
    if k > n:
        raise ConfigError(f"pass@{k} is undefined with only {n} samples")
    if n - c < k:
        return 1.0
    # prod_{i=n-c+1}^{n} (1 - k/i) == C(n-c, k) / C(n, k), without big binomials.
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


def mean_pass_at_k(counts: Iterable[tuple[int, int]], ks: Sequence[int] = KS) -> dict[str, float]:
    """Mean pass@k over tasks given (n, c) per task, for every k <= the smallest n."""
    pairs = list(counts)
    if not pairs:
        return {}
    n_min = min(n for n, _ in pairs)
    return {
        f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in pairs) / len(pairs)
        for k in ks
        if k <= n_min
    }
