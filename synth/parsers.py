"""Validating parsers for model outputs, one per prompt kind (named by the prompt's ``parser``).

A parser takes the raw text the model wrote and returns the fields the generator needs, or
raises :class:`~codekiln.synth.errors.ParseError` with a short ``rule`` (the record is then
quarantined as ``<generator>:parse:<rule>``). Parsers are pure functions of the text.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from .errors import ParseError

__all__ = ["PARSERS", "Parser", "code_blocks", "parse", "sections"]

Parser = Callable[[str], dict[str, str]]

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_HEADING = re.compile(
    r"^[ \t]*#{1,4}[ \t]*\**([A-Za-z][A-Za-z ]*?)\**[ \t]*:?[ \t]*$", re.MULTILINE
)
_LANG_ALIASES = {
    "py": "python", "python3": "python", "js": "javascript", "node": "javascript",
    "nodejs": "javascript", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "sh": "bash",
    "shell": "bash", "zsh": "bash",
}  # fmt: skip


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks as ``(language, code)``; an unclosed last fence runs to the end."""
    out = []
    for match in _FENCE.finditer(text):
        lang = match.group(1).lower()
        out.append((_LANG_ALIASES.get(lang, lang), match.group(2).strip("\n")))
    return out


def sections(text: str, names: tuple[str, ...]) -> dict[str, str]:
    """Split on markdown headings; every name in ``names`` must be present and non-empty."""
    found: dict[str, str] = {}
    heads = list(_HEADING.finditer(text))
    for i, head in enumerate(heads):
        title = head.group(1).strip().lower()
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end() : end].strip()
        if title not in found:
            found[title] = body
    out = {}
    for name in names:
        body = found.get(name.lower(), "")
        if not body:
            raise ParseError(f"missing_{name.lower()}", f"no '### {name}' section with content")
        out[name.lower()] = body
    return out


def _one_block(body: str, what: str, language: str | None = "python") -> str:
    blocks = code_blocks(body)
    if not blocks:
        raise ParseError(f"no_code_{what}", f"the {what} section has no fenced code block")
    if language is not None:
        matching = [code for lang, code in blocks if lang in (language, "")]
        if not matching:
            raise ParseError(f"wrong_language_{what}", f"no {language} block in the {what}")
        code = matching[0]
    else:
        code = blocks[0][1]
    if not code.strip():
        raise ParseError(f"empty_code_{what}", f"the {what} code block is empty")
    return code


def check_python(code: str, what: str) -> ast.Module:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError) as exc:
        raise ParseError(f"syntax_error_{what}", f"{what} is not valid Python: {exc}") from None


def _check_tests(code: str) -> None:
    tree = check_python(code, "tests")
    has_assert = any(isinstance(n, ast.Assert) for n in ast.walk(tree))
    has_test_fn = any(
        isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in tree.body
    )
    if not (has_assert or has_test_fn):
        raise ParseError("no_asserts", "the tests contain no assert and no test_* function")


def _check_tests_use_code(code: str, tests: str) -> None:
    """The tests must name (call, pass or reference) something the code defines at top level.

    ``assert True`` or tests of a different function pass in the sandbox and prove nothing
    about the code.
    """
    defined = {
        n.name
        for n in check_python(code, "code").body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    if not defined:
        return
    used: set[str] = set()
    for n in ast.walk(check_python(tests, "tests")):
        if isinstance(n, ast.Name):
            used.add(n.id)
        elif isinstance(n, ast.Attribute):
            used.add(n.attr)
    if not defined & used:
        raise ParseError(
            "tests_skip_code",
            f"the tests never use what the code defines ({', '.join(sorted(defined))})",
        )


def _check_defines_function(code: str) -> None:
    tree = check_python(code, "code")
    if not any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body):
        raise ParseError("no_function", "the code defines no top-level function")
    if any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "input"
        for n in ast.walk(tree)
    ):
        raise ParseError("reads_stdin", "the code calls input()")


def parse_code_and_tests(text: str) -> dict[str, str]:
    parts = sections(text, ("Code", "Tests"))
    code = _one_block(parts["code"], "code")
    tests = _one_block(parts["tests"], "tests")
    _check_defines_function(code)
    _check_tests(tests)
    _check_tests_use_code(code, tests)
    return {"code": code, "tests": tests}


def parse_textbook(text: str) -> dict[str, str]:
    body = text.strip()
    prose = _FENCE.sub("", body)
    words = re.findall(r"[A-Za-z]{2,}", prose)
    if len(words) < 60:
        raise ParseError(
            "too_short", f"a textbook section needs >= 60 words of prose, got {len(words)}"
        )
    if not re.match(r"^#{1,3} \S", body):
        raise ParseError("no_heading", "a textbook section starts with a markdown heading")
    if len(code_blocks(body)) > 3:
        raise ParseError("too_much_code", "a textbook section has at most 3 code blocks")
    for lang, code in code_blocks(body):
        if lang == "python":
            check_python(code, "example")
    return {"text": body}


def parse_edu_task(text: str) -> dict[str, str]:
    parts = sections(text, ("Task", "Analysis", "Solution", "Tests"))
    solution = _one_block(parts["solution"], "solution")
    tests = _one_block(parts["tests"], "tests")
    _check_defines_function(solution)
    _check_tests(tests)
    _check_tests_use_code(solution, tests)
    if code_blocks(parts["task"]) and len(_FENCE.sub("", parts["task"]).split()) < 8:
        raise ParseError("task_is_code", "the task statement is code, not a problem statement")
    return {
        "task": parts["task"],
        "analysis": parts["analysis"],
        "solution": solution,
        "tests": tests,
    }


def parse_package_task(text: str) -> dict[str, str]:
    parts = sections(text, ("Problem", "Solution", "Tests"))
    solution = _one_block(parts["solution"], "solution")
    tests = _one_block(parts["tests"], "tests")
    check_python(solution, "solution")
    _check_tests(tests)
    _check_tests_use_code(solution, tests)
    problem = parts["problem"]
    if re.search(r"\b(the|this|above|given) (documentation|docstring|docs)\b", problem, re.I):
        raise ParseError("not_self_contained", "the problem refers to the documentation")
    return {"problem": problem, "solution": solution, "tests": tests}


def parse_diverse_task(text: str) -> dict[str, str]:
    parts = sections(text, ("Instruction", "Response", "Tests"))
    blocks = code_blocks(parts["response"])
    if not blocks:
        raise ParseError("no_code_response", "the response has no fenced code block")
    lang, code = blocks[-1]
    test_blocks = code_blocks(parts["tests"])
    if not test_blocks:
        raise ParseError("no_code_tests", "the tests section has no fenced code block")
    tests = test_blocks[0][1]
    if lang == "python":
        check_python(code, "response")
        _check_tests(tests)
        _check_tests_use_code(code, tests)
    return {
        "instruction": parts["instruction"],
        "response": parts["response"],
        "code": code,
        "code_language": lang,
        "tests": tests,
    }


def parse_annotated_code(text: str) -> dict[str, str]:
    blocks = code_blocks(text)
    if not blocks:
        raise ParseError("no_code", "the annotation has no fenced code block")
    return {"code": blocks[0][1]}


def parse_yes_no(text: str) -> dict[str, str]:
    word = text.strip().strip(".!").lower()
    if word not in ("yes", "no"):
        raise ParseError("not_yes_no", f"expected YES or NO, got {text[:40]!r}")
    return {"answer": word}


PARSERS: dict[str, Parser] = {
    "code_and_tests": parse_code_and_tests,
    "textbook": parse_textbook,
    "edu_task": parse_edu_task,
    "package_task": parse_package_task,
    "diverse_task": parse_diverse_task,
    "annotated_code": parse_annotated_code,
    "yes_no": parse_yes_no,
}


def parse(parser: str, text: str) -> dict[str, str]:
    """Run the parser called ``parser``; an empty output is its own rule."""
    if not text.strip():
        raise ParseError("empty_output", "the model returned nothing")
    return PARSERS[parser](text)
