"""Reading a settings file safely (a regular file, bounded, UTF-8, never blocking) and finding the
line of a table or key in it, so that every error can say ``file:line``."""

from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from pathlib import Path

from ..errors import ConfigError

__all__ = ["MAX_CONFIG_BYTES", "line_of", "line_of_key", "parse_toml", "read_text"]


# The largest settings file read: the packaged one is 10 KB; a bound keeps /dev/zero or a huge file
# from filling the memory.
MAX_CONFIG_BYTES = 1024 * 1024


def read_text(path: Path) -> str:
    """The file's text, if it is a regular file of at most MAX_CONFIG_BYTES in UTF-8 (ConfigError if not).

    Opened without blocking (a FIFO would wait for a writer for ever), then checked on the open file
    itself, so what is read is what was checked.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read the file ({e.strerror or e})") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(path, None, "this is a folder; name the settings file itself")
        if not stat.S_ISREG(mode):
            raise ConfigError(path, None, "this is not a regular file (a pipe or a device); name a settings file")
        chunks, size = [], 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read the file ({e.strerror or e})") from e
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(path, None, f"the file is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB, "
                                      "far more than a settings file holds")
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, "the file is not UTF-8 text") from e
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def parse_toml(text: str, path: Path) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise ConfigError(path, int(m.group(1)) if m else None, f"invalid TOML: {message}") from e
    except ValueError as e:  # int() refuses a number of more than sys.get_int_max_str_digits() digits
        limit = sys.get_int_max_str_digits()
        line = next((i + 1 for i, raw in enumerate(text.splitlines())
                     if any(len(run.replace("_", "")) > limit for run in re.findall(r"[0-9_]+", raw))), None)
        raise ConfigError(path, line, f"a number has more than {limit} digits") from e
    except RecursionError as e:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(path, _deepest_line(text), "arrays or tables are nested too deeply") from e


def _deepest_line(text: str) -> int | None:
    """1-based line where ``[``/``{`` nesting is deepest (brackets in strings count too: a guess)."""
    depth = deepest = 0
    line = None
    for i, raw in enumerate(text.splitlines()):
        for ch in raw:
            depth += (ch in "[{") - (ch in "]}")
            if depth > deepest:
                deepest, line = depth, i + 1
    return line


def line_of(lines: list[str], header: str, occurrence: int = 0, key: str | None = None) -> int | None:
    """1-based line of ``key`` inside the ``occurrence``-th table ``header`` (or of the header itself)."""
    seen = -1
    for i, raw in enumerate(lines):
        if raw.strip().split("#")[0].strip() == header:
            seen += 1
            if seen != occurrence:
                continue
            if key is None:
                return i + 1
            for j in range(i + 1, len(lines)):
                s = lines[j].strip()
                if s.startswith("["):
                    break
                if re.match(rf"{re.escape(key)}\s*=", s):
                    return j + 1
            return i + 1
    return None


def line_of_key(lines: list[str], key: str) -> int | None:
    """1-based line of a top-level ``key = ...`` (written before any table header), or None."""
    for i, raw in enumerate(lines):
        s = raw.strip()
        if s.startswith("["):
            return None
        if re.match(rf"{re.escape(key)}\s*=", s):
            return i + 1
    return None
