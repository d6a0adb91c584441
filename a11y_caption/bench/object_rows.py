"""What the user is on (``describe --focus``, ``--pointer``, ``--images``): time to the first word at
an object's natural size on the warm model, grounded as the product grounds an object, and what
asking this desktop's accessibility tree costs (where one answers)."""

from __future__ import annotations

import statistics
import time

from .fixtures import TimingVoice, cold, screenshot
from .rows import Row

__all__ = ["object_rows", "tree_query_costs"]


def _icon():
    """A 64x64 toolbar icon: a gear-like wheel on a light button face."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGB", (64, 64), (236, 236, 236))
    draw = ImageDraw.Draw(icon)
    for angle in range(0, 360, 45):
        draw.pieslice((6, 6, 58, 58), angle - 10, angle + 10, fill=(70, 70, 80))
    draw.ellipse((14, 14, 50, 50), fill=(70, 70, 80))
    draw.ellipse((25, 25, 39, 39), fill=(236, 236, 236))
    return icon


def _chart():
    """A 400x300 bar chart with a title and labelled bars."""
    from PIL import Image, ImageDraw, ImageFont

    chart = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(chart)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 14)
    except OSError:
        font = ImageFont.load_default()
    draw.text((20, 10), "Sales by quarter 2026", fill="black", font=font)
    draw.line((40, 260, 380, 260), fill="black", width=2)
    for i, (label, value) in enumerate((("Q1", 120), ("Q2", 180), ("Q3", 90), ("Q4", 200))):
        x = 60 + i * 80
        draw.rectangle((x, 260 - value, x + 50, 260), fill=(40, 90, 160))
        draw.text((x + 15, 266), label, fill="black", font=font)
    return chart


def _objects():
    """(label, image, what the tree says of it): the three natural sizes the bench times."""
    from ..capture.tree import AccessibleObject

    return (("icon", _icon(), AccessibleObject("push button")),
            ("chart", _chart(), AccessibleObject("image")),
            ("screen", screenshot(), AccessibleObject("frame", "Quarterly report")))


def object_rows(spec: dict, describer) -> list[Row]:
    """One row per natural size: the tree's facts are said at once (``tree_facts_said_s``); the row's
    first word is the model's. Grounded as the product grounds an object (``ground_in_ocr`` "auto"),
    at the captioner's photo budget (an object is described at its own resolution, up to it)."""
    from dataclasses import replace

    from ..captioner.base import Request
    from ..describe.objects import facts_of
    from ..speech import Speaker

    captioner, saved = describer.captioner, describer.config
    describer.config = replace(describer.config, ground_in_ocr="auto")
    describer.ocr, describer.ocr_alongside  # loaded with the model, as the agent does, before any press
    rows = []
    for label, image, obj in _objects():
        facts = facts_of(obj)
        inputs = captioner.prepare(Request(image, "object", facts=facts.facts))
        image_token = getattr(captioner.model.config, "image_token_id", None)
        tokens = int((inputs["input_ids"] == image_token).sum()) if image_token is not None else None
        cold(describer)
        voice = TimingVoice()
        speaker = Speaker(voice)
        t0 = time.perf_counter()
        generation = describer.describe(image, "object", facts=facts)
        speaker.say_stream(generation)
        speaker.wait()
        speaker.close()
        decode_s = generation.finished_at - generation.first_token_at
        model_word = voice.times[1] - t0 if len(voice.times) > 1 else None
        rows.append(Row(spec["model"], f"object: {label} {image.width}x{image.height}", tokens, None,
                        generation.first_token_at - t0, model_word, generation.finished_at - t0,
                        generation.new_tokens, (generation.new_tokens - 1) / decode_s if decode_s > 0 else None,
                        None, {"tree_facts_said_s": voice.times[0] - t0,
                               "grounded_lines": len(generation.screen_text.lines) if generation.screen_text else 0}))
    describer.config = saved
    rows[0].extra.update(tree_query_costs())
    return rows


def tree_query_costs(repeats: int = 5) -> dict:
    """The median seconds of asking this desktop's tree for the focused object, the object at the
    pointer and the active window's images; "tree": why not, where no tree answers."""
    from ..capture.accessible import open_tree, pointer_position

    start = time.perf_counter()
    tree = open_tree()
    opened = time.perf_counter() - start
    if tree is None:
        return {"tree": "no accessibility tree answers here"}
    x, y = pointer_position()
    costs = {"tree": "answers", "tree_open_s": opened}
    for name, ask in (("focused", tree.focused), ("at_point", lambda: tree.at_point(x, y)),
                      ("images", lambda: tree.images(20))):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            ask()
            times.append(time.perf_counter() - t)
        costs[f"tree_{name}_s"] = statistics.median(times)
    return costs
