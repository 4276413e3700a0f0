"""LanguageStage: Linguist-table identification and the drop reasons of preprocessing."""

from __future__ import annotations

import pytest
from codekiln.stream.preprocess import EXCLUDED_LANGUAGES, LanguageStage, default_table
from s1_helpers import make_record

CODE = "import os\n\ndef main():\n    print(os.getcwd())\n"


def drop(path: str, text: str = CODE, **kw: object) -> str | None:
    record = make_record(path, text)
    LanguageStage(**kw).process([record])  # type: ignore[arg-type]
    return record.drop_reason


class TestTable:
    def test_table_is_linguist_sized(self) -> None:
        """The shipped table is Linguist's full table, not a short hand-typed list."""
        table = default_table()
        assert len(table.languages) > 700
        assert "linguist-languages" in table.source

    @pytest.mark.parametrize(
        ("path", "lang", "by"),
        [
            ("pkg/mod.py", "Python", "extension"),
            ("src/App.java", "Java", "extension"),
            ("Makefile", "Makefile", "filename"),
            ("Dockerfile", "Dockerfile", "filename"),
            ("types/index.d.ts", "TypeScript", "extension"),
            ("lib/x.RS", "Rust", "extension"),
            ("README.md", "Markdown", "extension"),
        ],
    )
    def test_detects_by_name_and_extension(self, path: str, lang: str, by: str) -> None:
        """File names, then the longest extension, decide the language."""
        d = default_table().detect(path)
        assert d is not None
        assert (d.language.name, d.by) == (lang, by)

    def test_shebang_without_extension(self) -> None:
        """A script without extension is identified by its #! interpreter (versioned names too)."""
        d = default_table().detect("bin/tool", "#!/usr/bin/env python3.11\nprint(1)\n")
        assert d is not None
        assert (d.language.name, d.by) == ("Python", "shebang")

    def test_ambiguous_header_uses_content(self) -> None:
        """.h is C unless the content shows C++."""
        t = default_table()
        c, cpp = (
            t.detect("a.h", "int f(void);\n"),
            t.detect("a.h", "namespace x {\nclass A {};\n}\n"),
        )
        assert c is not None
        assert cpp is not None
        assert (c.language.name, cpp.language.name) == ("C", "C++")


class TestStage:
    def test_sets_lang_and_type(self) -> None:
        """A kept record carries Linguist's name and type."""
        record = make_record("a/b.py", CODE)
        LanguageStage().process([record])
        assert record.drop_reason is None
        assert record.lang == "Python"
        assert record.meta["lang_type"] == "programming"

    def test_given_language_used_without_path(self) -> None:
        """A record without path keeps a language it already names (aliases accepted)."""
        record = make_record("", CODE)
        record.lang = "py"
        LanguageStage().process([record])
        assert (record.drop_reason, record.lang, record.meta["lang_by"]) == (
            None,
            "Python",
            "given",
        )

    @pytest.mark.parametrize(
        ("path", "reason"),
        [
            ("data/table.csv", "excluded_language"),
            ("img/logo.svg", "excluded_language"),
            ("nb/analysis.ipynb", "excluded_language"),
            ("SHA256SUMS", "excluded_language"),
            ("keys/id_rsa.pub", "excluded_language"),
            ("robots.txt", "excluded_language"),
            ("subs/a.vtt", "excluded_language"),
            ("yarn.lock", "lock_file"),
            ("web/package-lock.json", "lock_file"),
            ("poetry.lock", "lock_file"),
            ("go.sum", "lock_file"),
            ("dist/app.min.js", "minified"),
            ("x/blob.bin", "unknown_language"),
            ("x/noext", "unknown_language"),
        ],
    )
    def test_excluded_kinds(self, path: str, reason: str) -> None:
        """Data kinds, lock files, minified bundles and unknown extensions are dropped by name."""
        assert drop(path) == f"preprocess:{reason}"

    def test_text_pickle(self) -> None:
        """A protocol-0 pickle is Pickle (excluded); a .pkl without pickle opcodes is Pkl."""
        assert drop("model.pkl", "(dp0\nS'weights'\np1\n(lp2\nI1\naI2\nas.") == (
            "preprocess:excluded_language"
        )
        assert drop("conf.pkl", 'name = "service"\nport = 8080\nreplicas = 3\n') is None

    def test_excluded_names_are_linguist_names(self) -> None:
        """Every excluded language is in the table (a typo would silently exclude nothing)."""
        assert set(default_table().languages) >= EXCLUDED_LANGUAGES

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("", "empty"),
            ("  \n\t\n", "empty"),
            ("x = 1", "tiny"),
            ("import os\x00\x01\x02" + "a" * 40, "nul_bytes"),
            ("s = '\udcff\udcfe'" + " pass" * 10, "invalid_utf8"),
            ("\ufffd" * 10 + "x = 1\n" * 20, "mixed_encoding"),
            ("x = 1;" * 400_000, "long_line"),
        ],
    )
    def test_bad_input_reasons(self, text: str, reason: str) -> None:
        """Empty, tiny, binary, undecodable, mixed-encoding, one-line multi-MB files: dropped."""
        assert drop("m.py", text) == f"preprocess:{reason}"

    def test_too_large(self) -> None:
        """Files over max_bytes are dropped (bytes, not characters, are counted)."""
        assert drop("m.py", "é" * 600, max_bytes=1000) == "preprocess:too_large"
        assert drop("m.py", "é" * 400, max_bytes=1000) is None

    def test_minified_by_line_length(self) -> None:
        """JavaScript with a huge mean line length is a minified bundle whatever its name."""
        text = "var a=function(b){return b+1};" * 100 + "\n"
        assert drop("dist/app.js", text * 3) == "preprocess:minified"

    def test_keep_types(self) -> None:
        """Types outside keep_types are dropped with their own reason."""
        assert drop("README.md", "# Title\n\nSome prose here.\n", keep_types=["programming"]) == (
            "preprocess:excluded_type"
        )

    def test_bad_config_is_exact(self) -> None:
        """A misspelt type or language fails at construction with the offending value."""
        with pytest.raises(ValueError, match="code"):
            LanguageStage(keep_types=["code"])
        with pytest.raises(ValueError, match="Pyhton"):
            LanguageStage(exclude_languages=["Pyhton"])

    def test_picklable(self) -> None:
        """The stage is cpu_bound, so it must pickle for the process pool."""
        import pickle

        stage = pickle.loads(pickle.dumps(LanguageStage()))
        record = make_record("a.go", "package main\n\nfunc main() {}\n")
        stage.process([record])
        assert record.lang == "Go"
