"""The language table: how each language is compiled and run inside the sandbox image.

Adding a language is one entry here (its Debian packages go into the image
recipe, so the image tag changes and the image is rebuilt) plus a test in
tests/sandbox/test_languages.py. ``run=None`` means the Python harness in the forked, warm
interpreter of the supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RequestInvalid


@dataclass(frozen=True, slots=True)
class Language:
    name: str
    packages: tuple[str, ...]
    source_name: str
    compile: tuple[str, ...] | None
    run: tuple[str, ...] | None
    aliases: tuple[str, ...] = ()
    # RLIMIT_DATA = memory_mb on each process (a quick allocation failure for a one-process
    # hog); off for runtimes that reserve large address ranges up front (V8 cannot start
    # under it and hangs). The job as a whole is held by the container's memory limit either
    # way. ``{memory_mb}`` in ``run`` is replaced by the job's limit.
    memory_rlimit: bool = True
    # Below this memory_mb the compiler itself cannot run: a request under it is a 400.
    min_memory_mb: int = 16

    @property
    def kind(self) -> str:
        return "python" if self.run is None else "exec"


# Go's build and its program: one thread per core by default (see below), pinned to two.
GO_THREADS = ("env", "GOMAXPROCS=2")
# The JVM of javac (as -J options) and of the program: heap at the job's limit, one GC thread,
# one core, the quick C1 compiler only.
JVM = (
    "-Xmx{memory_mb}m",
    "-XX:+UseSerialGC",
    "-XX:ActiveProcessorCount=1",
    "-XX:TieredStopAtLevel=1",
)

LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        Language(
            "python",
            ("python3", "python3-numpy"),
            "main.py",
            compile=None,
            run=None,
            aliases=("python3", "py"),
        ),
        Language(
            "c",
            ("gcc", "libc6-dev"),
            "main.c",
            compile=("gcc", "-O2", "-std=gnu17", "-o", "main", "main.c", "-lm"),
            run=("./main",),
        ),
        Language(
            "cpp",
            ("g++", "libc6-dev"),
            "main.cpp",
            compile=("g++", "-O2", "-std=gnu++17", "-o", "main", "main.cpp"),
            run=("./main",),
            aliases=("c++",),
        ),
        Language(
            "javascript",
            ("nodejs",),
            "main.js",
            compile=None,
            # V8's heap limit is the job's: its out-of-memory abort is a memory verdict.
            run=("node", "--max-old-space-size={memory_mb}", "main.js"),
            aliases=("js", "nodejs", "node"),
            memory_rlimit=False,
        ),
        Language(
            "bash", ("bash",), "main.sh", compile=None, run=("bash", "main.sh"), aliases=("sh",)
        ),
        # The compiled languages of MultiPL-E that Debian packages. Their compilers and runtimes
        # reserve far more address space than they touch, so no RLIMIT_DATA: the container's
        # memory limit (memory_mb plus the supervisor's reserve) holds the job, and a hog is
        # OOM-killed into memory_exceeded. Thread counts are pinned: by default each starts a
        # thread (go build: also a process) per host core, which on a big host would run
        # into the job's process limit.
        Language(
            "go",
            ("golang-go",),
            "main.go",
            compile=(
                *GO_THREADS,
                "GOFLAGS=-p=1",
                "GO111MODULE=off",
                "go",
                "build",
                "-o",
                "main",
                "main.go",
            ),
            run=(*GO_THREADS, "./main"),
            aliases=("golang",),
            memory_rlimit=False,
            min_memory_mb=128,
        ),
        Language(
            "rust",
            ("rustc",),
            "main.rs",
            compile=(
                "rustc",
                "--edition=2021",
                "-O",
                "-C",
                "codegen-units=1",
                "-o",
                "main",
                "main.rs",
            ),
            run=("./main",),
            aliases=("rs",),
            memory_rlimit=False,
            min_memory_mb=256,
        ),
        Language(
            "java",
            ("default-jdk-headless",),
            # The class with main must be public class Main (as in SandboxFusion).
            "Main.java",
            compile=("javac", *(f"-J{flag}" for flag in JVM), "-encoding", "UTF-8", "Main.java"),
            run=("java", *JVM, "-Xshare:auto", "-cp", ".", "Main"),
            memory_rlimit=False,
            min_memory_mb=256,
        ),
    )
}

_ALIASES = {alias: lang for lang in LANGUAGES.values() for alias in (lang.name, *lang.aliases)}


def resolve(name: str) -> Language:
    """The language called ``name`` (or one of its aliases), case-insensitively."""
    lang = _ALIASES.get(name.lower())
    if lang is None:
        raise RequestInvalid(
            f"unsupported language {name!r}; supported: {', '.join(sorted(LANGUAGES))}"
        )
    return lang


def image_packages() -> tuple[str, ...]:
    """Every Debian package the image needs, sorted (part of the image's recipe hash)."""
    return tuple(sorted({p for lang in LANGUAGES.values() for p in lang.packages}))
