"""The ``webclf`` stage: tag web documents with a code-relatedness score.

Sets ``meta["code_score"]`` (probability of the ``code`` label) and ``meta["code_related"]``
(score at or above ``threshold``) on every live record. With ``drop_below: true`` records under
the threshold are dropped with reason ``webclf:not_code``. Records whose ``meta.lang_type`` is
set and is not ``prose`` or ``markup`` (source files, data) are passed through untouched unless
``score_all`` is on: the classifier is meant for web pages.

The fastText model is not picklable: each process (the runtime process and every pool worker)
loads it from ``model`` on first use, and pickling the stage drops the loaded model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from codekiln.stream.record import Record
from codekiln.stream.stage import BatchStage
from codekiln.stream.webclf.model import CodeWebClassifier, WebClfError

_WEB_TYPES = {"", "prose", "markup"}


class WebScoreStage(BatchStage):
    name: ClassVar[str] = "webclf"
    cpu_bound: ClassVar[bool] = True

    def __init__(
        self,
        *,
        model: str,
        threshold: float = 0.5,
        drop_below: bool = False,
        score_all: bool = False,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        if not Path(model).is_file():
            raise WebClfError(f"webclf: model file not found: {model}")
        self.model_path = str(model)
        self.threshold = float(threshold)
        self.drop_below = bool(drop_below)
        self.score_all = bool(score_all)
        self._clf: CodeWebClassifier | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_clf"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _classifier(self) -> CodeWebClassifier:
        if self._clf is None:
            self._clf = CodeWebClassifier.load(self.model_path)
        return self._clf

    def process_batch(self, batch: list[Record]) -> list[Record]:
        todo = [
            r
            for r in batch
            if r.drop_reason is None
            and (self.score_all or str(r.meta.get("lang_type", "")) in _WEB_TYPES)
        ]
        if not todo:
            return batch
        scores = self._classifier().scores([r.text for r in todo])
        for record, score in zip(todo, scores, strict=True):
            record.meta["code_score"] = round(score, 6)
            related = score >= self.threshold
            record.meta["code_related"] = related
            if self.drop_below and not related:
                record.drop_reason = f"{self.name}:not_code"
        return batch
