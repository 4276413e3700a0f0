"""Annealing generators: self-contained snippets with tests, and code textbooks."""

from __future__ import annotations

from typing import ClassVar

from codekiln.stream.record import Record

from ..errors import ParseError
from .base import AsyncStage, synth_record

__all__ = ["SnippetStage", "TextbookStage"]


def _parse_failure(
    stage: AsyncStage, seed: Record, index: int, raw: str, exc: ParseError
) -> Record:
    out = synth_record(seed, stage.name, index, raw, kind="parse_failure")
    out.drop_reason = f"{stage.name}:parse:{exc.rule}"
    out.meta["error"] = str(exc)[:500]
    return out


class SnippetStage(AsyncStage):
    """Seed code -> one self-contained Python function with asserts; kept only if they pass."""

    name: ClassVar[str] = "synth_snippets"
    prompts: ClassVar[tuple[str, ...]] = ("annealing_snippet",)

    async def agenerate(self, record: Record) -> list[Record]:
        template = self.prompt("annealing_snippet")
        out = []
        for i, (raw, parsed) in enumerate(await self.ask(template, {"seed": record.text[:6000]})):
            if isinstance(parsed, ParseError):
                out.append(_parse_failure(self, record, i, raw, parsed))
                continue
            code, tests = parsed["code"], parsed["tests"]
            sample = synth_record(
                record, self.name, i, f"{code}\n\n\n{tests}\n",
                lang="python", kind="annealing", code=code, tests=tests,
            )  # fmt: skip
            verdict = await self.judge(code, tests)
            if verdict is None:
                sample.drop_reason = f"{self.name}:exec:no_sandbox"
            else:
                sample.meta["execution"] = verdict.detail
                if not verdict.passed:
                    sample.drop_reason = f"{self.name}:{verdict.rule}"
            out.append(sample)
        return out


class TextbookStage(AsyncStage):
    """Seed code -> a textbook section explaining the knowledge behind it (no execution)."""

    name: ClassVar[str] = "synth_textbook"
    prompts: ClassVar[tuple[str, ...]] = ("annealing_textbook",)

    async def agenerate(self, record: Record) -> list[Record]:
        template = self.prompt("annealing_textbook")
        out = []
        values = {"seed": record.text[:6000], "lang": record.lang or "source"}
        for i, (raw, parsed) in enumerate(await self.ask(template, values)):
            if isinstance(parsed, ParseError):
                out.append(_parse_failure(self, record, i, raw, parsed))
                continue
            out.append(
                synth_record(
                    record, self.name, i, parsed["text"], lang="markdown", kind="annealing"
                )
            )
        return out
