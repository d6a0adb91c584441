"""The server backend against servers that misbehave, or are not what they seem: the screenshot
goes only to the server the user named (no proxy from the environment, no redirect followed), and
every answer is bounded in time, text and bytes read.

Contract tests against the stand-in of tests/model_server.py; a place the request must never
reach (a proxy from the environment, a redirect's target) is a real listening socket on 127.0.0.1,
and each test asserts it received no byte.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from PIL import Image

from a11y_caption.captioner.base import GenerationOptions, Request
from a11y_caption.captioner.server import ServerCaptioner
from a11y_caption.config import ModelConfig
from a11y_caption.errors import ServerError, ServerUnreachable
from conftest import SAMPLE, run_cli
from model_server import StandIn, listener, own_ca, stand_in  # noqa: F401  (fixtures)

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def screen() -> Image.Image:
    return Image.open(SAMPLE).convert("RGB")


def _proxies_at(monkeypatch, url: str) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def _collect_within(generation, seconds: float):
    """``generation.collect()`` on a thread: its Description or error, or AssertionError if it is
    still reading after ``seconds`` (Stop then ends it, so a failing test does not hang)."""
    result: list = []

    def run():
        try:
            result.append(generation.collect())
        except BaseException as e:  # noqa: BLE001  (handed to the test)
            result.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        generation.stop.set()
        thread.join(5)
        raise AssertionError(f"the answer was still being read after {seconds} s")
    return result[0]


# -- where the request goes ------------------------------------------------------------------------

def test_proxy_variables_do_not_carry_the_screenshot_away(stand_in, listener, monkeypatch):
    server, proxy = stand_in(), listener()
    _proxies_at(monkeypatch, proxy.url)
    captioner = ServerCaptioner("m", server.url)
    assert captioner.generate(Request(screen(), "screen"), GenerationOptions()).collect().text == server.text
    assert captioner.list_models() == ["stand-in-model"]
    captioner.close()
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions", "/v1/models"]
    assert proxy.connections == 0 and proxy.received == b""


def test_the_proxy_setting_is_the_one_proxy_used(stand_in, listener, monkeypatch):
    """[model] proxy, and only it: the stand-in acts as that proxy (an http proxy gets the whole
    URL as the request's target); neither the server's address itself nor the environment's proxy
    is reached."""
    proxy, target, elsewhere = stand_in(), listener(), listener()
    _proxies_at(monkeypatch, elsewhere.url)
    from a11y_caption.describe.describer import Describer

    describer = Describer(ModelConfig(name="m", server=f"{target.url}/v1", proxy=f"http://127.0.0.1:{proxy.port}"))
    assert describer.describe(screen(), "screen").collect().text == proxy.text
    (sent,) = proxy.requests
    assert sent["path"] == f"http://127.0.0.1:{target.port}/v1/chat/completions"
    assert sent["body"]["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert target.received == b"" and elsewhere.received == b""


def _hashed_ca_folder(cert, folder):
    """An SSL_CERT_DIR: the certificate under its subject hash, as OpenSSL looks it up."""
    subject_hash = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(cert)], check=True,
                                  capture_output=True, text=True).stdout.strip()
    folder.mkdir()
    (folder / f"{subject_hash}.0").write_bytes(cert.read_bytes())
    return folder


def test_a_server_with_its_own_ca_named_in_ssl_cert_file_or_dir(own_ca, stand_in, monkeypatch, tmp_path):
    """The environment's proxies are not read, but its certificate settings still are."""
    cert, _ = own_ca
    server = stand_in(tls=own_ca)
    for name, value in (("SSL_CERT_FILE", str(cert)), ("SSL_CERT_DIR", str(_hashed_ca_folder(cert, tmp_path / "ca")))):
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        monkeypatch.setenv(name, value)
        captioner = ServerCaptioner("m", server.url)
        assert captioner.generate(Request(screen(), "screen"), GenerationOptions()).collect().text == server.text, name
    monkeypatch.delenv("SSL_CERT_DIR")
    with pytest.raises(ServerError) as caught:  # the system's CAs do not know it
        ServerCaptioner("m", server.url).generate(Request(screen(), "screen"), GenerationOptions()).collect()
    assert str(caught.value) == (f"The model server at 127.0.0.1:{server.port} shows a certificate this computer "
                                 "does not trust; name its CA's file in SSL_CERT_FILE.")
    assert not isinstance(caught.value, ServerUnreachable)


def test_unreadable_certificate_settings_are_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(ServerError, match=r"^The certificates named by SSL_CERT_FILE cannot be read; correct the "
                                          r"setting or unset it\.$"):
        ServerCaptioner("m", "https://127.0.0.1:1/v1")
    ServerCaptioner("m", "http://127.0.0.1:1/v1").close()  # plain http checks no certificate


def test_plain_http_through_a_proxy_on_another_computer_warns(caplog):
    with caplog.at_level("WARNING"):
        ServerCaptioner("m", "http://127.0.0.1:8000/v1", proxy="http://192.0.2.9:3128").close()
        ServerCaptioner("m", "http://127.0.0.1:8000/v1", proxy="http://127.0.0.1:3128").close()
        ServerCaptioner("m", "https://127.0.0.1:8000/v1", proxy="http://192.0.2.9:3128").close()  # a tunnel
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["The model server 127.0.0.1:8000 is reached over plain http through the proxy 192.0.2.9:3128, "
                        "so screenshots would cross the network unencrypted; use an https URL unless the network is "
                        "yours alone."]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_not_followed(stand_in, listener, status):
    server, target = stand_in(), listener()
    server.redirect = (status, f"http://127.0.0.1:{target.port}/v1/chat/completions")
    captioner = ServerCaptioner("m", server.url)
    sentence = (f"The model server at 127.0.0.1:{server.port} redirected the request to 127.0.0.1:{target.port}; "
                "a11y-caption sends the screen only to the server you named: set [model] server to that address "
                "if it is yours.")
    with pytest.raises(ServerError) as caught:
        captioner.generate(Request(screen(), "screen"), GenerationOptions()).collect()
    assert str(caught.value) == sentence and not isinstance(caught.value, ServerUnreachable)
    with pytest.raises(ServerError) as caught:
        captioner.list_models()
    assert str(caught.value) == sentence
    assert target.connections == 0 and target.received == b""
    assert len(server.requests) == 2


@pytest.mark.parametrize("location, where", [
    ("/v2/chat/completions", "{server}"),  # relative: resolved against the request's URL
    ("//user:pw@10.0.0.5/x", "10.0.0.5"),  # never the credentials written into it
    ("http://ev\x1bil\u202e.example:99/", "ev\\x1bil\\u202e.example:99"),  # hostile text, made visible
    ("http://host:port/", "an address that is not valid"),
])
def test_where_a_redirect_points_is_said_safely(stand_in, location, where):
    server = stand_in()
    server.redirect = (302, location)
    with pytest.raises(ServerError) as caught:
        ServerCaptioner("m", server.url).generate(Request(screen(), "screen"), GenerationOptions()).collect()
    where = where.format(server=f"127.0.0.1:{server.port}")
    assert f" redirected the request to {where}; " in str(caught.value), str(caught.value)


def test_models_list_refuses_a_redirect(stand_in, listener, monkeypatch, tmp_path):
    """`models list --server`, through the CLI; with [model] proxy set too, it goes through the proxy."""
    server, target = stand_in(), listener()
    server.redirect = (307, f"http://127.0.0.1:{target.port}/v1/models")
    _proxies_at(monkeypatch, target.url)
    r = run_cli("models", "list", "--server", server.url)
    assert r.returncode == 1 and r.stdout == "" and "redirected the request to 127.0.0.1:" in r.stderr, r.stderr
    assert "Ask for a model by the name" not in r.stderr  # not a server without a list: an error
    assert len(r.stderr.strip().splitlines()) == 1
    proxy = stand_in()
    config = tmp_path / "hotkeys.toml"
    config.write_text(f'[model]\nproxy = "http://127.0.0.1:{proxy.port}"\n')
    r = run_cli("models", "list", "--server", f"{target.url}/v1", "--config", str(config))
    assert r.returncode == 0 and r.stdout.splitlines() == ["stand-in-model"], r.stderr
    assert [q["path"] for q in proxy.requests] == [f"http://127.0.0.1:{target.port}/v1/models"]
    assert target.connections == 0 and target.received == b""


# -- how long and how much -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["keepalive", "trickle"])
def test_an_answer_that_never_ends_meets_the_answer_timeout(stand_in, mode):
    """After the first word: comments only, or one byte at a time; each keeps the read timeout
    from firing, so only the answer's own deadline ends it, and the connection closes."""
    server = stand_in(mode)
    captioner = ServerCaptioner("m", server.url, first_token_timeout=5.0, answer_timeout=1.0)
    start = time.monotonic()
    error = _collect_within(captioner.generate(Request(screen(), "screen"), GenerationOptions()), 6)
    assert isinstance(error, ServerError) and str(error) == (
        f"The model server at 127.0.0.1:{server.port} was still answering after 1 s; raise [model] answer_timeout "
        "if it is only slow."), error
    assert 0.9 < time.monotonic() - start < 5
    assert server.gone.wait(3), "the reading thread stopped and closed the connection"


def test_the_answer_timeout_setting_reaches_the_server_backend(stand_in):
    from a11y_caption.describe.describer import Describer

    server = stand_in("keepalive")
    describer = Describer(ModelConfig(name="m", server=server.url, answer_timeout=1.0))
    error = _collect_within(describer.describe(screen(), "screen"), 6)
    assert isinstance(error, ServerError) and "was still answering after 1 s" in str(error), error


def test_an_endless_stream_ends_at_max_new_tokens(stand_in):
    server = stand_in("endless")
    generation = ServerCaptioner("m", server.url).generate(Request(screen(), "screen"),
                                                           GenerationOptions(max_new_tokens=20))
    description = _collect_within(generation, 6)
    assert not isinstance(description, BaseException), description
    assert description.text == ("Still " + "more " * 19).strip() and description.new_tokens == 20
    assert not description.stopped
    assert server.gone.wait(3)


def test_long_chunks_are_cut_at_the_text_cap(stand_in):
    """Fifty events of 10,000 characters: the answer ends, as a local model's does, at
    max_new_tokens' worth of text (32 characters a token)."""
    server = stand_in("wide")
    description = _collect_within(ServerCaptioner("m", server.url).generate(
        Request(screen(), "screen"), GenerationOptions(max_new_tokens=100)), 6)
    assert not isinstance(description, BaseException), description
    assert description.text == "x" * 3200 and not description.stopped


def test_a_50_mb_answer_is_not_read_whole(stand_in):
    """One event of 50 MB: the byte cap under the event parser ends it (1 MB + 4 KB a token)."""
    server = stand_in("huge")
    captioner = ServerCaptioner("m", server.url, first_token_timeout=5.0)
    error = _collect_within(captioner.generate(Request(screen(), "screen"), GenerationOptions(max_new_tokens=128)), 6)
    assert isinstance(error, ServerError) and str(error) == (
        f"The model server at 127.0.0.1:{server.port} sent more than 1.5 MB for one answer; check that the server "
        "address is a model server."), error
    assert server.gone.wait(3)


def test_a_compressed_answer_is_refused_unread(stand_in):
    server = stand_in("gzip")
    captioner = ServerCaptioner("m", server.url, first_token_timeout=5.0)
    error = _collect_within(captioner.generate(Request(screen(), "screen"), GenerationOptions()), 6)
    assert isinstance(error, ServerError) and str(error) == (
        f"The model server at 127.0.0.1:{server.port} sent a compressed answer (gzip), which a11y-caption does "
        "not unpack; turn compression off on the server."), error
    assert server.requests[0]["headers"]["accept-encoding"] == "identity"


def test_a_whole_json_answer_to_a_streamed_request_is_used(stand_in):
    """A server that ignores stream=true and answers one chat.completion as application/json."""
    server = stand_in("json")
    description = ServerCaptioner("m", server.url).generate(Request(screen(), "screen"), GenerationOptions()).collect()
    assert description.text == server.text and description.new_tokens == 11
    cut = ServerCaptioner("m", server.url).generate(Request(screen(), "screen"),
                                                    GenerationOptions(max_new_tokens=1)).collect()
    assert cut.text == server.text[:32].strip()  # the text cap holds here too


# -- what is said -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, sentence", [
    ("hostile_400", "refused the request (HTTP 400: wipe\\x1b[2J\\x1b]0;owned\\x07 the screen\\u202e)."),
    ("hostile_event", "reported an error while answering: wipe\\x1b[2J\\x1b]0;owned\\x07 the screen\\u202e."),
])
def test_a_servers_error_text_cannot_write_escape_sequences(stand_in, mode, sentence):
    server = stand_in(mode)
    with pytest.raises(ServerError) as caught:
        ServerCaptioner("m", server.url).generate(Request(screen(), "screen"), GenerationOptions()).collect()
    assert str(caught.value) == f"The model server at 127.0.0.1:{server.port} {sentence}"
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)
    assert StandIn.HOSTILE.startswith("wipe\x1b")  # the stand-in did send them


def test_a_servers_answer_and_model_names_reach_the_terminal_escaped(stand_in):
    """`describe --server` prints the answer as it streams: its escape sequences (which would
    clear the screen, retitle the window, or reorder what the screen reader reads) are shown as
    escapes (the stand-in streams word by word). `models list` prints each name on one line."""
    server = stand_in(text=StandIn.HOSTILE)
    server.models = ["evil\x1b[2J\nmodel"]
    r = run_cli("describe", str(SAMPLE), "--server", server.url, "--model", "m", "--no-speak")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout and "\r" not in r.stdout
    assert "wipe\\x1b[2J\\x1b]0;owned\\x07 the screen\\u202e" in r.stdout, repr(r.stdout)
    r = run_cli("models", "list", "--server", server.url)
    assert r.returncode == 0 and r.stdout.splitlines() == ["evil\\x1b[2J\\x0amodel"], repr(r.stdout)
