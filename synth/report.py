"""The synthesis report: ``report.md`` rendered from the ``report.json`` dict, and the check
that a run generated anything at all."""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["nothing_generated", "render_report"]


def render_report(report: dict[str, Any]) -> str:
    lines = ["# Synthesis report", ""]
    lines.append(f"Model: {report.get('model')}; {report.get('seconds')} s; execution filter: "
                 f"{'on' if report.get('execution_filter') else 'OFF'}")  # fmt: skip
    seeds = report.get("seeds", {})
    lines += ["", f"Seeds: {seeds.get('code', 0)} code, {seeds.get('prose', 0)} prose; "
              f"{seeds.get('selected', 0)} selected by AutoDS "
              f"(mean score {report.get('autods', {}).get('mean_score')})", ""]  # fmt: skip
    lines += ["| generator | seeds | kept | dropped |", "|---|---|---|---|"]
    for name, g in report.get("generators", {}).items():
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(g["dropped"].items())) or "-"
        lines.append(f"| {name} | {g['seeds']} | {g['kept']} | {dropped} |")
    for name, why in report.get("skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} | | |")
    lines += ["", "Decontamination and dedup:", ""]
    for dest, steps in report.get("post", {}).items():
        if isinstance(steps, dict):
            for step, figures in steps.items():
                lines.append(f"- {dest} / {step}: {figures.get('in')} -> {figures.get('out')}")
    sft = report.get("sft", {}).get("stages", {})
    lines += ["", f"Annealing samples: {report.get('annealing', {}).get('records', 0)}"]
    for stage, s in sft.items():
        lines.append(f"SFT {stage} ({s['name']}): {s['written']} written from {s['samples']}")
    lines += ["", "Drop reasons:", ""]
    for reason, n in report.get("rejects", {}).get("reasons", {}).items():
        lines.append(f"- `{reason}`: {n}")
    return "\n".join(lines) + "\n"


def nothing_generated(stats: dict[str, Any]) -> str | None:
    """Why the run produced nothing at all: requests sent, none answered; else ``None``."""
    requests = sum(s["requests"] for s in stats.values())
    if requests == 0 or any(s["successes"] for s in stats.values()):
        return None
    failures: Counter[str] = Counter()
    for s in stats.values():
        failures.update(s["failures"])
    return (
        f"no LLM request succeeded ({requests} sent; failures: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(failures.items()))}): nothing was generated"
    )
