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
    "scss",
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
    "json",
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
    "nix",
    "tcl",
    "awk",
    "elixir",
    "crystal",
    "julia",
    "nim",
    "coffeescript",
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
    **dict.fromkeys(("rust", "scala"), "cbreak"),
    # C#: the same, and a preprocessor directive runs to its line's end as code, a "//" in it
    # included (``#pragma warning disable X // why``), as pygments' C# lexer reads it.
    "c#": "csharp",
    # JavaScript: regex literals and a leading #! line, as pygments' JavaScript lexer.
    **dict.fromkeys(("javascript", "jsx"), "js"),
    # HTML: comments outside scripts and styles; a script's JavaScript comments (see _scan_html).
    "html": "html",
    # Shell: pygments' Bash lexer's strings, here-documents and comments (see _scan_shell).
    "shell": "shell",
    "python": "python",
    "cython": "python",
    "starlark": "python",
    "perl": "perl",
    # Ruby, Crystal, CoffeeScript, Elixir: "#{" is string interpolation (in a heredoc or a
    # %-literal the scanner does not follow), not a comment.
    **dict.fromkeys(("ruby", "crystal", "coffeescript", "elixir"), "hashi"),
    # CSS, Less, CMake, Dockerfile: pygments' lexers give their comments a token type upstream
    # does not read as comment (Comment, not Comment.Multiline or .Single): comments are code;
    # strings only.
    **dict.fromkeys(("css", "less", "cmake", "dockerfile"), "strings"),
    # Makefile: only the comments pygments' Makefile lexer hands to its Bash lexer (in recipe
    # and other indented lines, and in a variable's value) are comments, see _scan_make.
    "makefile": "make",
    # INI: ";" and "#" start a comment anywhere outside a section header (a value ends there).
    "ini": "ini",
    # Lua: long brackets (--[[ ]] comments, [[ ]] strings), see _scan_lua.
    "lua": "lua",
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
#: The C family's comments and literals (verbatim ``@"..."`` and backtick strings included).
_C_ALTERNATIVES = rf'//[^\n]*|{_BLOCK}|@"[^"]*(?:""[^"]*)*"?|`[^`\\]*(?:\\.[^`\\]*)*`?|{_DQ}|{_SQ}'
_SCANNERS: dict[str, re.Pattern[str]] = {
    "c": re.compile(f"({_C_ALTERNATIVES})", re.S),
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
#: (a comment is matched so that a quote inside it opens nothing, and kept as code)
_SCANNERS["strings"] = re.compile(rf"({_BLOCK}|{_DQ}|{_SQ})", re.S)
_SCANNERS["ini"] = re.compile(rf"(\[[^\]\n]*\]|[;#][^\n]*|{_DQ}|{_SQ})")
_SCANNERS["hashi"] = re.compile(rf"(#(?<![\w$\\]#)(?!\{{)[^\n]*|{_DQ}|{_SQ})", re.S)
#: pygments' C# directives (``#`` need not start the line there; in C# it can only).
_CS_DIRECTIVE = (
    r"#[ \t]*(?:if|endif|else|elif|define|undef|line|error|warning|region|endregion|pragma)"
    r"\b[^\n]*"
)
_SCANNERS["csharp"] = re.compile(f"({_CS_DIRECTIVE}|{_C_ALTERNATIVES})", re.S)
#: Starts of the line comments other than ``#``.
_LINE_COMMENTS = ("//", "--")
#: Languages whose pygments lexer (what upstream removes comments with) does not count a line
#: comment's line break as comment: C family (those of C, C++, C#, Rust and Scala do), ``#``
#: family (shell, make and CMake do) and ``--`` family (SQL and Ada do).
_BREAK_AFTER_COMMENT_IS_CODE = frozenset(
    [
        *("java", "go", "typescript", "tsx", "kotlin", "swift"),
        *("ruby", "r", "yaml", "toml", "nix", "awk", "elixir", "julia", "nim", "coffeescript"),
        *("powershell", "lua", "haskell", "vhdl", "elm", "ini"),
    ]
)
_QUOTES = frozenset("\"'`@")
_INCLUDE_LINE = re.compile(r"[ \t]*#[ \t]*include[ \t]*[<\"]")
_COMMENT_STARTS: dict[str, str] = {
    "c": "/",
    "clang": "/",
    "cbreak": "/",
    "csharp": "/",
    "js": "/#",
    "python": "#\n",
    "hash": "#",
    "hashi": "#",
    "strings": "",
    "ini": ";#",
    "perl": "#\n",
    "dash": "-/",
    "markup": "<",
}


#: Where pygments' HTML lexer (upstream's for HTML) may read something other than text: a
#: comment (group 1), CDATA (2), a processing instruction (3), a declaration (4), or the start
#: tag of a script or style element (5), whose content up to its closing tag is JavaScript or
#: CSS, not HTML.
_HTML_HEAD = re.compile(r"<(?:(!--)|(!\[CDATA\[)|(\?)|(!)|\s*(script|style))", re.I)
#: What closes the constructs of groups 1 to 3.
_HTML_CLOSE = {1: "-->", 2: "]]>", 3: "?>"}
_HTML_END = {
    "script": re.compile(r"<\s*/\s*script\s*>", re.I),
    "style": re.compile(r"<\s*/\s*style\s*>", re.I),
}


class _Finder:
    """``text.find`` for a string or a pattern that remembers where a search failed: a later
    search from there on is answered without reading the text again (a construct left open
    thousands of times costs one search, not one per construct)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.missing: dict[str, int] = {}  # needle -> a start from which it does not occur

    def find(self, needle: str | re.Pattern[str], start: int) -> tuple[int, int]:
        """(start, end) of the first ``needle`` at or after ``start``; (-1, -1) if none."""
        key = needle if isinstance(needle, str) else needle.pattern
        if start >= self.missing.get(key, len(self.text) + 1):
            return -1, -1
        if isinstance(needle, str):
            at = self.text.find(needle, start)
            if at >= 0:
                return at, at + len(needle)
        elif (m := needle.search(self.text, start)) is not None:
            return m.span()
        self.missing[key] = start
        return -1, -1


def _scan_html(text: str) -> tuple[str, list[str], list[str]]:
    """:func:`scan` for HTML, as pygments' HTML lexer splits a page: ``<!-- -->`` comments
    outside script and style elements; in a script, the JavaScript scanner's comments (a
    ``<!--`` there is code, as the JavaScript lexer leaves it); a style's CSS comments are not
    counted (the CSS lexer does not mark them as comments of a kind upstream removes). A
    ``<!--`` without its ``-->`` is a declaration up to the next ``>``; an element without its
    closing tag holds the rest of its line, as the lexer's fallback. Linear time."""
    code: list[str] = []
    comments: list[str] = []
    finder = _Finder(text)
    pos = done = 0  # where to look next; the end of what code/comments hold
    while (m := _HTML_HEAD.search(text, pos)) is not None:
        start, kind = m.start(), m.lastindex
        pos = start + 1  # what no rule takes: one character of text
        if kind in _HTML_CLOSE:
            at, end = finder.find(_HTML_CLOSE[kind], m.end())
            if at >= 0:
                if kind == 1:
                    code.append(text[done:start])
                    comments.append(text[start:end])
                    done = end
                pos = end
                continue
            if kind == 3:  # "<?" never closed: text
                continue
        if kind != 5:  # a declaration "<!...>", or a comment or CDATA never closed
            at, end = finder.find(">", m.end())
            if at >= 0:
                pos = end
            continue
        element = m.group(5).lower()
        at, tag_end = finder.find(">", m.end())
        if at < 0:
            continue
        stop, _ = finder.find(_HTML_END[element], tag_end)
        if stop < 0:
            newline = text.find("\n", tag_end)
            stop = len(text) if newline < 0 else newline + 1
        if element == "script":
            content, found, _ = scan(text[tag_end:stop], "js")
            code.append(text[done:tag_end])
            code.append(content)
            comments.extend(found)
            done = stop
        pos = stop
    code.append(text[done:])
    return "".join(code), comments, []


#: What pygments' Bash lexer (upstream's for shell) reads, up to the next comment or
#: here-document: tokens that hold a ``#``, ``<`` or a quote without being either (``<<<``,
#: ``${...}`` with one level of ``${...}`` inside, ``$#``, an escaped character, the strings:
#: ``"..."`` and ``$'...'`` with escapes, ``'...'`` without, all across lines) and any other
#: text, a ``<`` that starts no here-document and a ``#`` inside a word included; then the
#: head of a here-document (``<<EOF``: through the next ``EOF`` it is a string), a comment (a
#: ``#`` that starts a token: after a blank, an operator or a quote) or the end of the text.
#: One match per comment, in C; possessive, so nothing is read twice.
_SHELL = re.compile(
    r"""(?:<<<|\$\{(?:\$\{[^{}]*+\}|[^{}])*+\}?|\$[#$?!_*@-]|\\[\s\S]"""
    r"""|\$?"(?:\\[\s\S]|[^"\\])*"?|\$'(?:\\[\s\S]|[^'\\])*'?|'[^']*'?"""
    r"""|[^'"$\\<#]+|\$|\\|<(?!<-?\s*'?\\?\w)|(?<=[^\s=\[\]{}()"'`<&|;])\#)*+"""
    r"""(?:(?P<heredoc><<-?\s*'?\\?(?P<word>\w+))"""
    r"""|(?P<comment>(?<![^\s=\[\]{}()"'`<&|;])#[^\n]*)|\Z)""",
)
#: Here-document terminators looked for in one text, at most (each search reads the rest of
#: the text; past this, a ``<<word`` is code: only a hostile text has that many open ones).
_HEREDOC_SEARCHES = 256
#: A shell script's string literals for the string signals: the quoted spans of one line
#: (upstream's string signals pair quotes on a line; a '...' across lines, an argument list,
#: is not one long string there). A quote its line does not close takes the rest of the line
#: and is no literal: each character is read once.
_QUOTED = re.compile(r"'[^'\n]*+'?" r'|"(?:\\.|[^"\\\n])*+"?')


def _scan_shell(text: str) -> tuple[str, list[str], list[str]]:
    """:func:`scan` for shell, as pygments' Bash lexer splits a script: a comment takes its
    line break along (``a # x`` and the next line are one code line, as for C); a ``#``
    inside a word, a string, a here-document or ``${x##*/}`` is no comment. A here-document
    runs from ``<<word`` to the next occurrence of the word (or, as the lexer's pattern
    backtracks, of its longest prefix that occurs again). Linear time."""
    code: list[str] = []
    comments: list[str] = []
    searches = _HEREDOC_SEARCHES
    pos = done = 0
    while pos < len(text):
        m = _SHELL.match(text, pos)
        assert m is not None  # the pattern ends with "or the end of the text"
        kind = m.lastgroup
        pos = m.end()
        if kind == "comment":
            code.append(text[done : m.start(kind)])
            comments.append(m.group(kind))
            pos = done = pos + 1 if text.startswith("\n", pos) else pos
        elif kind == "heredoc":
            word, at = m.group("word"), m.start("word")
            end = -1
            for size in range(len(word), 0, -1):
                if searches <= 0:
                    break
                searches -= 1
                found = text.find(word[:size], at + size + 1)
                if found >= 0:
                    end = found + size
                    break
            # no terminator: the lexer reads "<<" as text and goes on from there
            pos = end if end >= 0 else m.start(kind) + 2
    code.append(text[done:])
    kept = "".join(code)
    strings = [q for q in _QUOTED.findall(kept) if len(q) > 1 and q[-1] == q[0]]
    return kept, comments, strings


#: Lua as pygments' Lua lexer reads it: a ``--[[ ... ]]`` block comment (``=`` signs between
#: the brackets, the same number closing it), a ``--`` line comment, a ``[[ ... ]]`` long
#: string (code here, so that a ``--`` in it is none) and quoted strings, which run across
#: line breaks to their closing quote (escapes skipped).
_LUA = re.compile(
    r"--\[(?P<block>=*)\[|(?P<line>--[^\n]*)|\[(?P<long>=*)\["
    r"""|(?P<quoted>"(?:[^"\\]|\\.)*+"?|'(?:[^'\\]|\\.)*+'?)""",
    re.S,
)


def _scan_lua(text: str) -> tuple[str, list[str], list[str]]:
    """:func:`scan` for Lua. A long bracket that does not close is no block comment (its
    ``--`` starts a line comment) and no long string (the lexer reads ``[`` on). Linear time:
    a closing bracket not found from one place is not searched for again after it."""
    code: list[str] = []
    comments: list[str] = []
    strings: list[str] = []
    finder = _Finder(text)
    pos = done = 0
    while (m := _LUA.search(text, pos)) is not None:
        kind = m.lastgroup or ""  # every alternative is a named group
        start, pos = m.start(), m.end()
        if kind == "quoted":
            strings.append(m.group(kind))
        elif kind == "line":
            code.append(text[done:start])
            comments.append(m.group(kind))
            done = pos
        else:  # block comment or long string: to the closing bracket of the same level
            level = m.group(kind)
            _, end = finder.find("]" + level + "]", pos)
            if end >= 0 and kind == "block":
                code.append(text[done:start])
                comments.append(text[start:end])
                pos = done = end
            elif end >= 0:
                pos = end
            elif kind == "block":  # unclosed: a line comment
                line_end = text.find("\n", start)
                pos = len(text) if line_end < 0 else line_end
                code.append(text[done:start])
                comments.append(text[start:pos])
                done = pos
            else:
                pos = start + 1
    code.append(text[done:])
    return "".join(code), comments, strings


#: A Makefile line whose comments pygments' Makefile lexer reads with its Bash lexer: an
#: indented line (a recipe), or a variable assignment (the value).
_MAKE_BASH_LINE = re.compile(r"[ \t]|[\w${}().-]+[ \t]*[!?:+]?=")
#: Lines the Makefile lexer sets apart before lexing: a comment line (``Comment``) and a
#: directive (``Comment.Preproc``, its backslash-continued lines too): code upstream.
_MAKE_COMMENT_LINE = re.compile(r"\s*@?#")
_MAKE_DIRECTIVE = re.compile(
    r"(?:\.\s*(?:include|undef|error|warning|if|else|elif|endif|for|endfor)"
    r"|\s*(?:ifeq|ifneq|ifdef|ifndef|else|endif|-?include|define|endef|:|vpath)"
    r"|\s*(?:if|else|endif))(?=\s)"
)


def _scan_make(text: str) -> tuple[str, list[str], list[str]]:
    """:func:`scan` for Makefiles, as upstream reads them (pygments' Makefile lexer): a
    comment after code on an indented line or in a variable's value is a comment (the Bash
    lexer's, line break included); a whole comment line (indented or not), a directive line
    and a comment after a rule's prerequisites get token types upstream does not count
    (Comment, Comment.Preproc), so they are code here."""
    code: list[str] = []
    comments: list[str] = []
    strings: list[str] = []
    hash_scanner = _SCANNERS["hash"]
    continued = False
    for line in text.splitlines(keepends=True):
        parts = hash_scanner.split(line) if "#" in line or '"' in line or "'" in line else [line]
        directive = continued or _MAKE_DIRECTIVE.match(line) is not None
        continued = directive and line.rstrip().endswith("\\")
        if (
            len(parts) == 1
            or directive
            or _MAKE_COMMENT_LINE.match(line)
            or not _MAKE_BASH_LINE.match(line)
        ):
            code.append(line)
            strings.extend(q for q in parts[1::2] if q[0] in _QUOTES)
            continue
        for i in range(1, len(parts), 2):
            match = parts[i]
            if match[0] == "#":
                comments.append(match)
                parts[i] = ""
                if parts[i + 1][:1] == "\n":  # the comment takes its line break along
                    parts[i + 1] = parts[i + 1][1:]
            else:
                strings.append(match)
        code.append("".join(parts))
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
    if family == "shell":
        return _scan_shell(text)
    if family == "lua":
        return _scan_lua(text)
    if family == "make":
        return _scan_make(text)
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
    breaking = family in ("clang", "cbreak", "csharp")
    offsets = list(accumulate(map(len, parts), initial=0)) if breaking else []
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


def _line_comment_takes_break(lang: str, family: str) -> bool:
    """Whether the language's pygments lexer (upstream's) reads a line comment's line break
    as part of the comment (C, C#, Rust, shell, SQL, ...; not JavaScript, Go, Java, Ruby,
    ...). Python's does not either, but its comment share is measured apart
    (:func:`.signals.python.comment_text_chars`); only :func:`comment_content` asks."""
    return family not in ("js", "html") and lang_key(lang) not in _BREAK_AFTER_COMMENT_IS_CODE


def comment_content(lang: str, family: str, comments: list[str]) -> str:
    """The ``comments`` :func:`scan` found, joined as upstream's lexer gives them: a line
    comment ends with its line break where the language's pygments lexer takes the break
    along, else the next comment goes on on the same line (``// a`` then ``// b`` two lines
    down is one line ``// a// b``); a docstring without the line break before it."""
    breaks = family != "python" and _line_comment_takes_break(lang, family)
    pieces = []
    for comment in comments:
        if comment[0] == "\n":
            pieces.append(comment.lstrip())  # a docstring: its indentation is code upstream
        elif (
            breaks and comment[-1] != "\n" and (comment[0] == "#" or comment[:2] in _LINE_COMMENTS)
        ):
            pieces.append(comment + "\n")
        else:
            pieces.append(comment)
    return "".join(pieces)


def comment_chars(text: str, lang: str, family: str, comments: list[str]) -> int:
    """Characters of the ``comments`` :func:`scan` found in ``text``; a line comment's line
    break counts as its own (as the lexers of upstream see it), the line break before a
    docstring or POD block does not. A carriage return before a line break does not count
    either: pygments reads ``\r\n`` as one ``\n``."""
    total = sum(map(len, comments))
    if family == "perl":  # whole lines, their breaks included
        return total
    if "\r" in text:
        total -= sum(c.count("\r\n") + (c[-1] == "\r" and c[0] != "\n") for c in comments)
    if not _line_comment_takes_break(lang, family):
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
