"""A small client for SSIP, the protocol of speech-dispatcher.

Why not the speechd bindings: they are not on PyPI under their own name (Debian's python3-speechd
is for the system Python only; speechd-unofficial is a personal fork), and two of their known
gaps matter here: a command waits forever if the daemon dies between the command and its reply,
and an END event that arrives before the message id is known is dropped (both TODOs in their
client.py). Here the reader thread fails every waiter when the connection ends, and END/CANCEL
events are matched to message ids whenever they arrive. No autospawn: a daemon that is not there
is simply not there.

Protocol (SSIP, speech-dispatcher's documentation): CRLF lines; replies are ``NNN-data`` lines
ending with ``NNN text``; events are 7xx replies (msg id, client id, event name); ``SPEAK`` is
followed by the text, dot-escaped, ending with a line holding a single ``.``.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["EndTracker", "SSIPConnection", "SSIPError", "default_address"]

END_EVENTS = {"702": "end", "703": "cancel"}


class SSIPError(Exception):
    """The daemon is unreachable, went away, or refused a command."""


def default_address() -> tuple[str, object]:
    """Where speech-dispatcher listens: SPEECHD_ADDRESS ("unix_socket:PATH" or
    "inet_socket:HOST:PORT"), else its usual socket under XDG_RUNTIME_DIR (as the speechd bindings)."""
    address = os.environ.get("SPEECHD_ADDRESS", "").strip()
    if address:
        method, _, rest = address.partition(":")
        if method == "unix_socket" and rest:
            return "unix", rest
        if method == "inet_socket":
            host, _, port = rest.partition(":")
            return "inet", (host or "127.0.0.1", int(port or 6560))
        raise SSIPError(f"SPEECHD_ADDRESS {address!r} is not unix_socket:PATH or inet_socket:HOST:PORT")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return "unix", os.path.join(runtime, "speech-dispatcher", "speechd.sock")


class SSIPConnection:
    """One connection; ``on_event(msg_id, "end" | "cancel")`` and ``on_lost()`` are called from
    the reader thread."""

    def __init__(self, *, on_event: Callable[[int, str], None],
                 on_lost: Callable[[], None], timeout: float = 2.0, address=None):
        kind, where = address or default_address()
        self._timeout = timeout
        self._on_event, self._on_lost = on_event, on_lost
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(where)
        except OSError as e:
            self._sock.close()
            raise SSIPError(f"speech-dispatcher is not reachable at {where} ({e.strerror or e})") from e
        self._sock.settimeout(None)
        self._replies: queue.Queue = queue.Queue()
        self._command_lock = threading.Lock()
        self.closed = False
        self._reader = threading.Thread(target=self._read_loop, name="a11y-ssip-reader", daemon=True)
        self._reader.start()
        try:
            self.command(f"SET SELF CLIENT_NAME {_user()}:a11y-caption:main")
            self.command("SET SELF NOTIFICATION end on")
            self.command("SET SELF NOTIFICATION cancel on")
        except SSIPError:
            self.close()
            raise

    def command(self, line: str) -> tuple[str, list[str]]:
        """Send one command; returns (code, data lines). Raises SSIPError on a refusal or loss."""
        with self._command_lock:
            return self._exchange(line.encode("utf-8") + b"\r\n")

    def speak(self, text: str) -> int:
        """Queue ``text`` on the daemon; returns its message id."""
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = b"".join((b"." + l.encode("utf-8") if l.startswith(".") else l.encode("utf-8")) + b"\r\n" for l in lines)
        with self._command_lock:
            code, _ = self._exchange(b"SPEAK\r\n", expect="230")
            code, data = self._exchange(body + b".\r\n")
        try:
            return int(data[0])
        except (IndexError, ValueError) as e:
            raise SSIPError(f"speech-dispatcher answered SPEAK with {code} {data}") from e

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._sock.sendall(b"QUIT\r\n")
            except OSError:
                pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=2)

    def _exchange(self, data: bytes, expect: str = "2") -> tuple[str, list[str]]:
        if self.closed:
            raise SSIPError("the connection to speech-dispatcher is closed")
        try:
            self._sock.sendall(data)
            reply = self._replies.get(timeout=self._timeout)
        except (OSError, queue.Empty) as e:
            # A late reply would be taken as the answer to the next command: give the connection up.
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise SSIPError("speech-dispatcher did not answer") from e
        if reply is None:
            self._replies.put(None)  # keep failing later waiters too
            raise SSIPError("speech-dispatcher went away")
        code, message, data_lines = reply
        if not code.startswith(expect):
            raise SSIPError(f"speech-dispatcher refused: {code} {message}")
        return code, data_lines

    def _read_loop(self) -> None:
        buffer, data_lines = b"", []
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\r\n" in buffer:
                    raw, buffer = buffer.split(b"\r\n", 1)
                    line = raw.decode("utf-8", "replace")
                    code, sep, rest = line[:3], line[3:4], line[4:]
                    if sep == "-":
                        data_lines.append(rest)
                        continue
                    if code.startswith("7"):
                        if code in END_EVENTS and data_lines:
                            try:
                                self._on_event(int(data_lines[0]), END_EVENTS[code])
                            except ValueError:
                                pass
                    else:
                        self._replies.put((code, rest, data_lines))
                    data_lines = []
        except OSError:
            pass
        finally:
            was_closed, self.closed = self.closed, True
            self._replies.put(None)
            if not was_closed:
                self._on_lost()


class EndTracker:
    """Matches END/CANCEL events to callbacks by message id, whichever arrives first."""

    def __init__(self, remember: int = 64):
        self._lock = threading.Lock()
        self._waiting: dict[int, Callable[[str], None]] = {}
        self._seen: OrderedDict[int, str] = OrderedDict()
        self._remember = remember

    def expect(self, msg_id: int, callback: Callable[[str], None]) -> None:
        with self._lock:
            event = self._seen.pop(msg_id, None)
            if event is None:
                self._waiting[msg_id] = callback
        if event is not None:
            callback(event)

    def event(self, msg_id: int, event: str) -> None:
        with self._lock:
            callback = self._waiting.pop(msg_id, None)
            if callback is None:
                self._seen[msg_id] = event
                while len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
        if callback is not None:
            callback(event)

    def fail_all(self, outcome: str) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for callback in waiting.values():
            callback(outcome)


def _user() -> str:
    try:
        import getpass

        return getpass.getuser().replace(":", "_").replace(" ", "_") or "user"
    except Exception:
        return "user"
