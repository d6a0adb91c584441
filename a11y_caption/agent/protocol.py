"""The agent's control protocol, version 2, as both ends speak it: the sizes, the ops, the errors
a client can meet, one JSON message per length-prefixed frame (never pickle), and the socket
options both ends use to bound every wait. The whole protocol is described in control.py."""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import A11yCaptionError

__all__ = [
    "IDLE_TIMEOUT", "MAX_IMAGE_BYTES", "MAX_REQUEST_BYTES", "OPS", "PROTOCOL", "AgentBusy", "AgentNotAnswering",
    "AgentNotRunning", "ProtocolError", "address", "peer_uid", "receive", "send", "set_read_timeout", "shut_down",
]

PROTOCOL = 2
MAX_REQUEST_BYTES = 64 * 1024  # the JSON part: a prompt, never a picture
MAX_IMAGE_BYTES = 48 * 1024 * 1024  # a 7680x4320 PNG screenshot fits; 100 MB of garbage does not
IDLE_TIMEOUT = 15.0  # the client's wait between messages: many "alive" periods
OPS = ("describe", "read", "ask", "stop", "repeat", "copy_last", "status", "release", "keys")


class AgentNotRunning(A11yCaptionError):
    def __init__(self, detail: str = "No a11y-caption agent is running for this user."):
        super().__init__(detail)


class AgentBusy(A11yCaptionError):
    """The agent runs but had no room for the request: never a reason to load a second model."""


class AgentNotAnswering(A11yCaptionError):
    """Something listens at the agent's address but does not answer in time (a frozen agent)."""


class ProtocolError(A11yCaptionError):
    pass


def address(folder: Path) -> tuple[str, str]:
    if sys.platform == "win32":
        import getpass

        return rf"\\.\pipe\a11y-caption-{getpass.getuser()}", "AF_PIPE"
    return str(folder / "agent.sock"), "AF_UNIX"


def send(conn, message: dict) -> None:
    conn.send_bytes(json.dumps(message, ensure_ascii=False).encode("utf-8"))


def receive(conn, limit: int = MAX_REQUEST_BYTES) -> dict:
    try:
        message = json.loads(conn.recv_bytes(limit).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("The message is not JSON.") from e
    if not isinstance(message, dict):
        raise ProtocolError("The message is not a JSON object.")
    return message


@contextmanager
def _socket_of(fileno: int):
    """A socket object for another one's file descriptor (a duplicate, closed on leaving)."""
    with socket.socket(fileno=os.dup(fileno)) as s:
        yield s


def peer_uid(fileno: int) -> int | None:
    """The uid of the process at the other end of socket ``fileno`` (Linux), or None where the
    platform does not say."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    with _socket_of(fileno) as s:
        _pid, uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def set_read_timeout(fileno: int, seconds: float | None, option: int = socket.SO_RCVTIMEO) -> None:
    """Bound how long one read of socket ``fileno`` may wait (POSIX), so a silent peer is noticed;
    with ``option`` SO_SNDTIMEO, one write (a peer that never reads)."""
    if os.name != "posix":
        return
    with _socket_of(fileno) as s:
        whole = int(seconds or 0)
        s.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, int(((seconds or 0) - whole) * 1e6)))


def shut_down(fileno: int) -> None:
    """Wake any read or write on socket ``fileno`` with an error (from another thread)."""
    try:
        with _socket_of(fileno) as s:
            s.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass
