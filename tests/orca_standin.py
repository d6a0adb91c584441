"""A stand-in for Orca's D-Bus remote controller, for contract tests (Orca 49+ is not packaged here).

It owns the bus name of one Orca version and answers exactly the methods and signatures that
version publishes (see a11y_caption/speech/orca.py for the sources they were checked against);
anything else gets the errors a real D-Bus service gives. Every call is appended as a JSON line
to CALLS. Usage: orca_standin.py {orca51|orca50|orca49} CALLS [--rate N] [--no-display-message]
[--ready FILE]
"""

from __future__ import annotations

import argparse
import json
import time

from jeepney import MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

DIALECTS = {
    "orca51": ("org.gnome.Orca1.Service", "/org/gnome/Orca1/Service", "org.gnome.Orca1.Service",
               "/org/gnome/Orca1/Service/SpeechManager", "org.gnome.Orca1.SpeechManager"),
    "orca50": ("org.gnome.Orca.Service", "/org/gnome/Orca/Service", "org.gnome.Orca.Service",
               "/org/gnome/Orca/Service/SpeechManager", "org.gnome.Orca.Module"),
    "orca49": ("org.gnome.Orca.Service", "/org/gnome/Orca/Service", "org.gnome.Orca.Service",
               "/org/gnome/Orca/Service/SpeechAndVerbosityManager", "org.gnome.Orca.Module"),
}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("dialect", choices=DIALECTS)
    p.add_argument("calls")
    p.add_argument("--rate", type=int, default=50)
    p.add_argument("--no-display-message", action="store_true")
    p.add_argument("--ready")
    args = p.parse_args()
    bus_name, path, iface, speech_path, speech_iface = DIALECTS[args.dialect]
    v1 = args.dialect == "orca51"

    service = {("PresentMessage", "s"): "b", ("GetVersion", ""): "s", ("ListCommands", ""): "a(ss)"}
    if v1:
        service[("SpeakMessage", "s")] = "b"
        if not args.no_display_message:
            service[("DisplayMessage", "sb")] = "b"
    if v1:
        speech = {("InterruptSpeech", "b"): "b"}
    else:
        speech = {("ExecuteCommand", "sb"): "b", ("ExecuteRuntimeGetter", "s"): "v", ("ListCommands", ""): "a(ss)"}
    objects = {(path, iface): service, (speech_path, speech_iface): speech}

    conn = open_dbus_connection("SESSION")
    reply = conn.send_and_get_reply(message_bus.RequestName(bus_name, 4))  # DO_NOT_QUEUE
    assert reply.body[0] == 1, f"could not own {bus_name}"
    if args.ready:
        open(args.ready, "w").close()
    log = open(args.calls, "a", buffering=1, encoding="utf-8")
    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        f = msg.header.fields
        obj_path, interface, member = f.get(1), f.get(2), f.get(3)
        signature = f.get(8, "")
        log.write(json.dumps({"path": obj_path, "interface": interface, "member": member,
                              "args": list(msg.body), "t": time.monotonic()}) + "\n")
        if (obj_path, interface, member, signature) == (speech_path, "org.freedesktop.DBus.Properties", "Get", "ss") \
                and v1 and msg.body == (speech_iface, "Rate"):
            conn.send(new_method_return(msg, "v", (("i", args.rate),)))
            continue
        methods = objects.get((obj_path, interface))
        if methods is None:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownObject" if not any(
                p == obj_path for p, _ in objects) else "org.freedesktop.DBus.Error.UnknownInterface",
                "s", (f"no {interface} at {obj_path}",)))
            continue
        out = methods.get((member, signature))
        if out is None:
            known = any(m == member for m, _ in methods)
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs" if known
                                else "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"{member}({signature})",)))
            continue
        if member == "ExecuteCommand" and msg.body[0] != "InterruptSpeech":
            conn.send(new_method_return(msg, "b", (False,)))
        elif member == "ExecuteRuntimeGetter":
            conn.send(new_method_return(msg, "v", (("i", args.rate),)) if msg.body[0] == "Rate"
                      else new_error(msg, "org.freedesktop.DBus.Error.Failed", "s", ("unknown getter",)))
        elif out == "b":
            conn.send(new_method_return(msg, "b", (True,)))
        elif out == "s":
            conn.send(new_method_return(msg, "s", ("51.0" if v1 else "49.5",)))
        else:
            conn.send(new_method_return(msg, "a(ss)", ([("InterruptSpeech", "Interrupts speech.")],)))


if __name__ == "__main__":
    raise SystemExit(main())
