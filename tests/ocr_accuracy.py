"""Character error rate of the OCR backend on screenshots rendered here, and its speed.

Used by tests/test_ocr.py (the goal as an assertion) and, run as a script, to write docs/OCR.md:
    .venv/bin/python tests/ocr_accuracy.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screens import FONTS, THEMES, render_screen  # noqa: E402

SIZES = (12, 14, 16, 20, 28)
TEXTS = [
    ["Downloads - File Manager", "File  Edit  View  Go  Bookmarks  Help",
     "report-2026-Q3.pdf  1.4 MB  Modified 14:05", "Your session expires in 5 minutes.",
     "Error 404: page not found (https://example.org/a?b=1)"],
    ["Compose - Mail", "To: jane.doe@example.com", "Subject: Invoice #2041 is overdue",
     "Please pay EUR 1,250.00 by Friday, 27 November.", "Send  Save draft  Discard"],
]


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalise(lines: list[str]) -> str:
    return "\n".join(" ".join(line.split()) for line in lines)


def cer(expected: list[str], got: list[str]) -> float:
    ref = normalise(expected)
    return edit_distance(ref, normalise(got)) / max(1, len(ref))


def measure(reader) -> dict:
    """{'per_size': {px: (cer, cases)}, 'cases': [...], 'full_screen': {...}}"""
    cases = []
    for px in SIZES:
        for font_name in FONTS:
            for theme in THEMES:
                for text in TEXTS:
                    screen = render_screen(text, size=(1000, 420), font_name=font_name, px=px, theme=theme,
                                           buttons=("OK", "Cancel"))
                    got = reader.read_lines(screen.image)
                    cases.append({"px": px, "font": font_name, "theme": theme, "cer": cer(screen.lines, got)})
    per_size = {px: (statistics.mean(c["cer"] for c in cases if c["px"] == px),
                     sum(1 for c in cases if c["px"] == px)) for px in SIZES}
    full = render_screen(TEXTS[0] + TEXTS[1], size=(1920, 1080), px=16, buttons=("OK", "Cancel", "Apply", "Help"))
    reader.read_lines(full.image)  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        got = reader.read_lines(full.image)
        times.append(time.perf_counter() - start)
    return {"per_size": per_size, "cases": cases,
            "full_screen": {"cer": cer(full.lines, got), "seconds": statistics.median(times)}}


def report(result: dict) -> str:
    rows = "\n".join(f"| {px} px | {value * 100:.2f} % | {n} |" for px, (value, n) in result["per_size"].items())
    worst = max(result["cases"], key=lambda c: c["cer"])
    full = result["full_screen"]
    return f"""# OCR accuracy and speed

Measured by `.venv/bin/python tests/ocr_accuracy.py` (which rewrites this file); the same
measurement runs as a test (tests/test_ocr.py) with the goal as its assertion.

Engine: rapidocr with the PP-OCR models that ship inside its wheel (no download), onnxruntime, on
this project's development machine (2 CPU cores, no GPU).

Screenshots are rendered by the test suite itself: window title, menu line, body text with digits,
punctuation, e-mail addresses and URLs, and a row of buttons; fonts {", ".join(FONTS)}; light and
dark themes; {len(TEXTS)} layouts. CER is the edit distance between the expected and the recognised
text (lines in reading order, runs of spaces collapsed) divided by the expected length.

| Font size | Mean CER | Screenshots |
|---|---|---|
{rows}

Goal: at most 1 % at 14 px and above. Worst single screenshot: {worst['cer'] * 100:.2f} % ({worst['px']} px,
{worst['font']}, {worst['theme']}).

Full 1920x1080 screenshot (16 px text, light theme): CER {full['cer'] * 100:.2f} %,
{full['seconds']:.2f} s per screenshot (median of 3, after a warm-up run).
"""


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from a11y_caption.captioner.ocr import OcrReader

    text = report(measure(OcrReader()))
    out = Path(__file__).resolve().parents[1] / "docs" / "OCR.md"
    out.write_text(text)
    print(text)
