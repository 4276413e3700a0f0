"""The compiled languages added for MultiPL-E (Go, Rust, Java): their verdicts and their abuse
cases (fork bomb, memory hog, infinite loop, output flood), each followed by an innocent
program of the same language in the same one-container service, which must pass."""

from __future__ import annotations

import pytest
from codekiln.sandbox.client import RunRequest, SandboxClient

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# language -> case -> (program, expected status). "hello" is the innocent program run after
# each abuse case; its stdout must be "ok". A fork bomb runs into its time limit, unless its
# processes together go over its memory limit first, or its own runtime dies when the process
# limit (RLIMIT_NPROC) refuses it a thread: `failed`, and only with that runtime's own message
# on stderr (THREAD_REFUSED; Rust's spawn returns an error the program ignores).
CASES: dict[str, dict[str, tuple[str, str]]] = {
    "go": {
        "hello": ('package main\nimport "fmt"\nfunc main() { fmt.Println("ok") }\n', "passed"),
        "exit_code": ('package main\nimport "os"\nfunc main() { os.Exit(3) }\n', "failed"),
        "compile_error": ("package main\nfunc main() { undefined() }\n", "failed"),
        "infinite_loop": ("package main\nfunc main() { x := 0; for { x++ } }\n", "timeout"),
        "fork_bomb": (
            'package main\nimport "os/exec"\n'
            'func main() { for { _ = exec.Command("/proc/self/exe").Start() } }\n',
            "timeout",
        ),
        "memory_hog": (
            "package main\nvar keep [][]byte\n"
            "func main() { for { b := make([]byte, 1<<20); for i := range b { b[i] = 1 };"
            " keep = append(keep, b) } }\n",
            "memory_exceeded",
        ),
        "output_flood": (
            'package main\nimport ("os"; "strings")\n'
            'func main() { s := []byte(strings.Repeat("x", 65536)); for { os.Stdout.Write(s) } }\n',
            "output_exceeded",
        ),
    },
    "rust": {
        "hello": ('fn main() { println!("ok"); }\n', "passed"),
        "exit_code": ("fn main() { std::process::exit(3); }\n", "failed"),
        "compile_error": ('fn main() { let x: u32 = "no"; }\n', "failed"),
        "infinite_loop": (
            "fn main() { loop {} }\n",
            "timeout",
        ),
        "fork_bomb": (
            "use std::process::Command;\n"
            'fn main() { loop { let _ = Command::new("/proc/self/exe").spawn(); } }\n',
            "timeout",
        ),
        "memory_hog": (
            "fn main() { let mut keep: Vec<Vec<u8>> = Vec::new();"
            " loop { keep.push(vec![1u8; 1 << 20]); } }\n",
            "memory_exceeded",
        ),
        "output_flood": (
            "use std::io::Write;\nfn main() { let s = [b'x'; 65536];"
            " let mut o = std::io::stdout(); loop { let _ = o.write_all(&s); } }\n",
            "output_exceeded",
        ),
    },
    "java": {
        "hello": (
            "public class Main { public static void main(String[] a) {"
            ' System.out.println("ok"); } }\n',
            "passed",
        ),
        "exit_code": (
            "public class Main { public static void main(String[] a) { System.exit(3); } }\n",
            "failed",
        ),
        "compile_error": (
            'public class Main { public static void main(String[] a) { int x = "no"; } }\n',
            "failed",
        ),
        "infinite_loop": (
            "public class Main { static volatile long x;"
            " public static void main(String[] a) { for (;;) x++; } }\n",
            "timeout",
        ),
        "fork_bomb": (
            "public class Main { public static void main(String[] a) throws Exception {"
            ' for (;;) { try { new ProcessBuilder("java", "-cp", ".", "Main").start(); }'
            " catch (Exception e) { } } } }\n",
            "timeout",
        ),
        "memory_hog": (
            "import java.util.*;\npublic class Main { public static void main(String[] a) {"
            " List<byte[]> keep = new ArrayList<>(); for (;;) keep.add(new byte[1 << 20]); } }\n",
            "memory_exceeded",
        ),
        "output_flood": (
            "public class Main { public static void main(String[] a) {"
            ' String s = "x".repeat(65536); for (;;) System.out.print(s); } }\n',
            "output_exceeded",
        ),
    },
}
ABUSE = frozenset({"infinite_loop", "fork_bomb", "memory_hog", "output_flood"})
FORK_BOMB_STATUSES = ("timeout", "memory_exceeded")
THREAD_REFUSED = {
    "go": "failed to create new OS thread",  # the runtime's throw, exit 2
    "java": "unable to create native thread",  # an uncaught OutOfMemoryError, exit 1
}
MATRIX = [(lang, case) for lang, cases in CASES.items() for case in cases]


@pytest.mark.parametrize(("language", "case"), MATRIX, ids=[f"{a}-{b}" for a, b in MATRIX])
async def test_verdict_then_an_innocent_program_passes(
    solo: SandboxClient, language: str, case: str
) -> None:
    """Each case gets its verdict; after an abuse case, the same language's plain program
    passes in the same (or a replacing) container."""
    code, expected = CASES[language][case]
    # A JVM fills its heap slowly on a busy machine: the hogs get time to reach their limit.
    timeout_s = 10 if case == "memory_hog" else 2
    r = await solo.run(RunRequest(language=language, code=code, timeout_s=timeout_s, memory_mb=256))
    if case == "fork_bomb" and r.status == "failed":
        assert language in THREAD_REFUSED, r
        assert THREAD_REFUSED[language] in r.stderr, r
    elif case == "fork_bomb":
        assert r.status in FORK_BOMB_STATUSES, r
    else:
        assert r.status == expected, r
    if case == "compile_error":
        assert r.reason == "compilation failed", r
    if case == "exit_code":
        assert r.exit_code == 3, r
    if case == "output_flood":
        assert r.truncated, r
    if case in ABUSE:
        hello, _ = CASES[language]["hello"]
        after = await solo.run(RunRequest(language=language, code=hello, timeout_s=10))
        assert (after.status, after.stdout) == ("passed", "ok\n"), after
