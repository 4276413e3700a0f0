"""Prompt data files and their loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from codekiln.synth.errors import PromptError
from codekiln.synth.prompts import PROMPT_DIR, load_prompt, load_questions

PROMPTS = sorted(p.stem for p in PROMPT_DIR.glob("*.yaml") if p.stem != "autods_questions")


@pytest.mark.parametrize("name", PROMPTS)
def test_every_prompt_file_loads(name: str) -> None:
    """Each shipped prompt loads, renders with its inputs and builds sampling params."""
    prompt = load_prompt(name)
    messages = prompt.messages(**{k: f"<{k}>" for k in prompt.inputs})
    assert messages[-1]["role"] == "user"
    assert all(f"<{k}>" in "".join(m["content"] for m in messages) for k in prompt.inputs)
    assert prompt.params().max_tokens >= 1


def test_missing_value_is_an_error() -> None:
    """Rendering without a declared input raises PromptError."""
    with pytest.raises(PromptError, match="needs values"):
        load_prompt("annealing_snippet").messages()


def test_placeholders_must_match_inputs(tmp_path: Path) -> None:
    """A template using an undeclared placeholder is rejected at load time."""
    (tmp_path / "bad.yaml").write_text("name: bad\nparser: yes_no\ninputs: [a]\nuser: '{a} {b}'\n")
    with pytest.raises(PromptError, match="inputs"):
        load_prompt("bad", tmp_path)


def test_unknown_parser_is_rejected(tmp_path: Path) -> None:
    """A prompt naming a parser that does not exist fails to load."""
    (tmp_path / "bad.yaml").write_text("name: bad\nparser: nope\nuser: hi\n")
    with pytest.raises(PromptError, match="unknown parser"):
        load_prompt("bad", tmp_path)


def test_question_sets() -> None:
    """The AutoDS math set holds the seed's two questions."""
    ids = [qid for qid, _ in load_questions("math_intelligence")]
    assert ids == ["math_intelligence", "math_educational"]
    with pytest.raises(PromptError, match="no question set"):
        load_questions("nope")
