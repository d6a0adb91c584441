"""The client side of the agent's control endpoint: one request, its reply messages as they
come, and one reader of a whole reply, used by every command and the index."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import connection
from pathlib import Path

from ..errors import A11yCaptionError
from .protocol import (
    IDLE_TIMEOUT, PROTOCOL, AgentBusy, AgentNotAnswering, AgentNotRunning, address, peer_uid, receive, send,
    set_read_timeout,
)
from .runtime import runtime_dir

__all__ = ["Answer", "read_reply", "request"]


@dataclass
class Answer:
    """An agent's whole reply: the text (the ``done`` message's, else the chunks joined), the
    ``done`` message itself, and ``stopped`` ("stop", "replaced") when it ended without an answer."""

    text: str = ""
    done: dict = field(default_factory=dict)
    stopped: str | None = None

    @property
    def model(self) -> str | None:
        return self.done.get("model")


def read_reply(messages: Iterable[dict], on_chunk: Callable[[str], None] | None = None) -> Answer:
    """Read a reply from ``request`` to its end; ``on_chunk(text)`` as each piece comes.

    Raises:
        A11yCaptionError: the agent answered with an error (its sentence), or stopped answering.
    """
    parts = []
    for message in messages:
        kind = message.get("type")
        if kind == "chunk":
            text = message.get("text")
            text = text if isinstance(text, str) else ""
            parts.append(text)
            if on_chunk is not None:
                on_chunk(text)
        elif kind == "error":
            raise A11yCaptionError(str(message.get("message") or "The agent could not do it."))
        elif kind == "stopped":
            return Answer("".join(parts), {}, "replaced" if message.get("reason") == "replaced" else "stop")
        elif kind == "done":
            text = message.get("text")
            return Answer(text if isinstance(text, str) and text else "".join(parts), message)
    raise A11yCaptionError("The agent stopped answering.")


def request(op: str, *, image: bytes | None = None, folder: Path | None = None, timeout: float = 5.0,
            idle_timeout: float = IDLE_TIMEOUT, on_alive: Callable[[], None] | None = None,
            **fields) -> Iterator[dict]:
    """Send one request to the running agent; yield its reply messages, ending with the last one
    ("alive" messages are not yielded: ``on_alive()`` is called for each, the agent saying it is
    still at work).

    ``timeout``: for connecting and the handshake; ``idle_timeout``: between two messages.

    Raises:
        AgentNotRunning: no agent listens for this user (the caller then works in-process).
        AgentBusy: the agent has no room for another request now.
        AgentNotAnswering: something listens but does not answer in time.
        A11yCaptionError: the runtime folder is not private, or the listener is another user's.
    """
    folder = folder or runtime_dir()  # a folder that is not private is said, not taken for "no agent"
    where, family = address(folder)
    try:
        key = (folder / "agent.key").read_bytes()
    except OSError as e:
        raise AgentNotRunning() from e
    conn = _connect(where, family, key, timeout)
    try:
        if family == "AF_UNIX":
            set_read_timeout(conn.fileno(), idle_timeout)
            set_read_timeout(conn.fileno(), idle_timeout, socket.SO_SNDTIMEO)
        try:
            send(conn, {"v": PROTOCOL, "op": op, **fields, "image": image is not None})
            if image is not None:
                conn.send_bytes(image)
        except BlockingIOError as e:
            raise _stuck(f"took nothing for {idle_timeout:g} s") from e
        except OSError as e:  # it hung up on us: it refused the request (too large) or died
            raise A11yCaptionError("The agent stopped answering.") from e
        while True:
            try:
                message = receive(conn, 4 * 1024 * 1024)  # a long text read off a big screen
            except BlockingIOError as e:  # the read timed out
                raise _stuck(f"sent nothing for {idle_timeout:g} s") from e
            except (EOFError, OSError) as e:
                raise A11yCaptionError("The agent stopped answering.") from e
            kind = message.get("type")
            if kind == "alive":
                if on_alive is not None:
                    on_alive()
                continue
            if kind == "error" and message.get("busy") is True:
                raise AgentBusy(str(message.get("message") or "The agent is busy; try again in a moment."))
            yield message
            if kind != "chunk":
                return
    finally:
        conn.close()


def _stuck(what: str) -> AgentNotAnswering:
    """``what`` the agent did not do in time, as the sentence's middle ("sent nothing for 15 s")."""
    return AgentNotAnswering(f"The agent {what}; it may be stuck: end its process and start it again.")


def _connect(address: str, family: str, key: bytes, timeout: float):
    """A connection to the agent that has passed the handshake both ways, within ``timeout``."""
    if family != "AF_UNIX":  # Windows' named pipe: the library's own client (no timeout there)
        try:
            return connection.Client(address, family, authkey=key)
        except (OSError, connection.AuthenticationError, EOFError) as e:
            raise AgentNotRunning() from e
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except (FileNotFoundError, ConnectionRefusedError) as e:  # no socket, or nobody behind it
        sock.close()
        raise AgentNotRunning() from e
    except (TimeoutError, BlockingIOError) as e:  # BlockingIOError: its queue of connections is full
        sock.close()
        raise _stuck(f"did not accept the connection within {timeout:g} s") from e
    except OSError as e:
        sock.close()
        raise AgentNotRunning() from e
    sock.setblocking(True)  # the library's reads are plain blocking reads, bounded by SO_RCVTIMEO below
    uid = peer_uid(sock.fileno())
    if uid is not None and uid != os.getuid():  # only our own agent may see the request (and the image)
        sock.close()
        raise A11yCaptionError(f"The process listening at {address} is not yours; end it, or set "
                               "A11Y_CAPTION_RUNTIME_DIR to a folder of your own.")
    set_read_timeout(sock.fileno(), timeout)
    conn = connection.Connection(sock.detach())
    try:
        connection.answer_challenge(conn, key)
        connection.deliver_challenge(conn, key)
    except BlockingIOError as e:
        conn.close()
        raise _stuck(f"did not answer within {timeout:g} s") from e
    except (OSError, EOFError) as e:  # it hung up at once: every connection is taken
        conn.close()
        raise AgentBusy("The agent is busy with other commands; try again in a moment.") from e
    except connection.AuthenticationError as e:  # a key left by an agent that died, and a new listener
        conn.close()
        raise AgentNotRunning() from e
    return conn
