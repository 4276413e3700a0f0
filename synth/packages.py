"""Package API docs for package-grounded instruction synthesis, introspected where it runs.

For each package (or stdlib module) name, the public functions and classes it defines, with
their ``inspect.signature`` and docstring, become seed records for
:class:`~codekiln.synth.generators.instructions.PackageStage`. The version comes from the
installed distribution (or the Python version for the standard library), so the problems are
about the APIs actually installed, not the ones a model remembers.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import platform
import sys
from collections.abc import Sequence

from codekiln.stream.record import Record, record_id

from .errors import ConfigError

__all__ = ["DEFAULT_PACKAGES", "api_docs"]

#: The sandbox image runs the standard library and numpy, so problems about these can be
#: execution-checked there.
DEFAULT_PACKAGES = ("numpy", "collections", "itertools", "functools", "heapq", "bisect",
                    "statistics", "re", "datetime", "fractions")  # fmt: skip


def _version(package: str) -> str:
    top = package.split(".", maxsplit=1)[0]
    if top in sys.stdlib_module_names:
        return f"Python {platform.python_version()} standard library"
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"


def api_docs(
    packages: Sequence[str], *, max_per_package: int = 20, min_doc_chars: int = 80
) -> list[Record]:
    """Seed records (``text`` = docstring; meta: package, version, api, signature)."""
    out: list[Record] = []
    for package in packages:
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise ConfigError(f"package {package!r} is not importable here: {exc}") from exc
        version = _version(package)
        members = []
        for name in sorted(getattr(module, "__all__", None) or dir(module)):
            if name.startswith("_"):
                continue
            obj = getattr(module, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)
                    or type(obj).__name__ == "ufunc"):  # fmt: skip
                continue
            owner = getattr(obj, "__module__", None) or package
            if str(owner).split(".")[0] not in (package.split(".")[0], "_" + package):
                continue  # re-exported from elsewhere
            doc = inspect.getdoc(obj) or ""
            if len(doc) < min_doc_chars:
                continue
            members.append((name, obj, doc))
        # Spread the picks over the whole sorted list rather than the first few letters.
        step = max(1, len(members) // max_per_package) if max_per_package else 1
        for name, obj, doc in members[::step][:max_per_package]:
            api = f"{package}.{name}"
            out.append(
                Record(
                    id=record_id("synth:api", api),
                    text=doc[:4000],
                    lang="python",
                    path=api,
                    repo=package,
                    source=f"api:{package}",
                    meta={
                        "package": package,
                        "version": version,
                        "api": api,
                        "signature": _signature(obj),
                    },
                )
            )
    return out
