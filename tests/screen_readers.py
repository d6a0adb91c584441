"""Private, throwaway screen-reader back ends for the tests: a real speech-dispatcher daemon on a
temp socket, a private D-Bus session bus, and a stand-in for Orca's remote controller on it.

Each starts in well under a second and is always stopped (process group killed) by its fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import wait_for  # noqa: F401  (used here, and by the tests importing from here)

HERE = Path(__file__).resolve().parent


def require(*tools: str) -> None:
    """Skip without the tools, but fail under CI=1 (CI must run these tests, never skip them)."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        message = f"missing: {', '.join(missing)} (make test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its output modules too
    except ProcessLookupError:
        pass
    proc.wait()


class SpeechDispatcher:
    """speech-dispatcher 0.11 run as `speech-dispatcher -s -t 0 -c unix_socket -S SOCK -C CONF -l 5
    -L LOGDIR -P PIDFILE` with a copy of /etc/speech-dispatcher whose audio goes to libao (no sound
    card needed). At log level 5 its log holds each text it received and its priority.

    ``slow=True`` makes the default output module a generic one that "speaks" each message for
    ``seconds`` and writes `start TEXT` and `end` lines to ``spoken``: a sentence cut off (by the
    next one or by Stop) has a start without an end.
    """

    def __init__(self, slow: bool = False, seconds: float = 0.6):
        require("speech-dispatcher")
        self.root = Path(tempfile.mkdtemp(prefix="a11y-sd-"))  # short: a socket path has ~100 bytes
        conf = self.root / "conf"
        shutil.copytree("/etc/speech-dispatcher", conf)
        settings = ['AudioOutputMethod "libao"']
        self.spoken = self.root / "spoken"
        if slow:
            settings += ['AddModule "slow" "sd_generic" "slow.conf"', "DefaultModule slow"]
            (conf / "modules" / "slow.conf").write_text(
                f"GenericExecuteSynth \"echo start \\'$DATA\\' >> {self.spoken}; sleep {seconds}; echo end >> {self.spoken}\"\n"
                'GenericLanguage "en" "en" "utf-8"\nAddVoice "en" "MALE1" "en"\n')
        with open(conf / "speechd.conf", "a") as f:
            f.write("\n" + "\n".join(settings) + "\n")
        self.socket = self.root / "sock"
        self.logs = self.root / "log"
        self.logs.mkdir()
        self.address = f"unix_socket:{self.socket}"
        self.start()

    def start(self) -> None:
        env = {**os.environ, "HOME": str(self.root), "XDG_RUNTIME_DIR": str(self.root),
               "XDG_CONFIG_HOME": str(self.root / "config"), "XDG_CACHE_HOME": str(self.root / "cache")}
        self.proc = subprocess.Popen(
            ["speech-dispatcher", "-s", "-t", "0", "-c", "unix_socket", "-S", str(self.socket),
             "-C", str(self.root / "conf"), "-l", "5", "-L", str(self.logs), "-P", str(self.root / "pid")],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_for(self._accepts, timeout=15)

    def _accepts(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"speech-dispatcher exited with {self.proc.returncode}; see {self.logs}")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.socket))
                return True
            except OSError:
                return False

    def log(self) -> str:
        path = self.logs / "speech-dispatcher.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def queued(self) -> list[tuple[str, int]]:
        """(text, priority) of every message the daemon queued, in order."""
        return [(m[1], int(m[2])) for m in re.finditer(r"Queueing message \|(.*?)\| with priority (\d)", self.log(), re.S)]

    def spoken_lines(self) -> list[str]:
        return self.spoken.read_text().splitlines() if self.spoken.exists() else []

    def kill(self) -> None:
        """Gone at once, as when it crashes or is killed (SIGKILL; its socket stays behind)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        _stop_group(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateBus:
    """A dbus-daemon session bus of our own, on a socket in a temp folder."""

    def __init__(self):
        require("dbus-daemon")
        self.root = Path(tempfile.mkdtemp(prefix="a11y-bus-"))
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1", f"--address=unix:dir={self.root}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            _stop_group(self.proc)
            raise AssertionError("dbus-daemon did not start")

    def close(self) -> None:
        _stop_group(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


class BusStandIn:
    """A stand-in service (a script in tests/) on a private bus: started with ``--ready FILE`` and
    waited for; each call it gets is a JSON line in ``calls_file``."""

    what = "stand-in"

    def __init__(self, bus, prefix: str):
        self.bus = bus
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.calls_file = self.root / "calls.jsonl"

    def _launch(self, args: list[str]) -> None:
        ready = self.root / "ready"
        ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen([*args, "--ready", str(ready)],
                                     env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.bus.address},
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: ready.exists() or self.proc.poll() is not None, timeout=15)
        assert self.proc.poll() is None, f"the {self.what} did not start"

    def calls(self, member: str | None = None) -> list[dict]:
        if not self.calls_file.exists():
            return []
        calls = [json.loads(line) for line in self.calls_file.read_text().splitlines() if line.strip()]
        return [c for c in calls if member is None or c["member"] == member]

    def close(self) -> None:
        _stop_group(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


class OrcaStandIn(BusStandIn):
    """tests/orca_standin.py on ``bus``: exactly the D-Bus interface of Orca's remote controller
    (``dialect`` "orca51", "orca50" or "orca49"); each call it gets is a JSON line in ``calls``."""

    what = "Orca stand-in"

    def __init__(self, bus: PrivateBus, dialect: str = "orca51", rate: int | None = None,
                 display_message: bool = True):
        super().__init__(bus, "a11y-orca-")
        self.dialect = dialect
        args = [sys.executable, str(HERE / "orca_standin.py"), dialect, str(self.calls_file)]
        if rate is not None:
            args += ["--rate", str(rate)]
        if not display_message:
            args.append("--no-display-message")
        self.args = args
        self.start()

    def start(self) -> None:
        self._launch(self.args)

    def presented(self) -> list[str]:
        return [c["args"][0] for c in self.calls("PresentMessage")]

    def quit(self) -> None:
        _stop_group(self.proc)
