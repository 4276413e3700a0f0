"""Prompts and post-processing: base completion prompts with the standard stop sequences, and
instruct chat prompts whose answers go through code extraction and evalplus's sanitiser.

The wording and stop sequences are evalplus's (0.3.1 ``provider/utility.py``, ``codegen.py``),
so numbers stay comparable with published evalplus results.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Literal

from .data import Dataset, Task

Mode = Literal["base", "instruct"]
MODES: tuple[Mode, ...] = ("base", "instruct")

# Stop sequences for base-model completion: evalplus's EOS plus its per-dataset extras.
_EOS = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(")
_EXTRA_STOPS = {
    "humaneval": ("\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "),
    "mbpp": ('\n"""', "\nassert"),
}
INSTRUCTION_PREFIX = (
    "Please provide a self-contained Python script that solves the following problem in a "
    "markdown code block:"
)


EOS_STOPS = _EOS


def stop_sequences(dataset: Dataset) -> tuple[str, ...]:
    return _EOS + _EXTRA_STOPS[dataset.family]


def base_prompt(task: Task) -> str:
    """The completion prompt: the task prompt, stripped, with one newline (as evalplus)."""
    return task.prompt.strip() + "\n"


def chat_messages(task: Task) -> list[dict[str, str]]:
    """The instruct prompt, as evalplus's OpenAI chat decoder sends it."""
    content = f"{INSTRUCTION_PREFIX}\n```python\n{task.prompt.strip()}\n```"
    return [{"role": "user", "content": content}]


def truncate_at_stops(text: str, stops: tuple[str, ...]) -> str:
    """Cut a completion at the earliest stop sequence (again: a server may ignore some)."""
    cut = len(text)
    for stop in stops:
        i = text.find(stop)
        if 0 <= i < cut:
            cut = i
    return text[:cut]


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(text: str, entry_point: str) -> str:
    """The code of a chat answer: the fenced block that defines the entry point, else the
    longest Python block, else the whole answer (evalplus's sanitiser finds code in it)."""
    blocks: list[tuple[str, str]] = [
        (lang.lower(), body)
        for lang, body in _FENCE.findall(text)
        if lang.lower() in ("", "python", "py", "python3")
    ]
    defining = [b for _, b in blocks if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
    if defining:
        return "\n".join(defining)
    if blocks:
        return max((b for _, b in blocks), key=len)
    return text


def sanitize(code: str, entry_point: str) -> str:
    """evalplus's sanitiser: keep imports and the definitions reachable from the entry point.

    Falls back to the unsanitised code if the sanitiser loses the entry point (it drops
    functions without a return statement).
    """
    from evalplus.sanitize import sanitize as evalplus_sanitize

    try:
        cleaned: str = evalplus_sanitize(code, entrypoint=entry_point)
    except Exception:  # a third-party parser on model output: keep the raw code
        return code
    if _defines(cleaned, entry_point) or not _defines(code, entry_point):
        return cleaned
    return code


def _defines(code: str, name: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.name == name
        for n in tree.body
    )


def postprocess(mode: Mode, task: Task, prompt: str, output: str, stops: tuple[str, ...]) -> str:
    """The solution program for one model output (raw is kept separately by the caller)."""
    if mode == "base":
        program = prompt + truncate_at_stops(output, stops)
    else:
        program = extract_code(output, task.entry_point)
    return sanitize(program, task.entry_point)
