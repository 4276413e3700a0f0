"""codekiln.sandbox as a package: its public surface and its independence."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import codekiln.sandbox

SANDBOX_DIR = Path(codekiln.sandbox.__file__).resolve().parent


def test_exported_members() -> None:
    """The public surface is exactly what we mean to export."""
    assert sorted(codekiln.sandbox.__all__) == sorted(
        [
            "STATUSES",
            "AuthError",
            "ClientError",
            "ConfigInvalid",
            "EngineError",
            "ImageError",
            "Overloaded",
            "ProtocolError",
            "RequestInvalid",
            "RunRequest",
            "RunResult",
            "SandboxError",
            "ServiceUnavailable",
            "TestVerdict",
        ]
    )


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
