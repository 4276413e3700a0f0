"""The language table: how each language is compiled and run inside the sandbox image.

Adding a language (Java, Go, Rust) is one entry here (its Debian packages go into the image
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

    @property
    def kind(self) -> str:
        return "python" if self.run is None else "exec"


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
