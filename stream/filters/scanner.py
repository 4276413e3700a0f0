"""Comments and string literals of source text: one scanner per syntax family.

The comment syntax of a language comes from its family (:data:`COMMENT_FAMILY`); one
left-to-right pass of the family's scanner (:func:`scan`) finds comments and string literals
together, so a ``//`` inside a string is not a comment and vice versa. The rules follow the
pygments lexers OpenCoder's reference removes comments with (see docs/stream-stage2.md); the
:class:`~codekiln.stream.filters.document.Document` caches the result (and uses the C
extension's Python scanner, which gives the same split, when it is built).
"""

from __future__ import annotations

import re
from itertools import accumulate

# Language (Linguist name, lower-cased) -> comment/string syntax family.
_C_FAMILY = (
    "c",
    "c++",
    "c#",
    "java",
    "javascript",
    "typescript",
    "tsx",
    "jsx",
    "go",
    "rust",
    "kotlin",
    "swift",
    "scala",
    "dart",
    "objective-c",
    "objective-c++",
    "php",
    "groovy",
    "css",
    "scss",
    "less",
    "cuda",
    "glsl",
    "hlsl",
    "protocol buffer",
    "d",
    "zig",
    "solidity",
    "verilog",
    "systemverilog",
    "apex",
    "haxe",
    "vala",
    "json5",
    "jsonc",
)
_HASH_FAMILY = (
    "shell",
    "bash",
    "zsh",
    "powershell",
    "ruby",
    "r",
    "yaml",
    "toml",
    "makefile",
    "dockerfile",
    "cmake",
    "nix",
    "tcl",
    "awk",
    "elixir",
    "crystal",
    "julia",
    "nim",
    "coffeescript",
    "ini",
    "gnuplot",
    "starlark",
    "hcl",
    "graphql",
)
_DASH_FAMILY = ("sql", "plsql", "tsql", "plpgsql", "lua", "haskell", "elm", "ada", "vhdl")
_MARKUP_FAMILY = ("html", "xml", "svg", "vue", "xslt", "html+erb", "html+php")
COMMENT_FAMILY: dict[str, str] = {
    **dict.fromkeys(_C_FAMILY, "c"),
    **dict.fromkeys(_HASH_FAMILY, "hash"),
    **dict.fromkeys(_DASH_FAMILY, "dash"),
    **dict.fromkeys(_MARKUP_FAMILY, "markup"),
    # C and C++ line comments take their line break with them, as upstream's lexer (pygments)
    # removes it: ``a; // x`` and the next line are one code line.
    **dict.fromkeys(("c", "c++"), "clang"),
    # C#, Rust and Scala: the C-family syntax, and their pygments lexers too take a line
    # comment's line break with it (``a; // x`` and the next line are one code line).
    **dict.fromkeys(("c#", "rust", "scala"), "cbreak"),
    # JavaScript: regex literals and a leading #! line, as pygments' JavaScript lexer.
    **dict.fromkeys(("javascript", "jsx"), "js"),
    # HTML: comments outside scripts and styles; a script's JavaScript comments (see _scan_html).
    "html": "html",
    "python": "python",
    "cython": "python",
    "starlark": "python",
    "perl": "perl",
}  # fmt: skip

# One scanner per family: comments and string literals in a single left-to-right pass, as
# ``split`` on one capturing group (pieces of code and matches alternate, all built in C).
# Every alternative starts with a literal character so that the regex engine can skip straight
# to candidate positions (a leading class, group or look-behind makes it try every position:
# 4x slower), and none can backtrack quadratically: unterminated block comments and strings run
# to the end of the text (or line) instead of being retried at each position. A match is told
# apart by its first character (:data:`_COMMENT_STARTS`).
_DQ = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
_SQ = r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'?"
_BLOCK = r"/\*[^*]*(?:\*(?!/)[^*]*)*(?:\*/)?"
_TDQ = r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:""")?'
_TSQ = r"'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:''')?"
#: Perl comments are whole lines, as upstream reads them (a ``#`` in Perl is as often a regex
#: delimiter, ``$#array`` or heredoc text as a comment): a line whose first non-blank
#: character is ``#``; a POD block, from a line starting (first column) with ``=`` and a
#: letter through the ``=cut`` line or the end; a stray ``=cut`` line. Line breaks included.
_PERL_COMMENTS = re.compile(
    r"(^[^\S\n]*#[^\n]*\n?"
    r"|^=(?!cut\b)[A-Za-z][^\n]*(?:\n(?!=cut\b)[^\n]*)*(?:\n=cut\b[^\n]*)?\n?"
    r"|^=cut\b[^\n]*\n?)",
    re.M,
)
#: The rest of a JavaScript regex literal after its ``/`` (a class may hold ``/``): pygments'
#: pattern, written linear. A class holds at most 256 characters and no "[" (possessive): a
#: class may hold "/", so an unclosed one would otherwise be rescanned to the line's end from
#: every later "/" (quadratic on one long line).
_JS_REGEX_BODY = (
    r"(?![*/])[^\[/\\\n]*(?:(?:\\.|\[(?:[^][\\\n]|\\.){0,256}+\])[^\[/\\\n]*)*/[A-Za-z]*"
)
#: Keywords after which pygments expects a regex literal, not a division.
_JS_REGEX_KEYWORDS = ("return", "typeof", "instanceof", "in", "of", "new", "delete", "void",
                      "throw", "case", "do", "else", "yield", "await", "export")  # fmt: skip
#: What may precede a regex literal's ``/``: an operator or ``{([;,`` then 0-16 blanks, or a
#: keyword then 0-2 blanks.
_JS_REGEX_AFTER = "|".join(
    [rf"(?<=[-(,=:\[!&|?{{;+*%<>~^]\s{{{k}}}/)" for k in range(17)]
    + [
        rf"(?<=\b(?:{'|'.join(w for w in _JS_REGEX_KEYWORDS if len(w) == n)})\s{{{k}}}/)"
        for n in sorted({len(w) for w in _JS_REGEX_KEYWORDS})
        for k in range(3)
    ]
)
_SCANNERS: dict[str, re.Pattern[str]] = {
    "c": re.compile(
        rf'(//[^\n]*|{_BLOCK}|@"[^"]*(?:""[^"]*)*"?|`[^`\\]*(?:\\.[^`\\]*)*`?|{_DQ}|{_SQ})',
        re.S,
    ),
    # pygments' C lexer: a line comment runs to the first line break not escaped by a
    # backslash (and takes that line break with it: see _scan); no backtick or verbatim
    # strings.
    "clang": re.compile(rf"(//[^\n]*(?:(?<=\\)\n[^\n]*)*|{_BLOCK}|{_DQ}|{_SQ})", re.S),
    # JavaScript as pygments lexes it: a ``#!`` first line is a comment, and a regex literal
    # (``/.../flags`` where pygments expects one: after an operator, one of ``{([;,`` or a
    # keyword, and up to 16 blanks) is code, so that a quote, backtick or ``/*`` inside it
    # opens nothing. Its alternative starts with the literal ``/`` and looks back (fixed-width
    # look-behinds, one per blank count), which keeps the scan ~2.6x faster than matching the
    # character before it.
    "js": re.compile(
        rf"(\A#![^\n]*|//[^\n]*|{_BLOCK}|`[^`\\]*(?:\\.[^`\\]*)*`?|{_DQ}|{_SQ}"
        rf"|/(?:{_JS_REGEX_AFTER}){_JS_REGEX_BODY})",
        re.S,
    ),
    # A triple-quoted string that starts its line is a docstring, i.e. a comment: the scanned
    # text gets a leading newline so a docstring on the first line is found the same way. The
    # indentation is possessive (``*+``, never given back: a quote or prefix letter must
    # follow), which spares a retry per indentation column at every line start.
    "python": re.compile(
        rf"(#[^\n]*|\n[ \t]*+[rRuU]?(?:{_TDQ}|{_TSQ})|{_TDQ}|{_TSQ}|{_DQ}|{_SQ})", re.S
    ),
    # ``#`` not preceded by a word character, ``$`` or a backslash (shell ``$#``, ``\#``), nor
    # by ``${`` (shell's ``${#name}`` is a length, as pygments' Bash lexer reads it).
    "hash": re.compile(rf"(#(?<![\w$\\]#)(?<!\$\{{#)[^\n]*|{_DQ}|{_SQ})", re.S),
    # Perl: string literals of the code text (comments are whole lines, see _PERL_COMMENTS).
    "perl": re.compile(rf"({_DQ}|{_SQ})", re.S),
    "dash": re.compile(rf"(--[^\n]*|{_BLOCK}|'[^']*(?:''[^']*)*'?|{_DQ})", re.S),
    "markup": re.compile(r"(<!--[^-]*(?:-(?!->)[^-]*)*(?:-->)?)", re.S),
}
_SCANNERS["cbreak"] = _SCANNERS["c"]
#: Starts of the line comments other than ``#``.
_LINE_COMMENTS = ("//", "--")
#: Languages whose pygments lexer (what upstream removes comments with) does not count a line
#: comment's line break as comment: C family (those of C, C++, C#, Rust and Scala do), ``#``
#: family (shell, make and CMake do) and ``--`` family (SQL and Ada do).
_BREAK_AFTER_COMMENT_IS_CODE = frozenset(
    [
        *("java", "go", "typescript", "tsx", "kotlin", "swift"),
        *("ruby", "r", "yaml", "toml", "nix", "awk", "elixir", "julia", "nim", "coffeescript"),
        *("powershell", "lua", "haskell", "vhdl", "elm"),
    ]
)
_QUOTES = frozenset("\"'`@")
_INCLUDE_LINE = re.compile(r"[ \t]*#[ \t]*include[ \t]*[<\"]")
_COMMENT_STARTS: dict[str, str] = {
    "c": "/",
    "clang": "/",
    "cbreak": "/",
    "js": "/#",
    "python": "#\n",
    "hash": "#",
    "perl": "#\n",
    "dash": "-/",
    "markup": "<",
}


#: What pygments' HTML lexer reads in the text of an HTML page: a comment (``<!--`` to the
#: first ``-->``; one without its end is a declaration), the other ``<!``/``<?`` constructs,
#: and the start tag of a script or style element (its attributes up to ``>``), whose content
#: up to the closing tag is JavaScript or CSS, not HTML.
_HTML = re.compile(
    r"""(<!--.*?-->)|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<![^>]*>"""
    r"""|<\s*(script|style)(?:[^>"']|"[^"]*"|'[^']*')*>""",
    re.S | re.I,
)
_HTML_END = {
    "script": re.compile(r"<\s*/\s*script\s*>", re.I),
    "style": re.compile(r"<\s*/\s*style\s*>", re.I),
}


def _scan_html(text: str) -> tuple[str, list[str], list[str]]:
    """:func:`scan` for HTML, as pygments' HTML lexer splits a page: ``<!-- -->`` comments
    outside script and style elements; in a script, the JavaScript scanner's comments (a
    ``<!--`` there is code, as the JavaScript lexer leaves it); a style's CSS comments are not
    counted (the CSS lexer does not mark them as comments of a kind upstream removes). An
    element without its closing tag holds the rest of its line, as the lexer's fallback."""
    code: list[str] = []
    comments: list[str] = []
    strings: list[str] = []
    pos = 0
    for m in _HTML.finditer(text):
        if m.start() < pos:
            continue
        if m.group(1):  # a comment
            code.append(text[pos : m.start()])
            comments.append(m.group(1))
            pos = m.end()
            continue
        element = m.group(2)
        if element is None:  # a declaration, CDATA or processing instruction: markup
            continue
        end = _HTML_END[element.lower()].search(text, m.end())
        if end is not None:
            stop = end.start()
        else:
            newline = text.find("\n", m.end())
            stop = len(text) if newline < 0 else newline + 1
        code.append(text[pos : m.end()])
        content = text[m.end() : stop]
        if element.lower() == "script":
            content, found, _ = scan(content, "js")
            comments.extend(found)
        code.append(content)
        pos = stop
    code.append(text[pos:])
    return "".join(code), comments, strings


def lang_key(lang: str) -> str:
    """A language name as the tables here spell it (Linguist name, lower-cased)."""
    return lang.strip().lower()


def family_of(lang: str) -> str:
    """The comment/string syntax family of ``lang`` ("none" when it has none here)."""
    return COMMENT_FAMILY.get(lang_key(lang), "none")


def scan(text: str, family: str) -> tuple[str, list[str], list[str]]:
    """(code text, comment texts, string literals) from one pass of the family scanner.

    In the code text a comment is removed; a docstring leaves its line break. Code after a
    removed block comment joins the line before it: code lines are counted after removal.
    """
    if family == "html":
        return _scan_html(text)
    scanner = _SCANNERS.get(family)
    if scanner is None:
        return text, [], []
    python = family == "python"
    if family == "perl":
        pieces = _PERL_COMMENTS.split(text)
        code = "".join(pieces[0::2])
        return code, pieces[1::2], scanner.findall(code)
    parts = scanner.split("\n" + text if python else text)
    starts = _COMMENT_STARTS[family]
    comments: list[str] = []
    strings: list[str] = []
    # C/C++: where each part starts in the text (before removal), for the line breaks.
    offsets = list(accumulate(map(len, parts), initial=0)) if family in ("clang", "cbreak") else []
    regex = family == "js"  # a match starting with "/" may be a regex literal
    for i in range(1, len(parts), 2):
        match = parts[i]
        if match[0] in starts and (not regex or match[1] in "/*!"):
            comments.append(match)
            parts[i] = "\n" if match[0] == "\n" else ""
            if offsets and match[1] == "/" and parts[i + 1][:1] == "\n":
                # The line comment's line break goes too, except after an #include
                # (pygments' rule for an include line leaves it).
                line = text.rfind("\n", 0, offsets[i]) + 1
                if not _INCLUDE_LINE.match(text, line):
                    parts[i + 1] = parts[i + 1][1:]
        elif match[0] in _QUOTES:
            strings.append(match)
        # else: a JavaScript regex literal, code
    code = "".join(parts)
    return (code[1:] if python else code), comments, strings


def comment_chars(text: str, lang: str, family: str, comments: list[str]) -> int:
    """Characters of the ``comments`` :func:`scan` found in ``text``; a line comment's line
    break counts as its own (as the lexers of upstream see it), the line break before a
    docstring or POD block does not."""
    total = sum(map(len, comments))
    if family == "perl":  # whole lines, their breaks included
        return total
    if family in ("js", "html") or lang_key(lang) in _BREAK_AFTER_COMMENT_IS_CODE:
        return total  # their pygments lexers leave a line comment's break as code
    for comment in comments:
        if comment[0] == "\n":
            total -= 1
        elif comment[0] == "#" or comment[:2] in _LINE_COMMENTS:
            total += 1
    last = comments[-1] if comments else ""
    if last and last[0] != "\n" and "\n" not in last and text.endswith(last):
        total -= 1  # the text ends with the line comment: no line break follows it
    return total
