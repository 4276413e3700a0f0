"""The limits of the evaluation jobs (:class:`ExecConfig`), evalplus's time limits and the
sandbox service's caps.

The caps on one job are the sandbox's own defaults, read from its configuration
(:class:`codekiln.sandbox.config.SandboxConfig`'s ``max_timeout_s`` and ``max_memory_mb``), not
copied: a service with other caps is described with ``--sandbox-max-timeout-s`` / ``--memory-mb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

from codekiln.sandbox.config import SandboxConfig

from codekiln.checks import bound, check_bounds

from .errors import ConfigError

__all__ = ["SANDBOX_MAX_MEMORY_MB", "SANDBOX_MAX_TIMEOUT_S", "ExecConfig"]

_T = TypeVar("_T")


def _sandbox_default(name: str, kind: type[_T]) -> _T:
    value = next(f.default for f in fields(SandboxConfig) if f.name == name)
    assert isinstance(value, kind), (name, value)
    return value


#: The sandbox service's default cap on one job's wall time (``SandboxConfig.max_timeout_s``).
SANDBOX_MAX_TIMEOUT_S: float = _sandbox_default("max_timeout_s", float)
#: The sandbox service's default cap on one job's memory (``SandboxConfig.max_memory_mb``).
SANDBOX_MAX_MEMORY_MB: int = _sandbox_default("max_memory_mb", int)


@dataclass(frozen=True)
class ExecConfig:
    """Limits of the evaluation jobs; units in the names.

    The time-limit defaults are evalplus 0.3.1's: ``DEFAULT_MIN_TIME_LIMIT = 1.0`` and
    ``DEFAULT_GT_TIME_LIMIT_FACTOR = 4.0`` (``evalplus/config.py``), the per-part cap of 60 s
    (``EVALPLUS_TIMEOUT_PER_TASK``'s default) and the 2 s that ``untrusted_check`` adds to it
    (``+ 1`` on the timeout, ``+ 1`` on the join). ``sandbox_max_timeout_s`` and ``memory_mb``
    default to the sandbox service's caps on one job.
    """

    min_time_limit_s: float = bound(1.0, "> 0")
    time_limit_factor: float = bound(4.0, "> 0")
    part_timeout_cap_s: float = bound(60.0, "> 0")
    part_timeout_extra_s: float = bound(2.0, ">= 0")
    # Assert tasks (original HumanEval/MBPP) are not evalplus's; their limit is on the wall
    # time of a whole sandbox job (interpreter start included), so it keeps a larger floor.
    assert_min_time_limit_s: float = bound(4.0, "> 0")
    job_cpu_s: float = bound(25.0, "> 0")
    max_job_s: float = bound(60.0, "> 0")
    load_allowance_s: float = bound(5.0, "> 0")
    reference_timeout_s: float = bound(60.0, "> 0")
    sandbox_max_timeout_s: float = bound(SANDBOX_MAX_TIMEOUT_S, "> 0")
    memory_mb: int = bound(SANDBOX_MAX_MEMORY_MB, ">= 1")
    concurrency: int = bound(4, ">= 1")
    error_retries: int = bound(2, ">= 0")

    def __post_init__(self) -> None:
        check_bounds(self, "", ConfigError)

    def limits(self, times_s: Sequence[float]) -> list[float]:
        """evalplus's per-input limits: ``max(min, factor x reference time)``."""
        return [max(self.min_time_limit_s, self.time_limit_factor * t) for t in times_s]

    def part_budget_s(self, limits: Sequence[float]) -> float:
        """evalplus's time for a whole part, loading the solution included."""
        return min(self.part_timeout_cap_s, sum(limits)) + self.part_timeout_extra_s

    def job_share_s(self) -> float:
        """The CPU one check job may use before the next job goes on (a smaller sandbox cap
        on one job lowers it)."""
        return max(min(self.job_cpu_s, self.sandbox_max_timeout_s - self.load_allowance_s), 0.0)

    def job_timeout_s(self) -> float:
        # Limits are on CPU time inside the harness; this wall deadline only stops a job that
        # sleeps or hangs, so it is generous (a loaded machine must not fail correct solutions).
        return min(self.max_job_s + self.load_allowance_s, self.sandbox_max_timeout_s)
