"""Shared fixtures: tiny random models built offline once per session, and an isolated home."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import tempfile

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # no test may touch the network
# huggingface_hub reads HF_HOME once, at import: isolate this whole process from the user's cache.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="a11y-caption-hf-home-")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Nothing of a screen may outlive the utterance or description that needed it. Every temporary
# file of the suite and of the programs it starts goes to one folder, which must be empty at the
# end (pytest_sessionfinish); pytest's own tmp_path folders stay where they were.
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="a11y-caption-torch-cache-"))  # code, not screens
# A desktop session has a private runtime folder; without one, audio clients (libpulse, under
# eSpeak NG) make theirs in the temp folder instead.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="a11y-caption-xdg-runtime-"))
SUITE_TMP = Path(tempfile.mkdtemp(prefix="a11y-caption-suite-tmp-"))
os.environ["TMPDIR"] = tempfile.tempdir = str(SUITE_TMP)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "a11y_caption" / "samples" / "sample-screen.png"


def pytest_sessionfinish(session, exitstatus):
    left = sorted(str(p.relative_to(SUITE_TMP)) for p in SUITE_TMP.rglob("*"))
    if left:
        print(f"\nFAILED: the suite left {len(left)} file(s) in its temp folder {SUITE_TMP}: {left[:20]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        SUITE_TMP.rmdir()


def isolate_home(monkeypatch, root: Path) -> None:
    """No settings, model cache or running agent of the developer's: every folder the product
    reads or writes is one under ``root``.

    The user config folder is an empty one (platformdirs reads XDG_CONFIG_HOME on Linux), so the
    packaged default applies; A11Y_CAPTION_CONFIG is unset, because naming a file that does not
    exist is an error.
    """
    from a11y_caption.config import user_config_path

    monkeypatch.delenv("A11Y_CAPTION_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "user-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "user-data"))  # the image index (index.py)
    assert user_config_path().is_relative_to(root), "this platform's config folder is not isolated"
    monkeypatch.setenv("HF_HOME", str(root / "hf-home"))  # for child processes
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "user-cache"))  # kept int8 copies (platformdirs)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # speech = "auto" finds no screen reader unless a test starts one (tests/screen_readers.py).
    monkeypatch.setenv("SPEECHD_ADDRESS", f"unix_socket:{root / 'no-speech-dispatcher.sock'}")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("A11Y_CAPTION_RUNTIME_DIR", str(root / "no-agent-here"))  # never the user's own agent


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test runs with its own home (isolate_home); a module-wide fixture calls isolate_home itself."""
    isolate_home(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny random Qwen2-VL, Qwen2.5-VL and BLIP checkpoints, saved like real ones (< 1 MB each)."""
    from a11y_caption.bench.replica import build_replica

    root = tmp_path_factory.mktemp("tiny-models")
    return {name: build_replica(name, root / name, full=False) for name in ("qwen2-vl-2b", "qwen2.5-vl", "blip-base")}


@pytest.fixture(scope="session")
def tiny_qwen(tiny_models) -> Path:
    return tiny_models["qwen2-vl-2b"]


@pytest.fixture(scope="session")
def tiny_blip(tiny_models) -> Path:
    return tiny_models["blip-base"]


def add_to_hub_cache(model_dir: Path, cache: Path, repo_id: str) -> Path:
    """Lay ``model_dir`` out in a Hugging Face cache as `models pull` leaves a download; returns cache."""
    import shutil

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(model_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return cache


def non_word_start_tokens(vocab: dict[str, int]) -> list[int]:
    """Ids of tokens that do not start a word (no leading "Ġ" space). Suppressing them makes a tiny
    random model write words, so a streamer (which releases text a word at a time) has many chunks."""
    return sorted(i for token, i in vocab.items() if not token.startswith("Ġ"))


def run_cli(*args: str, env: dict | None = None, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    """The installed console entry point, as a user runs it, in a separate process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "a11y_caption", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


# The cues of a command's waits (cli/cues.py), said on stderr once a wait passes a second: whether
# one is said depends on the machine's speed, so a test of what else stderr says leaves them out.
_CUE = re.compile(r"a11y-caption: (Loading the model[.;].*|Connecting to the model server\.|Describing\.|Reading\."
                  r"|The agent is working on it\.)")


def stderr_lines(stderr: str) -> list[str]:
    """A command's stderr, line by line, without the cues of its waits."""
    return [line for line in stderr.splitlines() if not _CUE.fullmatch(line)]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """``predicate()``'s first truthy value, polling; AssertionError after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")


class TranscriptVoice:
    """A voice that notes what it is given, in place of a sound card."""

    def __init__(self):
        self.said: list[str] = []

    def say(self, text):
        self.said.append(text)

    def interrupt(self):
        pass

    def close(self):
        pass


DESKTOP_TOOLS = ("Xvfb", "xdotool", "xclip", "openbox", "xmessage")


def _require_desktop_tools() -> None:
    import shutil

    missing = [t for t in DESKTOP_TOOLS if shutil.which(t) is None]
    if missing:
        message = f"desktop tools missing: {', '.join(missing)} (make test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run these tests, never skip them
        pytest.skip(message)


class Desktop:
    """A virtual X server (Xvfb) with a window manager, for real hotkeys, capture and clipboard."""

    def __init__(self, extra_args: tuple[str, ...] = (), window_manager: bool = True):
        _require_desktop_tools()
        read_fd, write_fd = os.pipe()
        self.procs = []
        self.xvfb = subprocess.Popen(
            # -noreset: an X server resets when its last client leaves, and refuses connections
            # meanwhile; without a window manager the readiness probe below was such a client
            # (the next connection failed in 4 of 20 runs under load).
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset",
             *extra_args],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            self.display = ":" + f.readline().strip()
        self.env = {"DISPLAY": self.display}
        # -displayfd reports the number when the server is ready; seen twice under load, a first
        # client still could not connect. Hand out the display only once one can.
        self.wait_for(self._accepts_clients, timeout=10, interval=0.05)
        if window_manager:
            try:
                self._start_window_manager()
            except BaseException:
                self.close()
                raise

    def _accepts_clients(self) -> bool:
        from Xlib import display

        try:
            display.Display(self.display).close()
            return True
        except Exception:
            return False

    def _start_window_manager(self) -> None:
        """openbox, restarted if it exits at once (it sometimes does on a brand-new server)."""
        wm = [self.spawn(["openbox"])]

        def ready() -> bool:
            if wm[0].poll() is not None:
                self.procs.remove(wm[0])
                wm[0] = self.spawn(["openbox"])
                return False
            return "window id" in self.run("xprop", "-root", "_NET_SUPPORTING_WM_CHECK").stdout

        self.wait_for(ready, interval=0.1)

    def spawn(self, args: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(args, env={**os.environ, **self.env}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def run(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(args, env={**os.environ, **self.env}, capture_output=input is None, input=input,
                              timeout=30, **({} if input is None else {"stdout": subprocess.DEVNULL,
                                                                        "stderr": subprocess.DEVNULL}),
                              text=input is None)

    def key(self, chord: str) -> None:
        self.run("xdotool", "key", chord)

    def copy_png(self, path) -> None:
        # xclip keeps running to own the selection: its output must not be captured.
        subprocess.run(["xclip", "-selection", "clipboard", "-t", "image/png", "-i", str(path)],
                       env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=10)

    def clipboard_text(self) -> str:
        return self.run("xclip", "-selection", "clipboard", "-o").stdout

    wait_for = staticmethod(wait_for)

    def close(self) -> None:
        # SIGTERM, so that Xvfb removes its lock file and socket before the next one starts.
        for p in [*reversed(self.procs), self.xvfb]:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def serving(monkeypatch, service, variable: str, value: str):
    """A fixture's body for a throwaway service (a display, a bus, a daemon): the environment
    points at it during the test (``variable`` = ``value``), and it is closed after."""
    monkeypatch.setenv(variable, value)
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def desktop(monkeypatch):
    yield from serving(monkeypatch, d := Desktop(), "DISPLAY", d.display)
