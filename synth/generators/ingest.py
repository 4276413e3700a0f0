"""Open-source instruction ingestion with a binary "is it code-related?" classifier.

Formats (detected per record):

- Evol-Instruct: ``{"instruction", "output"}`` (optionally ``"input"``); mixture stage 2
- McEval-Instruct: ``{"language", "instruction", "output"}``; stage 2
- Infinity-Instruct: ``{"conversations": [{"from": "human"|"gpt"|"system", "value"}]}``;
  stage 1
- chat: ``{"messages": [{"role", "content"}]}``; stage 2

Classifiers: ``heuristic`` (offline, a fixed linear score over code evidence: fenced blocks,
code syntax, programming vocabulary) or ``llm`` (the ``code_classifier`` prompt, scored from
the YES/NO logprobs like AutoDS). Entries judged not code-related are dropped as
``synth_ingest:not_code``; malformed ones as ``synth_ingest:bad_format``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from codekiln.stream.record import Record, record_id

from ..autods import first_token_alternatives, yes_no_probability
from ..errors import ConfigError, ParseError
from .base import AsyncStage, SynthContext, synth_record

__all__ = ["HeuristicCodeClassifier", "IngestStage", "normalize", "read_instructions"]

_ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
         "system": "system"}  # fmt: skip
_CODE_SYNTAX = re.compile(
    r"(\bdef \w+\(|\bfunction\b|\breturn\b|#include|\bimport \w+|\bclass \w+|=>|\{\s*$|;\s*$"
    r"|\bint main\b|\bprint\(|console\.log|\bSELECT\b.+\bFROM\b)",
    re.MULTILINE,
)
_VOCAB = re.compile(
    r"\b(python|java|javascript|typescript|c\+\+|golang|rust|sql|bash|code|program|function|"
    r"algorithm|array|string|integer|compile|debug|api|regex|recursion|class|variable|loop|"
    r"script|database|query|json|html|css|linked list|binary tree|complexity|implement)\b",
    re.IGNORECASE,
)


def normalize(obj: Any) -> tuple[str, list[dict[str, str]]]:
    """``(format, messages)`` for one instruction record, or ParseError("bad_format")."""
    if not isinstance(obj, dict):
        raise ParseError("bad_format", "an instruction record is a JSON object")
    if isinstance(obj.get("conversations"), list):
        messages = []
        for turn in obj["conversations"]:
            role = _ROLE.get(str(turn.get("from", ""))) if isinstance(turn, dict) else None
            if role is None or not isinstance(turn.get("value"), str):
                raise ParseError("bad_format", "a conversation turn needs from and value")
            messages.append({"role": role, "content": turn["value"]})
        fmt = "infinity_instruct"
    elif isinstance(obj.get("messages"), list):
        messages = []
        for m in obj["messages"]:
            if not isinstance(m, dict) or m.get("role") not in _ROLE.values():
                raise ParseError("bad_format", "a message needs a known role")
            messages.append({"role": str(m["role"]), "content": str(m.get("content", ""))})
        fmt = "chat"
    elif isinstance(obj.get("instruction"), str):
        answer = obj.get("output", obj.get("response", obj.get("answer")))
        if not isinstance(answer, str):
            raise ParseError("bad_format", "an instruction record needs output")
        user = obj["instruction"]
        if isinstance(obj.get("input"), str) and obj["input"].strip():
            user = f"{user}\n\n{obj['input']}"
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        fmt = "mceval_instruct" if "language" in obj else "evol_instruct"
    else:
        raise ParseError("bad_format", "unknown instruction format (keys: "
                         f"{sorted(obj)[:8]})")  # fmt: skip
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise ParseError("bad_format", "no non-empty assistant turn")
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        raise ParseError("bad_format", "no non-empty user turn")
    return fmt, messages


STAGE_OF_FORMAT = {"infinity_instruct": 1, "evol_instruct": 2, "mceval_instruct": 2, "chat": 2}


class HeuristicCodeClassifier:
    """A fixed linear score of code evidence, squashed to [0, 1]."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def score(self, text: str) -> float:
        fences = text.count("```") // 2
        syntax = len(_CODE_SYNTAX.findall(text))
        vocab = len(_VOCAB.findall(text))
        raw = 0.6 * min(fences, 2) + 0.15 * min(syntax, 6) + 0.12 * min(vocab, 6)
        return min(1.0, raw)

    def is_code(self, text: str) -> bool:
        return self.score(text) >= self.threshold


def read_instructions(path: Path) -> Iterator[Record]:
    """Records from a JSONL file (or a JSON array file); bad lines come back dropped."""
    source = f"instructions:{path.name}"
    if path.suffix == ".json":
        try:
            rows = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"cannot read instruction file {path}: {exc}") from exc
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: a .json instruction file holds a JSON array")
        lines: Iterator[tuple[int, Any, str | None]] = (
            (i, row, None) for i, row in enumerate(rows, 1)
        )
    else:
        lines = _jsonl_rows(path)
    for line_no, row, error in lines:
        rec = Record(
            id=record_id(source, f"{path.name}:{line_no}"),
            text=json.dumps(row, ensure_ascii=False) if error is None else "",
            path=f"{path.name}:{line_no}",
            source=source,
            meta={"raw": row} if error is None else {"error": error},
        )
        if error is not None:
            rec.drop_reason = "synth_ingest:bad_json"
        yield rec


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line.decode("utf-8")), None
            except (UnicodeDecodeError, ValueError) as exc:
                yield line_no, None, f"{type(exc).__name__}: {exc}"[:300]


class IngestStage(AsyncStage):
    """Normalise open-source instruction records, keep the code-related ones."""

    name: ClassVar[str] = "synth_ingest"
    prompts: ClassVar[tuple[str, ...]] = ("code_classifier",)

    def __init__(
        self,
        *,
        classifier: str = "heuristic",
        threshold: float = 0.5,
        context: SynthContext | None = None,
        llm_url: str | None = None,
        **kw: Any,
    ) -> None:
        if classifier not in ("heuristic", "llm"):
            raise ConfigError(
                f"synth_ingest.classifier must be heuristic or llm, got {classifier!r}"
            )
        self.classifier = classifier
        self.threshold = threshold
        self.heuristic = HeuristicCodeClassifier(threshold)
        self.needs_llm = classifier == "llm"
        super().__init__(context=context, llm_url=llm_url, **kw)

    async def code_probability(self, text: str) -> float:
        if self.classifier == "heuristic":
            return self.heuristic.score(text)
        template = self.prompt("code_classifier")
        params = template.params(logprobs=True, top_logprobs=20)
        out = await self.context.llm.chat(
            template.messages(text=text[:4000]), params, deadline_s=self.context.deadline_s
        )
        p = yes_no_probability(first_token_alternatives(out.choices[0].logprobs or ()))
        if p is None:
            raise ParseError("no_yes_no", "the classifier gave neither YES nor NO")
        return p

    async def agenerate(self, record: Record) -> list[Record]:
        fmt, messages = normalize(record.meta.get("raw"))
        user = "\n".join(m["content"] for m in messages if m["role"] == "user")
        p = await self.code_probability(user if self.classifier == "llm" else
                                        "\n".join(m["content"] for m in messages))  # fmt: skip
        text = "\n\n".join(m["content"] for m in messages) + "\n"
        sample = synth_record(
            record, self.name, 0, text, lang="", kind="sft", messages=messages,
            sft_stage=STAGE_OF_FORMAT[fmt], source_kind=fmt, code_probability=round(p, 4),
        )  # fmt: skip
        sample.path = record.path
        if p < self.threshold:
            sample.drop_reason = f"{self.name}:not_code"
        return [sample]
