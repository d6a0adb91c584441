"""Shared fixtures: tiny random models built offline once per session, and an isolated home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"  # no test may touch the network
# huggingface_hub reads HF_HOME once, at import: isolate this whole process from the user's cache.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="a11y-caption-hf-home-")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "a11y_caption" / "samples" / "sample-screen.png"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test reads the developer's own settings or model cache."""
    monkeypatch.setenv("A11Y_CAPTION_CONFIG", str(tmp_path / "no-user-config.toml"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # for child processes
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny random Qwen2-VL, Qwen2.5-VL and BLIP checkpoints, saved like real ones (< 1 MB each)."""
    from a11y_caption.replica import build_replica

    root = tmp_path_factory.mktemp("tiny-models")
    return {name: build_replica(name, root / name, full=False) for name in ("qwen2-vl-2b", "qwen2.5-vl", "blip-base")}


@pytest.fixture(scope="session")
def tiny_qwen(tiny_models) -> Path:
    return tiny_models["qwen2-vl-2b"]


@pytest.fixture(scope="session")
def tiny_blip(tiny_models) -> Path:
    return tiny_models["blip-base"]


def run_cli(*args: str, env: dict | None = None, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    """The installed console entry point, as a user runs it, in a separate process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "a11y_caption", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)
