"""What the by-ear tests share: a command run in a pseudo-terminal, as in a terminal window; a
real process named orca, as the screen reader's own process is named; and eSpeak NG's command-line
interface stood in for by a script that notes what it is given (a contract test of that interface:
text on standard input)."""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import threading

import pytest

from a11y_caption.speech.screen_reader import screen_reader_running
from conftest import wait_for

SPOKEN_BY_ESPEAK = "#!/bin/sh\n# stands in for espeak-ng: what it is asked to say, one line each\n" \
                   "case \"$*\" in *--voices*) exit 0;; esac\ncat >> \"$SPOKEN\"\n"


@pytest.fixture
def fake_espeak(tmp_path):
    """An espeak-ng on PATH that notes what it is given; (the environment, that file)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "espeak-ng"
    exe.write_text(SPOKEN_BY_ESPEAK)
    exe.chmod(0o755)
    spoken = tmp_path / "spoken.txt"
    spoken.touch()
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SPOKEN": str(spoken)}, spoken


@pytest.fixture
def orca_running(tmp_path):
    """A process of this user's named orca, as the screen reader's own process is named."""
    fake = tmp_path / "orca"
    shutil.copy(shutil.which("sleep"), fake)
    proc = subprocess.Popen([str(fake), "300"])
    try:
        wait_for(screen_reader_running, timeout=10)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def in_terminal(*args: str, env: dict | None = None, stream: str = "stdout",
                timeout: float = 240) -> tuple[int, str, str]:
    """The command with its ``stream`` ("stdout" or "stderr") on an 80-column pseudo-terminal and
    the other one on a pipe: (status, what the terminal showed, with its line ends as "\\n", the
    other stream)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns, as a window has
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: follower}
    proc = subprocess.Popen([sys.executable, "-m", "a11y_caption", *args], stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, text=True, **streams)
    os.close(follower)
    shown = bytearray()

    def drain():
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the command closed the terminal (EIO)
                return
            if not data:
                return
            shown.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    reader.join(10)
    os.close(leader)
    return proc.returncode, shown.decode("utf-8", "replace").replace("\r\n", "\n"), out if stream == "stderr" else err
