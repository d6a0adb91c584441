"""Text recognition with the PP-OCR models that ship inside the rapidocr wheel: no download needed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from .base import Captioner, Generation, GenerationOptions, Request

__all__ = ["OCR_NAME", "OcrLine", "OcrReader", "group_lines", "order_lines"]

OCR_NAME = "ocr"


@dataclass(frozen=True)
class OcrLine:
    """One line of text and the box around all of its pieces, in image pixels."""

    text: str
    left: float
    top: float
    right: float
    bottom: float


def group_lines(boxes, texts) -> list[OcrLine]:
    """Group recognised pieces into lines (top to bottom), each read left to right.

    Args:
        boxes: per piece, four (x, y) corners as rapidocr returns them.
        texts: the recognised text of each piece.
    """
    pieces = []
    for box, text in zip(boxes, texts):
        xs = [p[0] for p in box]
        ys = [p[1] for p in box]
        pieces.append((min(ys), max(ys), min(xs), text, max(xs)))
    pieces.sort(key=lambda p: ((p[0] + p[1]) / 2, p[2]))
    lines: list[list[tuple]] = []
    for piece in pieces:
        top, bottom = piece[0], piece[1]
        centre = (top + bottom) / 2
        if lines:
            last = lines[-1]
            l_top = min(p[0] for p in last)
            l_bottom = max(p[1] for p in last)
            if l_top <= centre <= l_bottom:
                last.append(piece)
                continue
        lines.append([piece])
    return [OcrLine(" ".join(p[3] for p in sorted(line, key=lambda p: p[2])),
                    min(p[2] for p in line), min(p[0] for p in line), max(p[4] for p in line),
                    max(p[1] for p in line)) for line in lines]


def order_lines(boxes, texts) -> list[str]:
    """The text of each line of ``group_lines``, in reading order."""
    return [line.text for line in group_lines(boxes, texts)]


class OcrReader(Captioner):
    """Reads the text of an image, line by line. Also a Captioner, so ``--model ocr`` works."""

    name = OCR_NAME
    reads_text = True
    answers_questions = False
    text_only = True

    def __init__(self, threads: int = 0):
        from rapidocr import RapidOCR

        params = {"Global.log_level": "error", "Global.use_cls": False}  # screens are upright
        if threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        self._engine = RapidOCR(params=params)
        self._lock = threading.Lock()  # one onnxruntime session, one caller at a time

    def read_lines(self, image: Image.Image) -> list[str]:
        return [line.text for line in self.read_boxed_lines(image)]

    def read_boxed_lines(self, image: Image.Image) -> list[OcrLine]:
        """The lines of ``image`` in reading order, each with its box (for where it is on screen)."""
        import numpy as np

        from ..memory import give_back_freed_memory

        with self._lock:
            try:
                result = self._engine(np.asarray(image.convert("RGB")))
            finally:
                # Detection's buffers (0.4-0.6 GB for a 1280x800 to 1920x1080 screen) are freed on
                # this thread, where the model's threads cannot reuse them. Given back, an agent held
                # 0.23 GB less after a grounded description, and its next one (1920x1080) peaked
                # 0.21 GB lower (Qwen2-VL-2B replica, int8).
                give_back_freed_memory()
        if result.boxes is None or not result.txts:
            return []
        return [line for line in group_lines(result.boxes, result.txts) if line.text.strip()]

    def generate(self, request: Request, options: GenerationOptions | None = None,
                 stop: threading.Event | None = None) -> Generation:
        stop = stop or threading.Event()

        def chunks() -> Iterator[str]:
            lines = self.read_lines(request.image)
            if not lines:
                yield "No text found."
            for line in lines:
                if stop.is_set():
                    return
                yield line + "\n"

        return Generation(chunks(), stop, self.name)

    def close(self) -> None:
        self._engine = None
