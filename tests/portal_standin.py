"""A stand-in for xdg-desktop-portal, for contract tests (no portal backend offers Screenshot or
GlobalShortcuts on this machine's headless sway; see README "Wayland").

It owns org.freedesktop.portal.Desktop on the session bus and answers, at
/org/freedesktop/portal/desktop, with the documented signatures and the Request/Response flow
(the method returns the request path /org/freedesktop/portal/desktop/request/SENDER/TOKEN, then
the Response(u, a{sv}) signal comes from that path):
- org.freedesktop.host.portal.Registry.Register(sa{sv}) (left out with --no-registry, as before 1.19)
- org.freedesktop.portal.Screenshot.Screenshot(sa{sv}) -> o: with --screenshot allow it copies IMAGE
  into PICTURES and answers 0 with its ``uri``; "refuse" answers 1; "missing" has no such interface
- org.freedesktop.portal.GlobalShortcuts.CreateSession(a{sv}) and BindShortcuts(oa(sa{sv})sa{sv});
  Activated(o, s, t, a{sv}) is sent when the test calls org.a11ycaption.StandIn.Activate(s id);
  "missing" (--shortcuts missing) has no such interface, "refuse" answers BindShortcuts with 1
- org.freedesktop.portal.Session.Close() at a session path
Every call is a JSON line in CALLS. Usage: portal_standin.py CALLS [--image PNG --pictures DIR]
[--screenshot allow|refuse|missing] [--shortcuts allow|refuse|missing] [--no-registry] [--ready FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

PATH = "/org/freedesktop/portal/desktop"


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("calls")
    p.add_argument("--image")
    p.add_argument("--pictures")
    p.add_argument("--screenshot", choices=("allow", "refuse", "missing"), default="allow")
    p.add_argument("--shortcuts", choices=("allow", "refuse", "missing"), default="allow")
    p.add_argument("--no-registry", action="store_true")
    p.add_argument("--ready")
    args = p.parse_args()

    conn = open_dbus_connection("SESSION")
    assert conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.portal.Desktop", 4)).body[0] == 1
    log = open(args.calls, "a", buffering=1, encoding="utf-8")
    if args.ready:
        Path(args.ready).touch()
    sessions: dict[str, str] = {}  # session path -> owner's unique name
    shots = 0

    def respond(msg, request_path: str, response: int, results: dict) -> None:
        conn.send(new_method_return(msg, "o", (request_path,)))
        signal = new_signal(DBusAddress(request_path, interface="org.freedesktop.portal.Request"), "Response",
                            "ua{sv}", (response, results))
        signal.header.fields[HeaderFields.destination] = msg.header.fields[7]  # DESTINATION: the caller, as the portal does
        conn.send(signal)

    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        f = msg.header.fields
        path, interface, member, sender = f.get(1), f.get(2), f.get(3), f.get(7)
        signature = f.get(8, "")
        log.write(json.dumps({"path": path, "interface": interface, "member": member, "signature": signature,
                              "args": _plain(msg.body), "t": time.monotonic()}) + "\n")
        caller = sender.lstrip(":").replace(".", "_")
        options = msg.body[-1] if msg.body and isinstance(msg.body[-1], dict) else {}
        token = options.get("handle_token", ("s", "t"))[1]
        request_path = f"{PATH}/request/{caller}/{token}"
        key = (interface, member, signature)
        if key == ("org.a11ycaption.StandIn", "Activate", "s"):
            conn.send(new_method_return(msg))
            for session, owner in sessions.items():
                signal = new_signal(DBusAddress(PATH, interface="org.freedesktop.portal.GlobalShortcuts"),
                                    "Activated", "osta{sv}", (session, msg.body[0], int(time.time() * 1000), {}))
                signal.header.fields[HeaderFields.destination] = owner
                conn.send(signal)
        elif key == ("org.freedesktop.host.portal.Registry", "Register", "sa{sv}") and not args.no_registry:
            conn.send(new_method_return(msg))
        elif key == ("org.freedesktop.portal.Screenshot", "Screenshot", "sa{sv}") and args.screenshot != "missing":
            if args.screenshot == "refuse":
                respond(msg, request_path, 1, {})
                continue
            shots += 1
            target = Path(args.pictures) / f"Screenshot-{shots}.png"
            shutil.copyfile(args.image, target)
            respond(msg, request_path, 0, {"uri": ("s", target.as_uri())})
        elif key == ("org.freedesktop.portal.GlobalShortcuts", "CreateSession", "a{sv}") \
                and args.shortcuts != "missing":
            session = f"{PATH}/session/{caller}/{options['session_handle_token'][1]}"
            sessions[session] = sender
            respond(msg, request_path, 0, {"session_handle": ("s", session)})
        elif key == ("org.freedesktop.portal.GlobalShortcuts", "BindShortcuts", "oa(sa{sv})sa{sv}") \
                and args.shortcuts != "missing":
            if args.shortcuts == "refuse" or msg.body[0] not in sessions:
                respond(msg, request_path, 1 if args.shortcuts == "refuse" else 2, {})
                continue
            bound = [(sid, {"description": props["description"],
                            "trigger_description": ("s", props.get("preferred_trigger", ("s", ""))[1])})
                     for sid, props in msg.body[1]]
            respond(msg, request_path, 0, {"shortcuts": ("a(sa{sv})", bound)})
        elif key == ("org.freedesktop.portal.Session", "Close", "") and path in sessions:
            sessions.pop(path)
            conn.send(new_method_return(msg))
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                (f"no {interface}.{member}({signature}) here",)))


if __name__ == "__main__":
    raise SystemExit(main())
