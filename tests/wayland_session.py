"""A real headless Wayland session for the tests: sway 1.7 (wlroots headless backend, pixman
renderer) run as an unprivileged user, because wlroots refuses to run as root; foot terminals on it.

Our own code runs as the test process (root in CI) and reaches the session through its
XDG_RUNTIME_DIR, WAYLAND_DISPLAY and SWAYSOCK, as a program started inside the session would.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import wait_for
from screen_readers import BusStandIn

USER = "a11y-caption-wl"  # created once, without a home or a login shell
TOOLS = ("sway", "swaymsg", "grim", "foot", "wl-copy", "wl-paste", "runuser", "useradd")


def require_wayland_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    message = f"missing: {', '.join(missing)} (make test installs them)" if missing else ""
    if not message and os.geteuid() != 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            message = f"the Wayland tests run sway as the user {USER}, which only root can create"
    if message:
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run these tests, never skip them
        pytest.skip(message)


def _user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True,
                       capture_output=True, timeout=30)
        return pwd.getpwnam(USER)


def _stop_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


class Sway:
    """sway on a 1280x800 headless output; ``env`` is what a program inside the session sees."""

    def __init__(self, extra_config: str = ""):
        require_wayland_tools()
        user = _user()
        # Not under the suite's temp folder: that one is root's own (0700), and sway's user must get in.
        self.root = Path(tempfile.mkdtemp(prefix="a11y-wayland-", dir="/tmp"))
        os.chown(self.root, user.pw_uid, user.pw_gid)
        self.runtime = self.root
        config = self.root / "sway.conf"
        config.write_text("output HEADLESS-1 resolution 1280x800\ndefault_border none\n"
                          "focus_follows_mouse no\n" + extra_config)
        config.chmod(0o644)
        self.user_env = {"HOME": str(self.root), "XDG_RUNTIME_DIR": str(self.runtime), "PATH": "/usr/bin:/bin",
                         "LANG": "C.UTF-8", "WLR_BACKENDS": "headless", "WLR_RENDERER": "pixman",
                         "WLR_LIBINPUT_NO_DEVICES": "1"}
        self.procs: list[subprocess.Popen] = []
        self.sway = self._spawn(["sway", "-c", str(config)])
        try:
            wayland = wait_for(lambda: self._socket("wayland-*"), timeout=30)
            ipc = wait_for(lambda: self._socket("sway-ipc.*.sock"), timeout=30)
            self.env = {"XDG_RUNTIME_DIR": str(self.runtime), "WAYLAND_DISPLAY": wayland.name,
                        "SWAYSOCK": str(ipc), "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "sway"}
            wait_for(lambda: self.swaymsg("get_outputs").returncode == 0, timeout=30)
        except BaseException:
            self.close()
            raise

    def _socket(self, pattern: str) -> Path | None:
        if self.sway.poll() is not None:
            raise AssertionError(f"sway exited with status {self.sway.returncode}")
        return next((p for p in self.runtime.glob(pattern) if p.is_socket()), None)

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(["runuser", "-u", USER, "--", "env", "-i", *(f"{k}={v}" for k, v in self.user_env.items()),
                              *(f"{k}={v}" for k, v in getattr(self, "env", {}).items()), *args],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def swaymsg(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["swaymsg", *args] if args[0].startswith("-") else ["swaymsg", "-t", *args],
                              env={**os.environ, **self.env}, capture_output=True, text=True, timeout=30)

    def windows(self) -> list[dict]:
        import json

        tree = json.loads(self.swaymsg("get_tree").stdout)
        found, stack = [], [tree]
        while stack:
            node = stack.pop()
            if node.get("type") == "con" and not node.get("nodes") and node.get("app_id"):
                found.append(node)
            stack.extend(node.get("nodes", []) + node.get("floating_nodes", []))
        return found

    def terminal(self, text: str, title: str) -> dict:
        """A foot terminal showing ``text`` in large letters; returns its node once it is mapped."""
        before = {w["id"] for w in self.windows()}
        script = f"printf '%s\\n' {' '.join(_quote(line) for line in text.splitlines())}; exec sleep 3600"
        self._spawn(["foot", "--title", title, "-o", "font=monospace:size=20", "-o", "cursor.blink=no",
                     "sh", "-c", script])
        return wait_for(lambda: next((w for w in self.windows() if w["id"] not in before
                                      and w.get("visible") and w["rect"]["width"] > 0), None), timeout=30)

    def close(self) -> None:
        for p in reversed(self.procs):
            _stop_group(p)
        shutil.rmtree(self.root, ignore_errors=True)


def _quote(line: str) -> str:
    return "'" + line.replace("'", "'\\''") + "'"


def wait_drawn(sway: Sway, node: dict, min_light_pixels: int = 800) -> None:
    """Until the window shows more than a cursor: text drawn (light pixels on foot's dark ground)."""
    import io

    from PIL import Image

    r = node["rect"]

    def drawn() -> bool:
        shot = subprocess.run(["grim", "-t", "ppm", "-g", f"{r['x']},{r['y']} {r['width']}x{r['height']}", "-"],
                              env={**os.environ, **sway.env}, capture_output=True, timeout=30)
        if shot.returncode != 0:
            return False
        grey = Image.open(io.BytesIO(shot.stdout)).convert("L")
        return sum(grey.histogram()[128:]) > min_light_pixels

    wait_for(drawn, timeout=30, interval=0.1)


class PortalStandIn(BusStandIn):
    """tests/portal_standin.py on a private bus: the documented portal interfaces (contract tests)."""

    what = "portal stand-in"

    def __init__(self, bus, image: Path, *flags: str):
        super().__init__(bus, "a11y-portal-")
        self.pictures = self.root / "Pictures"
        self.pictures.mkdir()
        self._launch([sys.executable, str(Path(__file__).with_name("portal_standin.py")), str(self.calls_file),
                      "--image", str(image), "--pictures", str(self.pictures), *flags])

    def activate(self, shortcut_id: str) -> None:
        """What the desktop does when the user presses a bound shortcut: the Activated signal."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        with open_dbus_connection(self.bus.address) as conn:
            conn.send_and_get_reply(new_method_call(
                DBusAddress("/org/freedesktop/portal/desktop", bus_name="org.freedesktop.portal.Desktop",
                            interface="org.a11ycaption.StandIn"), "Activate", "s", (shortcut_id,)), timeout=10)

class BareBus:
    """A private session bus that starts no service on demand (no service folders), so that "no
    portal" is what it says even where xdg-desktop-portal is installed."""

    def __init__(self):
        from screen_readers import require

        require("dbus-daemon")
        self.root = Path(tempfile.mkdtemp(prefix="a11y-barebus-"))
        config = self.root / "bus.conf"
        config.write_text(
            '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" '
            '"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
            f'<busconfig><type>session</type><listen>unix:dir={self.root}</listen>'
            '<auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/>'
            '<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n')
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            self.close()
            raise AssertionError("dbus-daemon did not start")

    def close(self) -> None:
        _stop_group(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)
