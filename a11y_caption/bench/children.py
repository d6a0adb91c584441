"""The bench's child processes: every timed run has a fresh process of its own, so its peak RSS is
its own and runs cannot warm each other up. ``run_child`` starts one (``python -m a11y_caption.bench
SPEC``, __main__.py) and reads back its rows; ``child`` is what that process runs."""

from __future__ import annotations

import json
import subprocess
import sys

from .baseline import baseline
from .rows import KEYS, Row, say
from .server_overhead import server_overhead
from .timed import first_load, idle_agent, objects, one_description, ours

__all__ = ["child", "run_child"]


def run_child(spec: dict) -> list[Row]:
    """The rows of the timed run ``spec``, measured in a child process.

    Raises:
        A11yCaptionError: the child failed (its messages went to this process's stderr).
    """
    label = f"{spec.get('model', '')} {spec['kind']} {spec.get('precision', '')}".strip()
    say(f"running {label}")
    proc = subprocess.run([sys.executable, "-m", "a11y_caption.bench", json.dumps(spec)], stdout=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        from ..errors import A11yCaptionError

        raise A11yCaptionError(f"The bench run {label} failed; its messages are above.")
    rows = []
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        rows.append(Row(**{k: d.pop(k) for k in KEYS}, extra=d))
    return rows


def child(spec: dict) -> list[Row]:
    """In the child process: the timed run of ``spec``'s kind."""
    kind = spec["kind"]
    if spec.get("kernel"):  # a kernel row: the int8 kernel it measures, before anything loads
        import os

        from ..captioner.packing import KERNEL_ENV

        os.environ[KERNEL_ENV] = spec["kernel"]
    if kind == "idle-agent":
        return [idle_agent()]
    if kind == "first-load":
        return [first_load(spec)]
    if kind == "one-description":
        return [one_description(spec)]
    if kind in ("chat-baseline", "blip-baseline"):
        return [baseline(spec)]
    if kind == "objects":
        return objects(spec)
    if kind == "server-overhead":
        return [server_overhead(spec)]
    return ours(spec)
