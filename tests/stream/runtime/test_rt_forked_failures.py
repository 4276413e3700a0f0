"""A forked pool whose workers die before they take their stages (runtime/forked.py)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.stream.procs import run_python

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the forked pool is Linux only")

# A worker is killed before configure() sends the stages; the stage pickles to 4 MB, far more
# than a pipe holds, so the setup messages nobody reads stay in the queue's feeder thread.
_KILL_ONE_THEN_CONFIGURE = """
import json, multiprocessing, os, signal, time
from pathlib import Path
from codekiln.stream.runtime.forked import ForkedPool
from rt_stages import CpuDropStage

pool = ForkedPool.start(2)
os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
time.sleep(0.5)
try:
    pool.configure({"big": CpuDropStage("x" * (4 << 20))}, {"big": Path(".")}, 2)
    raised = None
except Exception as exc:
    raised = type(exc).__name__
pool.close()
print(json.dumps([raised, len(multiprocessing.active_children())]), flush=True)
"""


def test_close_returns_after_a_worker_died_before_its_stages(cli_env: dict[str, str]) -> None:
    """A worker killed before configure(): configure raises, close() returns, nothing hangs."""
    done = run_python(_KILL_ONE_THEN_CONFIGURE, cli_env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["BrokenProcessPool", 0]
