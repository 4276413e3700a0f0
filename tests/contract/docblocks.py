"""The fenced blocks of README.md and docs/*.md, as a reader copies them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PAGES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "k8s" / "README.md",
    REPO / "sandbox" / "THREAT_MODEL.md",
]
_FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", re.S | re.M)
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(lang: str | None = None) -> list[Block]:
    """Every fenced block (of ``lang``, when given), indentation removed."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            if lang is not None and m.group(2) != lang:
                continue
            indent = len(m.group(1))
            body = "".join(line[indent:] for line in m.group(3).splitlines(keepends=True))
            line = text.count("\n", 0, m.start()) + 1
            out.append(Block(str(page.relative_to(REPO)), line, m.group(2), body))
    return out


def stage_entries(block: Block) -> list[dict[str, Any]]:
    """The pipeline steps a YAML block shows: a ``stages:`` list or a bare list of steps."""
    data = yaml.safe_load(block.text)
    if isinstance(data, dict) and isinstance(data.get("stages"), list):
        steps = data["stages"]
    elif isinstance(data, list):
        steps = data
    else:
        return []
    return [{"name": s} if isinstance(s, str) else dict(s) for s in steps]


def spans() -> list[Block]:
    """Every inline code span outside the fenced blocks (``lang`` is ``"inline"``)."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        prose = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for m in _SPAN.finditer(prose):
            line = prose.count("\n", 0, m.start()) + 1
            out.append(Block(str(page.relative_to(REPO)), line, "inline", m.group(1)))
    return out
