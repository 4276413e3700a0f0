"""The synthesis job end to end against the fake OpenAI server (execution off: no sandbox)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
from codekiln.stream.record import Record
from codekiln.stream.writers.jsonl import JsonlZstWriter, read_jsonl_zst
from codekiln.synth.cli import main as cli_main
from codekiln.synth.config import SynthConfig
from codekiln.synth.job import run_synthesis

from codekiln import synth
from tests.fakes.openai_server import FakeOpenAIServer
from tests.synth import scripted


def write_corpus(folder: Path) -> Path:
    """A small stream-format corpus: six Python files and one prose page."""
    records = [
        Record(
            id=f"{i:032x}",
            text=f"def f{i}(x):\n    '''Double x.'''\n" + "    x = x + x\n" * 20 + "    return x\n",
            lang="Python",  # as the stream names it (Linguist)
            path=f"m{i}.py",
            repo="r",
        )
        for i in range(6)
    ]
    prose = ("Heaps are tree-based structures used for priority queues in schedulers and in "
             "graph algorithms such as Dijkstra's shortest paths. ") * 3  # fmt: skip
    records.append(Record(id="f" * 32, text=prose, lang="Markdown", path="README.md"))
    writer = JsonlZstWriter(folder / "corpus", prefix="part", max_records=100, max_bytes=1 << 30)
    writer.write(records)
    writer.commit()
    return folder / "corpus"


def write_instructions(folder: Path) -> Path:
    path = folder / "instructions.jsonl"
    rows = [
        json.dumps({"instruction": "Write a Python function to reverse a string.",
                    "output": "```python\ndef rev(s):\n    return s[::-1]\n```"}),
        json.dumps({"conversations": [{"from": "human", "value": "Capital of France?"},
                                      {"from": "gpt", "value": "Paris."}]}),
        "{not json",
    ]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def scripted_llm(fake_llm: FakeOpenAIServer) -> FakeOpenAIServer:
    scripted.install(fake_llm)
    return fake_llm


async def _run(
    tmp_path: Path, server: FakeOpenAIServer, data_dir: Path, **kw: Any
) -> dict[str, Any]:
    corpus = write_corpus(tmp_path)
    config = kw.pop("config", SynthConfig(max_seeds=4, packages=("heapq",), apis_per_package=2))
    return await asyncio.to_thread(
        run_synthesis, corpus, tmp_path / "out", server.url, None, config=config,
        data_dir=data_dir, **kw,
    )  # fmt: skip


class TestJob:
    async def test_outputs_and_report(
        self, tmp_path: Path, scripted_llm: FakeOpenAIServer, data_dir: Path
    ) -> None:
        """Every output exists; counts in the report add up; drops carry reasons."""
        instructions = write_instructions(tmp_path)
        report = await _run(tmp_path, scripted_llm, data_dir, instructions=[instructions])
        out = tmp_path / "out"
        assert report["seeds"] == {"code": 4, "prose": 1, "selected": 2}
        assert report["generators"]["textbook"]["kept"] == 2
        # without a sandbox nothing that needs execution survives
        assert report["generators"]["snippets"]["dropped"] == {"synth_snippets:exec:no_sandbox": 2}
        assert report["execution_filter"] is False
        annealing = read_jsonl_zst(out / "annealing" / "part-00000.jsonl.zst")
        assert len(annealing) == report["annealing"]["records"]
        rejects = [r for p in sorted((out / "rejects").glob("*.zst")) for r in read_jsonl_zst(p)]
        assert all(r["reason"] for r in rejects)
        assert len(rejects) == report["rejects"]["records"]
        assert report["rejects"]["reasons"]["synth_ingest:bad_json"] == 1
        assert report["rejects"]["reasons"]["synth_ingest:not_code"] == 1
        assert report["sft"]["stages"]["stage2"]["by_source"] == {"evol_instruct": 1}
        seeds = [json.loads(line) for line in (out / "seeds.jsonl").read_text().splitlines()]
        assert sum(s["selected"] for s in seeds) == 2
        assert "Synthesis report" in (out / "report.md").read_text()
        scripted_llm.assert_clean()

    async def test_identical_textbooks_are_deduplicated(
        self, tmp_path: Path, scripted_llm: FakeOpenAIServer, data_dir: Path
    ) -> None:
        """Two seeds that yield the same textbook leave one: the stream's exact dedup ran."""
        report = await _run(tmp_path, scripted_llm, data_dir)
        assert report["post"]["annealing"]["exact_dedup"]["in"] == 2
        assert report["post"]["annealing"]["exact_dedup"]["out"] == 1
        assert report["rejects"]["reasons"]["exact_dedup:duplicate"] == 1

    async def test_contaminated_output_is_dropped(
        self, tmp_path: Path, fake_llm: FakeOpenAIServer, data_dir: Path
    ) -> None:
        """A textbook that defines a HumanEval entry point is dropped by decontam."""
        scripted.install(fake_llm)
        fake_llm.reset()
        fake_llm.route("Reply with only YES or NO", scripted.yes())
        contaminated = (
            scripted.TEXTBOOK + "\n```python\ndef has_close_elements(xs, t):\n    ...\n```\n"
        )
        fake_llm.route("Write a textbook section", contaminated)
        config = SynthConfig(max_seeds=2, generators=("textbook",))
        report = await _run(tmp_path, fake_llm, data_dir, config=config)
        assert report["post"]["annealing"]["decontam"]["dropped"] == {"entry_point:humaneval+": 1}

    async def test_rerun_gives_same_ids(
        self, tmp_path: Path, scripted_llm: FakeOpenAIServer, data_dir: Path
    ) -> None:
        """The same corpus and answers give the same output ids."""
        config = SynthConfig(max_seeds=4, generators=("textbook",))
        await _run(tmp_path / "a", scripted_llm, data_dir, config=config)
        await _run(tmp_path / "b", scripted_llm, data_dir, config=config)
        ids = [
            [r["id"] for r in read_jsonl_zst(tmp_path / d / "out/annealing/part-00000.jsonl.zst")]
            for d in ("a", "b")
        ]
        assert ids[0] == ids[1]

    async def test_llm_down_fails_clearly(self, tmp_path: Path, fake_llm: FakeOpenAIServer,
                                          data_dir: Path) -> None:  # fmt: skip
        """No ready endpoint: the job raises an LLM error naming the endpoint."""
        corpus = write_corpus(tmp_path)
        config = SynthConfig(max_seeds=1, deadline_s=1)
        with pytest.raises(synth.LLMError, match="no LLM endpoint ready"):
            await asyncio.to_thread(
                run_synthesis, corpus, tmp_path / "out", fake_llm.mode_url("fail"),
                config=config, data_dir=data_dir,
            )  # fmt: skip


class TestCli:
    async def test_run(
        self, tmp_path: Path, scripted_llm: FakeOpenAIServer, data_dir: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:  # fmt: skip
        """codekiln-synth run writes the report and prints its path."""
        corpus = write_corpus(tmp_path)
        config = tmp_path / "c.yaml"
        config.write_text("synth:\n  max_seeds: 2\n  generators: [textbook]\n")
        argv = ["run", "--corpus", str(corpus), "--out", str(tmp_path / "out"), "--llm-url",
                scripted_llm.url, "--data-dir", str(data_dir), "--config", str(config)]  # fmt: skip
        assert await asyncio.to_thread(cli_main, argv) == 0
        assert "report.md" in capsys.readouterr().out
        # --json: the same summary as one JSON object (the rerun resumes the finished job)
        assert await asyncio.to_thread(cli_main, [*argv, "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["report"] == str(tmp_path / "out" / "report.md")
        assert set(summary) == {"annealing_samples", "sft_written", "rejects", "report"}

    def test_run_without_llm_says_how_to_turn_it_on(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without an LLM URL the command explains CODEKILN_LLM_URL and exits 2."""
        monkeypatch.delenv("CODEKILN_LLM_URL", raising=False)
        assert cli_main(["run", "--corpus", str(tmp_path), "--out", str(tmp_path)]) == 2
        assert "CODEKILN_LLM_URL" in capsys.readouterr().err

    def test_bad_config_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown config key is reported before any work, exit code 2."""
        config = tmp_path / "c.yaml"
        config.write_text("synth:\n  max_seedz: 2\n")
        argv = ["run", "--corpus", str(tmp_path), "--out", str(tmp_path), "--llm-url",
                "http://127.0.0.1:9", "--config", str(config)]  # fmt: skip
        assert cli_main(argv) == 2
        assert "max_seedz" in capsys.readouterr().err

    def test_decontam_command(
        self, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """codekiln-synth decontam lists the contaminated lines, then the totals (stdout)."""
        path = tmp_path / "x.jsonl"
        path.write_text(json.dumps({"text": "def has_close_elements(a, b): pass"}) + "\n"
                        + json.dumps({"text": "x = 1"}) + "\n")  # fmt: skip
        assert cli_main(["decontam", str(path), "--data-dir", str(data_dir)]) == 0
        line, totals = capsys.readouterr().out.splitlines()
        assert json.loads(line) == {"line": 1, "rule": "entry_point", "benchmark": "humaneval+"}
        assert json.loads(totals) == {"records": 2, "contaminated": 1, "unreadable": 0}


def test_exported_members() -> None:
    """The package exports exactly its curated surface."""
    assert sorted(synth.__all__) == sorted(
        ["DISABLED_NOTE", "AutoDSScore", "AutoDSScorer", "Completion", "ConfigError",
         "DecontamStage", "ExecutionError", "LLMClient", "LLMConfig", "LLMError",
         "LLMFatalError", "LLMRetryableError", "ParseError", "PromptError", "PromptTemplate",
         "SFTMixtureWriter", "SamplingParams", "SynthConfig", "SynthError", "load_prompt",
         "run_synthesis", "select", "yes_no_probability"]
    )  # fmt: skip
    assert all(hasattr(synth, name) for name in synth.__all__)


async def test_rerun_reuses_finished_steps(
    tmp_path: Path, scripted_llm: FakeOpenAIServer, data_dir: Path
) -> None:
    """A second run over the same out dir reuses scored seeds and finished generators."""
    config = SynthConfig(max_seeds=4, generators=("textbook",))
    first = await _run(tmp_path, scripted_llm, data_dir, config=config)
    calls = len(scripted_llm.requests)
    second = await _run(tmp_path, scripted_llm, data_dir, config=config)
    assert len(scripted_llm.requests) == calls + 1  # only the readiness probe (GET /v1/models)
    assert second["reused"] == ["textbook"]
    assert second["annealing"] == first["annealing"]


async def test_unreachable_sandbox_fails_the_job_at_once(
    tmp_path: Path, scripted_llm: FakeOpenAIServer, data_dir: Path
) -> None:
    """A wrong sandbox URL stops the job before any generation, naming the URL."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(synth.ExecutionError, match=url):
        await asyncio.to_thread(
            run_synthesis, write_corpus(tmp_path), tmp_path / "out", scripted_llm.url, url,
            data_dir=data_dir,
        )  # fmt: skip
    assert not [r for r in scripted_llm.requests if r.method == "POST"]


async def test_no_blocking_call_in_an_event_loop(
    tmp_path: Path, scripted_llm: FakeOpenAIServer, data_dir: Path
) -> None:
    """The whole job runs with blockbuster on: codekiln code never blocks a running loop."""
    from blockbuster import blockbuster_ctx

    corpus = write_corpus(tmp_path)
    instructions = write_instructions(tmp_path)
    config = SynthConfig(max_seeds=4, packages=("heapq",), apis_per_package=2)
    with blockbuster_ctx(["codekiln"]):
        report = await asyncio.to_thread(
            run_synthesis, corpus, tmp_path / "out", scripted_llm.url, None, config=config,
            data_dir=data_dir, instructions=[instructions],
        )  # fmt: skip
    assert report["generators"]["textbook"]["kept"] == 2


async def test_score_command(
    tmp_path: Path, scripted_llm: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """codekiln-synth score prints one score per record and an error line for a bad one."""
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"text": "def f(): pass"}) + "\n" + json.dumps({"x": 1}) + "\n")
    argv = ["score", str(path), "--llm-url", scripted_llm.url]
    assert await asyncio.to_thread(cli_main, argv) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    p_yes, p_no = math.exp(-0.1) + math.exp(-4.0), math.exp(-2.5)  # scripted.yes() logprobs
    assert first["score"] == pytest.approx((p_yes / (p_yes + p_no)) ** 3)  # 3 questions
    assert "no string field" in second["error"]


def test_prompts_command(capsys: pytest.CaptureFixture[str]) -> None:
    """codekiln-synth prompts lists every prompt with its parser."""
    assert cli_main(["prompts"]) == 0
    assert "annealing_snippet      parser=code_and_tests" in capsys.readouterr().out
