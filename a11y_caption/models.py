"""Where model weights come from: a local folder, or the Hugging Face cache filled by ``models pull``.

Describing never downloads: a missing model is a ModelNotFound naming the pull command.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DownloadError, IncompleteModel, ModelLoadError, ModelNotFound

__all__ = ["KNOWN_MODELS", "WEIGHT_PATTERNS", "KnownModel", "canonical_id", "download_error", "list_local", "pull",
           "resolve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownModel:
    alias: str
    repo_id: str
    download: str  # size of the files `models pull` fetches
    memory: str  # resident memory when loaded as the defaults load it
    note: str
    spoken: str  # what a voice calls it: "Qwen2-VL 2B" (never the hub id, letter by letter)


KNOWN_MODELS = (
    KnownModel("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "4.4 GB", "about 5 GB (bf16/fp32 mix), 3 GB int8",
               "default; describes screens and reads large text",
               "Qwen2-VL 2B"),
    KnownModel("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "7.5 GB", "about 8 GB", "better reading, slower",
               "Qwen2.5-VL 3B"),
    KnownModel("smolvlm", "HuggingFaceTB/SmolVLM-256M-Instruct", "0.5 GB", "about 1 GB", "smallest chat model",
               "SmolVLM 256M"),
    KnownModel("qwen3-vl-2b", "Qwen/Qwen3-VL-2B-Instruct", "4.3 GB", "about 3 GB int8", "newer Qwen; reads screens",
               "Qwen3-VL 2B"),
    KnownModel("internvl3-2b", "OpenGVLab/InternVL3-2B-hf", "4.2 GB", "about 3 GB int8",
               "reads documents and screens as well as qwen2-vl-2b (published scores)",
               "InternVL3 2B"),
    KnownModel("internvl3-1b", "OpenGVLab/InternVL3-1B-hf", "1.9 GB", "about 1.5 GB int8", "small; reads large text",
               "InternVL3 1B"),
    KnownModel("smolvlm2-500m", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "1.0 GB", "about 1 GB int8",
               "small chat model",
               "SmolVLM2 500M"),
    KnownModel("lfm2-vl-450m", "LiquidAI/LFM2-VL-450M", "0.9 GB", "about 1 GB int8",
               "small and fast; LFM Open License (not Apache)",
               "LFM2-VL 450M"),
    KnownModel("blip-base", "Salesforce/blip-image-captioning-base", "0.9 GB", "about 1 GB",
               "fast photo captions; cannot read text (OCR is added)",
               "BLIP base"),
    KnownModel("blip-large", "Salesforce/blip-image-captioning-large", "1.8 GB", "about 2 GB",
               "better photo captions; cannot read text",
               "BLIP large"),
)

# Only what from_pretrained needs: configs, tokenizer files, chat template and safetensors weights.
WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken"]


def canonical_id(ref: str) -> str:
    """A short alias such as ``blip-base`` -> its hub id; anything else unchanged."""
    for known in KNOWN_MODELS:
        if ref.lower() == known.alias:
            return known.repo_id
    return ref


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~", "\\")) or os.path.isabs(ref) or ref.count("/") > 1 or "\\" in ref


def resolve(ref: str) -> Path:
    """The local folder holding model ``ref`` (hub id, alias or folder). Never downloads.

    Raises:
        ModelNotFound: a hub id not in the cache, or a folder that does not exist.
    """
    ref = canonical_id(ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if _looks_like_path(ref) or path.exists():
        raise ModelNotFound(ref, folder=True) if not path.exists() else ModelLoadError(f"{ref} is not a model folder.")
    from huggingface_hub import errors, snapshot_download

    try:
        folder = Path(snapshot_download(ref, local_files_only=True, allow_patterns=WEIGHT_PATTERNS))
    except (errors.LocalEntryNotFoundError, OSError, ValueError) as e:
        if isinstance(e, getattr(errors, "IncompleteSnapshotError", ())):  # huggingface_hub 1.x and later
            raise IncompleteModel(ref) from e
        raise ModelNotFound(ref) from e
    if not (folder / "config.json").exists():
        raise ModelNotFound(ref)
    return folder


def pull(ref: str) -> Path:
    """Download model ``ref`` into the Hugging Face cache (progress bar on stderr); returns its folder.

    Raises:
        DownloadError: one sentence saying why (see ``download_error``), chained to the library's error.
    """
    from huggingface_hub import snapshot_download

    repo_id = canonical_id(ref)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=WEIGHT_PATTERNS))
    except Exception as e:
        log.debug("the download failed with %s", " from ".join(type(c).__name__ for c in _chain(e)))
        raise download_error(repo_id, e) from e


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it, innermost last."""
    chain: list[BaseException] = []
    while error is not None and error not in chain and len(chain) < 20:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


# Network failures by class name, so that httpx, requests and the standard library's all count.
_NETWORK = {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "TransportError", "ConnectionError",
            "Timeout", "TimeoutError", "gaierror"}


def download_error(repo_id: str, error: BaseException) -> DownloadError:
    """Which way a download of ``repo_id`` failed, as one sentence: HF_HUB_OFFLINE is set, no
    network, no such model, not allowed (gated or refused), the hub failing, the disk full, the
    cache not writable, or a name the hub cannot have. Never the library's exception name."""
    from huggingface_hub import constants, errors

    chain = _chain(error)
    hub = constants.ENDPOINT.rstrip("/")
    host = hub.split("://", 1)[-1]

    def found(*classes):
        return next((e for e in chain if isinstance(e, tuple(c for c in classes if c))), None)

    if any(getattr(e, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
           or "No space left on device" in str(e) for e in chain):
        size = next((f"about {k.download}" for k in KNOWN_MODELS if k.repo_id == repo_id), "more space")
        return DownloadError(f"The disk is full: {repo_id} needs {size} in {constants.HF_HUB_CACHE}; free some "
                             "space, or set HF_HOME to a folder on a larger disk, then pull it again.", "disk_full")
    if found(errors.GatedRepoError):
        return DownloadError(f"{repo_id} is gated: accept its licence on its hub page, {hub}/{repo_id}, and log in "
                             f"with {_login_command()}; then pull it again.", "gated")
    if found(getattr(errors, "DisabledRepoError", None)):
        return DownloadError(f"{repo_id} has been disabled on {host} by its owner; pick another model.", "refused")
    http = found(errors.HfHubHTTPError)
    status = getattr(getattr(http, "response", None), "status_code", None)
    if found(errors.RepositoryNotFoundError, errors.RevisionNotFoundError) or status == 404:
        return DownloadError(f"There is no model {repo_id} on {host}, or it is private; check the name "
                             "(a11y-caption models list names the known ones).", "not_found")
    names = {c.__name__ for e in chain for c in type(e).__mro__}
    offline_mode = getattr(constants, "is_offline_mode", lambda: constants.HF_HUB_OFFLINE)()
    if found(errors.OfflineModeIsEnabled) or (offline_mode and found(errors.LocalEntryNotFoundError)
                                              and not names & _NETWORK):
        variable = next((v for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
                         if os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")), "HF_HUB_OFFLINE")
        return DownloadError(f"{variable} is set, so nothing is downloaded; unset it to download {repo_id}.", "offline")
    if "ProxyError" in names:
        return DownloadError(f"The proxy did not let the download of {repo_id} through to {host}; check the proxy "
                             "setting (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY).", "proxy")
    if names & _NETWORK:
        return DownloadError(f"No network connection to {host}, so {repo_id} could not be downloaded; check your "
                             "connection and try again.", "network")
    if status in (401, 403):
        return DownloadError(f"{host} refused access to {repo_id}; log in with {_login_command()}, using a token "
                             "that may read it.", "refused")
    if status == 429:
        return DownloadError(f"{host} has had too many requests from here; try again in a few minutes.", "hub")
    if http is not None:
        return DownloadError(f"{host} answered the request for {repo_id} with an error ({status or 'no status'}); "
                             "try again later.", "hub")
    if found(PermissionError) or any(getattr(e, "errno", None) in (errno.EACCES, errno.EROFS) for e in chain):
        return DownloadError(f"The model cache {constants.HF_HUB_CACHE} cannot be written to; set HF_HOME to a "
                             "folder you can write to.", "cache")
    if found(errors.HFValidationError):
        return DownloadError(f"{repo_id} is not a name a model can have on the hub: names are Owner/Model, such as "
                             f"{KNOWN_MODELS[0].repo_id}.", "name")
    if found(errors.LocalEntryNotFoundError):  # the library's own "check your internet connection"
        return DownloadError(f"{host} could not be reached, so {repo_id} could not be downloaded; check your "
                             "connection and try again.", "network")
    return DownloadError(f"Could not download {repo_id}; run the command again with --debug to see why.", "unknown")


def _login_command() -> str:
    """How this huggingface_hub logs in: ``hf auth login`` (0.34 and later) or ``huggingface-cli login``."""
    import huggingface_hub

    try:
        major, minor = (int(p) for p in huggingface_hub.__version__.split(".")[:2])
    except ValueError:
        return "hf auth login"
    return "hf auth login" if (major, minor) >= (0, 34) else "huggingface-cli login"


def list_local() -> list[tuple[str, int, str]]:
    """(hub id, bytes on disk, folder) for every model in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return []
    rows = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type == "model":
            rows.append((repo.repo_id, repo.size_on_disk, str(repo.repo_path)))
    return rows

