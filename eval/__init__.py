"""codekiln.eval: HumanEval(+)/MBPP(+) evaluation in the codekiln sandbox, pass@k, baselines.

See docs/eval.md. The public surface is listed in ``__all__``; everything else is internal.
"""

from .data import DATASETS, Dataset, Task, load_dataset
from .errors import (
    BaselineError,
    ConfigError,
    DatasetError,
    DatasetNotFound,
    EvalError,
    ReferenceRunError,
    SampleError,
    SamplesNotFound,
)
from .evaluate import Evaluation, evaluate_samples, pass_at_k_lines, read_samples, write_outputs
from .execute import Evaluator
from .limits import ExecConfig
from .passk import mean_pass_at_k, pass_at_k
from .verdicts import Verdict

__all__ = [
    "DATASETS",
    "BaselineError",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DatasetNotFound",
    "EvalError",
    "Evaluation",
    "Evaluator",
    "ExecConfig",
    "ReferenceRunError",
    "SampleError",
    "SamplesNotFound",
    "Task",
    "Verdict",
    "evaluate_samples",
    "load_dataset",
    "mean_pass_at_k",
    "pass_at_k",
    "pass_at_k_lines",
    "read_samples",
    "write_outputs",
]
