"""codekiln.sandbox as a package: its public surface and its independence."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import codekiln.sandbox
from codekiln.sandbox import errors

SANDBOX_DIR = Path(codekiln.sandbox.__file__).resolve().parent

#: The wire models a client sends and receives.
MODELS = ["STATUSES", "RunRequest", "RunResult", "TestVerdict"]


def drawn_error_tree() -> dict[str, str | None]:
    """Each error of the tree drawn in sandbox/errors.py's docstring, with its drawn parent."""
    parents: dict[str, str | None] = {}
    path: list[str] = []
    drawing = (errors.__doc__ or "").split("\n\n", 1)[-1]  # the tree follows the title
    for line in drawing.splitlines():
        match = re.match(r"([│ ]*)(?:[├└]── )?([A-Z]\w*)\s", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 4 + (1 if "──" in line[: match.end()] else 0)
        del path[depth:]
        parents[match.group(2)] = path[-1] if path else None
        path.append(match.group(2))
    return parents


def test_exported_members() -> None:
    """The public surface is the wire models and every error of the drawn tree."""
    assert sorted(codekiln.sandbox.__all__) == sorted([*MODELS, *drawn_error_tree()])
    for name in codekiln.sandbox.__all__:
        assert getattr(codekiln.sandbox, name) is not None


def test_error_tree_is_as_drawn() -> None:
    """errors.py defines exactly the drawn errors, each subclassing its drawn parent."""
    tree = drawn_error_tree()
    defined = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, Exception)
    }
    assert set(tree) == defined
    assert [name for name, parent in tree.items() if parent is None] == ["SandboxError"]
    for name, parent in tree.items():
        if parent is not None:
            assert parent in [b.__name__ for b in getattr(errors, name).__bases__]


def test_sources_import_nothing_else_of_codekiln() -> None:
    """No module of codekiln.sandbox imports another codekiln component."""
    offenders = []
    for path in SANDBOX_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.startswith("codekiln") and not n.startswith("codekiln.sandbox")
            ]
    assert offenders == []


def test_importing_loads_no_other_component() -> None:
    """Importing the client, server and CLI loads no other codekiln package."""
    code = (
        "import sys\n"
        "import codekiln.sandbox.client, codekiln.sandbox.server, codekiln.sandbox.cli\n"
        "others = sorted(m for m in sys.modules if m.startswith('codekiln.')"
        " and not m.startswith('codekiln.sandbox'))\n"
        "print(others)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
