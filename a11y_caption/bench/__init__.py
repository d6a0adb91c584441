"""``a11y-caption bench``: time to the first spoken word, and memory, on full-size models.

Without downloaded weights it builds full-size random replicas (real config values, random weights;
see replica.py) once and keeps them in a cache folder. Each variant runs in a child process of its
own, so its peak RSS is its own and variants cannot warm each other up. Within a child: one warm-up
description of another image (the agent keeps a warm model), then the timed runs of a 1280x800
screenshot through the real pipeline (Describer -> streaming generate -> Speaker -> a timing voice).

The naive baseline is plain transformers code: the processor's default image size, the default
dtype, generate() to the end, then decode and speak.

Where each part lives: runner.py (the parent: weights, variants, output), children.py (a child
process per timed run, and what it runs), timed.py (our pipeline's runs), chat_rows.py (the chat
model's grounded, follow-up and key-press rows), baseline.py, server_overhead.py, fixtures.py (the
images, a variant's settings, the timing voice), machine.py (the machine probe, memory), report.py,
plot.py, rows.py (the row and the names shared by all); index.py (``bench --index``), replica.py.
"""

from __future__ import annotations

from .fixtures import TimingVoice, photo, screenshot
from .machine import ISA, int8_gops, int8_kernel, machine_info, torch_build
from .rows import BENCH_MODELS, KEYS, Row
from .runner import run_bench, run_index_bench

__all__ = ["BENCH_MODELS", "ISA", "KEYS", "Row", "TimingVoice", "int8_gops", "int8_kernel", "machine_info", "photo",
           "run_bench", "run_index_bench", "screenshot", "torch_build"]
