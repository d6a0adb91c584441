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
import os
import sys

from ..errors import A11yCaptionError, describe_unexpected
from ..safe_text import one_line
from .client import agent_only, ask, keys
from .index import HANDLERS as INDEX_HANDLERS
from .local import describe_images, read_images
from .manage import config_command, models_command
from .parser import build_parser, check_flags, missing_command

__all__ = ["main"]

log = logging.getLogger("a11y_caption")


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. When standard output's reader leaves early (``| head``),
    stop quietly with status 141, as a program stopped by SIGPIPE does."""
    try:
        try:
            return _main(argv)
        finally:  # flushed here, so that a reader gone is noticed inside this try, not at exit
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        # The recipe of Python's signal documentation: what is still buffered goes to devnull, so
        # that the flush at exit does not fail a second time, aloud.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        return 141


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_flags(parser, args)
    page = missing_command(parser, args)
    if page is not None:  # "a11y-caption" or "a11y-caption models" alone: the commands it has, not an error
        page.print_help()
        return 0
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="a11y-caption: %(message)s", stream=sys.stderr,
    )
    try:
        handler = {"describe": describe_images, "read": read_images, "run": _run, "models": models_command,
                   "config": config_command, "bench": _bench, "ask": ask, "stop": agent_only, "repeat": agent_only,
                   "copy-last": agent_only, "release": agent_only, "status": agent_only,
                   "shortcuts": _shortcuts, "autostart": _autostart, "voices": _voices, "keys": keys,
                   **INDEX_HANDLERS}[args.command]
        return handler(args)
    except A11yCaptionError as e:
        if args.debug:
            log.exception("failed; the traceback may quote your screen or clipboard")
        print(f"a11y-caption: {one_line(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("a11y-caption: stopped.", file=sys.stderr)
        return 130
    except BrokenPipeError as e:
        if _stdout_gone():
            raise  # main stops quietly
        return _unexpected(args, e)
    except Exception as e:
        return _unexpected(args, e)


def _unexpected(args, e: Exception) -> int:
    """A bug. Its message may quote the screen or clipboard: say only where it was."""
    where = describe_unexpected(e)
    if args.debug:
        log.exception("unexpected error")
        print(f"a11y-caption: unexpected error ({where}); the traceback above may contain text from "
              "your screen or clipboard.", file=sys.stderr)
    else:
        print(f"a11y-caption: unexpected error ({where}); run with --debug for details.", file=sys.stderr)
    return 1


def _stdout_gone() -> bool:
    """Whether standard output is a pipe nobody reads any more: a broken pipe elsewhere (a speech
    engine, a socket) is still a bug to report."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (AttributeError, OSError, ValueError):
        return False
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file, so not a pipe either
        return False
    import select

    if not hasattr(select, "poll"):  # Windows: taken as standard output's, as in the recipe
        return True
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are always reported
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


# -- commands another room does -------------------------------------------------------------------

def _run(args) -> int:
    from ..agent import run_agent
    from .common import settings

    return run_agent(settings(args))


def _shortcuts(args) -> int:
    from ..desktop.shortcuts import cli

    return cli(args)


def _voices(args) -> int:
    from ..speech.voices import voices_command

    return voices_command(args)


def _autostart(args) -> int:
    from ..desktop.autostart import cli

    return cli(args)


def _bench(args) -> int:
    from ..bench import run_bench

    return run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
