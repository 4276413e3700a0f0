"""The Debian packages holding the golden set's files that are missing here (one per line).

``make test-tools`` installs them, so that the differential test against OpenCoder's verdicts
(tests/stream/stage2/test_opc_reference.py) finds the files the reference judged. Standard
library only: it runs before the project's virtual environment exists. Prints nothing when the
golden file is absent (the test then skips).

    python3 tests/stream/stage2/opc_packages.py [GOLDEN]
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEFAULT = (
    Path(os.environ.get("CODEKILN_REFERENCE_DIR", REPO.parent / "shared" / "reference"))
    / "opc-filtering"
    / "golden.jsonl.gz"
)


def missing_packages(golden: Path) -> list[str]:
    """Packages (architecture suffix dropped) of the golden files not on this machine."""
    if not golden.is_file():
        return []
    with gzip.open(golden, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return sorted(
        {str(row["package"]).split(":")[0] for row in rows if not Path(row["path"]).exists()}
    )


if __name__ == "__main__":
    print("\n".join(missing_packages(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)))
