"""Every language of the table compiles (where it must) and runs in the real image."""

from __future__ import annotations

import pytest
from codekiln.sandbox import RequestInvalid
from codekiln.sandbox.client import RunRequest, SandboxClient
from codekiln.sandbox.languages import LANGUAGES, image_packages, resolve

HELLO = {
    "python": "import sys\nprint(sys.stdin.read().upper())",
    "c": "#include <stdio.h>\nint main(void){char b[64]; fgets(b, 64, stdin);"
    ' for(char*p=b;*p;p++) if(*p>=97&&*p<=122) *p-=32; printf("%s\\n", b); return 0;}',
    "cpp": "#include <iostream>\n#include <string>\n#include <algorithm>\nint main(){std::string s;"
    " std::getline(std::cin, s); std::transform(s.begin(), s.end(), s.begin(), ::toupper);"
    " std::cout << s << std::endl;}",
    "javascript": "const s = require('fs').readFileSync(0, 'utf8'); console.log(s.toUpperCase());",
    "bash": 'read -r line; echo "${line^^}"',
    "go": 'package main\nimport ("bufio"; "fmt"; "os"; "strings")\nfunc main() {'
    " s, _ := bufio.NewReader(os.Stdin).ReadString('\\n');"
    " fmt.Println(strings.ToUpper(strings.TrimSpace(s))) }",
    "rust": "use std::io::Read;\nfn main() { let mut s = String::new();"
    " std::io::stdin().read_to_string(&mut s).unwrap();"
    ' println!("{}", s.trim().to_uppercase()); }',
    "java": "import java.util.Scanner;\npublic class Main { public static void main(String[] a) {"
    " System.out.println(new Scanner(System.in).nextLine().toUpperCase()); } }",
}


def test_every_language_has_a_hello() -> None:
    """The table and this test cover the same languages."""
    assert set(HELLO) == set(LANGUAGES)


def test_aliases_resolve_case_insensitively() -> None:
    """Aliases (js, c++, py) and case map to the table's languages."""
    assert [resolve(n).name for n in ("JS", "c++", "py", "Python3")] == [
        "javascript",
        "cpp",
        "python",
        "python",
    ]


def test_unknown_language_is_refused() -> None:
    """An unknown language is a RequestInvalid naming the supported ones."""
    with pytest.raises(RequestInvalid, match="supported: bash, c, cpp"):
        resolve("cobol")


def test_image_packages_come_from_the_table() -> None:
    """The image recipe's packages are the union of the table's."""
    assert set(image_packages()) == {p for lang in LANGUAGES.values() for p in lang.packages}


@pytest.mark.docker
@pytest.mark.parametrize("language", sorted(HELLO))
async def test_language_runs_with_stdin(sandbox_client: SandboxClient, language: str) -> None:
    """Each language reads stdin and writes stdout in the sandbox."""
    r = await sandbox_client.run(
        RunRequest(language=language, code=HELLO[language], stdin="hello\n", timeout_s=20)
    )
    assert r.status == "passed", r
    assert r.stdout.strip() == "HELLO"


@pytest.mark.docker
async def test_c_compile_error_is_failed(sandbox_client: SandboxClient) -> None:
    """A program that does not compile fails with the compiler's message."""
    r = await sandbox_client.run(RunRequest(language="c", code="int main( {"))
    assert r.status == "failed"
    assert r.reason == "compilation failed"
    assert "error" in r.stderr


@pytest.mark.docker
async def test_python_numpy_is_available(sandbox_client: SandboxClient) -> None:
    """numpy, which some MBPP tests import, is in the image."""
    r = await sandbox_client.run(
        RunRequest(language="python", code="import numpy as np\nprint(int(np.arange(5).sum()))")
    )
    assert r.stdout == "10\n", r
