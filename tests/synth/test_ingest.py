"""Open-source instruction ingestion: formats and the code-related classifier."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from codekiln.stream.record import Record
from codekiln.synth.errors import ParseError
from codekiln.synth.generators.base import SynthContext
from codekiln.synth.generators.ingest import (
    HeuristicCodeClassifier,
    IngestStage,
    normalize,
    read_instructions,
)

from tests.fakes.openai_server import FakeOpenAIServer
from tests.synth.helpers import fast_config
from tests.synth.scripted import yes

EVOL = {"instruction": "Write a Python function that reverses a linked list.",
        "output": "```python\ndef rev(head):\n    prev = None\n    return prev\n```"}  # fmt: skip
MCEVAL = {"language": "rust", "instruction": "Implement binary search in Rust.",
          "output": "fn search(v: &[i32], t: i32) -> Option<usize> { None }"}  # fmt: skip
INFINITY = {"conversations": [{"from": "human", "value": "What is the capital of France?"},
                              {"from": "gpt", "value": "Paris."}]}  # fmt: skip


class TestNormalize:
    @pytest.mark.parametrize(
        ("row", "fmt"),
        [(EVOL, "evol_instruct"), (MCEVAL, "mceval_instruct"), (INFINITY, "infinity_instruct")],
    )
    def test_formats_are_detected(self, row: dict[str, object], fmt: str) -> None:
        """Each supported format becomes user/assistant messages."""
        found, messages = normalize(row)
        assert found == fmt
        assert [m["role"] for m in messages] == ["user", "assistant"]

    def test_unknown_format(self) -> None:
        """A record of no known format is a bad_format ParseError."""
        with pytest.raises(ParseError, match="bad_format"):
            normalize({"question": "x"})

    def test_empty_answer(self) -> None:
        """A conversation without an assistant answer is rejected."""
        with pytest.raises(ParseError, match="assistant"):
            normalize({"instruction": "x", "output": "  "})


class TestClassifier:
    def test_code_and_chat_are_separated(self) -> None:
        """Code instructions score high, general chat low."""
        clf = HeuristicCodeClassifier()
        assert clf.is_code(EVOL["instruction"] + "\n" + EVOL["output"])
        assert not clf.is_code("What is the capital of France?\nParis.")


def test_ingest_stage_end_to_end(tmp_path: Path) -> None:
    """Bad lines, non-code and code entries each end where they should, offline."""
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([json.dumps(EVOL), json.dumps(INFINITY), "{broken",
                               json.dumps({"nope": 1})]) + "\n")  # fmt: skip
    rows = list(read_instructions(path))
    assert rows[2].drop_reason == "synth_ingest:bad_json"
    stage = IngestStage()
    out = stage.process([r for r in rows if r.drop_reason is None])
    reasons = [r.drop_reason for r in out]
    assert reasons == [None, "synth_ingest:not_code", "synth_ingest:parse:bad_format"]
    assert out[0].meta["sft_stage"] == 2
    assert out[0].meta["messages"][0]["content"].startswith("Write a Python function")


async def test_llm_classifier(fake_llm: FakeOpenAIServer) -> None:
    """With classifier='llm' the YES/NO logprobs decide, on the user turn only."""
    fake_llm.route("capital of France", yes(-4.0, -0.05))
    fake_llm.route("linked list", yes(-0.05, -4.0))
    ctx = SynthContext.open(fast_config(fake_llm.url))
    try:
        stage = IngestStage(classifier="llm", context=ctx)
        await asyncio.to_thread(stage.open, Path("."))
        rows = [Record(id=f"{i}" * 32, text="", meta={"raw": row})
                for i, row in enumerate([EVOL, INFINITY])]  # fmt: skip
        out = await asyncio.to_thread(stage.process, rows)
    finally:
        ctx.close()
    assert [r.drop_reason for r in out] == [None, "synth_ingest:not_code"]
    assert out[0].meta["code_probability"] > 0.9
