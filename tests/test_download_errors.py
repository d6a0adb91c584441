"""`models pull` says which way a download failed: HF_HUB_OFFLINE is set, no network, no such
model, not allowed (gated), the disk full; the library's exception name only with --debug.

The hub cannot be reached from the test machines: each of huggingface_hub's own errors is made as
the library makes it (hf_raise_for_status on a real response, a LocalEntryNotFoundError raised from
the connection error, as snapshot_download does) and raised by a stand-in snapshot_download; real
runs go offline, to a name that cannot be looked up, to a closed port, and to a stand-in hub on
this machine that answers as the hub does.
"""

from __future__ import annotations

import errno
import http.server
import socket
import threading

import httpx2
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import (HFValidationError, HfHubHTTPError, IncompleteSnapshotError,
                                    LocalEntryNotFoundError, OfflineModeIsEnabled)
from huggingface_hub.utils import hf_raise_for_status, validate_repo_id

from a11y_caption import models
from a11y_caption.errors import DownloadError, ModelNotFound
from conftest import run_cli

REPO_ID = "HuggingFaceTB/SmolVLM-256M-Instruct"  # smolvlm: 0.5 GB


def from_hub(status: int, error_code: str | None = None) -> HfHubHTTPError:
    """The error huggingface_hub raises for this answer to the repo_info request of snapshot_download."""
    request = httpx2.Request("GET", f"https://huggingface.co/api/models/{REPO_ID}/revision/main")
    response = httpx2.Response(status, headers={"X-Error-Code": error_code} if error_code else {},
                               json={"error": "refused"}, request=request)
    with pytest.raises(HfHubHTTPError) as caught:
        hf_raise_for_status(response)
    return caught.value


def raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    """``outer`` raised from ``cause``, as snapshot_download chains them."""
    try:
        try:
            raise cause
        except BaseException as c:
            raise outer from c
    except BaseException as e:
        return e


def not_cached_after(cause: BaseException) -> BaseException:
    """What snapshot_download raises when the hub cannot be reached and the model is not cached."""
    return raised_from(LocalEntryNotFoundError(
        f"Got: {type(cause).__name__}: {cause}\nAn error happened while trying to locate the files on the Hub, and "
        "we cannot find the appropriate snapshot folder for the specified revision on the local disk. Please check "
        "your internet connection and try again."), cause)


def invalid_name() -> BaseException:
    with pytest.raises(HFValidationError) as caught:
        validate_repo_id("not a name!")
    return caught.value


CASES = [
    ("offline", lambda: raised_from(LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder"),
                                    OfflineModeIsEnabled("offline")),
     f"HF_HUB_OFFLINE is set, so nothing is downloaded; unset it to download {REPO_ID}."),
    ("network", lambda: not_cached_after(httpx2.ConnectError("[Errno -2] Name or service not known")),
     f"No network connection to huggingface.co, so {REPO_ID} could not be downloaded"),
    ("network", lambda: not_cached_after(httpx2.ReadTimeout("The read operation timed out")),
     "No network connection to huggingface.co"),
    ("proxy", lambda: httpx2.ProxyError("407 Proxy Authentication Required"), "The proxy did not let the download"),
    ("not_found", lambda: from_hub(401, "RepoNotFound"), f"There is no model {REPO_ID} on huggingface.co"),
    ("not_found", lambda: from_hub(404), f"There is no model {REPO_ID} on huggingface.co"),
    ("gated", lambda: from_hub(403, "GatedRepo"),
     f"{REPO_ID} is gated: accept its licence on its hub page, https://huggingface.co/{REPO_ID}, and log in with "
     "hf auth login"),
    ("refused", lambda: from_hub(403), "huggingface.co refused access to"),
    ("hub", lambda: not_cached_after(from_hub(503)), "huggingface.co answered the request for"),
    ("hub", lambda: from_hub(429), "too many requests"),
    ("disk_full", lambda: OSError(errno.ENOSPC, "No space left on device"),
     f"The disk is full: {REPO_ID} needs about 0.5 GB in "),
    ("disk_full", lambda: RuntimeError("Data processing error: I/O error: No space left on device (os error 28)"),
     "The disk is full"),  # hf_xet's downloads say it in words
    ("cache", lambda: PermissionError(errno.EACCES, "Permission denied"), "cannot be written to; set HF_HOME"),
    ("name", invalid_name, "is not a name a model can have on the hub"),
    ("unknown", lambda: RuntimeError("boom"), "run the command again with --debug to see why"),
]


@pytest.mark.parametrize("reason, make, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_failure_says_which(monkeypatch, reason, make, message):
    error = make()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", reason == "offline")

    def snapshot_download(repo_id, **kwargs):
        raise error

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    with pytest.raises(DownloadError) as caught:
        models.pull("smolvlm")
    said = str(caught.value)
    assert caught.value.reason == reason and message in said, said
    assert caught.value.__cause__ is error
    for c in type(error).__mro__:
        assert c.__name__ not in said, "the library's exception is named only with --debug"
    assert "check the name and your connection" not in said


def test_an_interrupted_download_is_not_called_missing(monkeypatch):
    """Loading (describe, the agent) never downloads: a snapshot cut off halfway says to finish it."""
    def snapshot_download(repo_id, **kwargs):
        raise IncompleteSnapshotError("3 files are missing", snapshot_path="/cache/snapshot")

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    with pytest.raises(ModelNotFound) as caught:
        models.resolve("smolvlm")
    assert str(caught.value) == (f"The download of {REPO_ID} did not finish, so some of its files are missing. "
                                 f"Finish it with: a11y-caption models pull {REPO_ID}")


def test_offline_for_real_and_the_name_only_with_debug():
    r = run_cli("models", "pull", "smolvlm", env={"HF_HUB_OFFLINE": "1"})
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"a11y-caption: HF_HUB_OFFLINE is set, so nothing is downloaded; unset it to download "
                        f"{REPO_ID}.\n"), r.stderr
    r = run_cli("--debug", "models", "pull", "smolvlm", env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1 and "LocalEntryNotFoundError" in r.stderr, r.stderr
    assert r.stderr.rstrip().endswith("HF_HUB_OFFLINE is set, so nothing is downloaded; unset it to download "
                                      f"{REPO_ID}.")


NO_PROXY = {"HF_HUB_OFFLINE": "0", "NO_PROXY": "*", "no_proxy": "*", "HTTPS_PROXY": "", "HTTP_PROXY": "",
            "ALL_PROXY": "", "https_proxy": "", "http_proxy": "", "all_proxy": "", "HF_HUB_ETAG_TIMEOUT": "5"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("endpoint", ["http://huggingface.invalid", f"http://127.0.0.1:{closed_port()}"],
                         ids=["no-name-lookup", "connection-refused"])
def test_no_network_for_real(endpoint):
    """A name that cannot be looked up (.invalid never resolves) and a port nothing listens on."""
    r = run_cli("models", "pull", "smolvlm", env={**NO_PROXY, "HF_ENDPOINT": endpoint}, timeout=60)
    host = endpoint.split("://")[1]
    assert (r.returncode, r.stdout) == (1, ""), r.stderr
    assert r.stderr == (f"a11y-caption: No network connection to {host}, so {REPO_ID} could not be downloaded; "
                        "check your connection and try again.\n"), r.stderr


class StandInHub(http.server.BaseHTTPRequestHandler):
    """Answers the repo_info request as the hub does for a missing, a gated and a failing model."""

    ANSWERS = {"Owner/missing": (401, "RepoNotFound"), "Owner/gated": (403, "GatedRepo"), "Owner/down": (503, None)}

    def do_GET(self):
        repo = "/".join(self.path.split("/")[3:5])
        status, code = self.ANSWERS.get(repo, (404, None))
        body = b'{"error": "refused"}'
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandInHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("repo, said", [
    ("Owner/missing", "There is no model Owner/missing on {host}, or it is private; check the name"),
    ("Owner/gated", "Owner/gated is gated: accept its licence on its hub page, {hub}/Owner/gated, and log in with "
                    "hf auth login; then pull it again."),
    ("Owner/down", "{host} answered the request for Owner/down with an error (503); try again later."),
])
def test_a_stand_in_hub_answering_as_the_hub_does(hub, repo, said):
    r = run_cli("models", "pull", repo, env={**NO_PROXY, "HF_ENDPOINT": hub}, timeout=120)
    expected = said.format(hub=hub, host=hub.split("://")[1])
    assert r.returncode == 1 and r.stderr.startswith(f"a11y-caption: {expected}"), r.stderr
    assert "Error" not in r.stderr, r.stderr
