"""Compare results against the published Qwen2.5-Coder and OpenCoder pass@1 baselines.

Columns follow the papers: HumanEval and MBPP are the *base-test* scores of HumanEval+ and
MBPP+ (as evalplus reports them), HumanEval+ and MBPP+ the base + extra scores. A result of the
original 500-task MBPP is listed apart: no baseline was measured on it. Every baseline family is
printed with its source and the dataset version its numbers were measured on; ours with the
version we ran (MBPP+ v0.1.0 has 399 tasks, v0.2.0 378: scores differ by several points).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BaselineError, SampleError, SamplesNotFound

COLUMNS: tuple[tuple[str, str], ...] = (
    ("humaneval", "HumanEval"),
    ("humaneval+", "HumanEval+"),
    ("mbpp", "MBPP"),
    ("mbpp+", "MBPP+"),
)


@dataclass(frozen=True)
class BaselineFamily:
    family: str
    kind: str
    harness: str
    source: str
    versions: dict[str, str]
    models: dict[str, dict[str, float]]


@dataclass
class ModelScores:
    """One evaluated model: pass@1 per column and the dataset version behind each."""

    name: str
    scores: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)  # results with no baseline column
    #: Columns from a partial (``--limit``) run: ``col -> "40 of 164 tasks"``.
    partial: dict[str, str] = field(default_factory=dict)
    #: Columns given by more than one results file: ``col -> [files]`` (the last one is shown).
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    #: Which file gave each column.
    files: dict[str, str] = field(default_factory=dict)


def load_baselines(path: Path | None = None) -> list[BaselineFamily]:
    path = path or Path(__file__).with_name("baselines.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        families = [
            BaselineFamily(
                family=f["family"],
                kind=f["kind"],
                harness=f["harness"],
                source=f["source"],
                versions=dict(f["versions"]),
                models={m: {k: float(v) for k, v in s.items()} for m, s in f["models"].items()},
            )
            for f in raw["families"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"baselines table {path} is malformed: {exc!r}") from exc
    for fam in families:
        for model, scores in fam.models.items():
            unknown = set(scores) - {c for c, _ in COLUMNS}
            if unknown:
                raise BaselineError(f"{fam.family} {model}: unknown columns {sorted(unknown)}")
    return families


def load_results(paths: list[Path], model: str | None = None) -> list[ModelScores]:
    """Read eval_results.json files; group them by model (``model`` field, else --model,
    else the results' folder name)."""
    by_model: dict[str, ModelScores] = {}
    for path in paths:
        if not path.is_file():
            raise SamplesNotFound(f"results file not found: {path}")
        try:
            body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            ds = body["dataset"]
            pak = body["pass_at_k"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SampleError(f"{path} is not a codekiln-eval results file: {exc!r}") from exc
        name = model or body.get("model") or path.parent.name or path.stem
        entry = by_model.setdefault(name, ModelScores(name))
        label = f"{ds['name']} {ds['version']}" + (
            f" ({ds['variant']})" if ds.get("variant", "full") != "full" else ""
        )
        p1_base = pak.get("base", {}).get("pass@1")
        p1_plus = pak.get("plus", {}).get("pass@1")
        partial = _partial(body)
        src = str(path)
        if ds["name"] == "humaneval+":
            _put(entry, "humaneval", p1_base, f"{label}, base tests", src, partial)
            _put(entry, "humaneval+", p1_plus, label, src, partial)
        elif ds["name"] == "mbpp+":
            n = ds.get("n_tasks", "?")
            _put(entry, "mbpp", p1_base, f"{label} ({n} tasks), base tests", src, partial)
            _put(entry, "mbpp+", p1_plus, f"{label} ({n} tasks)", src, partial)
        elif ds["name"] == "humaneval":
            # The original harness; used for the HumanEval column only without HumanEval+.
            if "humaneval" not in entry.scores:
                _put(entry, "humaneval", p1_base, f"{label} (original tests)", src, partial)
        else:
            entry.other.append(
                f"{ds['name']} {ds['version']}: pass@1 {p1_base:.1f} "
                "(no published baseline on the original 500-task MBPP)"
            )
    return list(by_model.values())


def _partial(body: dict[str, Any]) -> str | None:
    """``"40 of 164 tasks"`` for a ``--limit`` run (also from results written before the
    ``partial`` field, by the dataset note ``first N tasks``), else None."""
    part = body.get("partial")
    if isinstance(part, dict):
        return f"{part.get('tasks', '?')} of {part.get('of_tasks', '?')} tasks"
    for note in body.get("dataset", {}).get("notes", []):
        if isinstance(note, str) and note.startswith("first ") and note.endswith(" tasks"):
            return note
    return None


def _put(  # noqa: PLR0917 - private helper of load_results
    entry: ModelScores,
    col: str,
    value: float | None,
    version: str,
    src: str = "",
    partial: str | None = None,
) -> None:
    if value is None:
        return
    if col in entry.scores:
        entry.duplicates.setdefault(col, [entry.files.get(col, "?")]).append(src)
    entry.scores[col] = float(value)
    entry.versions[col] = version
    entry.files[col] = src
    if partial is not None:
        entry.partial[col] = partial
    else:
        entry.partial.pop(col, None)


def _cell(value: float | None, ours: float | None) -> str:
    if value is None:
        return "-"
    if ours is None:
        return f"{value:.1f}"
    return f"{value:.1f} ({ours - value:+.1f})"


def table_rows(ours: list[ModelScores], families: list[BaselineFamily]) -> list[list[str]]:
    """Header, our rows, then every baseline with ``value (our delta)`` (first model's delta)."""
    header = ["model", *[label for _, label in COLUMNS]]
    rows = [header]
    for m in ours:
        cells = [_cell(m.scores.get(c), None) + ("*" if c in m.partial else "") for c, _ in COLUMNS]
        rows.append([f"{m.name} (this run)", *cells])
    ref = ours[0] if ours else None
    for fam in families:
        for name, scores in fam.models.items():
            rows.append(
                [
                    name,
                    *[_cell(scores.get(c), _full_score(ref, c)) for c, _ in COLUMNS],
                ]
            )
    return rows


def _full_score(ref: ModelScores | None, col: str) -> float | None:
    """Our score to take a delta against: none for a partial run (a delta would mislead)."""
    if ref is None or col in ref.partial:
        return None
    return ref.scores.get(col)


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def provenance(ours: list[ModelScores], families: list[BaselineFamily]) -> list[str]:
    """Where every number comes from, and the dataset version it was measured on."""
    lines = []
    for m in ours:
        versions = "; ".join(f"{label}: {m.versions[c]}" for c, label in COLUMNS if c in m.versions)
        lines.append(f"{m.name} (this run, codekiln sandbox): {versions or 'no comparable result'}")
        lines += [f"{m.name}: {o}" for o in m.other]
        for c, label in COLUMNS:
            if c in m.partial:
                lines.append(
                    f"* {m.name} {label}: a partial run ({m.partial[c]}, --limit): not the "
                    "benchmark's score and not comparable to the baselines"
                )
            if c in m.duplicates:
                lines.append(
                    f"{m.name} {label}: {len(m.duplicates[c])} results files give this column "
                    f"({', '.join(m.duplicates[c])}); the last one is shown (give each run its "
                    "own --model label to list them apart)"
                )
    for fam in families:
        versions = "; ".join(f"{label}: {fam.versions.get(c, '?')}" for c, label in COLUMNS)
        lines.append(f"{fam.family} [{fam.harness}]: {versions}. Source: {fam.source}")
    lines.append(
        "Deltas are this run minus the baseline (first model listed). Harness and dataset "
        "version move these numbers by several points (MBPP+ v0.1.0 has 399 tasks, v0.2.0 378)."
    )
    return lines


def bar_chart(ours: list[ModelScores], families: list[BaselineFamily], path: Path) -> None:
    """Grouped bars per benchmark: our models, then every baseline of the same kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: list[tuple[str, dict[str, float]]] = [(f"{m.name} (ours)", m.scores) for m in ours]
    for fam in families:
        series += [(name, scores) for name, scores in fam.models.items()]
    fig, ax = plt.subplots(figsize=(max(10.0, 0.9 * len(series)), 6.0))
    width = 0.8 / max(1, len(series))
    cmap = plt.get_cmap("tab20")
    for i, (name, scores) in enumerate(series):
        xs = [j + i * width for j in range(len(COLUMNS))]
        ys = [scores.get(c, 0.0) for c, _ in COLUMNS]
        bars = ax.bar(
            xs,
            ys,
            width,
            label=name,
            color="black" if i < len(ours) else cmap(i % 20),
        )
        if i < len(ours):
            for bar, (c, _) in zip(bars, COLUMNS, strict=True):
                if c in scores:
                    ax.annotate(
                        f"{scores[c]:.1f}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(COLUMNS))])
    ax.set_xticklabels([label for _, label in COLUMNS])
    ax.set_ylabel("pass@1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title("pass@1 against published baselines (see the report for dataset versions)")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare_json(results: list[Path], model: str | None = None) -> dict[str, Any]:
    """The comparison as data (``compare --json``): ours (with partial and duplicate marks),
    the baselines, and the provenance notes."""
    families = load_baselines()
    ours = load_results(results, model)
    return {
        "ours": [m.__dict__ for m in ours],
        "baselines": [f.__dict__ for f in families],
        "notes": provenance(ours, families),
    }


def compare(
    results: list[Path], out_dir: Path | None, model: str | None = None
) -> tuple[str, dict[str, Path]]:
    """Build the comparison; return the terminal text and the files written."""
    families = load_baselines()
    ours = load_results(results, model)
    rows = table_rows(ours, families)
    notes = provenance(ours, families)
    text = render_text(rows) + "\n\n" + "\n".join(notes)
    written: dict[str, Path] = {}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        md = out_dir / "compare.md"
        png = out_dir / "compare.png"
        bar_chart(ours, families, png)
        md.write_text(
            "# pass@1 against published baselines\n\n"
            + render_markdown(rows)
            + "\n\n"
            + "\n".join(f"- {n}" for n in notes)
            + f"\n\n![pass@1 bar chart]({png.name})\n",
            encoding="utf-8",
        )
        (out_dir / "compare.json").write_text(
            json.dumps(
                {
                    "ours": [m.__dict__ for m in ours],
                    "baselines": [f.__dict__ for f in families],
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        written = {"markdown": md, "chart": png, "json": out_dir / "compare.json"}
    return text, written
