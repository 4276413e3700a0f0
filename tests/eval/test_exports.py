"""The public surface of codekiln.eval is what we mean to export."""

from __future__ import annotations

import codekiln.eval


def test_exported_members() -> None:
    """__all__ lists exactly the public API, and every name in it exists."""
    assert set(codekiln.eval.__all__) == {
        "DATASETS", "BaselineError", "ConfigError", "Dataset", "DatasetError", "DatasetNotFound",
        "EvalError", "Evaluation", "Evaluator", "ExecConfig", "ReferenceRunError", "SampleError",
        "SamplesNotFound", "Task", "Verdict", "evaluate_samples", "load_dataset", "mean_pass_at_k",
        "pass_at_k", "pass_at_k_lines", "read_samples", "write_outputs",
    }  # fmt: skip
    for name in codekiln.eval.__all__:
        assert hasattr(codekiln.eval, name)
