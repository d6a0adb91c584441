"""What describing through a model server costs over describing in this process (``bench --models
server``): a tiny model of its own behind `transformers serve` on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .fixtures import first_word, screenshot
from .rows import Row

__all__ = ["data_url_ms", "server_overhead"]


def server_overhead(spec: dict, runs: int = 10) -> Row:
    """What describing through a model server costs over describing in this process: the same tiny
    Qwen2-VL in both (its compute is small, so what is left is the path's own cost: PNG encoding,
    HTTP, the server's parsing and its events), greedy, fp32, the bench screenshot, runs of the two
    interleaved. The server is `transformers serve` (pip install "transformers[serving]") on a
    loopback port; the row's times are the server path's medians, and the time to its first word."""
    import tempfile

    from ..config import ModelConfig
    from ..describe.describer import Describer
    from .replica import build_replica

    n = spec["new_tokens"]
    with tempfile.TemporaryDirectory(prefix="a11y-caption-bench-server-") as tmp:
        folder = build_replica("qwen2-vl-2b", Path(tmp) / "tiny-qwen2-vl", full=False)
        port = _free_port()
        server = _start_server(folder, port, Path(tmp))
        try:
            _wait_until_healthy(server, port)
            common = {"name": str(folder), "max_new_tokens": n, "add_ocr_text": "never", "ground_in_ocr": "never"}
            paths = {"in_process": Describer(ModelConfig(**common, dtype="fp32", quantize="none")),
                     "server": Describer(ModelConfig(**common, server=f"http://127.0.0.1:{port}/v1"))}
            times = _interleaved(paths, runs)
        finally:
            _stop(server)
    return _row(*times, runs)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(folder: Path, port: int, tmp: Path) -> subprocess.Popen:
    """`transformers serve` of the model in ``folder`` on ``port``, its files under ``tmp``."""
    (tmp / "hf-home" / "hub").mkdir(parents=True)  # transformers serve's model list needs it
    # The server's own temporary files (its model process's multiprocessing sockets, which a
    # terminated server leaves behind) go into this folder, removed with it.
    (tmp / "tmp").mkdir()
    return subprocess.Popen(
        [sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder), "--host", "127.0.0.1",
         "--port", str(port), "--dtype", "float32"],
        env={**os.environ, "HF_HOME": str(tmp / "hf-home"), "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp / "tmp")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def _wait_until_healthy(server: subprocess.Popen, port: int, timeout: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("transformers serve did not start") from None
            time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _interleaved(paths: dict, runs: int) -> tuple[dict, dict, dict]:
    """({path: totals}, {path: seconds to the first word}, {path: seconds to the first token}) of
    ``runs`` descriptions by each path in turn, after a warm-up of each."""
    # The bench screen at 588x336: within the 256-token budget and on Qwen2-VL's 28-pixel grid,
    # so neither side resizes it and both models read the very same pixels (a larger image is
    # fitted to the same budget on both paths, but the server's processor may round it to its
    # grid one row differently, and then the two answers, and their cost, differ).
    image = screenshot().resize((588, 336))
    for describer in paths.values():
        describer.load()
        first_word(describer, image, "screen")  # warm-up: both models have run once
    totals = {name: [] for name in paths}
    words = {name: [] for name in paths}
    firsts = {name: [] for name in paths}
    for _ in range(runs):
        for name, describer in paths.items():
            word_s, token_s, generation, t0 = first_word(describer, image, "screen")
            totals[name].append(generation.finished_at - t0)
            words[name].append(word_s)
            firsts[name].append(token_s)
    return totals, words, firsts


def _row(totals: dict, words: dict, firsts: dict, runs: int) -> Row:
    import statistics

    median = statistics.median
    overhead_ms = (median(totals["server"]) - median(totals["in_process"])) * 1000
    return Row("tiny qwen2-vl", "server (transformers serve, loopback) vs in-process", None, None,
               median(firsts["server"]), median(words["server"]), median(totals["server"]), None, None, None,
               {"in_process_time_to_first_token_s": median(firsts["in_process"]),
                "in_process_time_to_first_word_s": median(words["in_process"]),
                "in_process_total_s": median(totals["in_process"]),
                "server_overhead_ms_per_description": overhead_ms,
                "server_overhead_target_ms": 50, "server_overhead_within_target": overhead_ms <= 50,
                "png_data_url_ms": data_url_ms(), "runs": runs})


def data_url_ms(runs: int = 10) -> float:
    """Median time to make the PNG data URL of the 1280x800 bench screen fitted to the screen budget:
    work only the server path does in the describing process (both paths fit the image)."""
    import statistics

    from ..captioner.chat import SCREEN_PIXELS, fit_pixels
    from ..captioner.server import image_data_url

    image, times = fit_pixels(screenshot(), SCREEN_PIXELS), []
    for _ in range(runs):
        t = time.perf_counter()
        image_data_url(image)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000
