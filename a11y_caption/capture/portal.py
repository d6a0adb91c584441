"""The desktop's xdg-desktop-portal over D-Bus (jeepney): its calls and requests, and Screenshot
(desktop/portal.py binds GlobalShortcuts through the same calls).

Checked against the documented interfaces (flatpak.github.io/xdg-desktop-portal):
- every portal method takes a ``handle_token`` and returns a Request object path; the answer comes
  later as that Request's ``Response(u response, a{sv} results)`` signal: 0 success, 1 the user
  cancelled, 2 anything else. The path is predictable
  (``/org/freedesktop/portal/desktop/request/SENDER/TOKEN``), so we listen before calling and
  cannot miss an answer that comes fast;
- ``org.freedesktop.portal.Screenshot.Screenshot(s parent_window, a{sv} options)``; results ``uri``;
- ``org.freedesktop.portal.GlobalShortcuts``: ``CreateSession(a{sv})`` (results ``session_handle``),
  ``BindShortcuts(o session, a(sa{sv}) shortcuts, s parent_window, a{sv})`` with ``description``
  and ``preferred_trigger`` per shortcut, and the ``Activated(o session, s id, t timestamp, a{sv})``
  signal;
- ``org.freedesktop.host.portal.Registry.Register(s app_id, a{sv})`` (xdg-desktop-portal 1.19+):
  tells the portal which app an unsandboxed process is, before its first other call on the
  connection, so that permissions are stored for that app; older portals lack it, which is fine.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
from urllib.parse import unquote, urlparse

from ..errors import CaptureError

__all__ = ["APP_ID", "Failed", "PortalUnavailable", "Refused", "call", "close_router", "open_router", "portal_request",
           "register", "session_bus_address", "take_screenshot"]

log = logging.getLogger(__name__)

APP_ID = "io.github.a11y_caption.A11yCaption"  # the shipped a11y_caption/data/<APP_ID>.desktop
BUS_NAME = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
REQUEST = "org.freedesktop.portal.Request"
_MISSING = {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
            "org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownInterface",
            "org.freedesktop.DBus.Error.UnknownObject"}


class PortalUnavailable(Exception):
    """No portal (or not this interface of it) on the session bus; ``str()`` is the reason as a
    clause ("there is no D-Bus session bus"), for the caller's one sentence."""


class Refused(Exception):
    """The Request ended with response 1 (the user cancelled or refused)."""


class Failed(Exception):
    """The Request ended with response 2, or its answer never came."""


def open_router():
    from jeepney.io.threading import DBusRouter, open_dbus_connection

    address = session_bus_address()
    if not address:
        raise PortalUnavailable("there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)")
    try:
        conn = open_dbus_connection(address)
    except Exception as e:
        raise PortalUnavailable("the D-Bus session bus cannot be reached") from e
    return DBusRouter(conn)


def session_bus_address() -> str | None:
    """The session bus address this process would use, or None."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    runtime_bus = os.path.join(os.environ.get("XDG_RUNTIME_DIR", ""), "bus")
    if not address and os.environ.get("XDG_RUNTIME_DIR") and os.path.exists(runtime_bus):
        address = f"unix:path={runtime_bus}"  # the systemd user bus, where the variable is not passed on
    return address


def close_router(router) -> None:
    router.close()
    router.conn.close()


def call(router, interface: str, method: str, signature: str, body: tuple, timeout: float = 10.0,
          path: str = PATH) -> tuple:
    from jeepney import DBusAddress, new_method_call
    from jeepney.wrappers import DBusErrorResponse, unwrap_msg

    address = DBusAddress(path, bus_name=BUS_NAME, interface=interface)
    try:
        return unwrap_msg(router.send_and_get_reply(new_method_call(address, method, signature, body),
                                                    timeout=timeout))
    except DBusErrorResponse as e:
        if e.name in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
            raise PortalUnavailable("no desktop portal (xdg-desktop-portal) runs on the session bus") from e
        if e.name in _MISSING:
            raise PortalUnavailable(f"the desktop portal has no {interface.rsplit('.', 1)[-1]} interface") from e
        raise


def _desktop_file(app_id: str) -> None:
    """The portal knows an app by its .desktop file: put the shipped one (with this install's
    command) in the user's applications folder unless one is there already."""
    from importlib.resources import files

    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    dirs = [data_home, *(os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")]
    if any(os.path.exists(os.path.join(d, "applications", f"{app_id}.desktop")) for d in dirs if d):
        return
    from ..launcher import command_path, desktop_exec
    from ..errors import A11yCaptionError

    text = (files("a11y_caption") / "data" / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    try:
        text = text.replace("Exec=a11y-caption run", "Exec=" + desktop_exec([*command_path(), "run"]))
    except A11yCaptionError:  # an install path no desktop entry can hold: the portal goes without the file
        log.debug("the install path cannot be written in a .desktop file", exc_info=True)
        return
    try:
        os.makedirs(os.path.join(data_home, "applications"), exist_ok=True)
        with open(os.path.join(data_home, "applications", f"{app_id}.desktop"), "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        log.debug("could not write the .desktop file the portal looks for", exc_info=True)


def register(router, app_id: str) -> None:
    """Registry.Register where the portal has it (it must come before any other portal call)."""
    _desktop_file(app_id)
    try:
        call(router, "org.freedesktop.host.portal.Registry", "Register", "sa{sv}", (app_id, {}))
    except PortalUnavailable:
        log.debug("the portal has no Registry (before xdg-desktop-portal 1.19); going on without it")


def portal_request(router, interface: str, method: str, signature: str, body_before_options: tuple,
             options: dict, timeout: float) -> dict:
    """Call a portal method that answers through a Request; returns the Response's results.

    Raises Refused (response 1), Failed (response 2, or no answer in ``timeout`` seconds) or
    PortalUnavailable.
    """
    from jeepney import MatchRule, message_bus

    token = "a11y_caption_" + secrets.token_hex(6)
    sender = router.unique_name.lstrip(":").replace(".", "_")
    rule = MatchRule(type="signal", interface=REQUEST, member="Response",
                     path=f"{PATH}/request/{sender}/{token}")
    router.send_and_get_reply(message_bus.AddMatch(rule), timeout=10)
    try:
        with router.filter(rule, bufsize=4) as answers:
            call(router, interface, method, signature, (*body_before_options, {**options, "handle_token": ("s", token)}))
            try:
                response, results = answers.get(timeout=timeout).body
            except queue.Empty:
                raise Failed(f"no answer in {timeout:.0f} s") from None
    finally:
        router.send(message_bus.RemoveMatch(rule))
    if response == 1:
        raise Refused()
    if response != 0:
        raise Failed(f"response {response}")
    return {key: value for key, (_sig, value) in results.items()}


def take_screenshot(app_id: str = APP_ID, timeout: float = 120.0) -> bytes:
    """The whole desktop as image file bytes (PNG), through the Screenshot portal, non-interactive.

    The portal writes the picture to a file and gives its URI; we read it and delete it at once, so
    that no screenshot stays on disk. ``timeout`` leaves time for the desktop's one-time permission
    dialog.

    Raises:
        PortalUnavailable: no session bus, no portal, or a portal without Screenshot.
        CaptureError: the user or the desktop refused, or the portal failed.
    """
    router = open_router()
    try:
        register(router, app_id)
        try:
            results = portal_request(router, "org.freedesktop.portal.Screenshot", "Screenshot", "sa{sv}", ("",),
                               {"interactive": ("b", False)}, timeout)
        except Refused:
            raise CaptureError("Screen capture was refused; allow a11y-caption to take screenshots in your "
                               "desktop's privacy settings.") from None
        except Failed as e:
            raise CaptureError("The desktop's screenshot portal could not take the screenshot.") from e
    finally:
        close_router(router)
    uri = results.get("uri", "")
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise CaptureError("The desktop's screenshot portal gave no picture.")
    path = unquote(parsed.path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CaptureError("The picture from the desktop's screenshot portal could not be read.") from e
    try:
        os.unlink(path)
    except OSError:
        log.warning("the portal's screenshot file could not be removed")
    return data
