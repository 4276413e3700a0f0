"""Comment syntax per language family (Linguist language names), for header detection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommentSyntax:
    #: Line-comment prefixes, longest first.
    line: tuple[str, ...] = ()
    #: Block comments (opener, closer); docstrings count as blocks.
    block: tuple[tuple[str, str], ...] = ()


C_BLOCK = ("/*", "*/")
XML_BLOCK = ("<!--", "-->")
PY_DOCSTRINGS = tuple((p + q, q) for q in ('"""', "'''") for p in ("", "r", "u", "R", "U"))

_FAMILIES: dict[CommentSyntax, tuple[str, ...]] = {
    CommentSyntax(("//",), (C_BLOCK,)): (
        "C", "C++", "C#", "Java", "JavaScript", "TypeScript", "TSX", "JSX", "Go", "Rust", "Swift",
        "Kotlin", "Scala", "Dart", "Objective-C", "Objective-C++", "Groovy", "Zig", "Solidity",
        "Protocol Buffer", "GLSL", "HLSL", "Cuda", "Verilog", "SystemVerilog", "V", "D", "Haxe",
        "Apex", "Vala", "ActionScript", "Processing", "Ballerina", "Chapel", "Less", "SCSS",
        "JSON5", "JSON with Comments", "Thrift", "OpenCL", "Metal", "Pawn", "SourcePawn", "Gradle",
        "Gradle Kotlin DSL", "QML", "Arduino", "Smali", "Jsonnet", "Cap'n Proto", "Hack",
        "Typst", "WGSL", "Odin", "Carbon", "Mojo", "Svelte", "Astro", "Stylus", "Sass",
    ),
    CommentSyntax((), (C_BLOCK,)): ("CSS",),
    CommentSyntax(("//", "#"), (C_BLOCK,)): ("PHP", "HCL", "Terraform", "Hack"),
    CommentSyntax(("#",), PY_DOCSTRINGS): ("Python", "Cython", "Starlark", "Mojo"),
    CommentSyntax(("#",), ()): (
        "Shell", "Ruby", "Perl", "R", "YAML", "TOML", "Makefile", "Dockerfile", "CMake", "Nim",
        "Julia", "Elixir", "Crystal", "Tcl", "GN", "Raku", "Awk", "sed", "fish", "Zsh", "GraphQL",
        "Gnuplot", "Meson", "CoffeeScript", "Ignore List", "Git Config", "Git Attributes",
        "Pip Requirements", "Nextflow", "Snakemake", "Puppet", "Just", "Procfile", "EditorConfig",
        "Nginx", "ApacheConf", "Bitbake", "Smarty", "Jinja", "Nushell", "Linker Script",
    ),
    CommentSyntax(("#",), (("<#", "#>"),)): ("PowerShell",),
    CommentSyntax(("#",), (C_BLOCK,)): ("Nix",),
    CommentSyntax(("--",), (C_BLOCK,)): ("SQL", "PLSQL", "PLpgSQL", "TSQL", "SQLPL", "HiveQL"),
    CommentSyntax(("--",), (("{-", "-}"),)): ("Haskell", "Elm", "PureScript", "Idris", "Agda"),
    CommentSyntax(("--",), (("--[[", "]]"),)): ("Lua", "Luau"),
    CommentSyntax(("--",), ()): ("Ada", "VHDL", "AppleScript", "Eiffel"),
    CommentSyntax((";",), ()): (
        "Common Lisp", "Clojure", "Scheme", "Emacs Lisp", "Racket", "Assembly", "NASL",
        "LLVM", "Fennel", "Hy", "Unix Assembly", "Motorola 68K Assembly",
    ),
    CommentSyntax((";", "#"), ()): ("INI",),
    CommentSyntax(("%",), ()): ("Erlang", "MATLAB", "TeX", "PostScript", "Prolog", "BibTeX"),
    CommentSyntax((), (XML_BLOCK,)): (
        "HTML", "XML", "Markdown", "Vue", "SVG", "XSLT", "HTML+ERB", "HTML+Django",
        "HTML+PHP", "XML Property List", "Ant Build System", "Maven POM", "RMarkdown",
        "Jupyter Notebook",
    ),
    CommentSyntax(("//",), (("(*", "*)"),)): ("F#",),
    CommentSyntax(("//",), (("(*", "*)"), ("{", "}"))): ("Pascal",),
    CommentSyntax((), (("(*", "*)"),)): ("OCaml", "Standard ML", "Mathematica", "Rocq Prover"),
    CommentSyntax(("'",), ()): ("Visual Basic .NET", "VBA", "VBScript", "Visual Basic 6.0"),
    CommentSyntax(("!",), ()): ("Fortran", "Fortran Free Form"),
}  # fmt: skip

SYNTAX: dict[str, CommentSyntax] = {}
for _syntax, _names in _FAMILIES.items():
    for _name in _names:
        SYNTAX.setdefault(_name, _syntax)

#: For programming languages without an entry: the commonest comment forms.
DEFAULT_SYNTAX = CommentSyntax(("//", "#"), (C_BLOCK,))


def syntax_for(lang: str, lang_type: str = "programming") -> CommentSyntax | None:
    """The comment syntax of a Linguist language; None where headers are not looked for
    (prose, and data or markup languages without a known comment form)."""
    found = SYNTAX.get(lang)
    if found is not None:
        return found
    return DEFAULT_SYNTAX if lang_type == "programming" else None
