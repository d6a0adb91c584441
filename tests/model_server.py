"""Model servers for the server backend's tests: a real `transformers serve` of the suite's tiny
Qwen2-VL, and a stand-in that speaks the OpenAI chat completions API (server-sent events) with
whatever failure a test asks of it."""

from __future__ import annotations

import gzip
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """`transformers serve MODEL --host 127.0.0.1 --port PORT`, its output in a log file."""

    def __init__(self, model: Path, folder: Path, port: int | None = None):
        self.model = str(model)
        folder.mkdir(parents=True, exist_ok=True)
        home = folder / "hf-home"
        (home / "hub").mkdir(parents=True, exist_ok=True)  # without it, /v1/models answers 500
        (folder / "tmp").mkdir(exist_ok=True)
        self.log_path = folder / "serve.log"
        self._env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "TMPDIR": str(folder / "tmp"),
                     "PYTHONPATH": ""}
        self.proc = None
        for attempt in range(3):  # a free port can be taken before the server binds it
            self.port = port or free_port()
            if self._start():
                return
            port = None
        raise AssertionError(f"transformers serve did not start: {self.log()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _start(self) -> bool:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model,
                 "--host", "127.0.0.1", "--port", str(self.port)],
                env=self._env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: self.proc.poll() is not None or self._healthy(), timeout=180, interval=0.1)
        except AssertionError:
            self.stop()
            raise
        return self.proc.poll() is None

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connections(self) -> list:
        """The server's TCP connections to clients (psutil), any state."""
        import psutil

        return [c for c in psutil.Process(self.proc.pid).net_connections("tcp")
                if c.raddr and c.laddr.port == self.port]

    def cpu_seconds(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def served_qwen(wordy_qwen, tmp_path_factory):
    """The tiny Qwen2-VL (writing words: test_agent's wordy_qwen, which a test module must import
    too) served by `transformers serve` for the whole module; its model name is the folder."""
    server = Serve(wordy_qwen, tmp_path_factory.mktemp("serve"))
    yield server
    server.stop()


class StandIn:
    """A stand-in OpenAI-compatible server on 127.0.0.1 (stdlib http.server, a thread of this
    process). ``mode`` says how it answers /v1/chat/completions: "stream" (the words of ``text``
    as server-sent events, then a finish reason), "401", "403", "404", "500", "garbage" (events
    that are not JSON), "truncated" (two words, then the connection closes), "error_event" (an
    error object inside the stream), "silent" (headers and nothing else).

    Hostile answers, each until the client goes: "endless" (words without end), "keepalive" (a
    word, then SSE comments), "trickle" (a word, then an event one byte at a time), "huge" (one
    event of 50 MB of text), "wide" (events of 10,000 characters each, then a finish), "gzip" (a
    gzip body that expands 1000-fold), "json" (no stream: one chat.completion as JSON),
    "hostile_400" and "hostile_event" (error text with terminal escape sequences).

    ``redirect = (status, location)`` answers every request, /v1/models too, with that redirect.
    /v1/models answers with ``models``, or 500 when that is None. Every request is kept in
    ``requests``; ``gone`` is set when a write finds the client has closed the connection.
    ``tls = (certfile, keyfile)``: https."""

    HOSTILE = "wipe\x1b[2J\x1b]0;owned\x07 the\r\nscreen\u202e"

    def __init__(self, mode: str = "stream", text: str = "A dialog asks to save. Press OK to go on.",
                 tls: tuple[Path, Path] | None = None):
        self.mode, self.text, self.models = mode, text, ["stand-in-model"]
        self.first_word_delay = 0.0  # seconds the stream waits before its first word (a model reading the image)
        self.redirect: tuple[int, str] | None = None
        self.requests: list[dict] = []
        self.release = threading.Event()  # ends a "silent" answer, and every endless one
        self.gone = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirected(self) -> bool:
                if owner.redirect is None:
                    return False
                status, location = owner.redirect
                self.send_response(status)
                # Not send_header: a hostile Location may hold bytes a well-behaved server would not send.
                self._headers_buffer.append(b"Location: " + location.encode("utf-8", "surrogateescape") + b"\r\n")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True

            def do_GET(self):
                owner.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": None})
                if self._redirected():
                    return
                if owner.models is None:
                    self._json(500, {"detail": "no model list here"})
                else:
                    self._json(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                                 "owned_by": "me"} for m in owner.models]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body})
                mode = owner.mode
                if self._redirected():
                    return
                if mode in ("401", "403", "500"):
                    return self._json(int(mode), {"error": {"message": "no", "type": "x"}})
                if mode == "404":
                    return self._json(404, {"error": {"message": f"model '{body['model']}' not found"}})
                if mode == "hostile_400":
                    return self._json(400, {"error": {"message": owner.HOSTILE}})
                if mode == "json":
                    return self._json(200, {
                        "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": owner.text}}],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 11, "total_tokens": 61}})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if mode == "gzip":
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Connection", "close")
                self.end_headers()
                words = [w + " " for w in owner.text.split()]
                if mode in ("endless", "keepalive", "trickle", "huge", "gzip", "wide"):
                    try:
                        self._hostile(mode)
                    except OSError:  # the client closed the connection: what a bounded client does
                        owner.gone.set()
                    return
                if mode == "hostile_event":
                    self._event({"error": {"message": owner.HOSTILE}})
                    return
                if mode == "silent":
                    owner.release.wait(30)
                    return
                if mode == "garbage":
                    self.wfile.write(b"data: this is not json\n\n")
                    self.wfile.flush()
                    return
                if mode == "error_event":
                    self._event({"error": {"message": "the model crashed"}})
                    return
                if owner.first_word_delay:
                    owner.release.wait(owner.first_word_delay)
                for i, word in enumerate(words):
                    self._event(_chunk(word))
                    if mode == "truncated" and i == 1:
                        return
                self._event(_chunk(None, finish="stop"))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, data) -> None:
                self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
                self.wfile.flush()

            def _hostile(self, mode: str) -> None:
                if mode == "wide":
                    for _ in range(50):
                        self._event(_chunk("x" * 10_000))
                    self._event(_chunk(None, finish="stop"))
                    return
                if mode == "gzip":
                    self.wfile.write(_gzip_bomb())
                    self.wfile.flush()
                    owner.release.wait(30)
                    return
                if mode == "huge":
                    self.wfile.write(b'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, '
                                     b'"delta": {"content": "')
                    piece = b"x" * 65536
                    for _ in range(50 * 16):
                        self.wfile.write(piece)
                    self.wfile.write(b'"}}]}\n\n')
                    self.wfile.flush()
                    owner.release.wait(30)
                    return
                self._event(_chunk("Still "))
                if mode == "trickle":
                    self.wfile.write(b"data: ")
                while not owner.release.is_set():
                    if mode == "endless":
                        self._event(_chunk("more "))
                        time.sleep(0.005)
                    elif mode == "keepalive":
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        time.sleep(0.05)
                    else:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="stand-in-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


_BOMB: list[bytes] = []


def _gzip_bomb() -> bytes:
    """32 KB of gzip that expands to 32 MB of zeros (made once)."""
    if not _BOMB:
        _BOMB.append(gzip.compress(bytes(32 << 20), compresslevel=9))
    return _BOMB[0]


def _chunk(text, finish=None) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "stand-in-model",
            "choices": [{"index": 0, "delta": {"content": text} if text is not None else {},
                         "finish_reason": finish}]}


@pytest.fixture
def stand_in():
    servers = []

    def start(mode: str = "stream", **kwargs) -> StandIn:
        servers.append(StandIn(mode, **kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


class Listener:
    """A real listening socket on 127.0.0.1 that must never be reached (a proxy from the
    environment, a redirect's target): it notes every byte sent to it, and closes each connection
    once it holds a request's head, so a client that wrongly came here fails fast."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="listener", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        piece = conn.recv(65536)
                        if not piece:
                            break
                        data += piece
                except OSError:
                    pass
                self.received += data

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def listener():
    listeners = []

    def start() -> Listener:
        listeners.append(Listener())
        return listeners[-1]

    yield start
    for one in listeners:
        one.close()


@pytest.fixture(scope="session")
def own_ca(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (certificate, key): a server with its own CA."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("own-ca")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


class BlackHole:
    """A listening socket whose accept queue is full: a connection attempt gets no answer, as
    from a host that drops packets, so the client's connect timeout is what ends it."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self._fill = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self._fill.append(s)
        time.sleep(0.05)

    def close(self) -> None:
        for s in [*self._fill, self._listener]:
            s.close()
