"""Every language's hostile jobs against their own time limit, through the real service.

For each language (python, c, cpp, bash, javascript, go, java, rust), five hostile classes (fork
bomb, sleeper, CPU spin, memory hog, output flood) at each time limit (1 s and 3 s by default),
one at a time in a pool of one container. Prints per case the job's time as the service's
client sees it, answered-after = the client's latency less the compile step (the result's
``compile_s``: a compile has its own limit, as in SandboxFusion; an interpreted language's
start is inside its limit), as a ratio to the time limit (p50/max), and how long the next job
(a trivial Python one) waited beyond its own baseline measured in the same run: the clean-up
(kill, reap, clean proof) that the answer did not wait for. Then per class, over all languages
and limits. The target is at most 1.2x the limit.
``--image`` (repeatable) runs the same matrix on each image tag in turn (before/after; an image
whose results have no ``compile_s`` gets its language's "hello" latency taken off instead);
``--host-load N`` runs N busy processes beside it, the same for every image.
Run: ``python bench/bench_sandbox_limits.py [--languages python,c] [--limits 1,3] [--reps 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from codekiln.sandbox.client import RunRequest, SandboxClient
from codekiln.sandbox.languages import resolve
from hostile_programs import FORK_BOMB_PY

from tests.fixtures.sandbox import start_service, stop_service


async def timed(
    client: SandboxClient, language: str, code: str, limit_s: float = 10.0
) -> tuple[float, str, float]:
    """The client's latency, the verdict, and the compile step's time the result reports."""
    t0 = time.perf_counter()
    r = await client.run(RunRequest(language=language, code=code, timeout_s=limit_s))
    return time.perf_counter() - t0, r.status, r.compile_s


# Per language: "hello", a plain program (its latency is what the language itself costs: the
# compile, the runtime's start), and five hostile classes. The job's time as the service sees it
# is the client's latency less hello's: answered-after / limit is that over the time limit
# (compile time has its own limit, as in SandboxFusion; evalplus runs Python only).
C_HOSTILE = {
    "hello": '#include <stdio.h>\nint main(void) { puts("ok"); }\n',
    "fork_bomb": "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n",
    "sleeper": "#include <unistd.h>\nint main(void) { sleep(30); }\n",
    "spin": "int main(void) { for (volatile long x = 0;; x++) {} }\n",
    "memory_hog": (
        "#include <stdlib.h>\n#include <string.h>\n"
        "int main(void) { for (;;) { char *p = (char *)malloc(1 << 20);"
        " if (p) memset(p, 1, 1 << 20); } }\n"
    ),
    "output_flood": (
        "#include <stdio.h>\n#include <string.h>\nint main(void) { static char s[65536];"
        " memset(s, 'x', sizeof s); for (;;) fwrite(s, 1, sizeof s, stdout); }\n"
    ),
}
LIMIT_CASES: dict[str, dict[str, str]] = {
    "python": {
        "hello": "print('ok')\n",
        "fork_bomb": FORK_BOMB_PY,
        "sleeper": "import time\ntime.sleep(30)\n",
        "spin": "while True:\n    pass\n",
        "memory_hog": "xs = []\nwhile True:\n    xs.append(bytearray(1 << 24))\n",
        "output_flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
    },
    "c": C_HOSTILE,
    "cpp": C_HOSTILE,
    "bash": {
        "hello": "echo ok\n",
        "fork_bomb": ":(){ :|:& };:\nsleep 30\n",
        "sleeper": "sleep 30\n",
        "spin": "while true; do :; done\n",
        "memory_hog": "x=xxxxxxxx\nwhile true; do x=$x$x; done\n",
        "output_flood": 'x=$(printf %065536d 0)\nwhile true; do echo "$x"; done\n',
    },
    "javascript": {
        "hello": "console.log('ok')\n",
        "fork_bomb": (
            "const { spawn } = require('child_process');\n"
            "for (;;) { try { spawn(process.execPath, [__filename]); } catch (e) {} }\n"
        ),
        "sleeper": "setTimeout(() => {}, 30000);\n",
        "spin": "for (;;) {}\n",
        "memory_hog": "const keep = [];\nfor (;;) keep.push(new Array(1 << 20).fill(1));\n",
        "output_flood": "const s = 'x'.repeat(65536);\nfor (;;) process.stdout.write(s);\n",
    },
    "go": {
        "hello": 'package main\nimport "fmt"\nfunc main() { fmt.Println("ok") }\n',
        "fork_bomb": (
            'package main\nimport "os/exec"\n'
            'func main() { for { _ = exec.Command("/proc/self/exe").Start() } }\n'
        ),
        "sleeper": 'package main\nimport "time"\nfunc main() { time.Sleep(30 * time.Second) }\n',
        "spin": "package main\nfunc main() { x := 0; for { x++ } }\n",
        "memory_hog": (
            "package main\nvar keep [][]byte\n"
            "func main() { for { b := make([]byte, 1<<20); for i := range b { b[i] = 1 };"
            " keep = append(keep, b) } }\n"
        ),
        "output_flood": (
            'package main\nimport ("os"; "strings")\n'
            'func main() { s := []byte(strings.Repeat("x", 65536)); for { os.Stdout.Write(s) } }\n'
        ),
    },
    "java": {
        "hello": (
            "public class Main { public static void main(String[] a) {"
            ' System.out.println("ok"); } }\n'
        ),
        "fork_bomb": (
            "public class Main { public static void main(String[] a) throws Exception {"
            ' for (;;) { try { new ProcessBuilder("java", "-cp", ".", "Main").start(); }'
            " catch (Exception e) { } } } }\n"
        ),
        "sleeper": (
            "public class Main { public static void main(String[] a) throws Exception {"
            " Thread.sleep(30000); } }\n"
        ),
        "spin": (
            "public class Main { static volatile long x;"
            " public static void main(String[] a) { for (;;) x++; } }\n"
        ),
        "memory_hog": (
            "import java.util.*;\npublic class Main { public static void main(String[] a) {"
            " List<byte[]> keep = new ArrayList<>(); for (;;) keep.add(new byte[1 << 20]); } }\n"
        ),
        "output_flood": (
            "public class Main { public static void main(String[] a) {"
            ' String s = "x".repeat(65536); for (;;) System.out.print(s); } }\n'
        ),
    },
    "rust": {
        "hello": 'fn main() { println!("ok"); }\n',
        "fork_bomb": (
            "use std::process::Command;\n"
            'fn main() { loop { let _ = Command::new("/proc/self/exe").spawn(); } }\n'
        ),
        "sleeper": "fn main() { std::thread::sleep(std::time::Duration::from_secs(30)); }\n",
        # Rust 1.63: no std::hint::black_box yet; a volatile write keeps the loop.
        "spin": (
            "fn main() { let mut x = 0u64;"
            " loop { unsafe { std::ptr::write_volatile(&mut x, x.wrapping_add(1)) } } }\n"
        ),
        "memory_hog": (
            "fn main() { let mut keep: Vec<Vec<u8>> = Vec::new();"
            " loop { keep.push(vec![1u8; 1 << 20]); } }\n"
        ),
        "output_flood": (
            "use std::io::Write;\nfn main() { let s = [b'x'; 65536];"
            " let mut o = std::io::stdout(); loop { let _ = o.write_all(&s); } }\n"
        ),
    },
}
NEXT = RunRequest(language="python", code="print(6 * 7)")


def _p50_max(xs: list[float]) -> str:
    return f"{statistics.median(xs):5.2f}/{max(xs):5.2f}"


async def limits_matrix(
    client: SandboxClient,
    languages: list[str],
    limits: list[float],
    reps: int,
    classes: frozenset[str] | None = None,
) -> dict[tuple[str, str, float], list[float]]:
    """Print, per language x class x limit, answered-after / limit (p50/max) and how long the
    next job waited for the clean-up; return the ratios by (language, class, limit)."""
    next_base = statistics.median([(await timed(client, "python", NEXT.code))[0] for _ in range(5)])
    ratios: dict[tuple[str, str, float], list[float]] = {}
    for language in languages:
        cases = LIMIT_CASES[language]
        hello = [await timed(client, language, cases["hello"], 10.0) for _ in range(reps + 1)]
        # The first may compile into a cold cache. A compiled language's results report
        # compile_s, taken off each job's own latency; an image from before that field has
        # hello's latency taken off instead (the compile, and a little more). An interpreted
        # language's start is inside its time limit: nothing is taken off.
        base = statistics.median(h[0] for h in hello[1:])
        compiled = resolve(language).compile is not None
        by_result = any(h[2] for h in hello)
        print(
            f"  {language}: hello {base:.2f} s; taken off: "
            + (
                "nothing (no compile step)"
                if not compiled
                else "each job's compile_s"
                if by_result
                else f"hello's latency, {base:.2f} s"
            )
        )
        if not compiled:
            base = 0.0
        for limit in limits:
            for kind, code in cases.items():
                if kind == "hello" or (classes is not None and kind not in classes):
                    continue
                lat, waits, statuses = [], [], Counter()
                for _ in range(reps):
                    dt, status, compile_s = await timed(client, language, code, limit)
                    lat.append(max(0.0, dt - (compile_s if by_result else base)) / limit)
                    statuses[status] += 1
                    waits.append(
                        max(0.0, (await timed(client, "python", NEXT.code))[0] - next_base)
                    )
                ratios[(language, kind, limit)] = lat
                print(
                    f"    {kind:<13} limit {limit:g} s: answered-after/limit p50/max "
                    f"{_p50_max(lat)}; next job waited {_p50_max(waits)} s; {dict(statuses)}"
                )
    by_class: dict[str, list[float]] = {}
    for (_, kind, _), xs in ratios.items():
        by_class.setdefault(kind, []).extend(xs)
    worst = max((x for xs in ratios.values() for x in xs), default=0.0)
    print(
        "  per class, all languages and limits, answered-after/limit p50/max: "
        + "; ".join(f"{k} {_p50_max(xs)}" for k, xs in sorted(by_class.items()))
        + f"; worst {worst:.2f} (target <= 1.2: {'met' if worst <= 1.2 else 'NOT met'})"
    )
    return ratios


async def run(args: argparse.Namespace) -> int:
    limits = [float(x) for x in args.limits.split(",")]
    languages = args.languages.split(",")
    classes = frozenset(args.classes.split(",")) if args.classes else None
    with host_load(args.host_load):
        for image in args.image or [None]:
            await one_image(args, image, languages, limits, classes)
    return 0


@contextlib.contextmanager
def host_load(n: int) -> Iterator[None]:
    """``n`` busy processes outside the sandbox at normal priority for the block: the same
    competition for the host's CPUs for every image of one run (0: none, the machine as is)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    if n:
        print(f"host load: {n} busy processes")
    try:
        yield
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


async def one_image(
    args: argparse.Namespace,
    image: str | None,
    languages: list[str],
    limits: list[float],
    classes: frozenset[str] | None,
) -> None:
    print(
        f"image {image or '(current recipe)'}: pool of 1, x{args.reps} per case; "
        "answered-after = latency less a compiled language's compile (compile_s), or its "
        "hello's latency where no result reports it"
    )
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        svc = start_service(
            Path(tmp),
            pool_size=1,
            instance=f"bench-limits-{time.time_ns()}",
            extra=("--image", image) if image else (),
        )
        try:
            async with SandboxClient(svc.url, token=svc.token, retries=100) as client:
                await client.run(NEXT)  # warm-up
                await limits_matrix(client, languages, limits, args.reps, classes)
        finally:
            stop_service(svc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--languages", default=",".join(LIMIT_CASES))
    p.add_argument("--limits", default="1,3", help="time limits in seconds, comma-separated")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--image", action="append", help="run on this image tag (repeatable)")
    p.add_argument("--classes", default="", help="hostile classes to run (default: all)")
    p.add_argument("--host-load", type=int, default=0, help="busy processes beside the run")
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
