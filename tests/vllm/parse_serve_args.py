"""Parse ``vllm serve`` argument lists with real vLLM's own parser (run with .venv-vllm's python).

Reads a JSON list of argument lists on stdin; prints one JSON object per list:
``{"ok": true, "model": ..., "max_model_len": ..., "stderr": warnings}`` or
``{"ok": false, "error": ...}``.
Also prints the CPU attention backend's head sizes under ``"head_sizes"`` as the last line.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    from vllm.entrypoints.cli import serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    for argv in json.load(sys.stdin):
        parser = FlexibleArgumentParser(prog="vllm")
        subparsers = parser.add_subparsers(required=False, dest="subparser")
        (cmd,) = serve.cmd_init()
        cmd.subparser_init(subparsers)
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                args = parser.parse_args(["serve", *argv])
                cmd.validate(args)
        except SystemExit:
            print(json.dumps({"ok": False, "error": err.getvalue()[-2000:]}))
            continue
        except Exception as exc:  # validate() raises ValueError/TypeError on bad combinations
            print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
            continue
        model = args.model_tag or args.model
        out = {"ok": True, "model": model, "max_model_len": args.max_model_len}
        print(json.dumps({**out, "stderr": err.getvalue()[-2000:]}))
    print(json.dumps({"head_sizes": CPUAttentionBackend.get_supported_head_sizes()}))


if __name__ == "__main__":
    main()
