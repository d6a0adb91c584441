"""The agent's control endpoint: how commands and desktop shortcuts reach the warm agent.

Transport: ``multiprocessing.connection`` (a Unix domain socket; a named pipe on Windows), so one
tested code path serves both, with length-prefixed messages whose size is checked before anything
is allocated. Only ``send_bytes``/``recv_bytes`` are used, with JSON: never pickle, which would run
code sent by whoever connects. Access: the socket and an authentication key live in the agent's
runtime folder, which must be the user's own and closed to others (0700); the key file is 0600 and
every connection must prove it holds the key (an HMAC challenge); on Linux the peer's uid is
checked as well.

Protocol, version 2. A request is one JSON object ``{"v": 2, "op": ...}``, followed by one raw
message with the image file's bytes when it says ``"image": true``. The agent answers with JSON
messages: ``{"type": "chunk", "text": ...}`` as text is produced, ``{"type": "alive"}`` while
nothing else has come for a second (so a client can tell a working agent from a frozen one), then
exactly one of ``{"type": "done", ...}``, ``{"type": "error", "message": one sentence}`` (with
``"busy": true`` when the agent had no room for the request) or ``{"type": "stopped", "reason":
"stop" | "replaced"}`` ("replaced": a background request made way for a user's own). Ops: describe,
read, ask, stop, repeat, copy_last, status, release. A client that closes its end (Ctrl+C) stops
its request's generation.

Nothing waits forever: the server gives a connection HANDSHAKE_SECONDS in all to prove its key and
send its request (a client that trickles bytes is cut off then, not at each byte), and the client
gives the agent ``timeout`` seconds to answer the handshake and ``idle_timeout`` between messages.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing import connection
from pathlib import Path

from .client import Answer, read_reply, request
from .protocol import (
    IDLE_TIMEOUT, MAX_IMAGE_BYTES, MAX_REQUEST_BYTES, OPS, PROTOCOL, AgentBusy, AgentNotAnswering, AgentNotRunning,
    ProtocolError, address, peer_uid, receive, send, set_read_timeout, shut_down,
)
from .runtime import runtime_dir

__all__ = [
    "MAX_IMAGE_BYTES", "MAX_REQUEST_BYTES", "PROTOCOL", "AgentBusy", "AgentNotAnswering", "AgentNotRunning",
    "Answer", "ControlServer", "Reply", "read_reply", "request", "runtime_dir",
]

log = logging.getLogger(__name__)

MAX_CLIENTS = 8  # requests that use the model or a capture at once; more are answered "busy"
MAX_CONNECTIONS = 32  # connections still proving their key or sending their request
HANDSHAKE_SECONDS = 5.0  # for the whole handshake and request, however slowly its bytes come
ALIVE_SECONDS = 1.0  # an "alive" message after this long without another
# Ops that end at once: always served, even when every slot for model work is taken (Stop above all).
QUICK_OPS = ("stop", "status", "copy_last", "release", "keys")


class Reply:
    """What a request handler uses to answer: chunks as they come, then one ending. Thread-safe;
    never blocks the caller (the agent's worker): messages queue for the connection's thread."""

    def __init__(self):
        self._messages: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.ended = False  # the ending has been given: later ones are ignored
        self.closed = threading.Event()  # the client went away, or the reply has been sent
        self.cancel: Callable[[], None] | None = None  # set by the handler: stops the request's job

    def chunk(self, text: str) -> None:
        with self._lock:
            if text and not self.ended:
                self._messages.put({"type": "chunk", "text": text})

    def done(self, **fields) -> None:
        self._end({"type": "done", **fields})

    def error(self, message: str) -> None:
        self._end({"type": "error", "message": message})

    def stopped(self, reason: str = "stop") -> None:
        """``reason``: "stop" (Stop, Ctrl+C, a newer press) or "replaced" (a background request
        that made way for the user's own; its client may send it again)."""
        self._end({"type": "stopped", "reason": reason})

    def _end(self, message: dict) -> None:
        with self._lock:
            if self.ended:
                return
            self.ended = True
            self._messages.put(message)
            self._messages.put(None)


class ControlServer:
    """Listens in the runtime folder and hands each valid request to ``handle(request, image_bytes,
    reply)``, which must return at once (work goes to the agent's threads). Malformed, oversized,
    unauthenticated or unknown requests get an error reply or a closed connection; the server and
    the agent carry on."""

    def __init__(self, handle: Callable[[dict, bytes | None, Reply], None], folder: Path | None = None):
        self.folder = folder or runtime_dir(create=True)
        self._handle = handle
        self.address, family = address(self.folder)
        self._key = secrets.token_bytes(32)
        key_file = self.folder / "agent.key"
        key_file.unlink(missing_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._key)
        self._key_file = key_file
        if family == "AF_UNIX":
            Path(self.address).unlink(missing_ok=True)  # a socket left by an agent that died; we hold the lock
            old_umask = os.umask(0o177)  # the socket file is created 0600
            try:
                # A queue as long as the connections served at once: a burst waits to be accepted
                # (and is then answered "busy" if need be) instead of being refused outright.
                self._listener = connection.Listener(self.address, family, backlog=MAX_CONNECTIONS)
            finally:
                os.umask(old_umask)
        else:
            self._listener = connection.Listener(self.address, family)
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._work_slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop, name="a11y-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closing = True
        try:
            self._listener.close()
        except OSError:
            pass
        self._key_file.unlink(missing_ok=True)

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn = self._listener.accept()
            except OSError:
                if self._closing:
                    return
                log.debug("control accept failed", exc_info=True)
                continue
            if not self._connections.acquire(blocking=False):
                conn.close()  # too many at once: refuse rather than queue (the client says "busy")
                continue
            threading.Thread(target=self._serve, args=(conn,), name="a11y-control-client", daemon=True).start()

    def _serve(self, conn) -> None:
        work_slot = False
        # The whole handshake and request get HANDSHAKE_SECONDS: a read timeout alone would let a
        # client that sends a byte every few seconds hold the connection for good.
        cut_off = threading.Timer(HANDSHAKE_SECONDS, shut_down, (conn.fileno(),))
        try:
            uid = peer_uid(conn.fileno())
            if uid is not None and uid != os.getuid():
                return
            cut_off.start()
            set_read_timeout(conn.fileno(), HANDSHAKE_SECONDS)
            connection.deliver_challenge(conn, self._key)
            connection.answer_challenge(conn, self._key)
            request = receive(conn)
            image = conn.recv_bytes(MAX_IMAGE_BYTES) if request.get("image") is True else None
            cut_off.cancel()
            set_read_timeout(conn.fileno(), None)
            # A client that stops reading is dropped once its socket's buffer stays full this long.
            set_read_timeout(conn.fileno(), 2 * IDLE_TIMEOUT, socket.SO_SNDTIMEO)
            problem = _check(request)
            if problem:
                send(conn, {"type": "error", "message": problem})
                return
            if request["op"] not in QUICK_OPS:
                work_slot = self._work_slots.acquire(blocking=False)
                if not work_slot:
                    send(conn, {"type": "error", "busy": True,
                                 "message": f"The agent is busy with {MAX_CLIENTS} other commands; try again "
                                            "when they end."})
                    return
            reply = Reply()
            self._handle(request, image, reply)
            self._stream(conn, reply)
        except (OSError, EOFError, connection.AuthenticationError, ProtocolError) as e:
            log.debug("control connection dropped: %s", type(e).__name__)
        except Exception as e:  # a bug in a handler: the connection ends, the agent does not
            from ..errors import log_unexpected

            log_unexpected(log, "control request failed", e)
        finally:
            cut_off.cancel()
            conn.close()
            if work_slot:
                self._work_slots.release()
            self._connections.release()

    @staticmethod
    def _stream(conn, reply: Reply) -> None:
        """Send the reply as it comes, with "alive" while nothing comes; a client that hangs up
        (Ctrl+C) cancels its request."""
        last_sent = time.monotonic()
        while True:
            try:
                message = reply._messages.get(timeout=0.1)
            except queue.Empty:
                if conn.poll(0):  # the client wrote or closed: either way it is done with us
                    break
                if time.monotonic() - last_sent >= ALIVE_SECONDS:
                    try:
                        send(conn, {"type": "alive"})
                    except OSError:
                        break
                    last_sent = time.monotonic()
                continue
            if message is None:
                reply.closed.set()
                return
            try:
                send(conn, message)
            except OSError:
                break
            last_sent = time.monotonic()
        reply.closed.set()
        if reply.cancel is not None:
            reply.cancel()


def _check(request: dict) -> str | None:
    """One sentence saying what is wrong with ``request``, or None."""
    if request.get("v") != PROTOCOL:
        return f"This agent speaks protocol {PROTOCOL}; restart it after an upgrade."
    op = request.get("op")
    if op not in OPS:
        return f"Unknown request {str(op)[:40]!r}."
    for key in ("source", "task", "prompt", "question", "language", "name"):
        if key in request and request[key] is not None and not isinstance(request[key], str):
            return f"{key} must be text."
    for key in ("speak", "image", "background", "box", "several"):
        if key in request and not isinstance(request[key], bool):
            return f"{key} must be true or false."
    return None
