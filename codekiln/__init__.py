"""codekiln: streaming, sandboxed synthetic-data and evaluation service for code LLMs.

Components (each its own subpackage and console script):

- ``codekiln.stream``: the streaming RefineCode pipeline (``codekiln-stream``)
- ``codekiln.sandbox``: hardened Docker execution service and client (``codekiln-sandbox``)
- ``codekiln.synth``: LLM-driven synthesis of annealing and SFT data (``codekiln-synth``)
- ``codekiln.train``: pretrain / anneal / SFT trainer and launchers (``codekiln-train``)
- ``codekiln.eval``: HumanEval(+)/MBPP(+) evaluation (``codekiln-eval``)

``codekiln.flow`` composes them: corpus (stream) -> synthesis (synth) -> launch (train, then
eval), with the one config file checked whole before any work (``codekiln-stream run``).
"""

__version__ = "0.1.0"
