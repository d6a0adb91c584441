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
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import connection
from pathlib import Path

from ..errors import A11yCaptionError

__all__ = [
    "MAX_IMAGE_BYTES", "MAX_REQUEST_BYTES", "PROTOCOL", "AgentBusy", "AgentNotAnswering", "AgentNotRunning",
    "Answer", "ControlServer", "Reply", "read_reply", "request", "runtime_dir",
]

log = logging.getLogger(__name__)

PROTOCOL = 2
MAX_REQUEST_BYTES = 64 * 1024  # the JSON part: a prompt, never a picture
MAX_IMAGE_BYTES = 48 * 1024 * 1024  # a 7680x4320 PNG screenshot fits; 100 MB of garbage does not
MAX_CLIENTS = 8  # requests that use the model or a capture at once; more are answered "busy"
MAX_CONNECTIONS = 32  # connections still proving their key or sending their request
HANDSHAKE_SECONDS = 5.0  # for the whole handshake and request, however slowly its bytes come
ALIVE_SECONDS = 1.0  # an "alive" message after this long without another
IDLE_TIMEOUT = 15.0  # the client's wait between messages: many "alive" periods
OPS = ("describe", "read", "ask", "stop", "repeat", "copy_last", "status", "release")
# Ops that end at once: always served, even when every slot for model work is taken (Stop above all).
QUICK_OPS = ("stop", "status", "copy_last", "release")


class AgentNotRunning(A11yCaptionError):
    def __init__(self, detail: str = "No a11y-caption agent is running for this user."):
        super().__init__(detail)


class AgentBusy(A11yCaptionError):
    """The agent runs but had no room for the request: never a reason to load a second model."""


class AgentNotAnswering(A11yCaptionError):
    """Something listens at the agent's address but does not answer in time (a frozen agent)."""


class ProtocolError(A11yCaptionError):
    pass


def runtime_dir(create: bool = False) -> Path:
    """The agent's private runtime folder: ``$A11Y_CAPTION_RUNTIME_DIR``, else the platform's.

    With ``create``, it is made 0700 if missing. Either way it is checked from the top: every
    folder above it must belong to you or to root and be closed to others' writes (or sticky, as
    /tmp is), every symbolic link on the way must be yours or root's, and the folder itself yours
    and 0700. Anything else could let another user swap the socket or the key for their own.

    Raises:
        A11yCaptionError: one sentence naming the folder and what is wrong.
    """
    base = os.environ.get("A11Y_CAPTION_RUNTIME_DIR")
    if not base:
        import warnings

        from platformdirs import user_runtime_dir

        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (a console, CI): the fallback is checked below
            warnings.simplefilter("ignore")
            base = user_runtime_dir("a11y-caption", appauthor=False)
    path = Path(os.path.abspath(base))
    if os.name != "posix":
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path
    fix = "remove it or set A11Y_CAPTION_RUNTIME_DIR to a folder of your own"
    _check_ancestors(path.parent, fix)
    if create:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise A11yCaptionError(f"The runtime folder {path} cannot be made ({e.strerror or e}); {fix}.") from e
        _check_ancestors(path.parent, fix)  # folders made just now are ours; check what they sit in again
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path  # no agent has made it: nothing listens there
    except OSError as e:
        raise A11yCaptionError(f"The runtime folder {path} cannot be checked ({e.strerror or e}); {fix}.") from e
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise A11yCaptionError(f"The runtime folder {path} is not a folder of its own; {fix}.")
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise A11yCaptionError(f"The runtime folder {path} is not private to you (it must be yours, mode 0700); "
                               f"{fix}.")
    return path


def _check_ancestors(folder: Path, fix: str) -> None:
    """Walk ``folder`` from the root, following symbolic links as the system would, and refuse a
    component another user could change: owned by neither you nor root, or writable by others
    without the sticky bit; a link owned by someone else. Missing components end the walk (they
    will be made by us)."""
    me = os.getuid()
    pending = list(folder.parts[1:])
    current = Path(folder.parts[0])
    links = 0
    while pending:
        current = current / pending.pop(0)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return
        except OSError as e:
            raise A11yCaptionError(f"The runtime folder's parent {current} cannot be checked "
                                   f"({e.strerror or e}); {fix}.") from e
        if info.st_uid not in (me, 0):
            raise A11yCaptionError(f"The runtime folder lies in {current}, which belongs to another user; {fix}.")
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > 40:
                raise A11yCaptionError(f"The runtime folder's path has too many symbolic links; {fix}.")
            target = Path(os.readlink(current))
            if target.is_absolute():
                pending = list(target.parts[1:]) + pending
                current = Path(target.parts[0])
            else:
                pending = list(target.parts) + pending
                current = current.parent
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise A11yCaptionError(f"The runtime folder lies below {current}, which is not a folder; {fix}.")
        if stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise A11yCaptionError(f"The runtime folder lies in {current}, which other users can write to; {fix}.")


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


def _peer_uid(fileno: int) -> int | None:
    """The uid of the process at the other end of socket ``fileno`` (Linux), or None where the
    platform does not say."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    with socket.socket(fileno=os.dup(fileno)) as s:
        _pid, uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def _set_read_timeout(fileno: int, seconds: float | None, option: int = socket.SO_RCVTIMEO) -> None:
    """Bound how long one read of socket ``fileno`` may wait (POSIX), so a silent peer is noticed;
    with ``option`` SO_SNDTIMEO, one write (a peer that never reads)."""
    if os.name != "posix":
        return
    with socket.socket(fileno=os.dup(fileno)) as s:
        whole = int(seconds or 0)
        s.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, int(((seconds or 0) - whole) * 1e6)))


def _shut_down(fileno: int) -> None:
    """Wake any read or write on socket ``fileno`` with an error (from another thread)."""
    try:
        with socket.socket(fileno=os.dup(fileno)) as s:
            s.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


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
        cut_off = threading.Timer(HANDSHAKE_SECONDS, _shut_down, (conn.fileno(),))
        try:
            uid = _peer_uid(conn.fileno())
            if uid is not None and uid != os.getuid():
                return
            cut_off.start()
            _set_read_timeout(conn.fileno(), HANDSHAKE_SECONDS)
            connection.deliver_challenge(conn, self._key)
            connection.answer_challenge(conn, self._key)
            request = _receive(conn)
            image = conn.recv_bytes(MAX_IMAGE_BYTES) if request.get("image") is True else None
            cut_off.cancel()
            _set_read_timeout(conn.fileno(), None)
            # A client that stops reading is dropped once its socket's buffer stays full this long.
            _set_read_timeout(conn.fileno(), 2 * IDLE_TIMEOUT, socket.SO_SNDTIMEO)
            problem = _check(request)
            if problem:
                _send(conn, {"type": "error", "message": problem})
                return
            if request["op"] not in QUICK_OPS:
                work_slot = self._work_slots.acquire(blocking=False)
                if not work_slot:
                    _send(conn, {"type": "error", "busy": True,
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
                        _send(conn, {"type": "alive"})
                    except OSError:
                        break
                    last_sent = time.monotonic()
                continue
            if message is None:
                reply.closed.set()
                return
            try:
                _send(conn, message)
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
    for key in ("speak", "image", "background"):
        if key in request and not isinstance(request[key], bool):
            return f"{key} must be true or false."
    return None


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
            idle_timeout: float = IDLE_TIMEOUT, **fields) -> Iterator[dict]:
    """Send one request to the running agent; yield its reply messages, ending with the last one
    ("alive" messages are not yielded).

    ``timeout``: for connecting and the handshake; ``idle_timeout``: between two messages.

    Raises:
        AgentNotRunning: no agent listens for this user (the caller then works in-process).
        AgentBusy: the agent has no room for another request now.
        AgentNotAnswering: something listens but does not answer in time.
        A11yCaptionError: the runtime folder is not private, or the listener is another user's.
    """
    folder = folder or runtime_dir()  # a folder that is not private is said, not taken for "no agent"
    address, family = _address(folder)
    try:
        key = (folder / "agent.key").read_bytes()
    except OSError as e:
        raise AgentNotRunning() from e
    conn = _connect(address, family, key, timeout)
    try:
        if family == "AF_UNIX":
            _set_read_timeout(conn.fileno(), idle_timeout)
            _set_read_timeout(conn.fileno(), idle_timeout, socket.SO_SNDTIMEO)
        try:
            _send(conn, {"v": PROTOCOL, "op": op, **fields, "image": image is not None})
            if image is not None:
                conn.send_bytes(image)
        except BlockingIOError as e:
            raise _stuck(f"took nothing for {idle_timeout:g} s") from e
        except OSError as e:  # it hung up on us: it refused the request (too large) or died
            raise A11yCaptionError("The agent stopped answering.") from e
        while True:
            try:
                message = _receive(conn, 4 * 1024 * 1024)  # a long text read off a big screen
            except BlockingIOError as e:  # the read timed out
                raise _stuck(f"sent nothing for {idle_timeout:g} s") from e
            except (EOFError, OSError) as e:
                raise A11yCaptionError("The agent stopped answering.") from e
            kind = message.get("type")
            if kind == "alive":
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
    uid = _peer_uid(sock.fileno())
    if uid is not None and uid != os.getuid():  # only our own agent may see the request (and the image)
        sock.close()
        raise A11yCaptionError(f"The process listening at {address} is not yours; end it, or set "
                               "A11Y_CAPTION_RUNTIME_DIR to a folder of your own.")
    _set_read_timeout(sock.fileno(), timeout)
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
