"""The warm agent's control endpoint: private to the user, robust to hostile clients, and the real
CLI describing, asking, stopping and cancelling through a real agent process under Xvfb."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from a11y_caption.agent import control
from a11y_caption.errors import A11yCaptionError
from conftest import SAMPLE, Desktop, run_cli, wait_for
from test_agent import agent_factory, wordy_qwen  # noqa: F401  (fixtures)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class EchoAgent:
    """A stand-in for the agent's request handler: answers status, streams a question back."""

    def __init__(self):
        self.requests = []

    def __call__(self, request, image, reply):
        self.requests.append((request, image))
        if request["op"] == "ask":
            def answer():
                for word in request["question"].split():
                    reply.chunk(word + " ")
                reply.done(text=request["question"])
            threading.Thread(target=answer, daemon=True).start()
        elif request["op"] == "describe":
            reply.done(text=f"{len(image or b'')} bytes")
        else:
            reply.done(state="ready")


def started(handler, tmp_path, monkeypatch):
    """A control server for ``handler`` in a runtime folder of its own: (server, folder)."""
    folder = tmp_path / "run"
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(folder))
    srv = control.ControlServer(handler, control.runtime_dir(create=True))
    srv.start()
    return srv, folder


@pytest.fixture
def server(tmp_path, monkeypatch):
    handler = EchoAgent()
    srv, folder = started(handler, tmp_path, monkeypatch)
    yield srv, handler, folder
    srv.close()


def test_endpoint_files_are_private(server):
    srv, _, folder = server
    assert _mode(folder) == 0o700
    assert _mode(Path(srv.address)) == 0o600 and stat.S_ISSOCK(Path(srv.address).stat().st_mode)
    assert _mode(folder / "agent.key") == 0o600


def test_a_runtime_folder_open_to_others_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(folder))
    with pytest.raises(A11yCaptionError, match="is not private to you"):
        control.runtime_dir(create=True)


def test_requests_stream_and_bad_clients_never_stop_the_server(server):
    srv, handler, folder = server
    messages = list(control.request("ask", question="what does it say"))
    assert [m["type"] for m in messages] == ["chunk"] * 4 + ["done"]
    assert "".join(m["text"] for m in messages[:-1]) == "what does it say "

    def raw(payload: bytes) -> bytes:
        """Send ``payload`` and read whatever comes back until the server hangs up (it may hang up
        while we are still writing)."""
        data = b""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(srv.address)
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                while chunk := s.recv(65536):
                    data += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass
        return data

    # Garbage instead of the handshake; a length prefix claiming 2 GB; a client that sends nothing.
    raw(b"GET / HTTP/1.1\r\n\r\n" * 100)
    raw(struct.pack("!i", 2**31 - 1) + b"x" * 1000)
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(srv.address)
    # A wrong key: the handshake fails, nothing is handled.
    from multiprocessing import connection

    with pytest.raises((connection.AuthenticationError, EOFError, OSError)):
        connection.Client(srv.address, "AF_UNIX", authkey=b"not the key")
    # Unknown op, wrong protocol version, wrong types: one-sentence errors.
    assert list(control.request("explode"))[-1] == {"type": "error", "message": "Unknown request 'explode'."}
    key = (folder / "agent.key").read_bytes()
    with connection.Client(srv.address, "AF_UNIX", authkey=key) as c:
        c.send_bytes(json.dumps({"v": 99, "op": "status"}).encode())
        assert "protocol 2" in json.loads(c.recv_bytes())["message"]
    assert list(control.request("ask", question=["a", "list"]))[-1]["message"] == "question must be text."
    # An oversized request header and an oversized image: the connection is dropped.
    with connection.Client(srv.address, "AF_UNIX", authkey=key) as c:
        with pytest.raises((EOFError, OSError)):  # dropped, perhaps before the sending is done
            c.send_bytes(json.dumps({"v": 1, "op": "ask", "question": "x" * 200_000}).encode())
            c.recv_bytes()
    with pytest.raises(A11yCaptionError, match="stopped answering"):
        list(control.request("describe", source="image", image=os.urandom(control.MAX_IMAGE_BYTES + 1)))
    # Through all of it the server kept serving, and handled only the valid requests.
    assert list(control.request("status"))[-1] == {"type": "done", "state": "ready"}
    image = os.urandom(5_000_000)
    assert list(control.request("describe", source="image", image=image))[-1]["text"] == "5000000 bytes"
    assert [r["op"] for r, _ in handler.requests] == ["ask", "status", "describe"]
    silent.close()


def test_no_agent_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(control.AgentNotRunning):
        list(control.request("status"))
    r = run_cli("ask", "What does the error say?")
    assert r.returncode == 1
    assert r.stderr.strip() == ("a11y-caption: No a11y-caption agent is running for this user. "
                                "Start it with: a11y-caption run")
    r = run_cli("status")
    assert r.returncode == 1 and r.stdout.strip() == "not running"


# -- the real agent and the real CLI -------------------------------------------------------------

@pytest.fixture
def warm_agent(desktop, agent_factory, wordy_qwen, tmp_path):
    """start(max_new_tokens) -> (agent, env): an agent on a tiny model, and a CLI environment whose
    own settings name a model that is not on this computer, so only the agent can describe."""
    from test_agent import MESSAGE

    def start(max_new_tokens: int = 24, extra: str = ""):
        desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", MESSAGE])
        desktop.wait_for(lambda: "xmessage" in desktop.run("xdotool", "getactivewindow", "getwindowname").stdout)
        agent = agent_factory(wordy_qwen, max_new_tokens=max_new_tokens, extra=extra)
        cli_config = tmp_path / "cli.toml"
        cli_config.write_text('[model]\nname = "acme/not-downloaded"\n[speech]\nengine = "none"\n')
        env = {**desktop.env, "A11Y_CAPTION_RUNTIME_DIR": str(tmp_path / "run"),
               "A11Y_CAPTION_CONFIG": str(cli_config)}
        return agent, env

    return start


def _without_cue(stderr: str) -> list[str]:
    """stderr's lines but the wait's cue (said when the first words are more than a second away)."""
    return [line for line in stderr.splitlines() if line != "a11y-caption: The agent is working on it."]


def cli(env, *args, timeout=120):
    return run_cli(*args, env=env, timeout=timeout)


def _as_in_a_terminal() -> None:
    # A command started from a terminal gets Ctrl+C. One started in the background of a
    # non-interactive shell (as a CI runner may start the suite) inherits SIGINT ignored, and then
    # Python installs no KeyboardInterrupt handler at all: give the command a terminal's default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_process(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "a11y_caption", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            preexec_fn=_as_in_a_terminal)


def first_output(proc: subprocess.Popen, timeout: float = 60) -> str:
    """Wait until ``proc`` has printed something (the agent is streaming to it)."""
    got = []
    threading.Thread(target=lambda: got.append(proc.stdout.read(1)), daemon=True).start()
    Desktop.wait_for(lambda: got, timeout)
    return got[0]


@pytest.mark.desktop
def test_cli_describes_and_asks_through_the_warm_agent(warm_agent, tmp_path):
    agent, env = warm_agent()
    run = Path(env["A11Y_CAPTION_RUNTIME_DIR"])
    assert _mode(run) == 0o700 and _mode(run / "agent.sock") == 0o600 and _mode(run / "agent.key") == 0o600
    status = cli(env, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["state"] == "ready"
    # Before anything was described, ask says so.
    r = cli(env, "ask", "What does it say?")
    assert r.returncode == 1
    assert r.stderr.strip() == ("a11y-caption: Nothing has been described yet. Describe something first, "
                                "then ask about it.")
    # describe --screen is described by the agent's model, spoken by the agent, printed here.
    said_before = len(agent.lines())
    r = cli(env, "describe", "--screen", "--json", "--max-new-tokens", "8", "--local")  # local: the missing model
    assert r.returncode == 0 and "is not on this computer" in json.loads(r.stdout)["text"]
    r = cli(env, "describe", "--screen", "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["model"].endswith("qwen") and row["text"] and "not on this computer" not in row["text"]
    spoken = agent.lines()[said_before:]
    assert spoken[0] == "Describing the screen." and " ".join(row["text"].split()) in " ".join(spoken)
    # An image file sent by the CLI, and a follow-up question about it.
    r = cli(env, "describe", str(SAMPLE), "--no-speak")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    r = cli(env, "ask", "What is the resolution?", "--json", "--no-speak")
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["question"] == "What is the resolution?" and answer["text"]
    assert "ask by" in agent.log()
    # read through the agent: exact text of the active window (OCR), and repeat.
    from test_agent import MESSAGE

    r = cli(env, "read", "--window", "--no-speak")
    assert r.returncode == 0 and r.stdout.splitlines() == [MESSAGE, "okay"]  # xmessage's button reads "okay"
    r = cli(env, "repeat", "--no-speak")
    assert r.returncode == 0 and r.stdout.splitlines() == [MESSAGE, "okay"]


@pytest.mark.desktop
def test_stop_ctrl_c_and_a_dying_agent_end_the_command_cleanly(warm_agent):
    agent, env = warm_agent(max_new_tokens=4000)
    # `a11y-caption stop` while another command streams a long description.
    proc = cli_process(env, "describe", "--screen", "--no-speak")
    first_output(proc)
    r = cli(env, "stop")
    assert r.returncode == 0
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and _without_cue(err) == ["a11y-caption: stopped."], err
    Desktop.wait_for(lambda: "(stopped)" in agent.log(), 10)
    # Ctrl+C in the command stops the agent's generation too.
    stopped_before = agent.log().count("(stopped)")
    proc = cli_process(env, "describe", "--screen", "--no-speak")
    first_output(proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    Desktop.wait_for(lambda: agent.log().count("(stopped)") > stopped_before, 10)
    # Two commands at once: the latest wins, the first is told it was stopped.
    first = cli_process(env, "describe", "--screen", "--no-speak")
    first_output(first)
    second = cli_process(env, "read", "--window", "--no-speak")
    out2, _ = second.communicate(timeout=60)
    out1, err1 = first.communicate(timeout=30)
    assert second.returncode == 0 and out2.strip()
    assert first.returncode == 1 and _without_cue(err1) == ["a11y-caption: stopped."], err1
    # The agent dies mid-stream: one line, exit 1.
    proc = cli_process(env, "describe", "--screen", "--no-speak")
    first_output(proc)
    agent.proc.kill()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and _without_cue(err) == ["a11y-caption: The agent stopped answering."], err


@pytest.mark.desktop
def test_hotkeys_still_work_after_hostile_clients(warm_agent, desktop):
    agent, env = warm_agent()
    address = str(Path(env["A11Y_CAPTION_RUNTIME_DIR"]) / "agent.sock")
    for payload in (b"\x00" * 100_000, struct.pack("!i", 100 * 2**20) + os.urandom(4096)):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(address)
            try:
                s.sendall(payload)
            except OSError:
                pass
    assert cli(env, "status").returncode == 0
    before = len(agent.lines())
    desktop.key("ctrl+alt+shift+r")
    agent.wait_line(lambda line: line == "Reading.", after=before)
    assert agent.proc.poll() is None and "Traceback" not in agent.log()


def test_several_files_sent_to_the_agent_are_each_said_with_their_name(warm_agent, tmp_path):
    agent, env = warm_agent(max_new_tokens=6)
    second = tmp_path / "second picture.png"
    second.write_bytes(SAMPLE.read_bytes())
    said_before = len(agent.lines())
    r = cli(env, "describe", str(SAMPLE), str(second), "--speak")
    assert r.returncode == 0, r.stderr
    expected = [f"File {SAMPLE.name}: Describing the image.", "File second picture.png: Describing the image."]
    def named():
        found = [line for line in agent.lines()[said_before:] if line.startswith("File ")]
        return found if len(found) == 2 else None

    names = wait_for(named, timeout=30)
    assert names == expected, agent.lines()[said_before:]
    assert f"{SAMPLE}:" in r.stdout and f"{second}:" in r.stdout, "printed names too"
    said_before = len(agent.lines())
    r = cli(env, "describe", str(SAMPLE), "--speak")
    assert r.returncode == 0, r.stderr
    first = wait_for(lambda: agent.lines()[said_before:], timeout=30)[0]
    assert first == "Describing the image.", "one file: no name to say"
