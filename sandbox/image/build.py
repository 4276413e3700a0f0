"""Build the sandbox image, offline or from a Dockerfile, tagged with its recipe's hash.

The recipe is: the Debian suite, the packages of the language table, the supervisor and
harness sources and this builder's format version. Any change gives a new tag, so a stale image
is never used and ``--if-missing`` rebuilds it.

Offline method (air-gapped hosts, no registry): ``debootstrap --variant=minbase`` a Debian root
filesystem with the packages, strip caches, tar it (cached under /var/cache/codekiln, keyed by
suite and packages), ``docker import`` it as the base image, then a one-COPY build adds the
runner. Dockerfile method: ``FROM debian:<suite>-slim`` plus apt-get, for hosts that can pull.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ImageError
from ..languages import image_packages

log = logging.getLogger("codekiln.sandbox.image")

FORMAT_VERSION = "2"
RUNNER_DIR = Path(__file__).resolve().parent.parent / "runner"
RUNNER_FILES = ("supervisor.py", "harness.py")
DOCKERFILE = Path(__file__).resolve().parent / "Dockerfile"
IMAGE_REPO = "codekiln-sandbox"
BASE_REPO = "codekiln-sandbox-base"
DEFAULT_CACHE_DIR = Path("/var/cache/codekiln")
# Removed from the root filesystem before import: apt caches, docs, locales we never use.
STRIP = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)


@dataclass(frozen=True, slots=True)
class Recipe:
    suite: str
    packages: tuple[str, ...]
    mirror: str

    @property
    def base_hash(self) -> str:
        text = "\n".join([FORMAT_VERSION, self.suite, *self.packages])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def image_hash(self) -> str:
        h = hashlib.sha256()
        h.update(self.base_hash.encode())
        for name in RUNNER_FILES:
            h.update(name.encode() + b"\0" + (RUNNER_DIR / name).read_bytes())
        h.update(DOCKERFILE.read_bytes())
        return h.hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"{IMAGE_REPO}:{self.image_hash}"

    @property
    def base_tag(self) -> str:
        return f"{BASE_REPO}:{self.base_hash}"


def default_recipe(suite: str = "bookworm", mirror: str = "http://deb.debian.org/debian") -> Recipe:
    return Recipe(suite=suite, packages=image_packages(), mirror=mirror)


def image_exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException as exc:
        raise ImageError(f"cannot query the Docker engine: {exc}") from exc
    return True


def build(
    client: Any,
    recipe: Recipe,
    *,
    method: str = "offline",
    if_missing: bool = False,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    prune: bool = False,
) -> str:
    """Build the image for ``recipe``; return its tag."""
    if if_missing and image_exists(client, recipe.tag):
        log.info("image %s present", recipe.tag)
        return recipe.tag
    if method == "offline":
        if not image_exists(client, recipe.base_tag):
            _import_base(client, recipe, cache_dir)
        base = recipe.base_tag
        dockerfile = f"FROM {base}\nCOPY supervisor.py harness.py /opt/codekiln/\n"
        buildargs: dict[str, str] = {}
    elif method == "dockerfile":
        dockerfile = DOCKERFILE.read_text()
        buildargs = {"PACKAGES": " ".join(recipe.packages)}
    else:
        raise ImageError(f"unknown build method {method!r}: use 'offline' or 'dockerfile'")
    _docker_build(client, recipe, dockerfile, buildargs, pull=method == "dockerfile")
    if prune:
        _prune_stale(client, recipe)
    return recipe.tag


def _docker_build(
    client: Any, recipe: Recipe, dockerfile: str, buildargs: dict[str, str], *, pull: bool
) -> None:
    import docker.errors

    with tempfile.TemporaryDirectory(prefix="codekiln-image-") as ctx:
        for name in RUNNER_FILES:
            shutil.copy(RUNNER_DIR / name, Path(ctx) / name)
        (Path(ctx) / "Dockerfile").write_text(dockerfile)
        log.info("building %s", recipe.tag)
        try:
            client.images.build(
                path=ctx,
                tag=recipe.tag,
                buildargs=buildargs,
                rm=True,
                forcerm=True,
                pull=pull,
                labels={"codekiln.sandbox.recipe": recipe.image_hash},
            )
        except (docker.errors.BuildError, docker.errors.APIError) as exc:
            raise ImageError(f"docker build of {recipe.tag} failed: {exc}") from exc


def _import_base(client: Any, recipe: Recipe, cache_dir: Path) -> None:
    import docker.errors

    tarball = _cached_rootfs(recipe, cache_dir)
    log.info("importing %s as %s", tarball, recipe.base_tag)
    repo, tag = recipe.base_tag.split(":")
    try:
        client.api.import_image_from_file(str(tarball), repository=repo, tag=tag)
    except docker.errors.APIError as exc:
        raise ImageError(f"docker import of {tarball} failed: {exc}") from exc
    if not image_exists(client, recipe.base_tag):
        raise ImageError(f"docker import of {tarball} produced no image {recipe.base_tag}")


def _cached_rootfs(recipe: Recipe, cache_dir: Path) -> Path:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        writable = os.access(cache_dir, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        cache_dir = Path(tempfile.gettempdir()) / "codekiln-cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / f"rootfs-{recipe.suite}-{recipe.base_hash}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="codekiln-rootfs-", dir=cache_dir) as tmp:
        root = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(recipe.packages)}",
            recipe.suite,
            str(root),
            recipe.mirror,
        ]
        log.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise ImageError(f"debootstrap failed ({proc.returncode}):\n{tail}")
        for rel in STRIP:
            shutil.rmtree(root / rel, ignore_errors=True)
        (root / "opt/codekiln").mkdir(parents=True, exist_ok=True)
        # Docker copies a mount point's mode onto the tmpfs mounted over it: jobs (another
        # uid each container) create their work directory here.
        (root / "sandbox").mkdir(exist_ok=True)
        (root / "sandbox").chmod(0o1777)
        partial = tarball.with_suffix(".tar.partial")
        proc = subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ImageError(f"tar of the root filesystem failed: {proc.stderr[-2000:]}")
        partial.rename(tarball)
    return tarball


def _prune_stale(client: Any, recipe: Recipe) -> None:
    """Remove older codekiln-sandbox images (other recipe hashes) that no container uses."""
    import docker.errors

    for image in client.images.list(name=IMAGE_REPO):
        if recipe.tag in image.tags:
            continue
        try:
            client.images.remove(image.id, noprune=False)
        except docker.errors.APIError:
            log.info("stale image %s still in use; kept", image.tags)
