"""codekiln.synth: LLM-driven synthesis of annealing and SFT data, execution-filtered.

The public surface is below; modules: :mod:`.llm` (the OpenAI-compatible client),
:mod:`.autods`, :mod:`.decontam`, :mod:`.prompts` / :mod:`.parsers`, :mod:`.generators`,
:mod:`.mixture`, :mod:`.job`, :mod:`.errors` (the error tree). See docs/synth.md.
"""

from .autods import AutoDSScore, AutoDSScorer, select, yes_no_probability
from .config import SynthConfig
from .decontam import DecontamStage
from .errors import (
    ConfigError,
    ExecutionError,
    LLMError,
    LLMFatalError,
    LLMRetryableError,
    ParseError,
    PromptError,
    SynthError,
)
from .job import DISABLED_NOTE, run_synthesis
from .llm import Completion, LLMClient, LLMConfig, SamplingParams
from .mixture import SFTMixtureWriter
from .prompts import PromptTemplate, load_prompt

__all__ = [
    "DISABLED_NOTE",
    "AutoDSScore",
    "AutoDSScorer",
    "Completion",
    "ConfigError",
    "DecontamStage",
    "ExecutionError",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "LLMFatalError",
    "LLMRetryableError",
    "ParseError",
    "PromptError",
    "PromptTemplate",
    "SFTMixtureWriter",
    "SamplingParams",
    "SynthConfig",
    "SynthError",
    "load_prompt",
    "run_synthesis",
    "select",
    "yes_no_probability",
]
