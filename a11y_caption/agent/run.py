"""Running the agent: which hotkey source this desktop allows (our key listener, the desktop's
GlobalShortcuts portal, or the desktop's own shortcuts), the control endpoint, the speaker, and the
loop that waits for Ctrl+C or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import threading

from ..config import Config
from ..errors import ConfigError, HotkeysUnavailable
from .core import Agent
from .lock import single_instance

__all__ = ["NO_PORTAL_HOTKEYS", "check_hotkeys_possible", "run_agent"]


def check_hotkeys_possible() -> str:
    """"wayland" (hotkeys through the desktop portal, else the desktop's own shortcuts) or "listener"
    (our own key listener); raise HotkeysUnavailable, with what to do instead, where neither works."""
    from ..session import display_server

    server = display_server()
    if server in ("windows", "macos"):
        return "listener"
    if server == "wayland":
        return "wayland"
    advice = ("Bind commands such as 'a11y-caption describe --screen' to your desktop's own keyboard "
              "shortcuts instead.")
    if server == "none":
        raise HotkeysUnavailable(f"There is no X display (DISPLAY is not set), so hotkeys cannot work. {advice}")
    try:
        from Xlib import display

        d = display.Display()
    except Exception as e:
        raise HotkeysUnavailable(f"The X display {os.environ['DISPLAY']} cannot be opened. {advice}") from e
    try:
        if not d.has_extension("RECORD"):
            raise HotkeysUnavailable(f"The X server lacks the RECORD extension, which global hotkeys need. {advice}")
    finally:
        d.close()
    return "listener"


NO_PORTAL_HOTKEYS = "with no hotkeys of its own; bind keys with: a11y-caption shortcuts install"


def _wayland_hotkeys(config: Config, agent: Agent):
    """(the GlobalShortcuts portal session or None, the phrase for the first line)."""
    from ..capture.portal import PortalUnavailable
    from ..desktop.portal import GlobalShortcuts
    from ..desktop.shortcuts import binding_description, shortcut_ids

    by_id = dict(zip(shortcut_ids(config.hotkeys), config.hotkeys))
    shortcuts = GlobalShortcuts([(sid, binding_description(b), b.keys) for sid, b in by_id.items()],
                                lambda sid: agent.press(by_id[sid]) if sid in by_id else None)
    try:
        shortcuts.start()
    except PortalUnavailable as e:
        print(f"a11y-caption: no global shortcuts portal ({e}).", file=sys.stderr)
        return None, NO_PORTAL_HOTKEYS
    except HotkeysUnavailable as e:
        print(f"a11y-caption: {e}", file=sys.stderr)
        return None, NO_PORTAL_HOTKEYS
    return shortcuts, f"with hotkeys through {shortcuts.label}"


CLOSE_SECONDS = 0.5  # how long the agent's threads get to end on Ctrl+C or SIGTERM


def _exit_now(status: int) -> None:
    """End the process at once: the agent has closed what must be closed (the control endpoint, the
    speech, the transcript), and the interpreter's own teardown (the model library's threads, a
    read still going on) took seconds."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def run_agent(config: Config) -> int:
    """Run until Ctrl+C or SIGTERM. Returns the exit status."""
    from .control import ControlServer
    from ..speech import open_speaker

    if not config.hotkeys:
        raise ConfigError(config.path, None, "binds no hotkeys, so the agent would answer no key; take out "
                                             "'hotkey = []' (or '[hotkeys] replace = true') to keep the packaged "
                                             "ones, or add [[hotkey]] tables")
    mechanism = check_hotkeys_possible()
    with single_instance():
        speaker = open_speaker(config.speech, echo_when_silent=True)
        agent = Agent(config, speaker)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        if mechanism == "wayland":
            listener, hotkeys = _wayland_hotkeys(config, agent)
        else:
            from ..hotkeys import start_listener

            listener, hotkeys = start_listener((b.keys, lambda b=b: agent.press(b)) for b in config.hotkeys), ""
        server = ControlServer(agent.handle_request)
        server.start()
        agent.start(hotkeys, keys=listener is not None)
        print(f"a11y-caption: listening for {len(config.hotkeys) if listener else 0} hotkeys from {config.path}; "
              "Ctrl+C quits.", file=sys.stderr)
        try:
            while not done.wait(0.5):
                if listener is not None and not listener.is_alive():
                    raise HotkeysUnavailable("The hotkey listener stopped; see the log.")
        except KeyboardInterrupt:
            pass
        finally:
            if listener is not None:
                listener.stop()
            server.close()
            # Generation stops at Stop's pace; a model load or an OCR read cannot be interrupted, and
            # nothing is lost by not waiting for them.
            agent.close(timeout=CLOSE_SECONDS)
            speaker.close()
        print("a11y-caption: stopped.", file=sys.stderr)
    _exit_now(0)
