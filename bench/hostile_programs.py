"""The hostile programs of the sandbox benchmarks, one table for both: bench_sandbox_hostile
mixes some of them into friendly traffic, bench_sandbox_isolation runs some of them one by one
in a single container. Each kind is (language, code); every program outlives a 1 s limit."""

from __future__ import annotations

#: A Python fork bomb that keeps forking through EAGAIN.
FORK_BOMB_PY = (
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
)
#: Per language, a program that only sleeps: its latency is the deadline plus what the language
#: costs (the compile, for C).
SLEEPERS = {
    "python": "import time\ntime.sleep(30)\n",
    "c": "#include <unistd.h>\nint main(void) { sleep(30); }\n",
    "bash": "sleep 30\n",
}
HOSTILE = {
    "fork bomb (python)": ("python", FORK_BOMB_PY),
    "fork bomb (c)": ("c", "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n"),
    "fork bomb (bash)": ("bash", ":(){ :|:& };:\nsleep 30\n"),
    "memory hog": ("python", "xs = []\nwhile True:\n    xs.append(bytearray(1 << 24))\n"),
    "sleeper": ("python", SLEEPERS["python"]),
    "zombie maker (python)": (
        "python",
        "import os\nfor _ in range(40):\n    if os.fork() == 0:\n        os._exit(0)\n"
        "print('left', 40, 'zombies')\n",
    ),
    "zombie maker (c)": (
        "c",
        "#define _GNU_SOURCE\n#include <sched.h>\n#include <signal.h>\n#include <unistd.h>\n"
        "static char stack[65536];\nstatic int child(void *a) { (void)a; pause(); return 0; }\n"
        "int main(void) { for (int i = 0; i < 200; i++) "
        "clone(child, stack + sizeof stack, CLONE_PARENT | SIGCHLD, NULL); sleep(30); }\n",
    ),
    "outliver": (
        "python",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
        "print('parent exits')\n",
    ),
    "setsid sleepers": (
        "python",
        "import os, time\nfor _ in range(20):\n    if os.fork() == 0:\n        os.setsid()\n"
        "        time.sleep(1000)\ntime.sleep(30)\n",
    ),
    "output flood": ("python", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"),
    "spin (bash)": ("bash", "while true; do :; done"),
}


def hostile(*kinds: str) -> dict[str, tuple[str, str]]:
    """The programs of ``kinds`` (names of HOSTILE), in that order."""
    return {kind: HOSTILE[kind] for kind in kinds}
