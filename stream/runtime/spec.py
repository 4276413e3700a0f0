"""What a run is and what it gives back: :class:`JobSpec` (inputs, output folder, config, the
steps composed above the engine), :class:`JobResult`, and :class:`CorpusCommitted`, the
engine's result once the corpus is committed (what those steps start from).

Every executor takes a ``JobSpec`` and returns a ``JobResult`` through the run protocol
(:mod:`.protocol`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from codekiln.stream.config import StreamConfig
from codekiln.stream.manifest import MANIFEST, Manifest, SkippedStage
from codekiln.stream.report import ReportPart


@dataclass(frozen=True)
class CorpusCommitted:
    """The engine's result once the corpus is committed: what the steps above it start from."""

    out_dir: Path
    #: manifest.json as written at the commit (the after-commit steps' entries not yet in it).
    manifest: Mapping[str, Any]

    @property
    def corpus_dir(self) -> Path:
        return self.out_dir / "corpus"

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST


class AfterCommit(Protocol):
    """A step composed above the engine (codekiln.flow), run once the corpus is committed.

    The engine runs each step at most once per output folder: the step's result is saved in
    the checkpoint under ``key`` before the next starts, so a rerun after a crash does not
    call a step that already ran. ``entry`` gives the step's ``manifest.json`` entry (also
    under ``key``; ``None``: none), ``report`` its part of ``report.md`` and of the summary.
    """

    key: str

    def wanted(self) -> bool:
        """Whether ``run`` is to be called (an unconfigured step is only described)."""
        ...

    async def run(self, committed: CorpusCommitted) -> dict[str, Any]: ...

    def entry(self, result: dict[str, Any] | None) -> Any: ...

    def report(self, manifest: Mapping[str, Any]) -> ReportPart: ...


@dataclass(frozen=True)
class JobSpec:
    inputs: tuple[str, ...]
    out_dir: Path
    config: StreamConfig
    overwrite: bool = False
    #: Replace (instead of refusing) a run in out_dir whose inputs or config differ; the same
    #: run is still resumed. --default-input sets it: stages come and go with the code.
    restart_on_change: bool = False
    #: Free-form notes for the report (e.g. which caps the CLI applied and why).
    notes: tuple[str, ...] = ()
    #: What runs once the corpus is committed, in order (composed by codekiln.flow).
    after_commit: tuple[AfterCommit, ...] = ()
    #: Sections of the combined config owned by the layers above the engine, recorded
    #: after the engine's own in the manifest's ``config``.
    config_extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    out_dir: Path
    manifest: Manifest
    report_path: Path
    resumed: bool = False
    already_complete: bool = False
    skipped_stages: list[SkippedStage] = field(default_factory=list)
    #: One-line notes of the after-commit steps for the terminal summary.
    summary: list[str] = field(default_factory=list)


def default_inputs() -> list[str]:
    """The venv's standard library and site-packages (sysconfig stdlib, purelib, platlib)."""
    import sysconfig

    paths = sysconfig.get_paths()
    out: list[str] = []
    for key in ("stdlib", "purelib", "platlib"):
        p = paths.get(key)
        if p and Path(p).is_dir() and p not in out:
            out.append(p)
    if not out:  # pragma: no cover - every CPython has a stdlib folder
        out.append(str(Path(sys.executable).parent))
    return out
