"""Command line: a thin layer over the library. Results go to stdout, every message to stderr.

- ``parser``: the sub-commands and their flags;
- ``local``: describe and read (by the running agent when one runs, else in this process);
- ``client``: the client of the running agent (ask, stop, repeat, copy-last, release, status);
- ``manage``: models and config;
- ``index``: index, search, show and export;
- ``common``: the settings every command shares.
"""

from __future__ import annotations

import logging
import sys

from ..errors import A11yCaptionError, describe_unexpected
from ..safe_text import one_line
from .client import agent_only, ask
from .index import HANDLERS as INDEX_HANDLERS
from .local import describe_images, read_images
from .manage import config_command, models_command
from .parser import build_parser, check_flags

__all__ = ["main"]

log = logging.getLogger("a11y_caption")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_flags(parser, args)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="a11y-caption: %(message)s", stream=sys.stderr,
    )
    try:
        handler = {"describe": describe_images, "read": read_images, "run": _run, "models": models_command,
                   "config": config_command, "bench": _bench, "ask": ask, "stop": agent_only, "repeat": agent_only,
                   "copy-last": agent_only, "release": agent_only, "status": agent_only,
                   "shortcuts": _shortcuts, "autostart": _autostart, **INDEX_HANDLERS}[args.command]
        return handler(args)
    except A11yCaptionError as e:
        if args.debug:
            log.exception("failed; the traceback may quote your screen or clipboard")
        print(f"a11y-caption: {one_line(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("a11y-caption: stopped.", file=sys.stderr)
        return 130
    except Exception as e:  # a bug. Its message may quote the screen or clipboard: say only where it was.
        where = describe_unexpected(e)
        if args.debug:
            log.exception("unexpected error")
            print(f"a11y-caption: unexpected error ({where}); the traceback above may contain text from "
                  "your screen or clipboard.", file=sys.stderr)
        else:
            print(f"a11y-caption: unexpected error ({where}); run with --debug for details.", file=sys.stderr)
        return 1


# -- commands another room does -------------------------------------------------------------------

def _run(args) -> int:
    from ..agent import run_agent
    from .common import settings

    return run_agent(settings(args))


def _shortcuts(args) -> int:
    from ..desktop.shortcuts import cli

    return cli(args)


def _autostart(args) -> int:
    from ..desktop.autostart import cli

    return cli(args)


def _bench(args) -> int:
    from ..bench import run_bench

    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
