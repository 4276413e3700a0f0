"""Issue 19: small contract items (synth's test check, the data dir default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from codekiln.synth.errors import ParseError
from codekiln.synth.parsers import parse

from codekiln.cli_common import default_data_dir

REPO = Path(__file__).resolve().parents[2]

ANSWER = """### Code
```python
def add(a, b):
    return a + b
```
### Tests
```python
{tests}
```
"""


class TestCodeAndTests:
    @pytest.mark.parametrize("tests", ["assert True", "def test_x():\n    assert 1 + 1 == 2"])
    def test_tests_that_never_use_the_code_are_refused(self, tests: str) -> None:
        """Tests that pass without touching the function under test are a parse error."""
        with pytest.raises(ParseError) as info:
            parse("code_and_tests", ANSWER.format(tests=tests))
        assert info.value.rule == "tests_skip_code"

    @pytest.mark.parametrize(
        "tests", ["assert add(1, 2) == 3", "assert list(map(add, [1], [2])) == [3]"]
    )
    def test_tests_that_use_the_code_pass(self, tests: str) -> None:
        """A call of the function, or the function passed along, counts as using it."""
        assert parse("code_and_tests", ANSWER.format(tests=tests))["tests"] == tests


class TestDataDirDefault:
    def test_unset_env_means_shared_data_beside_the_checkout(self) -> None:
        """Without CODEKILN_DATA_DIR the code uses ../shared/data, as README.md says."""
        assert default_data_dir({}) == REPO.parent / "shared" / "data"
        assert default_data_dir({"CODEKILN_DATA_DIR": "/x"}) == Path("/x")
        assert "`../shared/data`" in (REPO / "README.md").read_text()

    def test_cli_without_env_finds_the_data(self, data_dir: Path, tmp_path: Path) -> None:
        """codekiln-synth decontam with CODEKILN_DATA_DIR unset still finds the benchmarks."""
        if data_dir.resolve() != (REPO.parent / "shared" / "data").resolve():
            pytest.skip("the benchmark data lives elsewhere (CODEKILN_DATA_DIR) on this machine")
        path = tmp_path / "x.jsonl"
        path.write_text(json.dumps({"text": "def has_close_elements(a, b): pass"}) + "\n")
        env = {k: v for k, v in os.environ.items() if k != "CODEKILN_DATA_DIR"}
        proc = subprocess.run(
            [sys.executable, "-m", "codekiln.synth.cli", "decontam", str(path)],
            capture_output=True, text=True, env=env, check=False, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1])["contaminated"] == 1
