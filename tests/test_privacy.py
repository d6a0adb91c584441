"""Nothing leaves the machine and nothing of the screen is stored: checked with Python audit hooks
in the real processes (every socket connect, name lookup and file opened for writing is recorded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE, add_to_hub_cache, run_cli, stderr_lines
from model_server import Listener, served_qwen, stand_in  # noqa: F401  (fixtures)
from test_agent import wordy_qwen  # noqa: F401  (fixture)

AUDIT_SITE = '''
import os, sys
_fd = os.open(os.environ["A11Y_AUDIT_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
def _hook(event, args):
    try:
        if event == "socket.connect":
            sock, address = args[0], args[1]
            if getattr(sock, "family", None) == 1:  # AF_UNIX: the local X server, not a network
                return
            os.write(_fd, f"connect\\t{address!r}\\n".encode())
        elif event == "socket.getaddrinfo":
            os.write(_fd, f"lookup\\t{args[0]!r}\\n".encode())
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing and isinstance(path, (str, bytes, os.PathLike)):
                os.write(_fd, f"write\\t{os.fsdecode(path)}\\n".encode())
    except Exception:
        pass
sys.addaudithook(_hook)
'''

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp", ".tif", ".tiff", ".gif")


def audited_env(tmp_path: Path) -> tuple[dict, Path]:
    site = tmp_path / "audit_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(AUDIT_SITE)
    log = tmp_path / "audit.log"
    env = {"PYTHONPATH": str(site), "A11Y_AUDIT_LOG": str(log), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return env, log


def events(log: Path, kind: str) -> list[str]:
    return [line.split("\t", 1)[1] for line in log.read_text().splitlines() if line.startswith(kind + "\t")]


def test_describing_with_a_cached_hub_model_makes_no_connection(tiny_qwen, tmp_path):
    env, log = audited_env(tmp_path)
    cache = add_to_hub_cache(tiny_qwen, tmp_path / "hub", "acme/tiny-qwen")
    env.update(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="")  # even without offline mode
    environ = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    r = run_cli("describe", str(SAMPLE), "--model", "acme/tiny-qwen", "--no-speak", "--json",
                "--max-new-tokens", "4", env={**environ, **env, "HF_HUB_OFFLINE": "0"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == "acme/tiny-qwen"
    assert log.exists(), "the audit hook ran"
    assert events(log, "connect") == [] and events(log, "lookup") == []
    assert [p for p in events(log, "write") if p.lower().endswith(IMAGE_SUFFIXES)] == []
    # What was on screen is not logged at the default level.
    assert "Night light" not in r.stderr and stderr_lines(r.stderr) == []


@pytest.mark.desktop
def test_agent_makes_no_connection_and_writes_no_screenshot(desktop, tiny_qwen, tmp_path):
    from test_agent import MESSAGE, AgentProcess, write_config

    env, log = audited_env(tmp_path)
    cache = add_to_hub_cache(tiny_qwen, tmp_path / "hub", "acme/tiny-qwen")
    desktop.spawn(["xmessage", "-fn", "10x20", "-geometry", "+200+150", MESSAGE])
    transcript = tmp_path / "said.txt"
    config = write_config(tmp_path / "hotkeys.toml", Path("acme/tiny-qwen"), transcript, 6)
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", *env, "HF_HUB_CACHE")}
    os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ.update(env, HF_HUB_CACHE=str(cache))
    try:
        agent = AgentProcess(desktop, tmp_path, config, transcript)
        agent.wait_line(lambda line: line == "Ready.")
        desktop.key("ctrl+alt+shift+d")
        desktop.wait_for(lambda: agent.generations() == ["describe_screen"], 60)
        desktop.key("ctrl+alt+shift+r")
        agent.wait_line(lambda line: line == MESSAGE)
        assert agent.stop() == 0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert events(log, "connect") == [] and events(log, "lookup") == []
    written = events(log, "write")
    assert [p for p in written if p.lower().endswith(IMAGE_SUFFIXES)] == []
    assert not any(Path(p).is_relative_to(tmp_path / "tmp") for p in written), "no temporary files"
    # -v logs counts and timings, never the words that were on screen.
    assert "Invoice" not in agent.log() and "Friday" not in agent.log()
    assert "describe_screen by acme/tiny-qwen:" in agent.log()


def _require_strace() -> None:
    import shutil

    if shutil.which("strace") is None:
        if os.environ.get("CI"):
            pytest.fail("strace is missing (make test installs it)")
        pytest.skip("strace is not installed (make test installs it)")


def _strace_network(args: list[str], env: dict, trace: Path, returncode: int = 0) -> list[str]:
    """Run the CLI under strace; the lines where it connects or sends to an internet address."""
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve,socket,connect,sendto,sendmsg", "-o", str(trace),
                        sys.executable, "-m", "a11y_caption", *args, "--no-speak"],
                       env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == returncode, r.stderr
    calls = trace.read_text()
    assert "execve(" in calls, "strace traced the program"
    # Creating an IPv6 socket to probe for support (urllib3 does at import) is no traffic;
    # connecting or sending to an internet address is.
    return [line for line in calls.splitlines()
            if ("AF_INET" in line or "sin_port" in line) and any(f" {c}(" in line for c in ("connect", "sendto", "sendmsg"))]


def _proxied_env(proxy: Listener) -> dict:
    """The environment with every proxy variable naming ``proxy``, which the program must ignore."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env[name] = proxy.url
    return {**env, "HF_HUB_OFFLINE": "1"}


def _targets(network: list[str]) -> set[tuple[str, str]]:
    import re

    assert all("sin_port" in line for line in network), network
    return {(m.group(1), m.group(2)) for m in
            (re.search(r"sin_port=htons\((\d+)\), sin_addr=inet_addr\(\"([\d.]+)\"\)", line) for line in network)
            if m}


def test_with_a_server_configured_connections_go_only_to_it(served_qwen, tmp_path):
    """The server backend at the system-call level: every connection and every packet sent goes to
    the configured host and port, nowhere else (no name lookup, no other address), even with the
    environment's proxy variables naming a proxy (a real listening socket, which gets no byte)."""
    _require_strace()
    proxy = Listener()
    try:
        args = ["describe", str(SAMPLE), "--server", served_qwen.url, "--model", served_qwen.model,
                "--max-new-tokens", "4"]
        network = _strace_network(args, _proxied_env(proxy), tmp_path / "trace")
    finally:
        proxy.close()
    assert network, "the description went through the server"
    assert _targets(network) == {(str(served_qwen.port), "127.0.0.1")}, network
    assert proxy.connections == 0 and proxy.received == b""


def test_a_redirecting_server_gets_the_screenshot_and_nothing_else_does(stand_in, tmp_path):
    """A server that redirects to another address (a real listening socket, which the proxy
    variables name too): the program refuses to follow, so the one address it connects to is the
    configured server's."""
    _require_strace()
    server, target = stand_in(), Listener()
    server.redirect = (307, f"http://127.0.0.1:{target.port}/v1/chat/completions")
    try:
        network = _strace_network(["describe", str(SAMPLE), "--server", server.url, "--model", "m"],
                                  _proxied_env(target), tmp_path / "trace", returncode=1)
    finally:
        target.close()
    assert _targets(network) == {(str(server.port), "127.0.0.1")}, network
    assert target.connections == 0 and target.received == b""
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"]


def test_no_telemetry_files_and_no_network_at_the_system_call_level(tiny_qwen, tmp_path):
    """ONNX Runtime (under the OCR) writes a device id and an event cache for its telemetry unless
    told not to; and native code can open sockets that Python's audit hooks never see. So: a real
    read and describe, with HOME and TMPDIR empty folders, under strace watching every connect."""
    _require_strace()
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(home / ".cache"),
           "HF_HUB_OFFLINE": "1"}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # the program must switch it off itself
    trace = tmp_path / "trace"
    for args in (["read", str(SAMPLE)], ["describe", str(SAMPLE), "--model", str(tiny_qwen), "--max-new-tokens", "4"]):
        network = _strace_network(args, env, trace)
        assert network == [], network
    # The one thing kept: the model converted to int8 (README, "Models"), weights and their layout only.
    kept = home / ".cache" / "a11y-caption" / "quantized"
    copies = [p for p in kept.iterdir()] if kept.is_dir() else []
    assert len(copies) == 1 and sorted(f.name for f in copies[0].iterdir()) == ["int8-00001.safetensors", "meta.json"]
    shutil.rmtree(home / ".cache" / "a11y-caption")
    (home / ".cache").rmdir()  # nothing else was put there
    left = sorted(str(p.relative_to(tmp_path)) for p in [*home.rglob("*"), *tmp.rglob("*")])
    assert left == [], f"files written to HOME or TMPDIR: {left}"


# -- clipboard, screen and description text never reach a traceback, a log or an error line ------
# More than 255 bytes on one line, so it cannot be a file name, and a secret inside it.
SECRET = "4711"
SECRET_LINE = ("My bank PIN is " + SECRET + " and my password is hunter2. ") * 6
assert len(SECRET_LINE.encode()) > 255


@pytest.mark.desktop
def test_long_clipboard_line_is_no_image_and_stays_private(desktop):
    desktop.run("xclip", "-selection", "clipboard", "-i", input=SECRET_LINE.encode())
    r = run_cli("describe", "--clipboard", "--no-speak", env={"DISPLAY": desktop.display})
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["a11y-caption: There is no image on the clipboard."]
    assert SECRET not in r.stdout and SECRET not in r.stderr


def test_describe_unexpected_names_type_and_package_line_only():
    import traceback

    from a11y_caption.captioner import ocr
    from a11y_caption.errors import describe_unexpected

    with pytest.raises(TypeError) as caught:
        ocr.order_lines([None], [SECRET_LINE])  # a bug's exception, raised inside the package
    innermost = traceback.extract_tb(caught.value.__traceback__)[-1]  # the line in ocr.py that failed
    assert innermost.filename.endswith("ocr.py")
    assert describe_unexpected(caught.value) == f"TypeError at captioner/ocr.py:{innermost.lineno}"
    # Raised outside the package: the type alone, and never the message.
    assert describe_unexpected(OSError(36, "File name too long", SECRET_LINE)) == "OSError"


def _fail_with_a_secret():
    raise OSError(36, "File name too long", SECRET_LINE)


@pytest.mark.parametrize("debug", [False, True])
def test_cli_reports_an_unexpected_error_by_type_and_place(monkeypatch, capsys, caplog, debug):
    from a11y_caption import capture, cli

    monkeypatch.setattr(capture, "grab_clipboard_image", _fail_with_a_secret)
    status = cli.main([*(["--debug"] if debug else []), "describe", "--clipboard", "--no-speak"])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("a11y-caption: unexpected error (OSError at cli/local.py:")
    # The traceback goes to the log, which a real --debug run prints on stderr (test_cli checks that).
    tracebacks = [r for r in caplog.records if r.exc_info]
    if debug:
        assert lines[0].endswith("); the traceback above may contain text from your screen or clipboard.")
        assert [r.exc_info[0] for r in tracebacks] == [OSError]
    else:
        assert lines[0].endswith("); run with --debug for details.")
        assert tracebacks == []
        assert SECRET not in err and SECRET not in caplog.text


def test_cli_still_stops_quietly_on_ctrl_c(monkeypatch, capsys):
    from a11y_caption import capture, cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(capture, "grab_clipboard_image", interrupted)
    assert cli.main(["describe", "--clipboard", "--no-speak"]) == 130
    assert capsys.readouterr().err == "a11y-caption: stopped.\n"
