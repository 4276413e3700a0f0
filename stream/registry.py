"""Stage names, as a config file writes them, mapped to the classes that implement them.

Entries are import paths so that naming a stage does not import every optional dependency.
``DEFAULT_PIPELINE`` is the RefineCode order used when a run has no ``--config``.
"""

from __future__ import annotations

import importlib
import importlib.util

from codekiln.stream.stage import Stage

STAGES: dict[str, str] = {
    # stage 1 (preprocessing, dedup, transformation)
    "preprocess": "codekiln.stream.preprocess.language:LanguageStage",
    "exact_dedup": "codekiln.stream.dedup.exact:ExactDedupStage",
    # cpu_bound signatures (process pool) feeding the stateful LSH index of fuzzy_dedup
    "minhash": "codekiln.stream.dedup.fuzzy:MinHashStage",
    "fuzzy_dedup": "codekiln.stream.dedup.fuzzy:FuzzyDedupStage",
    "copyright": "codekiln.stream.transform.copyright:CopyrightStage",
    # stage 2 (filters, sampling, annealing routing, web classification)
    "filters": "codekiln.stream.filters.heuristic:HeuristicFilterStage",
    "downsample": "codekiln.stream.sampling.downsample:DownsampleStage",
    "anneal_route": "codekiln.stream.sampling.anneal:AnnealRouteStage",
    "webclf": "codekiln.stream.webclf.stage:WebScoreStage",
    # synthesis (codekiln.synth): LLM stages take llm_url (and sandbox_url) as options
    "decontam": "codekiln.synth.decontam:DecontamStage",
    "autods": "codekiln.synth.generators.scoring:AutoDSStage",
    "synth_snippets": "codekiln.synth.generators.annealing:SnippetStage",
    "synth_textbook": "codekiln.synth.generators.annealing:TextbookStage",
    "synth_edu": "codekiln.synth.generators.instructions:EducationalStage",
    "synth_package": "codekiln.synth.generators.instructions:PackageStage",
    "synth_diverse": "codekiln.synth.generators.instructions:DiverseStage",
    "synth_ingest": "codekiln.synth.generators.ingest:IngestStage",
    # testing and benchmarking
    "noop": "codekiln.stream.runtime.builtin:NoopStage",
}

DEFAULT_PIPELINE: tuple[str, ...] = (
    "preprocess",
    "exact_dedup",
    "minhash",
    "fuzzy_dedup",
    "copyright",
    "filters",
    "downsample",
    "anneal_route",
)


class UnknownStageError(KeyError):
    """A config names a stage that is not registered."""


def resolve(name: str) -> type[Stage]:
    try:
        target = STAGES[name]
    except KeyError:
        known = ", ".join(sorted(STAGES))
        raise UnknownStageError(f"unknown stage {name!r}; known stages: {known}") from None
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise TypeError(f"{target} is not a Stage subclass")
    return cls


def available(name: str) -> bool:
    """Whether the stage's module exists yet (the default pipeline is "as far as it exists")."""
    module_name = STAGES[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False
