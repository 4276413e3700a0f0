"""Prompts, stop sequences, code extraction and sanitisation."""

from __future__ import annotations

from pathlib import Path

from codekiln.eval.data import load_dataset
from codekiln.eval.prompts import (
    base_prompt,
    chat_messages,
    extract_code,
    postprocess,
    stop_sequences,
    truncate_at_stops,
)


def test_base_stops_include_dataset_extras(data_dir: Path) -> None:
    """HumanEval stops at a new top-level def; MBPP at a closing docstring."""
    assert "\ndef " in stop_sequences(load_dataset("humaneval+", data_dir))
    assert '\n"""' in stop_sequences(load_dataset("mbpp+", data_dir))


def test_truncate_cuts_at_the_earliest_stop() -> None:
    """The completion ends at whichever stop sequence comes first."""
    assert truncate_at_stops("  return 1\nprint(2)\ndef g", ("\ndef ", "\nprint(")) == "  return 1"


def test_chat_prompt_carries_the_task_in_a_code_block(data_dir: Path) -> None:
    """The instruct prompt is evalplus's instruction with the task prompt fenced."""
    task = load_dataset("humaneval+", data_dir).tasks["HumanEval/0"]
    content = chat_messages(task)[0]["content"]
    assert content.startswith("Please provide a self-contained Python script")
    assert task.prompt.strip() in content


def test_extract_prefers_the_block_defining_the_entry_point() -> None:
    """Of several fenced blocks, the one that defines the entry point is taken."""
    text = "```python\nprint('usage')\n```\nthen\n```python\ndef f(x):\n    return x\n```\n"
    assert extract_code(text, "f").strip() == "def f(x):\n    return x"


def test_instruct_postprocess_keeps_code_reachable_from_entry_point(data_dir: Path) -> None:
    """Sanitising keeps helpers the entry point calls and drops top-level prints."""
    task = load_dataset("humaneval+", data_dir).tasks["HumanEval/0"]
    answer = (
        "Here:\n```python\ndef helper(x):\n    return x\n\n"
        "def has_close_elements(numbers, threshold):\n    return helper(False)\n\n"
        "print(has_close_elements([], 1.0))\n```\n"
    )
    code = postprocess("instruct", task, "", answer, ())
    assert "def helper" in code
    assert "print(" not in code


def test_base_postprocess_is_prompt_plus_truncated_completion(data_dir: Path) -> None:
    """A base completion is appended to the prompt and cut at the stops."""
    ds = load_dataset("humaneval+", data_dir)
    task = ds.tasks["HumanEval/0"]
    prompt = base_prompt(task)
    code = postprocess("base", task, prompt, "    return False\n\ndef unrelated():\n", ())
    code_stopped = postprocess(
        "base", task, prompt, "    return False\n\ndef unrelated():\n", stop_sequences(ds)
    )
    assert "unrelated" not in code_stopped
    assert code_stopped.rstrip().endswith("return False")
    assert "def has_close_elements" in code
