"""SFT generators: educational, package-grounded and large-scale diverse instruction synthesis.

Every sample is an SFT conversation in ``meta["messages"]`` (user instruction, assistant
answer), with ``meta["sft_stage"]`` naming the mixture stage it belongs to (1: theory, 2:
practical coding) and ``text`` the whole conversation plus its tests (what decontamination and
dedup look at). Samples with code are kept only when their tests pass in the sandbox.
"""

from __future__ import annotations

import ast
import random
import re
from typing import Any, ClassVar

from codekiln.stream.record import Record

from ..errors import ParseError
from ..parsers import code_blocks
from .base import AsyncStage, synth_record

__all__ = [
    "DIFFICULTIES",
    "LANGUAGES",
    "TASK_TYPES",
    "DiverseStage",
    "EducationalStage",
    "PackageStage",
    "sft_record",
]

LANGUAGES = ("python", "python", "python", "javascript", "cpp", "c", "bash")  # weighted
DIFFICULTIES = ("easy", "medium", "hard")
TASK_TYPES = (
    "function implementation",
    "algorithm design",
    "data structure",
    "string processing",
    "math and number theory",
    "debugging and fixing",
    "data transformation",
    "simulation",
)
_SENTENCE = re.compile(r"[^.!?\n]{40,400}[.!?]")


def sft_record(
    seed: Record,
    generator: str,
    index: int,
    user: str,
    assistant: str,
    *,
    stage: int,
    tests: str = "",
    **meta: Any,
) -> Record:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    text = f"{user}\n\n{assistant}\n\n{tests}".strip() + "\n"
    return synth_record(
        seed, generator, index, text, messages=messages, sft_stage=stage, tests=tests, **meta
    )


class EducationalStage(AsyncStage):
    """A scored seed -> Python task, analysis, solution and tests; execution-filtered."""

    name: ClassVar[str] = "synth_edu"
    prompts: ClassVar[tuple[str, ...]] = ("edu_instruction",)

    async def agenerate(self, record: Record) -> list[Record]:
        async def sample(i: int, parsed: dict[str, str]) -> Record:
            answer = f"{parsed['analysis']}\n\n```python\n{parsed['solution']}\n```"
            out = sft_record(
                record, self.name, i, parsed["task"], answer, stage=2, tests=parsed["tests"],
                lang="python", kind="sft", source_kind="educational",
            )  # fmt: skip
            return await self.check_execution(out, parsed["solution"], parsed["tests"])

        template = self.prompt("edu_instruction")
        return await self.each_answer(record, template, {"seed": record.text[:6000]}, sample)


class PackageStage(AsyncStage):
    """An API doc (from :mod:`codekiln.synth.packages`) -> problem, solution, tests."""

    name: ClassVar[str] = "synth_package"
    prompts: ClassVar[tuple[str, ...]] = ("package_instruction",)

    async def agenerate(self, record: Record) -> list[Record]:
        meta = record.meta
        template = self.prompt("package_instruction")
        values = {
            "package": str(meta["package"]),
            "version": str(meta.get("version", "")),
            "api": str(meta["api"]),
            "signature": str(meta.get("signature", "")),
            "doc": record.text[:4000],
        }

        async def sample(i: int, parsed: dict[str, str]) -> Record:
            answer = f"```python\n{parsed['solution']}\n```"
            out = sft_record(
                record, self.name, i, parsed["problem"], answer, stage=2, tests=parsed["tests"],
                lang="python", kind="sft", source_kind="package", package=values["package"],
                api=values["api"],
            )  # fmt: skip
            short = values["api"].rsplit(".", 1)[-1]
            if short not in parsed["solution"]:
                out.drop_reason = f"{self.name}:api_not_used"
            else:
                await self.check_execution(out, parsed["solution"], parsed["tests"], "python")
            return out

        return await self.each_answer(record, template, values, sample)


def seed_sentence(text: str, rng: random.Random) -> str | None:
    """One prose sentence of 40-400 characters from ``text``, or None."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if len(s.split()) >= 6]
    return rng.choice(sentences) if sentences else None


def _strip_comments(code: str, language: str) -> str:
    if language in ("python", "bash"):
        code = re.sub(r"#[^\n]*", "", code)
    else:
        code = re.sub(r"/\*.*?\*/", "", code, flags=re.DOTALL)
        code = re.sub(r"//[^\n]*", "", code)
    return re.sub(r"\s+", "", code)


def same_code(original: str, annotated: str, language: str) -> bool:
    """Whether ``annotated`` is ``original`` plus comments only."""
    if language == "python":
        try:
            return ast.dump(ast.parse(original)) == ast.dump(ast.parse(annotated))
        except SyntaxError:
            return False
    return _strip_comments(original, language) == _strip_comments(annotated, language)


class DiverseStage(AsyncStage):
    """MAmmoTH2-style: a web seed sentence + a random task spec -> instruction, response,
    tests; execution filter; then code annotation (comments only, verified)."""

    name: ClassVar[str] = "synth_diverse"
    prompts: ClassVar[tuple[str, ...]] = ("diverse_instruction", "code_annotation")

    async def agenerate(self, record: Record) -> list[Record]:
        # The spec is drawn from an rng seeded by the record id: the same seed, the same spec.
        rng = random.Random(f"{self.context.seed}:{record.id}")
        sentence = seed_sentence(record.text, rng)
        if sentence is None:
            record.drop_reason = f"{self.name}:no_seed_sentence"
            return [record]
        spec = {
            "language": rng.choice(LANGUAGES),
            "difficulty": rng.choice(DIFFICULTIES),
            "task_type": rng.choice(TASK_TYPES),
        }

        async def sample(i: int, parsed: dict[str, str]) -> Record:
            language = parsed["code_language"] or spec["language"]
            out = sft_record(
                record, self.name, i, parsed["instruction"], parsed["response"], stage=1,
                tests=parsed["tests"], lang=language, kind="sft", source_kind="diverse",
                spec=spec, seed_sentence=sentence,
            )  # fmt: skip
            if language != spec["language"]:
                out.drop_reason = f"{self.name}:wrong_language"
                return out
            await self.check_execution(out, parsed["code"], parsed["tests"], language)
            if out.drop_reason is None:
                await self._annotate(out, parsed["response"], parsed["code"], language)
            return out

        template = self.prompt("diverse_instruction")
        return await self.each_answer(record, template, {"seed": sentence, **spec}, sample)

    async def _annotate(self, sample: Record, response: str, code: str, language: str) -> None:
        template = self.prompt("code_annotation")
        (_raw, parsed), *_ = await self.ask(template, {"code": code, "language": language}, n=1)
        if isinstance(parsed, ParseError) or not same_code(code, parsed["code"], language):
            self.count("annotation_rejected")
            sample.meta["annotated"] = False
            return
        blocks = code_blocks(response)
        annotated_response = response.replace(blocks[-1][1], parsed["code"]) if blocks else response
        sample.meta["messages"][1]["content"] = annotated_response
        sample.meta["annotated"] = True
        user = sample.meta["messages"][0]["content"]
        sample.text = f"{user}\n\n{annotated_response}\n\n{sample.meta['tests']}".strip() + "\n"
