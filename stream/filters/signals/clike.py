"""Signals of the C family (C, C++, C#, Java, Go; JavaScript's output lines): line patterns.

These languages have no parser here, so function definitions, declarations and output calls
are recognised by patterns on the code text (comments removed). The patterns cannot
backtrack quadratically: scans are bounded by a line, a statement or a fixed window.

- *functions*: C and C++ as OpenCoder's pattern finds them (:func:`_c_functions`: type words,
  the name directly followed by ``(``, across lines; prototypes count), without its macro and
  statement quirks; C#, Java: lines that look like ``type name(params) [qualifiers] [{]``
  with a name that is not a control keyword; Go: ``func`` lines;
- *variables*: an assignment (``=`` that is not a comparison; Go ``:=``), a declaration
  (``int x;``, ``var x``) or a function with parameters. Upstream's Go and C# rule compared a
  list with 0 and never fired; here both are ordinary booleans;
- *no-logic score*: C and C++: OpenCoder's terms (functions, includes, bare scalar
  declarations, simple returns, class headers); the others: functions + import/using/package
  lines + type declarations + trivial returns; over code lines.

JavaScript's structure signals (functions, variables, no-logic) are OpenCoder's esprima-tree
terms counted on tree-sitter's tree, in :mod:`.javascript`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals.registry import ratio, signal

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
# Go: parameters up to the first ")" across lines, as upstream (a parameter list over several
# lines is one function); the receiver and type parameters as Go writes them.
#: OpenCoder's Go function: ``func``, an optional receiver written ``(name Type)`` or
#: ``(name *Type)``, the name, then its parameters. As upstream, a method whose receiver has no
#: name (``func (T) M()``) or a generic type, and a generic function (``func F[T any]()``), do
#: not match (not listed as a defect in the spec: upstream's code is the authority).
_GO_FUNC_HEAD = re.compile(r"^func\s+(?:\(\s*\w+\s+\*?\w+\s*\))?\s*(\w+)\s*\(", re.M)


def _go_functions(code: str) -> list[tuple[str, str]]:
    """(name, parameter text) of the Go functions upstream's pattern finds: the parameters
    run to the next ``)``, across lines. Linear time: once no ``)`` follows a head, none
    follows a later one (a regex's ``[^)]*`` would rescan the rest of the text from each)."""
    out: list[tuple[str, str]] = []
    pos = 0
    while (m := _GO_FUNC_HEAD.search(code, pos)) is not None:
        close = code.find(")", m.end())
        if close < 0:
            break
        out.append((m.group(1), code[m.end() : close]))
        pos = close + 1
    return out


# Java and C#: OpenCoder's method patterns: at a line start, modifiers, a one-word return type
# (not an access modifier, "if" or "else"), the name, the parameters up to the first ")"
# across lines. Declarations without a body (interfaces, abstract and extern methods) count;
# constructors and generic return types (List<T> f()) do not, as upstream. Its statement
# quirks are left out (see _STATEMENT_WORDS): return f(x), new T(x), await f().
_JAVA_FUNC = re.compile(
    r"^[ \t]*(?:(?:public|protected|private|static)\s+)*"
    r"(?!public|private|protected|else|if)(?:<\w+>[ \t]*)?(\w+)\s+(\w+)\s*\(([^)]*)\)",
    re.M,
)
_CS_FUNC = re.compile(
    r"^[ \t]*(?:(?:public|protected|private|internal)\s+)?"
    r"(?:(?:static|virtual|override|abstract|async)\s+)?"
    r"(?!public|private|protected|if|else)(?:<\w+>[ \t]*)?(\w+)\s+(\w+)\s*\(([^)]*)\)",
    re.M,
)
#: Words that make ``word name(...)`` a statement in Java and C#.
_STATEMENT_WORDS = frozenset(
    ["return", "new", "await", "throw", "case", "yield", "goto", "do", "else", "using", "in",
     "is", "as", "out", "ref", "var", "typeof", "sizeof", "nameof", "default"]
)  # fmt: skip

# OpenCoder's no-logic terms of Java, C# and Go besides functions: import/using lines,
# declarations without a value, trivial returns (Java's pattern as upstream; C# and Go count
# every return upstream, here the trivial ones as in every other language: a deviation row)
# and class / struct / interface declarations.
_NO_LOGIC_TERMS: dict[str, tuple[re.Pattern[str], ...]] = {
    "java": (
        re.compile(r"^[ \t]*import\s+[\w.*]+\s*;[ \t]*$", re.M),
        re.compile(
            r"^[ \t]*(?:(?:public|protected|private|final|static)\s+)*"
            r"(?:int|float|boolean|char|double|String|[A-Z][\w<>]*)\s+\w+\s*;",
            re.M,
        ),
        re.compile(r'^[ \t]*return(?:;|\s+(?:\w*|"[^"\\\n]*(?:\\.[^"\\\n]*)*")\s*;[ \t]*)$', re.M),
        re.compile(
            r"^[ \t]*(?:(?:public|protected|private)\s+)?(?:(?:final|abstract)\s+)?class\s+[\w<>]+",
            re.M,
        ),
    ),
    "csharp": (
        re.compile(r"^[ \t]*using\s+[\w.]+\s*;", re.M),
        re.compile(
            r"\b(?:int|float|double|char|string|bool|byte|sbyte|short|ushort|uint|long|ulong|"
            r"decimal)\s+\w+\s*;"
        ),
        re.compile(r'^[ \t]*return(?:\s+(?:\w+|"[^"\\\n]*(?:\\.[^"\\\n]*)*"))?\s*;', re.M),
        re.compile(
            r"\b(?:(?:public|private|protected|internal|static|abstract|sealed)[ \t]+)?class\s+\w+"
        ),
    ),
    "go": (
        # upstream's import lines: ``import "pkg"`` and the ``import (`` line of a block (its
        # loop resets the in-block flag on every line, so the packages of a block do not
        # count; not a listed defect, so codekiln counts as upstream does). Upstream reads
        # stripped lines: the indentation stops at a line break (a "\s*" there would rescan a
        # run of blank lines from each of them)
        re.compile(r'^[^\S\n]*(?:import[ \t]+"[^"\n]+"|import \()[^\S\n]*$', re.M),
        re.compile(r"^[ \t]*var\s+\w+\s+\w+\s*;?[ \t]*$", re.M),
        re.compile(r"^[ \t]*return(?:[ \t]+(?:\w+|\"[^\"\\\n]*\"|`[^`]*`))?[ \t]*;?[ \t]*$", re.M),
        re.compile(r"^[ \t]*type\s+\w+\s+(?:struct|interface)\s*\{", re.M),
    ),
}
#: OpenCoder's output lines: code lines containing the call's name.
_PRINT_SUBSTRING = {"java": "System.out.print", "csharp": "Console.WriteLine", "go": "fmt.Print"}
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


#: A name directly followed by ``(`` (OpenCoder's pattern allows no space between them).
# (only after a blank or "*": a name right after "(", "=", "," or "." has no type word
# before it, so the regex engine skips those calls without a Python step each)
_C_CALL = re.compile(r"(?<=[\s*])([A-Za-z_]\w*)\(")
#: What may separate the last type word from the name: OpenCoder's ``\s*(?:\*+)?\s+`` after a
#: type word, then ``\*?\s*`` before the name (so ``char *f(``, ``char * f(`` and ``char* f(``
#: are declarations, ``char*f(`` and ``char **f(`` are not).
_C_SEPARATOR = re.compile(r"\s*\**\s+\*?\s*")
_C_SEPARATOR_CHARS = frozenset(" \t\n\r\f\v*")
#: Longest separator looked at (a longer run of blanks between type and name is not one).
_C_SEPARATOR_MAX = 256
#: Words that make ``word name(...)`` a statement, not a declaration (upstream counts
#: ``return f(x)``, ``else g(x)``, ``new T(x)``: a deviation row).
_C_STATEMENT_WORDS = frozenset(
    ["return", "else", "case", "new", "delete", "throw", "goto", "sizeof", "do", "co_return",
     "co_yield", "co_await", "typeof", "alignof", "decltype"]
)  # fmt: skip


#: A conditional directive, whose ``defined(X)`` upstream counts as a function (and so does
#: codekiln, for fidelity: row c-function-quirks).
_C_IF = re.compile(r"#[ \t]*(?:el)?if[ \t]")


def _c_functions(code: str) -> list[tuple[str, str]]:
    """(name, parameter text) of C/C++ function declarations and definitions, as OpenCoder
    finds them: one or more type words, the name directly followed by ``(``, the parameters up
    to the first ``)`` (across lines; prototypes and one-line definitions count), matches not
    overlapping. Unlike upstream, a match whose name is a keyword (``else if(x)``), whose last
    type word is a statement keyword (``return f(x)``) or that lies on a preprocessor line
    (``#define F(x)``, ``#pragma pack(1)``) is not a function (it still consumes its text, so
    the matches after it are upstream's). As upstream, ``#if defined(X)`` and
    ``#elif defined(X)`` count (a quirk kept for fidelity: it decides the function share of
    many small headers). Linear time: each candidate looks back over at most
    :data:`_C_SEPARATOR_MAX` characters and forward to the next ``)``."""
    out: list[tuple[str, str]] = []
    end = 0
    for m in _C_CALL.finditer(code):
        start = m.start()
        if start < end:
            continue
        # The separator: blanks and stars right before the name.
        i = start
        floor = max(end, start - _C_SEPARATOR_MAX)
        while i > floor and code[i - 1] in _C_SEPARATOR_CHARS:
            i -= 1
        if i == start or not _C_SEPARATOR.fullmatch(code, i, start):
            continue
        # The type word right before it: a whole identifier.
        j = i
        while j > end and (code[j - 1].isalnum() or code[j - 1] == "_"):
            j -= 1
        if j == i or not (code[j].isalpha() or code[j] == "_") or not code[j].isascii():
            continue
        if j > 0 and (code[j - 1].isalnum() or code[j - 1] == "_"):
            continue  # the word runs on before the previous match's end
        close = code.find(")", m.end())
        if close < 0:
            break
        end = close + 1
        name = m.group(1)
        if (name in _KEYWORDS and name != "defined") or code[j:i] in _C_STATEMENT_WORDS:
            continue
        line_start = code.rfind("\n", 0, start) + 1
        before = code[line_start:start].lstrip()
        if before.startswith("#") and not (name == "defined" and _C_IF.match(before)):
            continue
        out.append((name, code[m.end() : close]))
    return out


# OpenCoder's C/C++ no-logic terms, on the code text (patterns as upstream's, with ``^\s*``
# written ``^[^\S\n]*`` and scans bounded by a line or a statement, so that each match is
# linear; the counts are the same).
_C_NO_LOGIC = re.compile(
    r"^[^\S\n]*(?:"
    r"\#\s*include\s+[\"<][^\">\n]+[\">]"  # includes
    r"|(?:unsigned\s+)?(?:int|float|double|char|bool|std::string|auto)\s+\w+\s*;"  # int x;
    r"|return\s*(?:(?:\w+|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')\s*)?;[^\S\n]*$"
    r"|class\s+\w+\s*(?::[^{;]{0,512})?\{"  # class X [: bases] { (bounded: linear)
    r")",
    re.M,
)  # fmt: skip
#: OpenCoder's output lines: any code line containing the substring (so ``fprintf`` and
#: ``snprintf`` count, ``puts`` does not).
_C_PRINT = {
    "c": re.compile(r"^.*printf.*$", re.M),
    "cpp": re.compile(r"^.*(?:printf|cout).*$", re.M),
}


def _functions(doc: Document, lang: str, statements: bool = False) -> list[tuple[str, str]]:
    """(name, parameter text) of every function definition, cached per document.
    ``statements`` (Java and C#, for ``reproduce``): as upstream's patterns, keep the matches
    that are statements (``return f(x)``, ``new T(x)``) or whose name is a keyword."""
    key = f"_functions_{lang}{'_statements' if statements else ''}"
    cached: list[tuple[str, str]] | None = doc.__dict__.get(key)
    if cached is not None:
        return cached
    code = doc.code_text
    out: list[tuple[str, str]] = []
    if lang == "go":
        out = _go_functions(code) if "func" in code else []
    elif lang == "javascript":
        for fn_params, arrow_params, method, method_params in _JS_FUNC.findall(code):
            if method:
                if method not in _KEYWORDS:
                    out.append((method, method_params))
            else:
                out.append(("", fn_params or arrow_params))
    elif lang in ("c", "cpp"):
        out = _c_functions(code) if "(" in code else []
    elif lang in ("java", "csharp"):
        pattern = _JAVA_FUNC if lang == "java" else _CS_FUNC
        out = [
            (name, params)
            for kind, name, params in pattern.findall(code)
            if statements or (kind not in _STATEMENT_WORDS and name not in _KEYWORDS)
        ] if "(" in code else []  # fmt: skip
    elif "(" in code:
        out = [(m[0], m[1]) for m in _C_FUNC.findall(code) if m[0] not in _KEYWORDS]
    doc.__dict__[key] = out
    return out


def _has_params(params: str) -> bool:
    params = params.strip()
    return bool(params) and params != "void"


#: OpenCoder's C/C++ variable declaration, ``type [type] [*]name[, [*]name...] [= ...];``,
#: as two searches: without an initialiser, and up to the ``=`` of one (whose value runs to
#: the next ``;``, so it only needs a ``;`` somewhere after). The name list is bounded so that
#: a long comma list cannot be rescanned from each of its words. Whitespace around the optional
#: stars has one way to match ("\s+\**\s*" as "\s+(?:\*+\s*)?", the same text): with two
#: runs of blanks each list item could split its indentation several ways, and a failing
#: search tried every split of every item (a 6 kB table of "5ul," lines ran for minutes).
_C_NAMES = r"\b\w+\s+(?:\*+\s*)?[\w\[\]]+\s*(?:,\s*(?:\*+\s*)?[\w\[\]]+\s*){0,64}"
_C_DECLARATION = re.compile(_C_NAMES + ";")
_C_DECLARATION_INIT = re.compile(_C_NAMES + "=")


#: OpenCoder's Java variable declaration, at a line start: modifiers, a primitive, ``String``
#: or capitalised type (``List<T>``; not ``long``, ``int[]``, ``Map<K, V>`` or ``var``), a
#: name, and ``;`` or ``= value;``. Upstream's leading ``\s*`` may span blank lines; a match
#: that does also starts at the last line start before its type, so the indentation here stops
#: at a line break (no rescan of a run of blank lines from each of them). As with C, two
#: searches: the ``=`` form up to its ``=`` (the value runs to the next ``;``, which then only
#: has to exist), so that a text without a ``;`` is not rescanned to its end from every line.
_JAVA_NAMES = (
    r"^[^\S\n]*(?:(?:public|protected|private|final|static)\s+)*"
    r"(?:int|float|boolean|char|double|String|[A-Z][\w<>]*)\s+\w+\s*"
)
_JAVA_DECLARATION = re.compile(_JAVA_NAMES + ";", re.M)
_JAVA_DECLARATION_INIT = re.compile(_JAVA_NAMES + "=", re.M)


def _java_has_variable(code: str) -> bool:
    if _JAVA_DECLARATION.search(code):
        return True
    for m in _JAVA_DECLARATION_INIT.finditer(code):
        semicolon = code.find(";", m.end())
        if semicolon < 0:
            return False  # no later "=" has a ";" after it either
        if semicolon > m.end():  # a value of one character or more before it
            return True
    return False


#: A C# field or property of any type: ``Type name;``, ``Type name = ...``, ``Type name { get``
#: (``set``, ``init``), the type dotted (at most 8 parts), generic, an array or nullable; a
#: statement keyword is no type (``return x;``, ``using X;``).
_CS_MEMBER = re.compile(
    r"\b(?!(?:return|throw|yield|await|goto|using|namespace|else|case|new|in|is|as|out|ref)\b)"
    r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*){0,8}(?:<[^;{}()\n]{0,256}>)?(?:\[[ \t,]*\])*\??[ \t]+"
    r"[A-Za-z_]\w*[ \t]*(?:;|=(?![=>])|\{[ \t]*(?:(?:public|private|protected|internal)[ \t]+)?"
    r"(?:get|set|init)\b)"
)


def _has_variable(doc: Document, lang: str) -> bool:
    code = doc.code_text
    if lang == "java":
        return _java_has_variable(code)
    if lang == "csharp" and _CS_MEMBER.search(code):
        return True
    if lang in ("c", "cpp"):
        if _C_DECLARATION.search(code):
            return True
        first = _C_DECLARATION_INIT.search(code)
        return first is not None and code.find(";", first.end()) >= 0
    if any(_has_params(params) for _, params in _functions(doc, lang)):
        return True
    if lang == "go":
        return bool(_GO_DECL.search(code) or _ASSIGN.search(code))
    return bool(_ASSIGN.search(code) or _C_DECL.search(code))


def _terms_no_logic(doc: Document, lang: str, statements: bool) -> float:
    """Java, C# and Go: (functions + upstream's other no-logic terms) / code lines."""
    terms = len(_functions(doc, lang, statements))
    terms += sum(len(pattern.findall(doc.code_text)) for pattern in _NO_LOGIC_TERMS[lang])
    return ratio(terms, doc.num_code_lines)


def _register_statement_functions(lang: str, tag: str) -> None:
    """Java's and C#'s function ratio and no-logic score with statements counted as methods,
    as upstream's patterns count them (for ``reproduce``: row statement-functions)."""

    def frac_lines_func(doc: Document) -> float:
        return ratio(len(_functions(doc, lang, statements=True)), doc.num_code_lines)

    def score_no_logic(doc: Document) -> float:
        return _terms_no_logic(doc, lang, statements=True)

    for suffix, fn, text in (
        ("frac_lines_func", frac_lines_func, "Function definitions over code lines"),
        ("score_no_logic", score_no_logic, "(functions + imports + declarations + trivial "
         "returns + classes) / code lines"),
    ):  # fmt: skip
        fn.__doc__ = (
            f"{text}, counting statements that upstream's pattern takes for methods "
            "(``return f(x)``, ``new T(x)``; for ``reproduce``)."
        )
        fn.__name__ = f"{tag}_{suffix}_statements"
        signal(f"{tag}_{suffix}_statements")(fn)


def _register_family(lang: str, tag: str, only: tuple[str, ...] = ()) -> None:
    def frac_lines_func(doc: Document) -> float:
        return ratio(len(_functions(doc, lang)), doc.num_code_lines)

    def cate_no_var(doc: Document) -> float:
        return 0.0 if _has_variable(doc, lang) else 1.0

    def score_no_logic(doc: Document) -> float:
        code = doc.code_text
        if lang in _C_PRINT:
            terms = len(_functions(doc, lang)) + len(_C_NO_LOGIC.findall(code))
            return min(1.0, ratio(terms, doc.num_code_lines))
        if lang in _NO_LOGIC_TERMS:
            return _terms_no_logic(doc, lang, statements=False)
        structure = (
            len(_functions(doc, lang))
            + len(_IMPORT_LINE[lang].findall(code))
            + len(_TYPE_LINE.findall(code))
            + (len(_TRIVIAL_RETURN.findall(code)) if "return" in code else 0)
        )
        return min(1.0, ratio(structure, doc.num_code_lines))

    def frac_lines_print(doc: Document) -> float:
        code = doc.code_text
        if lang in _C_PRINT:
            if "printf" not in code and (lang == "c" or "cout" not in code):
                return 0.0
            return ratio(len(_C_PRINT[lang].findall(code)), doc.num_code_lines)
        if lang in _PRINT_SUBSTRING:
            name = _PRINT_SUBSTRING[lang]
            if name not in code:
                return 0.0
            return ratio(sum(1 for line in code.split("\n") if name in line), doc.num_code_lines)
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
        if only and suffix not in only:
            continue
        fn.__doc__ = text
        fn.__name__ = f"{tag}_{suffix}"
        signal(f"{tag}_{suffix}")(fn)


for _lang, _tag in (
    ("c", "c"),
    ("cpp", "cpp"),
    ("csharp", "cs"),
    ("java", "java"),
    ("go", "go"),
):
    _register_family(_lang, _tag)
# JavaScript's structure signals are OpenCoder's tree terms (module javascript); its output
# lines are a line pattern like the others'.
_register_family("javascript", "js", only=("frac_lines_print",))
_register_statement_functions("java", "java")
_register_statement_functions("csharp", "cs")


# ---- C / C++ specifics -------------------------------------------------------------------

_MAIN = re.compile(r"\bmain[ \t]*\([^(){};]*\)[ \t\n]*\{")
#: Code lines holding a directive, anywhere in the line as upstream looks for one (a line
#: comment's removal can join ``#endif`` to the line before). Upstream also counts every line
#: containing "struct" or "using" (a deviation row).
_PREPROCESSOR = re.compile(
    r"^[^\n]*#[^\S\n]*(?:include|define|if|else|elif|endif|error|pragma|warning|undef|line)",
    re.M,
)
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


#: Upstream's directive search (anywhere in a line, "#" then blanks then the word) and its
#: header extensions, for :func:`c_frac_lines_preprocessor_substring`.
_DIRECTIVE_ANYWHERE = re.compile(
    r"#\s*(?:include|define|if|else|elif|endif|error|pragma|warning|undef|line)"
)
_UPSTREAM_HEADERS = ("h", "hpp", "hxx", "hh", "h++")


@signal("c_frac_lines_preprocessor_substring")
def c_frac_lines_preprocessor_substring(doc: Document) -> float:
    """Upstream's preprocessor share (for ``reproduce``): code lines holding a directive or the
    substring "struct" or "using" anywhere (``struct point {``, "causing"), over code lines; 0
    for files whose extension is exactly h, hpp, hxx, hh or h++."""
    name = doc.path.rsplit("/", 1)[-1]
    if "." in name and name.rsplit(".", 1)[1] in _UPSTREAM_HEADERS:
        return 0.0
    hits = sum(
        1
        for line in doc.code_lines
        if "struct" in line or "using" in line or ("#" in line and _DIRECTIVE_ANYWHERE.search(line))
    )
    return ratio(hits, doc.num_code_lines)


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
