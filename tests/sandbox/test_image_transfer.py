"""`codekiln-sandbox image save/load`: the tarball the application image carries, against the real
engine (with a one-file image, so the round trip takes a second, not the sandbox image's size)."""

from __future__ import annotations

import contextlib
import io
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from codekiln.sandbox.cli import main
from codekiln.sandbox.errors import ImageError
from codekiln.sandbox.image import transfer


@pytest.fixture
def tiny_image() -> Iterator[str]:
    """A one-file image imported into the engine; removed afterwards."""
    client = docker.from_env()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        payload = secrets.token_hex(16).encode()  # a new image id every run
        info = tarfile.TarInfo("marker")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    tag = f"codekiln-test-transfer:{secrets.token_hex(4)}"
    repo, version = tag.split(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=version)
    yield tag
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(tag, force=True)
    client.close()


@pytest.mark.docker
def test_saved_image_loads_back_under_its_tag(
    tiny_image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image saved, removed and loaded again is back under the same tag."""
    tarball = tmp_path / "image.tar"
    assert main(["image", "save", str(tarball), "--tag", tiny_image]) == 0
    assert tarball.stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))  # committed by rename, no temp file left
    client = docker.from_env()
    client.images.remove(tiny_image, force=True)
    assert main(["image", "load", str(tarball), "--wait-s", "5"]) == 0
    assert capsys.readouterr().out.split() == [tiny_image]
    assert client.images.get(tiny_image).tags == [tiny_image]
    client.close()


@pytest.mark.docker
def test_saving_a_missing_image_says_how_to_build_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Saving a tag the engine does not have fails with a message, and writes no file."""
    tarball = tmp_path / "image.tar"
    assert main(["image", "save", str(tarball), "--tag", "codekiln-test-absent:0"]) == 1
    assert "image build" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.docker
def test_loading_garbage_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not an image tarball is refused with its path in the message."""
    bad = tmp_path / "not-an-image.tar"
    bad.write_bytes(b"this is not a tar archive\n" * 10)
    assert main(["image", "load", str(bad)]) == 1
    assert str(bad) in capsys.readouterr().err


def test_loading_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A tarball path that does not exist is named in the error."""
    with pytest.raises(ImageError, match="no such image tarball"):
        transfer.load(object(), tmp_path / "absent.tar")


def test_waiting_for_an_absent_engine_times_out_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no engine behind the socket, the wait ends after its timeout with a clear error."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    with pytest.raises(ImageError, match=r"no Docker engine answered within 0\.3 s"):
        transfer.connect(0.3, poll_s=0.05)
