"""Model servers for the server backend's tests: a real `transformers serve` of the suite's tiny
Qwen2-VL, and a stand-in that speaks the OpenAI chat completions API (server-sent events) with
whatever failure a test asks of it."""

from __future__ import annotations

import json
import os
import socket
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
    error object inside the stream), "silent" (headers and nothing else). /v1/models answers with
    ``models``, or 500 when that is None. Every request is kept in ``requests``."""

    def __init__(self, mode: str = "stream", text: str = "A dialog asks to save. Press OK to go on."):
        self.mode, self.text, self.models = mode, text, ["stand-in-model"]
        self.requests: list[dict] = []
        self.release = threading.Event()  # ends a "silent" answer
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

            def do_GET(self):
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
                if mode in ("401", "403", "500"):
                    return self._json(int(mode), {"error": {"message": "no", "type": "x"}})
                if mode == "404":
                    return self._json(404, {"error": {"message": f"model '{body['model']}' not found"}})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                words = [w + " " for w in owner.text.split()]
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="stand-in-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


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
