"""Describing with a model on an OpenAI-compatible server.

Against a real server: `transformers serve` of the suite's tiny Qwen2-VL on 127.0.0.1 (the CLI,
streaming, Stop, a server killed mid-stream, an unknown model, a wrong port, the agent). Failures a
real server cannot be made to show here (401/403, 5xx, a malformed or truncated stream, an error
event, silence, a dropped connection attempt) are contract tests against a stand-in that speaks the
documented OpenAI chat completions API (tests/model_server.py).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from a11y_caption.captioner.base import GenerationOptions, Request
from a11y_caption.captioner.chat import SCREEN_PIXELS, fit_pixels
from a11y_caption.captioner.server import ServerCaptioner
from a11y_caption.config import ModelConfig, load_config
from a11y_caption.errors import ConfigError, ServerError, ServerUnreachable
from a11y_caption.captioner.prompts import prompt_for
from conftest import REPO, SAMPLE, TranscriptVoice, run_cli, stderr_lines, wait_for
from model_server import BlackHole, Serve, free_port, served_qwen, stand_in  # noqa: F401  (fixtures)
from test_agent import wordy_qwen  # noqa: F401  (fixture)

LONG = GenerationOptions(max_new_tokens=3000)  # about 5 s of streaming from the tiny model


def screen() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB")


def _one_error_line(r, *needles: str) -> str:
    lines = stderr_lines(r.stderr)
    assert r.returncode == 1 and len(lines) == 1, (r.returncode, r.stderr)
    assert lines[0].startswith("a11y-caption: The model server at 127.0.0.1:"), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- a real server: transformers serve ------------------------------------------------------------

def test_describe_through_a_running_server(served_qwen):
    r = run_cli("describe", str(SAMPLE), "--server", served_qwen.url, "--model", served_qwen.model,
                "--no-speak", "--json", "--max-new-tokens", "8")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["model"] == served_qwen.model and row["text"].strip()
    assert stderr_lines(r.stderr) == []  # loopback: no warning about plain http
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in served_qwen.log()


def test_the_server_streams_what_a_local_model_would_say(served_qwen):
    """Many chunks, and the same greedy answer as the same model in this process: the server got
    the same pixels and the same turns."""
    from a11y_caption.captioner.chat_vlm import ChatVLMCaptioner

    remote = ServerCaptioner(served_qwen.model, served_qwen.url)
    local = ChatVLMCaptioner("tiny", Path(served_qwen.model), device="cpu", dtype="fp32")
    options = GenerationOptions(max_new_tokens=16)
    for request in (Request(screen(), "screen"),
                    Request(screen(), "question", "And the button?", history=(("Describe it.", "A dialog."),),
                            image_kind="screen")):
        generation = remote.generate(request, options)
        chunks = list(generation)
        assert len(chunks) > 1 and generation.first_token_at is not None and not generation.stopped
        # The same tokens; the streamers differ only in the first word's leading space.
        assert "".join(chunks).strip() == local.generate(request, options).collect().text.strip()
    remote.close()


def test_stop_mid_stream_closes_the_connection_and_the_server_stops(served_qwen):
    captioner = ServerCaptioner(served_qwen.model, served_qwen.url)
    stop = threading.Event()
    generation = captioner.generate(Request(screen(), "screen"), LONG, stop)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(generation), daemon=True)
    reader.start()
    wait_for(lambda: len(chunks) >= 3, timeout=60, interval=0.01)
    (client,) = [c for c in served_qwen.connections() if c.status == "ESTABLISHED"]
    stop.set()  # from another thread, while the reader waits for the next chunk
    reader.join(timeout=1.0)
    assert not reader.is_alive(), "Stop did not end the stream within a second"
    assert generation.stopped and len(chunks) < 1000
    # The server saw the client go: it closed its end of that connection...
    wait_for(lambda: all(c.raddr != client.raddr for c in served_qwen.connections()), timeout=10, interval=0.02)
    # ...and stopped generating (it spends about a core while it streams).
    before = served_qwen.cpu_seconds()
    time.sleep(1.0)
    assert served_qwen.cpu_seconds() - before < 0.5
    captioner.close()


def test_a_server_killed_mid_stream_is_one_sentence(tiny_qwen, tmp_path):
    server = Serve(tiny_qwen, tmp_path / "serve")
    try:
        captioner = ServerCaptioner(server.model, server.url)
        generation = captioner.generate(Request(screen(), "screen"), LONG)
        chunks = []
        with pytest.raises(ServerError) as caught:
            for chunk in generation:
                chunks.append(chunk)
                if len(chunks) == 3:
                    server.kill()
        assert str(caught.value) == f"The model server at 127.0.0.1:{server.port} broke off its answer."
        # The next request, with the server gone: unreachable, one line, exit 1.
        r = run_cli("describe", str(SAMPLE), "--server", server.url, "--model", server.model, "--no-speak")
        _one_error_line(r, "cannot be reached")
    finally:
        server.stop()


def test_unknown_model_is_one_line_and_exit_1(served_qwen):
    r = run_cli("describe", str(SAMPLE), "--server", served_qwen.url, "--model", "no-such-model", "--no-speak")
    _one_error_line(r, "does not serve the model no-such-model")
    assert r.stdout == ""


def test_wrong_port_is_one_line_and_exit_1():
    port = free_port()
    r = run_cli("describe", str(SAMPLE), "--server", f"http://127.0.0.1:{port}/v1", "--model", "x", "--no-speak",
                "--json")
    assert _one_error_line(r) == f"a11y-caption: The model server at 127.0.0.1:{port} cannot be reached; is it running?"
    assert r.stdout == ""


def test_models_list_on_a_server(served_qwen, stand_in):
    r = run_cli("models", "list", "--server", served_qwen.url)
    assert r.returncode == 0 and r.stdout.splitlines() == [served_qwen.model], r.stderr
    broken = stand_in()
    broken.models = None  # its /v1/models fails, as transformers serve's does without a cache folder
    r = run_cli("models", "list", "--server", broken.url)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert "failed (HTTP 500)" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("models", "list", "--server", f"http://127.0.0.1:{free_port()}/v1")
    assert r.returncode == 1 and "cannot be reached" in r.stderr


def _agent(model_config: ModelConfig):
    from a11y_caption.agent.core import Agent
    from a11y_caption.speech import Speaker

    config = replace(load_config(REPO / "hotkeys.toml"), model=model_config)
    voice = TranscriptVoice()
    agent = Agent(config, Speaker(voice), capture=lambda *a, **k: None)
    agent.start()
    wait_for(lambda: "Ready." in voice.said, 30)
    return agent, voice


def _describe_by_agent(agent) -> list[dict]:
    from a11y_caption.agent import control

    buffer = io.BytesIO()
    screen().save(buffer, "PNG")
    reply = control.Reply()
    agent.handle_request({"op": "describe", "source": "image", "name": "shot.png", "speak": True},
                         buffer.getvalue(), reply)
    messages = []
    while (message := reply._messages.get(timeout=60)) is not None:
        messages.append(message)
    return messages


def test_the_agent_speaks_a_description_streamed_from_the_server(served_qwen):
    agent, voice = _agent(ModelConfig(name=served_qwen.model, server=served_qwen.url, max_new_tokens=40))
    try:
        said_before = len(voice.said)
        messages = _describe_by_agent(agent)
        chunks = [m["text"] for m in messages if m["type"] == "chunk"]
        assert messages[-1]["type"] == "done" and len(chunks) > 1
        words = messages[-1]["text"].split()
        assert len(words) > 6  # more than the speaker's first utterance (its first_words)
        # Said in more than one piece, as it streamed: the last utterances, together, are the text.
        wait_for(lambda: any(" ".join(voice.said[i:]).split() == words
                             for i in range(said_before, len(voice.said) - 1)), 30)
        assert not agent.unexpected
    finally:
        agent.close()


# -- contract tests against a stand-in server -------------------------------------------------------

def test_request_carries_the_same_prompt_turns_and_pixel_budget(stand_in, monkeypatch):
    """Contract test (stand-in server): what is sent is what a local model is given."""
    server = stand_in()
    monkeypatch.setenv("MY_SERVER_KEY", "sekrit-123")
    captioner = ServerCaptioner("some/model", server.url, api_key_env="MY_SERVER_KEY")
    big = Image.new("RGB", (1920, 1080), "white")
    request = Request(big, "question", "Is there an error?", language="German",
                      history=(("Describe the screen.", "A dialog."),), image_kind="screen")
    text = captioner.generate(request, GenerationOptions(max_new_tokens=7)).collect().text
    assert text.split() == server.text.split()[:7]  # the stand-in ignores max_tokens; the reader does not
    (sent,) = server.requests
    body, headers = sent["body"], sent["headers"]
    assert sent["path"] == "/v1/chat/completions" and headers["authorization"] == "Bearer sekrit-123"
    assert body["model"] == "some/model" and body["stream"] is True and body["max_tokens"] == 7
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]
    first = body["messages"][0]["content"]
    assert first[0]["type"] == "image_url" and first[1] == {"type": "text", "text": "Describe the screen."}
    assert body["messages"][1]["content"] == [{"type": "text", "text": "A dialog."}]
    assert body["messages"][2]["content"] == [{"type": "text", "text": prompt_for(request)}]
    url = first[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent_image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent_image.size == fit_pixels(big, SCREEN_PIXELS).size
    assert sent_image.width * sent_image.height <= SCREEN_PIXELS


@pytest.mark.parametrize("mode, sentence", [
    ("401", "refused the request (HTTP 401); name the environment variable holding a key with api_key_env."),
    ("403", "refused the request (HTTP 403); name the environment variable holding a key with api_key_env."),
    ("404", "does not serve the model some/model (HTTP 404: model 'some/model' not found)."),
    ("500", "failed (HTTP 500); its own log says why."),
    ("garbage", "sent an answer that is not an OpenAI chat completion stream."),
    ("truncated", "broke off its answer."),
    ("error_event", "reported an error while answering: the model crashed."),
])
def test_each_server_failure_is_one_sentence(stand_in, mode, sentence):
    """Contract test (stand-in server): every failure is a ServerError of one sentence."""
    server = stand_in(mode)
    captioner = ServerCaptioner("some/model", server.url)
    with pytest.raises(ServerError) as caught:
        captioner.generate(Request(screen(), "screen"), GenerationOptions()).collect()
    assert str(caught.value) == f"The model server at 127.0.0.1:{server.port} {sentence}"
    assert not isinstance(caught.value, ServerUnreachable)


def test_no_first_token_in_time(stand_in):
    """Contract test (stand-in server that answers the headers, then nothing)."""
    server = stand_in("silent")
    captioner = ServerCaptioner("m", server.url, first_token_timeout=1.0)
    start = time.monotonic()
    with pytest.raises(ServerError, match=r"^The model server at .* sent no answer within 1 s\.$"):
        captioner.generate(Request(screen(), "screen"), GenerationOptions()).collect()
    assert time.monotonic() - start < 5


def test_connect_timeout():
    """Contract test: a server whose connection queue is full never answers the connection attempt."""
    hole = BlackHole()
    try:
        captioner = ServerCaptioner("m", f"http://127.0.0.1:{hole.port}/v1", connect_timeout=0.5)
        start = time.monotonic()
        with pytest.raises(ServerUnreachable, match=r"did not accept a connection within 0.5 s\.$"):
            captioner.generate(Request(screen(), "screen"), GenerationOptions()).collect()
        assert time.monotonic() - start < 5
    finally:
        hole.close()


def test_stop_while_the_server_is_silent_is_immediate(stand_in):
    """Contract test (silent stand-in): Stop does not wait for a first token."""
    server = stand_in("silent")
    stop = threading.Event()
    generation = ServerCaptioner("m", server.url).generate(Request(screen(), "screen"), GenerationOptions(), stop)
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    assert generation.collect().stopped
    assert time.monotonic() - start < 1.5


def test_the_agent_says_a_server_error_and_the_next_press_works(stand_in):
    """Contract test (stand-in server failing, then answering): the agent stays up."""
    server = stand_in("500")
    agent, voice = _agent(ModelConfig(name="m", server=server.url))
    try:
        messages = _describe_by_agent(agent)
        sentence = f"The model server at 127.0.0.1:{server.port} failed (HTTP 500); its own log says why."
        assert messages[-1] == {"type": "error", "message": sentence}
        wait_for(lambda: sentence in voice.said, 10)
        server.mode = "stream"
        messages = _describe_by_agent(agent)
        assert messages[-1]["type"] == "done" and messages[-1]["text"].strip() == server.text
        assert not agent.unexpected
    finally:
        agent.close()


def test_ocr_fallback_when_the_server_is_down():
    from a11y_caption.describe.describer import Describer

    url = f"http://127.0.0.1:{free_port()}/v1"
    describer = Describer(ModelConfig(name="m", server=url, fallback="ocr"))
    text = describer.describe(screen(), "screen").collect().text
    assert "Night light" in text  # the sample screenshot's text, read here
    assert text.endswith("cannot be reached; is it running?")
    with pytest.raises(ServerUnreachable):  # without the fallback: the error
        Describer(ModelConfig(name="m", server=url)).describe(screen(), "screen").collect()


def test_plain_http_to_another_computer_warns_once(caplog):
    """No connection is made here: the warning comes when the backend is set up."""
    with caplog.at_level("WARNING"):
        for _ in range(2):
            ServerCaptioner("m", "http://192.0.2.7:8000/v1").close()
        ServerCaptioner("m", "https://192.0.2.7:8000/v1").close()
        ServerCaptioner("m", "http://localhost:8000/v1").close()
        ServerCaptioner("m", "http://[::1]:8000/v1").close()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["The model server 192.0.2.7:8000 is reached over plain http, so screenshots would cross "
                        "the network unencrypted; use an https URL unless the network is yours alone."]


def test_server_settings_are_checked(tmp_path, monkeypatch):
    def config(body: str):
        path = tmp_path / "hotkeys.toml"
        path.write_text("[model]\n" + body + "\n")
        return load_config(path)

    c = config('server = "http://127.0.0.1:11434/v1"\nname = "qwen2.5vl"\napi_key_env = "MY_KEY"\n'
               'first_token_timeout = 90\nfallback = "ocr"')
    assert (c.model.server, c.model.api_key_env, c.model.first_token_timeout, c.model.connect_timeout,
            c.model.fallback) == ("http://127.0.0.1:11434/v1", "MY_KEY", 90.0, 3.0, "ocr")
    with pytest.raises(ConfigError, match=r"hotkeys.toml:3: server must be an http:// or https:// URL"):
        config('\nserver = "127.0.0.1:11434"')
    with pytest.raises(ConfigError) as caught:  # a key pasted where its variable's name goes
        config('api_key_env = "sk-live-0123456789"')
    assert "sk-live" not in str(caught.value) and "never the key itself" in str(caught.value)
    with pytest.raises(ConfigError, match="fallback must be"):
        config('fallback = "blip"')
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    with pytest.raises(ServerError, match="UNSET_KEY_VAR"):
        ServerCaptioner("m", "http://127.0.0.1:1/v1", api_key_env="UNSET_KEY_VAR")
    r = run_cli("describe", str(SAMPLE), "--server", "ftp://host/v1", "--no-speak")
    assert r.returncode == 2 and r.stderr.startswith("a11y-caption: --server must be an http:// or https:// URL")
