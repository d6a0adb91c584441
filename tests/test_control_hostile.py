"""The control endpoint against hostile or broken peers: a frozen agent, silent and trickling
clients, a burst that fills every slot, a runtime path another user could change, a listener that
is not the user's own, and the folder index making way for the user's own presses."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from a11y_caption.agent import control
from a11y_caption.errors import A11yCaptionError
from conftest import SAMPLE, run_cli, wait_for
from test_control import started

NOBODY = 65534
as_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root, to make files owned by another user")


class HoldingAgent:
    """A request handler that answers status and stop at once and holds every other request open
    (sending one chunk first) until ``release`` is set."""

    def __init__(self):
        self.release = threading.Event()
        self.requests: list[dict] = []

    def __call__(self, request, image, reply):
        self.requests.append(request)
        if request["op"] in ("status", "stop"):
            reply.done(state="ready")
            return

        def hold():
            reply.chunk("working ")
            self.release.wait(60)
            reply.done(text="done")
        threading.Thread(target=hold, daemon=True).start()


@pytest.fixture
def holding_server(tmp_path, monkeypatch):
    handler = HoldingAgent()
    server, folder = started(handler, tmp_path, monkeypatch)
    yield server, handler, folder
    handler.release.set()
    server.close()


# -- a frozen agent (kill -STOP): every command ends, with a sentence ------------------------------

AGENT_STANDIN = """
import sys, threading, time
from a11y_caption.agent import control

def handle(request, image, reply):
    if request["op"] == "ask":  # one chunk, then the answer never ends
        reply.chunk("first ")
        return
    reply.done(state="ready")

server = control.ControlServer(handle, control.runtime_dir(create=True))
server.start()
print("listening", flush=True)
time.sleep(600)
"""


@pytest.fixture
def standin_agent(tmp_path):
    env = {**os.environ, "A11Y_CAPTION_RUNTIME_DIR": str(tmp_path / "run")}
    proc = subprocess.Popen([sys.executable, "-c", AGENT_STANDIN], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "listening"
    yield proc, env
    proc.send_signal(signal.SIGCONT)
    proc.kill()
    proc.wait(10)


def test_a_frozen_agent_is_said_within_the_timeout_by_every_command(standin_agent, monkeypatch):
    proc, env = standin_agent
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", env["A11Y_CAPTION_RUNTIME_DIR"])
    assert list(control.request("status"))[-1]["type"] == "done"
    proc.send_signal(signal.SIGSTOP)
    start = time.monotonic()
    with pytest.raises(control.AgentNotAnswering, match="may be stuck"):
        list(control.request("status", timeout=1.0))
    assert time.monotonic() - start < 3.0
    for command in (["status"], ["stop"], ["describe", str(SAMPLE)]):
        start = time.monotonic()
        r = run_cli(*command, env=env, timeout=60)
        assert r.returncode == 1 and "may be stuck" in r.stderr, (command, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr  # one line
        assert time.monotonic() - start < 30, command


def test_an_agent_that_freezes_mid_answer_is_said_after_the_idle_timeout(standin_agent, monkeypatch):
    proc, env = standin_agent
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", env["A11Y_CAPTION_RUNTIME_DIR"])
    messages = control.request("ask", question="what", idle_timeout=2.0)
    assert next(messages) == {"type": "chunk", "text": "first "}
    time.sleep(2.5)  # "alive" messages keep a working agent's answer open past the idle timeout
    proc.send_signal(signal.SIGSTOP)
    start = time.monotonic()
    with pytest.raises(control.AgentNotAnswering, match="sent nothing for 2 s"):
        next(messages)
    assert time.monotonic() - start < 6.0


# -- silent, trickling and many clients -------------------------------------------------------------

def test_silent_clients_cannot_make_the_agent_look_absent(holding_server):
    server, _, _ = holding_server
    silent = []
    for _ in range(control.MAX_CLIENTS):
        s = socket.socket(socket.AF_UNIX)
        s.connect(server.address)
        silent.append(s)
    try:
        assert list(control.request("status"))[-1] == {"type": "done", "state": "ready"}
        assert list(control.request("stop"))[-1]["type"] == "done"
    finally:
        for s in silent:
            s.close()


def test_a_client_that_trickles_its_request_is_cut_off_after_the_handshake_time(holding_server, monkeypatch):
    import json
    import select
    import struct
    from multiprocessing import connection

    server, handler, folder = holding_server
    monkeypatch.setattr(control, "HANDSHAKE_SECONDS", 1.0)
    key = (folder / "agent.key").read_bytes()
    body = json.dumps({"v": control.PROTOCOL, "op": "ask", "question": "x" * 40}).encode()
    with connection.Client(server.address, "AF_UNIX", authkey=key) as c:  # a valid handshake, then...
        start = time.monotonic()
        closed_at = None
        for byte in struct.pack("!i", len(body)) + body:  # ...the request a byte every 0.3 s
            try:
                os.write(c.fileno(), bytes([byte]))
            except OSError:  # reset: cut off
                closed_at = time.monotonic() - start
                break
            if select.select([c.fileno()], [], [], 0.3)[0] and os.read(c.fileno(), 4096) == b"":
                closed_at = time.monotonic() - start
                break
    assert closed_at is not None and closed_at < 3.0, closed_at
    assert handler.requests == []


def test_a_full_agent_says_busy_and_stop_still_works_and_no_second_model_loads(holding_server, tmp_path):
    server, handler, folder = holding_server
    held = [control.request("ask", question=f"q{i}") for i in range(control.MAX_CLIENTS)]
    for messages in held:
        assert next(messages)["type"] == "chunk"  # each holds one of the slots for model work
    with pytest.raises(control.AgentBusy, match="busy"):
        list(control.request("ask", question="one too many"))
    assert list(control.request("stop"))[-1]["type"] == "done"
    assert list(control.request("status"))[-1]["type"] == "done"
    # The CLI says so and does not describe in-process (which would load a second model).
    config = tmp_path / "cli.toml"
    config.write_text('[model]\nname = "acme/not-downloaded"\n[speech]\nengine = "none"\n')
    r = run_cli("describe", str(SAMPLE), env={"A11Y_CAPTION_RUNTIME_DIR": str(folder),
                                               "A11Y_CAPTION_CONFIG": str(config)}, timeout=120)
    assert r.returncode == 1 and "busy" in r.stderr and "--local" in r.stderr, r.stderr
    assert "not on this computer" not in r.stdout + r.stderr
    handler.release.set()
    for messages in held:
        assert list(messages)[-1] == {"type": "done", "text": "done"}
    assert list(control.request("ask", question="room again"))[-1]["type"] == "done"


def test_a_name_that_is_not_text_gets_a_reply(holding_server):
    assert list(control.request("describe", source="image", image=b"x", name=["a"]))[-1] == {
        "type": "error", "message": "name must be text."}


# -- the runtime path, checked from the top; the listener's owner ------------------------------------

@as_root
def test_a_runtime_folder_inside_another_users_folder_is_refused(tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir(mode=0o755)
    os.chown(other, NOBODY, NOBODY)
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(other / "run"))
    with pytest.raises(A11yCaptionError, match="belongs to another user"):
        control.runtime_dir(create=True)
    assert not (other / "run").exists()


@as_root
def test_a_symbolic_link_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    os.lchown(link, NOBODY, NOBODY)
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(link / "run"))
    with pytest.raises(A11yCaptionError, match="belongs to another user"):
        control.runtime_dir(create=True)
    os.lchown(link, 0, 0)  # the same link, owned by us: accepted
    assert control.runtime_dir(create=True) == link / "run"


def test_a_runtime_folder_below_a_file_or_writable_by_others_is_one_sentence(tmp_path, monkeypatch):
    plain = tmp_path / "plain-file"
    plain.write_text("")
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(plain / "run"))
    with pytest.raises(A11yCaptionError, match="which is not a folder"):
        control.runtime_dir(create=True)
    r = run_cli("status", env={"A11Y_CAPTION_RUNTIME_DIR": str(plain / "run")})
    assert r.returncode == 1 and "which is not a folder" in r.stderr and "unexpected" not in r.stderr
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # writable by all and not sticky: anyone could rename our folder away
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(shared / "run"))
    with pytest.raises(A11yCaptionError, match="other users can write to"):
        control.runtime_dir(create=True)
    shared.chmod(0o1777)  # sticky, as /tmp is: only we can remove what we made there
    assert control.runtime_dir(create=True) == shared / "run"


FAKE_AGENT = """
import os, socket, sys
folder = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(os.path.join(folder, "agent.sock"))
os.chmod(os.path.join(folder, "agent.sock"), 0o666)
os.setuid(int(sys.argv[2]))  # the credentials a client sees are the listener's at listen()
s.listen(1)
print("listening", flush=True)
conn, _ = s.accept()
conn.settimeout(5)
got = b""
try:
    while chunk := conn.recv(65536):
        got += chunk
except OSError:
    pass
print(len(got), flush=True)
"""


@as_root
def test_the_client_sends_nothing_to_a_listener_that_is_not_the_users(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(folder))
    control.runtime_dir(create=True)
    (folder / "agent.key").write_bytes(os.urandom(32))
    fake = subprocess.Popen([sys.executable, "-c", FAKE_AGENT, str(folder), str(NOBODY)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert fake.stdout.readline().strip() == "listening"
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
        with pytest.raises(A11yCaptionError, match="is not yours"):
            list(control.request("describe", source="image", image=buffer.getvalue()))
        received = fake.communicate(timeout=20)[0].strip()
        assert received == "0", f"the fake agent received {received} bytes"
    finally:
        fake.kill()


# -- the folder index through the agent makes way for the user's own describe ------------------------

def test_indexing_through_the_agent_makes_way_for_a_describe_and_carries_on(tiny_qwen, tmp_path, monkeypatch):
    from dataclasses import replace

    from a11y_caption.agent.core import Agent
    from a11y_caption.config import load_config
    from a11y_caption.describe.describer import Describer
    from a11y_caption.index import AgentAnalyser
    from a11y_caption.speech import Speaker
    from conftest import REPO, TranscriptVoice

    class HeldDescriber(Describer):
        """Holds the first description until ``release``, as a long one would run."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.entered, self.release, self.calls = threading.Event(), threading.Event(), 0

        def describe(self, *args, **kwargs):
            self.calls += 1
            if self.calls == 1:
                self.entered.set()
                self.release.wait(30)
            return super().describe(*args, **kwargs)

    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(tmp_path / "run"))
    config = load_config(REPO / "hotkeys.toml")
    config = replace(config, model=replace(config.model, name=str(tiny_qwen), max_new_tokens=8))
    voice = TranscriptVoice()
    speaker = Speaker(voice)
    describer = HeldDescriber(config.model)
    agent = Agent(config, speaker, describer=describer)
    server = control.ControlServer(agent.handle_request, control.runtime_dir(create=True))
    server.start()
    agent.start()
    try:
        wait_for(lambda: "Ready." in voice.said, 60)
        data = SAMPLE.read_bytes()
        result: dict = {}

        def index_one():
            try:
                result["answer"] = AgentAnalyser._ask("describe", data, "sample.png", task="photo")
            except BaseException as e:  # KeyboardInterrupt before the fix
                result["error"] = e

        indexer = threading.Thread(target=index_one)
        indexer.start()
        assert describer.entered.wait(30)  # the index's description is running
        mine: dict = {}
        user = threading.Thread(target=lambda: mine.update(answer=control.read_reply(control.request(
            "describe", source="image", image=data, name="mine.png", speak=False))))
        user.start()
        wait_for(lambda: agent._job is not None, 30)  # the user's job waits; the index's has been told to make way
        describer.release.set()
        user.join(60)
        answer = mine["answer"]
        assert answer.stopped is None and answer.text
        indexer.join(60)
        assert "error" not in result, result.get("error")
        text, model = result["answer"]
        assert text and model
        assert describer.calls == 3  # the index's, the user's, the index's again
        assert agent.last == answer.text, "the user's answer is what repeat says, not the index's"
    finally:
        describer.release.set()
        server.close()
        agent.close()
        speaker.close()
    assert list(agent.unexpected) == []
