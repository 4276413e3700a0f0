"""A small code corpus with planted exact and near duplicates, written as files or JSONL."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "count",
    "total",
    "items",
    "value",
    "result",
    "index",
    "buffer",
    "parse",
    "token",
    "frame",
    "score",
    "limit",
    "offset",
    "cursor",
    "record",
    "node",
]


def python_file(rng: random.Random, lines: int = 40) -> str:
    out = [f"def {rng.choice(WORDS)}_{rng.randrange(10**6)}(x, y):"]
    for _ in range(lines):
        a, b, c = rng.sample(WORDS, 3)
        out.append(f"    {a}_{rng.randrange(1000)} = {b}(x) + {c}[y] * {rng.randrange(100)}")
    out.append("    return x")
    return "\n".join(out) + "\n"


def near_copy(rng: random.Random, text: str) -> str:
    """One line of ~42 changed: word 5-gram Jaccard about 0.8 with the original."""
    lines = text.split("\n")
    i = rng.randrange(1, len(lines) - 2)
    lines[i] = f"    changed_{rng.randrange(10**6)} = 0"
    return "\n".join(lines)


def documents(seed: int, n: int) -> list[tuple[str, str, str]]:
    """(repo, path, text): unique files, exact copies and near copies across repos."""
    rng = random.Random(seed)
    docs: list[tuple[str, str, str]] = []
    originals: list[str] = []
    for i in range(n):
        repo = f"repo{i % 5}"
        roll = rng.random()
        if originals and roll < 0.2:
            text = rng.choice(originals)  # exact duplicate
        elif originals and roll < 0.4:
            text = near_copy(rng, rng.choice(originals))
        else:
            text = python_file(rng)
            originals.append(text)
        docs.append((repo, f"pkg{i % 3}/mod_{i}.py", text))
    return docs


def write_tree(root: Path, seed: int = 1, n: int = 60) -> Path:
    for repo, path, text in documents(seed, n):
        target = root / repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / "repo0" / "blob.bin").write_bytes(b"\x00\x01binary")
    (root / "repo1" / "empty.py").write_bytes(b"")
    return root


def write_jsonl(root: Path, seed: int = 2, n: int = 60, files: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    docs = documents(seed, n)
    for f in range(files):
        with open(root / f"part-{f}.jsonl", "w") as fh:
            for i, (repo, path, text) in enumerate(docs[f::files]):
                obj = {
                    "id": f"doc-{f}-{i}",
                    "text": text,
                    "repo": repo,
                    "path": path,
                    "meta": {"stars": rng.randrange(50)},
                }
                fh.write(json.dumps(obj) + "\n")
            fh.write("{not json\n")
    return root


#: Markers the hostile test stages (tests.stream.ray.ray_stages.HostileStage) act on.
UNPICKLABLE, LATE_UNPICKLABLE, UNHASHABLE = "# UNPICKLABLE", "# LATE_UNPICKLABLE", "# UNHASHABLE"


def write_hostile_jsonl(root: Path, seed: int = 3, files: int = 3) -> Path:
    """JSONL shards of planted exact and near copies, plus hostile records: marked ones the
    test stages make unpicklable or unshingleable (one of them with an exact copy), lone
    surrogates, texts without a word, odd priority values (string, list, NaN stars on exact
    copies), a text that is no string and a malformed line per file."""
    rng = random.Random(seed)
    texts = [text for _, _, text in documents(seed, 24)]
    base = [python_file(rng, lines=20) for _ in range(4)]
    hostile: list[tuple[str, object]] = [
        (base[0] + UNPICKLABLE + "\n", 3),
        (base[0] + UNPICKLABLE + "\n", 4),  # its exact copy: also unpicklable
        (base[1] + LATE_UNPICKLABLE + "\n", 1),
        (base[2] + UNHASHABLE + "\n", 2),
        (base[2] + UNHASHABLE + "\n", 9),  # exact copy: dropped before fuzzy dedup sees it
        (base[3] + "s = '\ud800 lone surrogate \udfff'\n", "lots"),
        (base[3] + "s = '\ud800 lone surrogate \udfff'\n", [5]),
        ("", 0),
        ("+++ --- !!!\n", 0),
        (texts[0], float("nan")),
        (texts[0], float("nan")),
    ]
    docs: list[tuple[str, object]] = [(t, rng.randrange(20)) for t in texts] + hostile
    rng.shuffle(docs)
    root.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        with open(root / f"part-{f}.jsonl", "w") as fh:
            for i, (text, stars) in enumerate(docs[f::files]):
                obj = {"id": f"h-{f}-{i}", "text": text, "repo": f"r{i % 4}", "path": f"m{i}.py"}
                fh.write(json.dumps({**obj, "meta": {"stars": stars}}) + "\n")
            fh.write(json.dumps({"id": f"h-{f}-int", "text": 12345}) + "\n")
            fh.write("{not json\n")
    return root
