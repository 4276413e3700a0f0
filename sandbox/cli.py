"""``codekiln-sandbox``: build the image, serve the execution API.

codekiln-sandbox image build [--if-missing] [--method offline|dockerfile]
codekiln-sandbox image tag
codekiln-sandbox image save FILE [--tag TAG]
codekiln-sandbox image load FILE [--wait-s 120]
codekiln-sandbox serve --host 127.0.0.1 --port 8080 --token-file /run/secrets/token

Exit codes: 0 done, 1 failed (the engine, the image, a port already in use: one line on
stderr), 2 bad usage, 141 stdout's reader went away (``| head``: no message). The token is read
from --token-file only, never from the command line.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
from pathlib import Path

from .cli_base import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandParser,
    InputNotFound,
    input_not_found,
    internal_error,
    quiet_on_closed_stdout,
)
from .errors import ConfigInvalid, SandboxError


def _parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="codekiln-sandbox", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    image = sub.add_parser("image", help="the sandbox image")
    isub = image.add_subparsers(dest="image_command", required=True)
    b = isub.add_parser("build", help="build the sandbox image")
    b.add_argument("--if-missing", action="store_true", help="do nothing if the tag exists")
    b.add_argument("--method", choices=("offline", "dockerfile"), default="offline")
    b.add_argument("--mirror", default="http://deb.debian.org/debian")
    b.add_argument("--cache-dir", type=Path, default=Path("/var/cache/codekiln"))
    b.add_argument(
        "--prune",
        action="store_true",
        help="remove older codekiln-sandbox images no container uses",
    )
    isub.add_parser("tag", help="print the tag of the current recipe")
    sv = isub.add_parser("save", help="write the sandbox image to a tarball")
    sv.add_argument("file", type=Path)
    sv.add_argument("--tag", default=None, help="image tag (default: the current recipe's)")
    ld = isub.add_parser("load", help="load a tarball written by `image save` into the engine")
    ld.add_argument("file", type=Path)
    ld.add_argument(
        "--wait-s", type=float, default=0.0, help="wait this long for the engine to answer first"
    )
    s = sub.add_parser("serve", help="serve the execution API")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free one)")
    s.add_argument("--token-file", type=Path, required=True)
    s.add_argument("--pool-size", type=int, default=None)
    s.add_argument("--max-queue", type=int, default=None)
    s.add_argument("--image", default=None, help="image tag (default: the current recipe's)")
    s.add_argument("--instance", default=None, help="name labelling this service's containers")
    s.add_argument("--ready-file", type=Path, default=None, help="write the URL here when ready")
    s.add_argument(
        "--no-token-in-path",
        action="store_true",
        help="refuse the token in the URL path (/t/<token>/run_code, for SandboxFusion's "
        "client); the Authorization header is then the only way",
    )
    s.add_argument(
        "--channel-dir",
        default=None,
        help="make the per-container job sockets here (created if missing); the engine must "
        "see it at the same path, e.g. a volume shared with an engine in another container "
        "(default: the system's temporary directory; where the engine cannot see it, jobs run "
        "over the slower attached stdio)",
    )
    return p


@quiet_on_closed_stdout
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.command == "image":
            return _image(args)
        return _serve(args)
    except InputNotFound as exc:
        return input_not_found("codekiln-sandbox", exc)
    except ConfigInvalid as exc:  # a bad setting or token file: usage, as for every CLI
        print(f"codekiln-sandbox: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SandboxError as exc:
        print(f"codekiln-sandbox: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("codekiln-sandbox: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout's reader went away: quiet_on_closed_stdout ends it
        raise
    except Exception as exc:  # a bug, not a user error: one line here, the traceback logged
        return internal_error("codekiln-sandbox", exc)


def _image(args: argparse.Namespace) -> int:
    from .image.build import build, default_recipe

    if args.image_command == "tag":
        print(default_recipe().tag)
        return 0
    import docker

    if args.image_command in ("save", "load"):
        return _transfer(args)
    recipe = default_recipe(mirror=args.mirror)
    client = docker.from_env()
    try:
        tag = build(
            client,
            recipe,
            method=args.method,
            if_missing=args.if_missing,
            cache_dir=args.cache_dir,
            prune=args.prune,
        )
    finally:
        client.close()
    print(tag)
    return 0


def _transfer(args: argparse.Namespace) -> int:
    from .image import transfer
    from .image.build import default_recipe

    client = transfer.connect(args.wait_s if args.image_command == "load" else 0.0)
    try:
        if args.image_command == "save":
            transfer.save(client, args.tag or default_recipe().tag, args.file)
        else:
            for tag in transfer.load(client, args.file):
                print(tag)
    finally:
        client.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .config import SandboxConfig
    from .server import serve

    overrides = {
        k: v
        for k, v in {
            "pool_size": args.pool_size,
            "max_queue": args.max_queue,
            "image": args.image,
            "instance": args.instance,
            "channel_dir": args.channel_dir,
            "token_in_path": False if args.no_token_in_path else None,
        }.items()
        if v is not None
    }
    if args.channel_dir is not None:
        from ._engine import CHANNEL_NAME

        # A unix socket path holds at most 107 bytes: the base, a 25-character directory per
        # container and the socket's name must fit.
        longest = len(os.fsencode(os.path.abspath(args.channel_dir))) + 27 + len(CHANNEL_NAME)
        if longest > 107:
            raise SandboxError(
                f"--channel-dir {args.channel_dir!r} is too long for a socket path "
                f"({longest} of at most 107 bytes): pick a shorter one"
            )
        os.makedirs(args.channel_dir, exist_ok=True)
    config = SandboxConfig.from_token_file(args.token_file, **overrides)
    # Before the pool starts its containers (seconds): a busy port fails at once, in one line.
    _check_port(args.host, args.port)
    try:
        serve(config, host=args.host, port=args.port, ready_file=args.ready_file)
    except OSError as exc:  # lost a race for the port after the check, or a bad --host
        raise SandboxError(_listen_error(args.host, args.port, exc)) from exc
    return 0


def _listen_error(host: str, port: int, exc: OSError) -> str:
    why = exc.strerror or str(exc)
    hint = (
        " (another process listens there: pick another --port)"
        if exc.errno == errno.EADDRINUSE
        else ""
    )
    return f"cannot listen on {host}:{port}: {why}{hint}"


def _check_port(host: str, port: int) -> None:
    """Bind ``host:port`` as the server will (SO_REUSEADDR, like aiohttp) and let it go."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SandboxError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise SandboxError(_listen_error(host, port, exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
