"""The agent's control endpoint: how commands and desktop shortcuts reach the warm agent.

Transport: ``multiprocessing.connection`` (a Unix domain socket; a named pipe on Windows), so one
tested code path serves both, with length-prefixed messages whose size is checked before anything
is allocated. Only ``send_bytes``/``recv_bytes`` are used, with JSON: never pickle, which would run
code sent by whoever connects. Access: the socket and an authentication key live in the agent's
runtime folder, which must be the user's own and closed to others (0700); the key file is 0600 and
every connection must prove it holds the key (an HMAC challenge); on Linux the peer's uid is
checked as well.

Protocol, version 1. A request is one JSON object ``{"v": 1, "op": ...}``, followed by one raw
message with the image file's bytes when it says ``"image": true``. The agent answers with JSON
messages: ``{"type": "chunk", "text": ...}`` as text is produced, then exactly one of
``{"type": "done", ...}``, ``{"type": "error", "message": one sentence}`` or
``{"type": "stopped"}``. Ops: describe, read, ask, stop, repeat, copy_last, status, release.
A client that closes its end (Ctrl+C) stops its request's generation.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import socket
import stat
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing import connection
from pathlib import Path

from .errors import A11yCaptionError

__all__ = [
    "MAX_IMAGE_BYTES", "MAX_REQUEST_BYTES", "PROTOCOL", "AgentNotRunning", "ControlServer", "Reply", "agent_running",
    "request", "runtime_dir",
]

log = logging.getLogger(__name__)

PROTOCOL = 1
MAX_REQUEST_BYTES = 64 * 1024  # the JSON part: a prompt, never a picture
MAX_IMAGE_BYTES = 48 * 1024 * 1024  # a 7680x4320 PNG screenshot fits; 100 MB of garbage does not
MAX_CLIENTS = 8
HANDSHAKE_SECONDS = 5.0
OPS = ("describe", "read", "ask", "stop", "repeat", "copy_last", "status", "release")


class AgentNotRunning(A11yCaptionError):
    def __init__(self, detail: str = "No a11y-caption agent is running for this user."):
        super().__init__(detail)


class ProtocolError(A11yCaptionError):
    pass


def runtime_dir(create: bool = False) -> Path:
    """The agent's private runtime folder: ``$A11Y_CAPTION_RUNTIME_DIR``, else the platform's.

    With ``create``, it is made 0700 if missing. Either way a folder that another user owns, or
    that others can enter, is refused: a socket there could be swapped for someone else's.
    """
    base = os.environ.get("A11Y_CAPTION_RUNTIME_DIR")
    if not base:
        import warnings

        from platformdirs import user_runtime_dir

        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (a console, CI): the fallback is checked below
            warnings.simplefilter("ignore")
            base = user_runtime_dir("a11y-caption", appauthor=False)
    path = Path(base)
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix" and path.exists():
        info = path.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise A11yCaptionError(f"The runtime folder {path} is not private to you (it must be yours, mode 0700); "
                                   "remove it or set A11Y_CAPTION_RUNTIME_DIR.")
    return path


def _address(folder: Path) -> tuple[str, str]:
    if sys.platform == "win32":
        import getpass

        return rf"\\.\pipe\a11y-caption-{getpass.getuser()}", "AF_PIPE"
    return str(folder / "agent.sock"), "AF_UNIX"


def _send(conn, message: dict) -> None:
    conn.send_bytes(json.dumps(message, ensure_ascii=False).encode("utf-8"))


def _receive(conn, limit: int = MAX_REQUEST_BYTES) -> dict:
    try:
        message = json.loads(conn.recv_bytes(limit).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("The message is not JSON.") from e
    if not isinstance(message, dict):
        raise ProtocolError("The message is not a JSON object.")
    return message


def _peer_uid(conn) -> int | None:
    """The connecting process's uid (Linux), or None where the platform does not say."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    with socket.socket(fileno=os.dup(conn.fileno())) as s:
        _pid, uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def _set_read_timeout(conn, seconds: float | None) -> None:
    """Bound how long one read may wait (POSIX sockets), so a silent client cannot hold a slot."""
    if os.name != "posix":
        return
    with socket.socket(fileno=os.dup(conn.fileno())) as s:
        whole = int(seconds or 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                     struct.pack("ll", whole, int(((seconds or 0) - whole) * 1e6)))


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

    def stopped(self) -> None:
        self._end({"type": "stopped"})

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
        self.address, family = _address(self.folder)
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
                self._listener = connection.Listener(self.address, family)
            finally:
                os.umask(old_umask)
        else:
            self._listener = connection.Listener(self.address, family)
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
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
            if not self._slots.acquire(blocking=False):
                conn.close()  # too many at once: refuse rather than queue
                continue
            threading.Thread(target=self._serve, args=(conn,), name="a11y-control-client", daemon=True).start()

    def _serve(self, conn) -> None:
        try:
            uid = _peer_uid(conn)
            if uid is not None and uid != os.getuid():
                return
            _set_read_timeout(conn, HANDSHAKE_SECONDS)
            connection.deliver_challenge(conn, self._key)
            connection.answer_challenge(conn, self._key)
            request = _receive(conn)
            image = conn.recv_bytes(MAX_IMAGE_BYTES) if request.get("image") is True else None
            _set_read_timeout(conn, None)
            problem = _check(request)
            if problem:
                _send(conn, {"type": "error", "message": problem})
                return
            reply = Reply()
            self._handle(request, image, reply)
            self._stream(conn, reply)
        except (OSError, EOFError, connection.AuthenticationError, ProtocolError) as e:
            log.debug("control connection dropped: %s", type(e).__name__)
        except Exception as e:  # a bug in a handler: the connection ends, the agent does not
            from .errors import log_unexpected

            log_unexpected(log, "control request failed", e)
        finally:
            conn.close()
            self._slots.release()

    @staticmethod
    def _stream(conn, reply: Reply) -> None:
        """Send the reply as it comes; a client that hangs up (Ctrl+C) cancels its request."""
        while True:
            try:
                message = reply._messages.get(timeout=0.1)
            except queue.Empty:
                if conn.poll(0):  # the client wrote or closed: either way it is done with us
                    break
                continue
            if message is None:
                reply.closed.set()
                return
            try:
                _send(conn, message)
            except OSError:
                break
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
    for key in ("source", "task", "prompt", "question", "language"):
        if key in request and request[key] is not None and not isinstance(request[key], str):
            return f"{key} must be text."
    for key in ("speak", "image"):
        if key in request and not isinstance(request[key], bool):
            return f"{key} must be true or false."
    return None


def agent_running() -> bool:
    """Whether an agent answers for this user (one round trip)."""
    try:
        return list(request("status"))[-1].get("type") == "done"
    except A11yCaptionError:
        return False


def request(op: str, *, image: bytes | None = None, folder: Path | None = None, timeout: float = 2.0,
            **fields) -> Iterator[dict]:
    """Send one request to the running agent; yield its reply messages, ending with the last one.

    Raises:
        AgentNotRunning: no agent listens for this user (the caller then works in-process).
    """
    try:
        folder = folder or runtime_dir()
        key = (folder / "agent.key").read_bytes()
    except (OSError, A11yCaptionError) as e:
        raise AgentNotRunning() from e
    address, family = _address(folder)
    try:
        conn = connection.Client(address, family, authkey=key)
    except (OSError, connection.AuthenticationError, EOFError) as e:
        raise AgentNotRunning() from e
    try:
        try:
            _send(conn, {"v": PROTOCOL, "op": op, **fields, "image": image is not None})
            if image is not None:
                conn.send_bytes(image)
        except OSError as e:  # it hung up on us: it refused the request (too large) or died
            raise A11yCaptionError("The agent stopped answering.") from e
        while True:
            try:
                message = _receive(conn, 4 * 1024 * 1024)  # a long text read off a big screen
            except (EOFError, OSError) as e:
                raise A11yCaptionError("The agent stopped answering.") from e
            yield message
            if message.get("type") != "chunk":
                return
    finally:
        conn.close()
