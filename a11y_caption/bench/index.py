"""Bench for the folder index (``a11y-caption bench --index``): images per minute, one image per
generate call against several, on full-size replicas; and the cost of a second, unchanged run over
1,000 tiny files with the OCR model (a subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["batch_rows", "folder_rows", "unchanged_run_row"]


def _images(n: int):
    """``n`` different 640x480 pictures: fractal crops, some with a line of text."""
    from PIL import Image, ImageDraw

    out = []
    for i in range(n):
        x = -2.0 + 0.05 * i
        im = Image.effect_mandelbrot((640, 480), (x, -1.0, x + 2.5, 1.0), 40 + i).convert("RGB")
        if i % 2:
            ImageDraw.Draw(im).text((20, 20), f"Receipt number {i}", fill=(255, 255, 255))
        out.append(im)
    return out


def batch_rows(name: str, folder: Path, *, n: int = 20, new_tokens: int = 20, batches=(4, 8)) -> list[dict]:
    """Images per minute for ``n`` photo captions: one generate call per image (the streaming path
    describe uses) against ``size`` images per call, for each size. Same loaded model, warmed up.
    The CPU may be shared: the two ways alternate, chunk by chunk, so that both see the same load."""
    from ..captioner.base import GenerationOptions, Request
    from ..captioner.factory import load_captioner

    captioner = load_captioner(str(folder))
    options = GenerationOptions(max_new_tokens=new_tokens)
    requests = [Request(im, "photo") for im in _images(n)]
    captioner.generate(Request(_images(1)[0], "photo"), options).collect()  # warm-up
    captioner.generate_batch(requests[:2], options)
    rows = []
    for size in batches:
        one = many = 0.0
        one_tokens = 0
        for i in range(0, n, size):
            chunk = requests[i:i + size]
            start = time.perf_counter()
            for r in chunk:
                if hasattr(captioner, "forget"):
                    captioner.forget()  # a new image each time: nothing of the last one is reused
                description = captioner.generate(r, options).collect()
                one_tokens += description.new_tokens
            one += time.perf_counter() - start
            start = time.perf_counter()
            captioner.generate_batch(chunk, options)
            many += time.perf_counter() - start
        rows.append(_row(name, f"one per call (alternating with {size} per call)", n, one, one_tokens))
        # Batched rows write at most new_tokens per image (decoded text does not give the count back).
        rows.append(_row(name, f"{size} per call", n, many))
    return rows


def folder_rows(name: str, folder: Path, *, n: int = 20) -> list[dict]:
    """Images per minute of ``index`` itself (OCR, description, alt text, tags) over ``n`` files."""
    from ..config import ModelConfig
    from ..index import IndexStore, LocalAnalyser, index_folders

    with tempfile.TemporaryDirectory(prefix="a11y-caption-bench-index-") as tmp:
        pictures = Path(tmp, "pictures")
        pictures.mkdir()
        for i, im in enumerate(_images(n)):
            im.save(pictures / f"{i:02d}.png")
        with IndexStore(Path(tmp, "index.sqlite3")) as store:
            analyser = LocalAnalyser(ModelConfig(name=str(folder), max_new_tokens=40))
            analyser.describer.load()  # loading is not indexing
            start = time.perf_counter()
            summary = index_folders([pictures], store, analyser)
            seconds = time.perf_counter() - start
    assert summary.described == n, summary
    return [_row(name, "index (OCR + description + alt text + tags)", n, seconds)]


def unchanged_run_row(n: int = 1000) -> dict:
    """Seconds for ``a11y-caption index`` over ``n`` tiny files it has indexed already."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="a11y-caption-bench-unchanged-") as tmp:
        pictures = Path(tmp, "pictures")
        pictures.mkdir()
        for i in range(n):  # one colour each: different files, and the first run is quick (no text to read)
            Image.new("RGB", (16, 16), (i % 256, i // 256 % 256, 128)).save(pictures / f"{i:04d}.png")
        db = Path(tmp, "index.sqlite3")
        command = [sys.executable, "-m", "a11y_caption", "index", str(pictures), "--db", str(db), "--model", "ocr",
                   "--local"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        first = time.perf_counter() - start
        times = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
        assert f"{n} images: 0 described" in done.stderr, done.stderr
    return {"model": "ocr", "variant": f"second run, {n} unchanged files (whole command)", "images": n,
            "seconds": round(min(times), 3), "first_run_seconds": round(first, 1),
            "all_seconds": [round(t, 3) for t in times]}


def _row(name: str, variant: str, n: int, seconds: float, new_tokens: int | None = None) -> dict:
    row = {"model": name, "variant": variant, "images": n, "seconds": round(seconds, 2),
           "images_per_minute": round(60 * n / seconds, 1)}
    if new_tokens is not None:  # random weights stop at different points: say how much was written
        row["new_tokens"] = new_tokens
    return row


def main(argv: list[str]) -> None:
    """Child entry: ``python -m a11y_caption.bench.index KIND NAME FOLDER``; one JSON row per line."""
    kind = argv[0]
    if kind == "unchanged":
        rows = [unchanged_run_row(int(argv[1]) if len(argv) > 1 else 1000)]
    elif kind == "batch":
        rows = batch_rows(argv[1], Path(argv[2]))
    else:
        rows = folder_rows(argv[1], Path(argv[2]))
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(sys.argv[1:])
