"""``report.md`` (and ``lang_distribution.svg``) for a finished run, built from its manifest
alone, so a completed run can be re-reported without re-running anything."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape  # light; xml.sax.saxutils imports urllib.request (about 10 ms)
from pathlib import Path
from typing import Any

from codekiln.stream import registry

from codekiln.shards import atomic_write_bytes

PLOT = "lang_distribution.svg"


@dataclass(frozen=True)
class ReportPart:
    """What a step run after the commit (composed above the engine) adds to the report."""

    #: Lines under "Stages that are off, and how to turn them on" (markdown list items).
    off: tuple[str, ...] = ()
    #: A section of its own at the end (its heading included); empty: none.
    section: tuple[str, ...] = ()
    #: One-line notes for the terminal summary.
    summary: tuple[str, ...] = ()


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _nice_step(span: float, ticks: int = 5) -> float:
    """A 1, 2 or 5 times a power of ten giving about ``ticks`` intervals over ``span``."""
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _fmt_count(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def plot_languages(langs: dict[str, int], path: Path, top: int = 20) -> bool:
    """A horizontal bar chart of the top languages as SVG; False when there is nothing to plot.

    Written by hand rather than with matplotlib: importing and rendering matplotlib cost about
    0.4 CPU s per run, more than the whole pipeline spends on a small input.
    """
    if not langs:
        return False
    items = sorted(langs.items(), key=lambda kv: -kv[1])[:top]
    counts = [v for _, v in items]
    log = max(counts) > 50 * min(counts)  # one language dominates: keep the others visible
    if log:
        lo = 10.0 ** math.floor(math.log10(min(counts)))
        hi = 10.0 ** math.ceil(math.log10(max(counts)))
        ticks = [lo * 10**i for i in range(round(math.log10(hi / lo)) + 1)]

        def frac(v: float) -> float:
            return math.log10(v / lo) / math.log10(hi / lo)

        xlabel = "records in corpus (log scale)"
    else:
        step = max(1.0, _nice_step(max(counts)))  # record counts: whole-number ticks
        hi = step * math.ceil(max(counts) / step)
        ticks = [step * i for i in range(round(hi / step) + 1)]

        def frac(v: float) -> float:
            return v / hi

        xlabel = "records in corpus"
    label_w = 16 + 8 * max(len(k) for k, _ in items)  # about 8 px per character at 12 px
    left, right, top_m, row_h = label_w, 90, 40, 24
    plot_w = 700 - left - right
    plot_h = row_h * len(items)
    height = top_m + plot_h + 50
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="700" height="{height}" '
        f'viewBox="0 0 700 {height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="350" y="22" text-anchor="middle" font-size="15">Language distribution</text>',
    ]
    for t in ticks:
        x = left + plot_w * frac(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top_m}" x2="{x:.1f}" y2="{top_m + plot_h}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{top_m + plot_h + 16}" text-anchor="middle">'
            f"{_fmt_count(t)}</text>"
        )
    for i, (lang, count) in enumerate(items):
        y = top_m + i * row_h
        w = max(plot_w * frac(count), 1.0)
        parts.append(
            f'<text x="{left - 6}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(lang)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="#4c72b0"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + row_h / 2 + 4:.1f}">{count:,}</text>'
        )
    parts += [
        f'<line x1="{left}" y1="{top_m}" x2="{left}" y2="{top_m + plot_h}" stroke="black"/>',
        f'<line x1="{left}" y1="{top_m + plot_h}" x2="{left + plot_w}" y2="{top_m + plot_h}" '
        'stroke="black"/>',
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 10}" text-anchor="middle">{xlabel}</text>',
        "</svg>",
        "",
    ]
    atomic_write_bytes(path, "\n".join(parts).encode())
    return True


def render(
    manifest: Mapping[str, Any], plot_name: str | None, parts: Sequence[ReportPart] = ()
) -> str:
    out: list[str] = ["# codekiln stream run", ""]
    state = "complete" if manifest.get("complete") else "in progress"
    starts = manifest.get("starts", 1)
    out.append(
        f"Status: **{state}**; started {starts} time(s) on this output"
        + (" (resumed from a checkpoint)" if starts > 1 else "")
        + f"; {manifest.get('checkpoints', 0)} checkpoint(s)."
    )
    if "elapsed_s" in manifest:
        out.append(f"Wall time of the last start: {manifest['elapsed_s']} s.")
    out += ["", "## Input", ""]
    out += [f"- `{p}`" for p in manifest.get("inputs", [])]
    for p in manifest.get("missing_inputs", []):
        out.append(f"- missing: `{p}` (quarantined as reader:missing)")
    src = manifest.get("source", {})
    budget = src.get("budget", {})
    out.append("")
    out.append(
        f"Items read: {src.get('items', 0)} ({src.get('records', 0)} usable, "
        f"{sum(src.get('dropped', {}).values())} quarantined by the reader)."
    )
    cfg_input = manifest.get("config", {}).get("input", {})
    if cfg_input.get("max_files") or cfg_input.get("max_bytes"):
        out.append(
            f"Input cap: max_files={cfg_input.get('max_files')}, "
            f"max_bytes={cfg_input.get('max_bytes')}; "
            f"admitted {budget.get('files', 0)} files / {budget.get('bytes', 0)} bytes; "
            f"**{budget.get('not_read', 0)} files not read because of the cap**."
        )
    for note in manifest.get("notes", []):
        out.append(f"Note: {note}")

    out += ["", "## Counts per stage", ""]
    rows: list[list[Any]] = [
        [
            "reader",
            src.get("items", 0),
            src.get("records", 0),
            sum(src.get("dropped", {}).values()),
            "",
        ]
    ]
    for s in manifest.get("stages", []):
        rows.append([s["key"], s["in"], s["out"], sum(s["dropped"].values()), s["busy_s"]])
    out += _table(["stage", "in", "out", "dropped", "busy s"], rows)
    corpus, rejects = manifest.get("corpus", {}), manifest.get("rejects", {})
    out += [
        "",
        f"Corpus: **{corpus.get('records', 0)} records** in {len(corpus.get('shards', []))} "
        f"shard(s) ({corpus.get('format', '')}) under `corpus/`. "
        f"Rejects: **{rejects.get('records', 0)}** under `rejects/`.",
    ]

    out += ["", "## Drop reasons", ""]
    reasons = rejects.get("reasons", {})
    if reasons:
        out += _table(["reason", "records"], [[f"`{k}`", v] for k, v in reasons.items()])
    else:
        out.append("Nothing was dropped.")

    out += ["", "## Language distribution", ""]
    langs = manifest.get("langs", {})
    total = sum(langs.values()) or 1
    if langs:
        if plot_name:
            out += [f"![language distribution]({plot_name})", ""]
        out += _table(
            ["lang", "records", "share"],
            [[k, v, f"{100 * v / total:.1f}%"] for k, v in list(langs.items())[:40]],
        )
        if len(langs) > 40:
            out.append(f"\n… and {len(langs) - 40} more (see manifest.json).")
    else:
        out.append("The corpus is empty.")

    out += ["", "## Stage reports", ""]
    any_report = False
    for s in manifest.get("stages", []):
        if s.get("report"):
            any_report = True
            out += [
                f"### {s['key']}",
                "",
                "```json",
                json.dumps(s["report"], indent=2, default=str, sort_keys=True),
                "```",
                "",
            ]
    if not any_report:
        out.append("No stage reported extra figures.")

    out += ["", "## Stages that are off, and how to turn them on", ""]
    for item in manifest.get("skipped_stages", []):
        out.append(
            f"- **{item['name']}**: {item['why']}. It joins the default pipeline once its "
            "module exists and loads."
        )
    used = {s["name"] for s in manifest.get("stages", [])}
    if manifest.get("config", {}).get("stages") is None:
        for name in registry.STAGES:
            if name not in registry.DEFAULT_PIPELINE and name != "noop" and name not in used:
                out.append(
                    f"- **{name}**: not part of the default pipeline; list it under "
                    "`stages:` in a `--config` file to run it."
                )
    for part in parts:
        out += part.off
    for part in parts:
        if part.section:
            out += ["", *part.section]
    out.append("")
    return "\n".join(out)


def write_report(
    out_dir: Path, manifest: Mapping[str, Any], parts: Sequence[ReportPart] = ()
) -> Path:
    plotted = plot_languages(manifest.get("langs", {}), out_dir / PLOT)
    path = out_dir / "report.md"
    atomic_write_bytes(path, render(manifest, PLOT if plotted else None, parts).encode())
    return path
