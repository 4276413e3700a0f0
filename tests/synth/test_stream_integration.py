"""Synth stages inside the stream runtime: codekiln-stream runs them from a config file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from codekiln.stream.cli import main as stream_main
from codekiln.stream.writers.jsonl import read_jsonl_zst

from tests.fakes.openai_server import FakeOpenAIServer
from tests.synth import scripted


@pytest.mark.slow
async def test_textbook_stage_in_stream_pipeline(
    tmp_path: Path, fake_llm: FakeOpenAIServer, data_dir: Path
) -> None:
    """A stream config naming synth_textbook and decontam writes generated textbooks."""
    fake_llm.route("Write a textbook section", scripted.TEXTBOOK)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "stages:\n"
        "  - preprocess\n"
        f"  - name: synth_textbook\n    options: {{llm_url: '{fake_llm.url}', concurrency: 2}}\n"
        f"  - name: decontam\n    options: {{data_dir: '{data_dir}'}}\n"
    )
    out = tmp_path / "out"
    argv = ["run", str(src), "--out", str(out), "--config", str(config), "--no-progress"]
    assert await asyncio.to_thread(stream_main, argv) == 0
    corpus = [r for p in sorted((out / "corpus").glob("*.zst")) for r in read_jsonl_zst(p)]
    assert len(corpus) == 3
    assert all(r["source"] == "synth:synth_textbook" for r in corpus)
    assert all(r["text"].startswith("## Prefix sums") for r in corpus)
    assert len([r for r in fake_llm.requests if r.method == "POST"]) == 3
