"""Signals of the C family (C, C++, C#, Java, Go, JavaScript): structure from line patterns.

These languages have no parser in the Python standard library, so function definitions,
declarations and output calls are recognised by line patterns on the code text (comments
removed). The patterns cannot backtrack quadratically: a parameter list is matched by a
character class that excludes parentheses, and type tokens are separated by mandatory spaces.

Definitions shared by the family (see docs/stream-stage2.md for the exact patterns):

- *function definitions*: lines that look like ``type name(params) [qualifiers] [{]`` with a
  name that is not a control keyword (Go: ``func`` lines; JavaScript: ``function``, arrow
  functions and method shorthand);
- *variables*: an assignment (``=`` that is not a comparison; Go ``:=``), a declaration
  (``int x;``, ``var x``, ``let x``) or a function with parameters. Upstream's Go and C# rule
  compared a list with 0 and never fired; here both are ordinary booleans;
- *no-logic score*: (function definitions + import/include/using/package lines + type
  declarations + trivial returns) over code lines.

JavaScript's parse-failure signal (tree-sitter) lives in :mod:`.javascript`; the JavaScript
signals here stay on these line patterns.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals._registry import ratio, signal

_KEYWORDS = frozenset(
    [
        "if",
        "for",
        "while",
        "switch",
        "return",
        "catch",
        "sizeof",
        "else",
        "new",
        "delete",
        "using",
        "throw",
        "case",
        "do",
        "try",
        "typeof",
        "instanceof",
        "await",
        "yield",
        "elif",
        "foreach",
        "lock",
        "fixed",
        "unchecked",
        "checked",
        "synchronized",
        "defined",
        "function",
    ]
)

# type tokens (space-separated) then name then a parenthesis-free parameter list.
_C_FUNC = re.compile(
    r"^[ \t]*(?:[\w\[\]<>,:*&~.@]+[ \t]+)+[*&]*(~?[A-Za-z_][\w:~]*)[ \t]*\(([^;{}()\n]*)\)"
    r"[ \t]*(?:const|override|final|noexcept|throws[ \t][\w., \t]+|where[ \t][^{\n]*)?"
    r"[ \t]*\{?[ \t]*$",
    re.M,
)
_GO_FUNC = re.compile(
    r"^func[ \t]+(?:\([^()\n]*\)[ \t]*)?(\w+)[ \t]*(?:\[[^\]\n]*\])?\(([^()\n]*)\)", re.M
)
_JS_FUNC = re.compile(
    r"\bfunction\b[ \t*]*\w*[ \t]*\(([^()\n]*)\)"
    r"|(?:\(([^()\n]*)\)|\b\w+)[ \t]*=>"
    r"|^[ \t]*(?:async[ \t]+|static[ \t]+|get[ \t]+|set[ \t]+)*(\w+)[ \t]*\(([^()\n]*)\)"
    r"[ \t]*\{[ \t]*$",
    re.M,
)  # fmt: skip

_ASSIGN = re.compile(r"[^=!<>]=[^=>]|[+\-*/%&|^]=|\+\+|--")
_C_DECL = re.compile(
    r"\b(?:int|char|float|double|long|short|unsigned|signed|bool|auto|size_t|var|let|const|"
    r"string|String|byte|decimal|object|uint\d*|int\d+_t|uint\d+_t|boolean)[ \t*&]+[A-Za-z_]\w*"
    r"[ \t]*[;,=\[)]"
)
_GO_DECL = re.compile(
    r":=|\bvar[ \t]+\w|\bconst[ \t]+\w|\bfor[ \t]+\w+[ \t]*(?:,[ \t]*\w+)?[ \t]*:?="
)

_IMPORT_LINE = {
    "c": re.compile(r"^[ \t]*#[ \t]*(?:include|import)\b", re.M),
    "cpp": re.compile(
        r"^[ \t]*(?:#[ \t]*(?:include|import)\b|using[ \t]+namespace\b|import[ \t])", re.M
    ),
    "csharp": re.compile(r"^[ \t]*(?:using[ \t]+[\w.]+[ \t]*;|namespace[ \t])", re.M),
    "java": re.compile(r"^[ \t]*(?:import|package)[ \t]+[\w.*]+[ \t]*;", re.M),
    "go": re.compile(r"^[ \t]*(?:import\b|package[ \t])|^[ \t]+\"[\w./-]+\"[ \t]*$", re.M),
    "javascript": re.compile(
        r"^[ \t]*(?:import\b|export[ \t]+\{[^}\n]*\}[ \t]+from\b)"
        r"|\brequire[ \t]*\([ \t]*['\"][^'\"\n]+['\"][ \t]*\)",
        re.M,
    ),
}  # fmt: skip
_TYPE_LINE = re.compile(
    r"^[ \t]*(?:(?:public|private|protected|internal|static|abstract|final|sealed|partial|export|"
    r"default|typedef)[ \t]+)*(?:class|struct|interface|enum|union|record|type)[ \t]+\w",
    re.M,
)
_TRIVIAL_RETURN = re.compile(r"^[ \t]*return(?:[ \t]+[\w.\"']+)?[ \t]*;?[ \t]*$", re.M)

_OUTPUT = {
    "c": re.compile(r"^.*\b(?:printf|puts|putchar)[ \t]*\(.*$", re.M),
    "cpp": re.compile(r"^.*(?:\bcout\b|\b(?:printf|puts)[ \t]*\().*$", re.M),
    "csharp": re.compile(r"^.*\bConsole\.Write(?:Line)?[ \t]*\(.*$", re.M),
    "java": re.compile(r"^.*\bSystem\.out\.print(?:ln|f)?[ \t]*\(.*$", re.M),
    "go": re.compile(r"^.*\bfmt\.(?:F|S)?Print(?:ln|f)?[ \t]*\(.*$", re.M),
    "javascript": re.compile(r"^.*\bconsole\.log[ \t]*\(.*$", re.M),
}
# Substrings one of which must occur for the pattern to match (a cheap pre-check).
_OUTPUT_HINTS = {
    "c": ("printf", "puts", "putchar"),
    "cpp": ("cout", "printf", "puts"),
    "csharp": ("Console.Write",),
    "java": ("System.out.print",),
    "go": ("fmt.",),
    "javascript": ("console.log",),
}


def _functions(doc: Document, lang: str) -> list[tuple[str, str]]:
    """(name, parameter text) of every function definition, cached per document."""
    key = f"_functions_{lang}"
    cached: list[tuple[str, str]] | None = doc.__dict__.get(key)
    if cached is not None:
        return cached
    code = doc.code_text
    out: list[tuple[str, str]] = []
    if lang == "go":
        out = [(m[0], m[1]) for m in _GO_FUNC.findall(code)] if "func" in code else []
    elif lang == "javascript":
        for fn_params, arrow_params, method, method_params in _JS_FUNC.findall(code):
            if method:
                if method not in _KEYWORDS:
                    out.append((method, method_params))
            else:
                out.append(("", fn_params or arrow_params))
    elif "(" in code:
        out = [(m[0], m[1]) for m in _C_FUNC.findall(code) if m[0] not in _KEYWORDS]
    doc.__dict__[key] = out
    return out


def _has_params(params: str) -> bool:
    params = params.strip()
    return bool(params) and params != "void"


def _has_variable(doc: Document, lang: str) -> bool:
    code = doc.code_text
    if any(_has_params(params) for _, params in _functions(doc, lang)):
        return True
    if lang == "go":
        return bool(_GO_DECL.search(code) or _ASSIGN.search(code))
    return bool(_ASSIGN.search(code) or _C_DECL.search(code))


def _register_family(lang: str, tag: str) -> None:
    def frac_lines_func(doc: Document) -> float:
        return ratio(len(_functions(doc, lang)), doc.num_code_lines)

    def cate_no_var(doc: Document) -> float:
        return 0.0 if _has_variable(doc, lang) else 1.0

    def score_no_logic(doc: Document) -> float:
        code = doc.code_text
        structure = (
            len(_functions(doc, lang))
            + len(_IMPORT_LINE[lang].findall(code))
            + len(_TYPE_LINE.findall(code))
            + (len(_TRIVIAL_RETURN.findall(code)) if "return" in code else 0)
        )
        return min(1.0, ratio(structure, doc.num_code_lines))

    def frac_lines_print(doc: Document) -> float:
        code = doc.code_text
        if not any(hint in code for hint in _OUTPUT_HINTS[lang]):
            return 0.0
        return ratio(len(_OUTPUT[lang].findall(code)), doc.num_code_lines)

    docs: dict[str, tuple[Callable[[Document], float], str]] = {
        "frac_lines_func": (frac_lines_func, "Function definitions over code lines."),
        "cate_no_var": (
            cate_no_var,
            "1 when there is no variable: no assignment, declaration or function parameter.",
        ),
        "score_no_logic": (
            score_no_logic,
            "(functions + imports/includes + type declarations + trivial returns) / code lines.",
        ),
        "frac_lines_print": (frac_lines_print, f"Lines with {_OUTPUT[lang].pattern!r} calls."),
    }
    for suffix, (fn, text) in docs.items():
        fn.__doc__ = text
        fn.__name__ = f"{tag}_{suffix}"
        signal(f"{tag}_{suffix}")(fn)


for _lang, _tag in (
    ("c", "c"),
    ("cpp", "cpp"),
    ("csharp", "cs"),
    ("java", "java"),
    ("go", "go"),
    ("javascript", "js"),
):
    _register_family(_lang, _tag)


# ---- C / C++ specifics -------------------------------------------------------------------

_MAIN = re.compile(r"\bmain[ \t]*\([^(){};]*\)[ \t\n]*\{")
_PREPROCESSOR = re.compile(r"^[ \t]*#", re.M)
_GOTO = re.compile(r"\bgoto[ \t]+\w+[ \t]*;")
_HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".h++", ".inc", ".inl", ".tcc")


@signal("c_num_main")
def c_num_main(doc: Document) -> float:
    """Number of ``main(...) {`` definitions (more than one: a concatenation of programs)."""
    code = doc.code_text
    return float(len(_MAIN.findall(code))) if "main" in code else 0.0


@signal("c_frac_lines_preprocessor")
def c_frac_lines_preprocessor(doc: Document) -> float:
    """Preprocessor directive lines over code lines; 0 for header files (exempt)."""
    if doc.path.lower().endswith(_HEADER_SUFFIXES):
        return 0.0
    return ratio(len(_PREPROCESSOR.findall(doc.code_text)), doc.num_code_lines)


@signal("c_frac_lines_goto")
def c_frac_lines_goto(doc: Document) -> float:
    """``goto label;`` statements over code lines."""
    code = doc.code_text
    return ratio(len(_GOTO.findall(code)), doc.num_code_lines) if "goto" in code else 0.0


# ---- Go specifics -----------------------------------------------------------------------


@signal("go_cate_test_file")
def go_cate_test_file(doc: Document) -> float:
    """1 for ``*_test.go`` files (upstream drops 80% of them)."""
    return 1.0 if doc.path.endswith("_test.go") else 0.0
