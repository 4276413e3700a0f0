"""AutoDS as a stream stage: score every record, drop those below a threshold.

(Top-fraction selection needs every score first, so it is done by the synthesis job, not in a
streaming stage.)
"""

from __future__ import annotations

from typing import Any, ClassVar

from codekiln.stream.record import Record

from ..autods import AutoDSScorer
from ..errors import ConfigError
from .base import AsyncStage

__all__ = ["AutoDSStage"]


class AutoDSStage(AsyncStage):
    """Adds ``meta["autods"] = {score, answers}``; drops ``autods:below_threshold``."""

    name: ClassVar[str] = "autods"
    prompts: ClassVar[tuple[str, ...]] = ("autods",)

    def __init__(
        self, *, questions: str = "code_quality", threshold: float = 0.5, **kw: Any
    ) -> None:
        if not 0 <= threshold <= 1:
            raise ConfigError(f"autods.threshold must be in [0, 1], got {threshold!r}")
        super().__init__(**kw)
        self.questions = questions
        self.threshold = threshold
        self._scorer: AutoDSScorer | None = None

    def _get_scorer(self) -> AutoDSScorer:
        if self._scorer is None:
            ctx = self.context
            self._scorer = AutoDSScorer(ctx.llm, self.questions, prompt_dir=ctx.prompt_dir,
                                        deadline_s=ctx.deadline_s)  # fmt: skip
        return self._scorer

    def open(self, work_dir: Any) -> None:
        super().open(work_dir)
        self._get_scorer()  # loads the question set and prompt off the event loop

    async def agenerate(self, record: Record) -> list[Record]:
        result = await self._get_scorer().score(record.text)
        record.meta["autods"] = {"score": result.score, "answers": result.answers}
        if result.score < self.threshold:
            record.drop_reason = f"{self.name}:below_threshold"
        return [record]
