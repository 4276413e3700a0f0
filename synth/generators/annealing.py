"""Annealing generators: self-contained snippets with tests, and code textbooks."""

from __future__ import annotations

from typing import ClassVar

from codekiln.stream.record import Record

from .base import AsyncStage, synth_record

__all__ = ["SnippetStage", "TextbookStage"]


class SnippetStage(AsyncStage):
    """Seed code -> one self-contained Python function with asserts; kept only if they pass."""

    name: ClassVar[str] = "synth_snippets"
    prompts: ClassVar[tuple[str, ...]] = ("annealing_snippet",)

    async def agenerate(self, record: Record) -> list[Record]:
        async def sample(i: int, parsed: dict[str, str]) -> Record:
            code, tests = parsed["code"], parsed["tests"]
            out = synth_record(
                record, self.name, i, f"{code}\n\n\n{tests}\n",
                lang="python", kind="annealing", code=code, tests=tests,
            )  # fmt: skip
            return await self.check_execution(out, code, tests)

        template = self.prompt("annealing_snippet")
        return await self.each_answer(record, template, {"seed": record.text[:6000]}, sample)


class TextbookStage(AsyncStage):
    """Seed code -> a textbook section explaining the knowledge behind it (no execution)."""

    name: ClassVar[str] = "synth_textbook"
    prompts: ClassVar[tuple[str, ...]] = ("annealing_textbook",)

    async def agenerate(self, record: Record) -> list[Record]:
        async def sample(i: int, parsed: dict[str, str]) -> Record:
            return synth_record(
                record, self.name, i, parsed["text"], lang="markdown", kind="annealing"
            )

        template = self.prompt("annealing_textbook")
        values = {"seed": record.text[:6000], "lang": record.lang or "source"}
        return await self.each_answer(record, template, values, sample)
