"""The stages of a run, built from its config: the configured list, or the default pipeline as
far as its stages exist and start (a missing one is skipped, and said why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codekiln.stream import registry
from codekiln.stream.config import StreamConfig, resolve_stage
from codekiln.stream.manifest import SkippedStage
from codekiln.stream.runtime.errors import ConfigError
from codekiln.stream.stage import Stage


@dataclass
class BuiltStages:
    stages: list[tuple[str, Stage]]
    names: dict[str, str]
    skipped: list[SkippedStage]


def build_stages(config: StreamConfig, warn: Callable[[str], None] | None = None) -> BuiltStages:
    """Instantiate the configured stages (or the default pipeline, as far as it exists)."""
    entries: list[tuple[str, dict[str, Any]]] = []
    skipped: list[SkippedStage] = []
    classes: dict[int, type[Stage]] = {}
    if config.stages is None:
        for name in registry.DEFAULT_PIPELINE:
            if not registry.available(name):
                skipped.append({"name": name, "why": "module not written yet"})
                continue
            try:
                cls = registry.resolve(name)
            except Exception as exc:
                skipped.append(
                    {"name": name, "why": f"cannot be loaded: {type(exc).__name__}: {exc}"}
                )
                continue
            classes[len(entries)] = cls
            entries.append((name, {}))
    else:
        for i, sc in enumerate(config.stages):
            classes[len(entries)] = resolve_stage(f"stages[{i}]", sc.name)
            entries.append((sc.name, dict(sc.options)))
    stages: list[tuple[str, Stage]] = []
    names: dict[str, str] = {}
    seen: dict[str, int] = {}
    for i, (name, options) in enumerate(entries):
        cls = classes[i]
        try:
            stage = cls(**options)
        except Exception as exc:
            if config.stages is None:
                skipped.append({"name": name, "why": f"cannot start: {type(exc).__name__}: {exc}"})
                continue
            raise ConfigError(
                f"config: stages[{i}].options: stage {name!r} rejected its options: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        base = name.rpartition(":")[2] if ":" in name else name
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base}_{seen[base]}"
        stages.append((key, stage))
        names[key] = name
    for item in skipped:
        if warn is not None:
            warn(f"stage {item['name']} is off: {item['why']}")
    return BuiltStages(stages, names, skipped)


def pool_stage_classes(config: StreamConfig) -> list[type[Stage]]:
    """The classes whose stages may run in the process pool (``cpu_bound``), imported but not
    instantiated, so the CLI can preload them before it forks the pool; a stage that cannot
    load is left out here (``build_stages`` reports it). Where each stage runs is decided per
    instance, by its scope (:func:`~codekiln.stream.runtime.pipeline.in_pool`): a class
    preloaded whose stage then runs in the runtime's process has only loaded early what that
    stage loads anyway."""
    classes: list[type[Stage]] = []
    if config.stages is None:
        for name in registry.DEFAULT_PIPELINE:
            try:
                if registry.available(name):
                    classes.append(registry.resolve(name))
            except Exception:  # build_stages skips it and says why
                continue
    else:
        classes = [resolve_stage(f"stages[{i}]", sc.name) for i, sc in enumerate(config.stages)]
    return [cls for cls in classes if cls.cpu_bound]
