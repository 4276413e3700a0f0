"""`codekiln-sandbox serve --channel-dir`: checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from codekiln.sandbox import cli


def test_channel_dir_too_long_for_a_socket_path_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory whose socket paths would pass 107 bytes fails at once, naming the limit."""
    token = tmp_path / "token"
    token.write_text("t" * 40)
    long_dir = "/tmp/" + "x" * 100
    code = cli.main(["serve", "--token-file", str(token), "--channel-dir", long_dir])
    assert code == 1
    assert "too long for a socket path" in capsys.readouterr().err
    assert not Path(long_dir).exists()
