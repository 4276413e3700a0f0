"""Pool workers the CLI forks before its event loop starts (runtime/forked.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from codekiln.stream.runtime.forked import ForkedPool
from codekiln.stream.writers import read_jsonl_zst

from tests.stream.procs import run_python

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the forked pool is Linux only")


def _run_script(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python(code, env, timeout=120)


def _gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _cli_run(
    tmp_path: Path, env: dict[str, str], stage: str, drop: int | None = None
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """``codekiln-stream run`` of six small files (file ``drop`` marked DROP) through one stage
    of rt_forked_stages with two workers: (the CLI's pid, corpus records, rejects)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"m{i}.py").write_text(f"X = {i}\n" + ("DROP\n" if i == drop else ""))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"stages: [{{name: 'rt_forked_stages:{stage}'}}]\nruntime: {{workers: 2}}\n")
    out = tmp_path / "out"
    args = ["run", str(src), "--out", str(out), "--config", str(cfg), "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codekiln.stream.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    corpus = [r for p in sorted((out / "corpus").iterdir()) for r in read_jsonl_zst(p)]
    rejects = [r for p in sorted((out / "rejects").iterdir()) for r in read_jsonl_zst(p)]
    return proc.pid, corpus, rejects


class TestForkedPool:
    def test_declines_while_another_thread_runs(self) -> None:
        """With a second thread alive, start() forks nothing and returns None."""
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        try:
            assert ForkedPool.start(2) is None
        finally:
            stop.set()
            thread.join()

    def test_cli_workers_are_forked_from_the_cli_process(
        self, tmp_path: Path, cli_env: dict[str, str]
    ) -> None:
        """A CLI run's pool workers are children of the CLI process (no fork server)."""
        pid, corpus, rejects = _cli_run(tmp_path, cli_env, "ParentPidStage", drop=2)
        assert len(corpus) == 5
        assert [r["reason"] for r in rejects] == ["parentpid:marked"]
        assert {r["meta"]["ppid"] for r in corpus + rejects} == {pid}
        assert pid not in {r["meta"]["pid"] for r in corpus + rejects}

    def test_cli_preloads_pool_stages_before_forking(
        self, tmp_path: Path, cli_env: dict[str, str]
    ) -> None:
        """Stage.preload runs in the CLI process before the fork: the workers inherit what it
        loaded instead of loading it again on their first batch."""
        pid, corpus, _ = _cli_run(tmp_path, cli_env, "PreloadedStage")
        assert len(corpus) == 6
        assert pid not in {r["meta"]["pid"] for r in corpus}  # ran in the workers
        assert {r["meta"]["loaded_in"] for r in corpus} == {pid}

    def test_close_without_stages_releases_the_workers(self, cli_env: dict[str, str]) -> None:
        """A pool closed before the pipeline needed it stops its workers and returns."""
        done = _run_script(
            "import multiprocessing, json\n"
            "from codekiln.stream.runtime.forked import ForkedPool\n"
            "pool = ForkedPool.start(2)\n"
            "n = len(multiprocessing.active_children())\n"
            "pool.close()\n"
            "pool.close()\n"
            "print(json.dumps([n, len(multiprocessing.active_children())]))\n",
            cli_env,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [2, 0]

    @pytest.mark.parametrize("configured", [False, True])
    def test_workers_die_with_a_killed_parent(
        self, cli_env: dict[str, str], configured: bool
    ) -> None:
        """SIGKILL of the parent ends its forked workers, waiting for stages or not."""
        done = _run_script(
            "import multiprocessing, os, signal, sys\n"
            "from pathlib import Path\n"
            "from codekiln.stream.runtime.forked import ForkedPool\n"
            "pool = ForkedPool.start(2)\n"
            + ("pool.configure({}, {}, 2)\n" if configured else "")
            + "print(*[p.pid for p in multiprocessing.active_children()], flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
            cli_env,
        )
        assert done.returncode == -9, done.stderr
        pids = [int(p) for p in done.stdout.split()]
        assert len(pids) == 2
        deadline = time.monotonic() + 10
        while not all(_gone_or_zombie(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = [p for p in pids if not _gone_or_zombie(p)]
        for p in alive:  # do not leave them behind when the assertion fails
            os.kill(p, 9)
        assert alive == []

    def test_a_worker_started_after_its_parent_died_exits(self) -> None:
        """A worker whose initializer runs only after the parent died (no death signal can
        come any more) exits instead of taking the setup message waiting in its queue."""
        from codekiln.stream.runtime.forked import _init_when_told

        ctx = multiprocessing.get_context("fork")
        setup = ctx.Queue(1)
        setup.put(None)  # the message is there: without the check the worker would go on
        not_the_parent = os.getpid() + 1_000_000  # getppid() never equals it: parent "gone"
        worker = ctx.Process(target=_init_when_told, args=(setup, not_the_parent))
        worker.start()
        worker.join(30)
        assert worker.exitcode == 1


class TestPoolStageClasses:
    def test_default_pipeline_pool_stages(self) -> None:
        """The default pipeline's pool stages are its cpu_bound stages, stateful ones left out."""
        from codekiln.stream.config import config_from_dict
        from codekiln.stream.runtime.job import pool_stage_classes

        names = {cls.__name__ for cls in pool_stage_classes(config_from_dict({}))}
        assert {"MinHashStage", "HeuristicFilterStage"} <= names
        assert not names & {"ExactDedupStage", "FuzzyDedupStage", "DownsampleStage"}

    def test_config_without_pool_stages_gives_none(self) -> None:
        """A configured pipeline of in-process stages needs no pool (nothing is forked)."""
        from codekiln.stream.config import config_from_dict
        from codekiln.stream.runtime.job import pool_stage_classes

        assert pool_stage_classes(config_from_dict({"stages": ["noop"]})) == []
        config = config_from_dict({"stages": ["rt_stages:CpuDropStage", "noop"]})
        assert [cls.__name__ for cls in pool_stage_classes(config)] == ["CpuDropStage"]
