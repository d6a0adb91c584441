"""The parent process of ``a11y-caption bench``: finds real weights or builds full-size replicas,
runs one child process per variant (children.py), and prints, plots and writes the results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .children import run_child
from .machine import machine_info, torch_threads
from .plot import plot
from .report import report, table
from .rows import BENCH_MODELS, Row, say

__all__ = ["run_bench", "run_index_bench"]


def run_bench(args) -> int:
    from platformdirs import user_cache_dir

    cache = Path(args.cache_dir or Path(user_cache_dir("a11y-caption", appauthor=False)) / "replicas")
    if getattr(args, "index", False):
        return run_index_bench(args, cache)
    names = _model_names(args)
    machine = machine_info()
    say(f"machine: {machine['cpu']}, {machine['cores']} cores, {' '.join(machine['isa']) or 'no AVX2'}, "
        f"torch {machine['torch']} ({machine['torch_build']} build), torch threads {machine['torch_threads']}, "
        f"int8 GEMM ({machine['int8_kernel']}) "
        f"{machine['int8_gops']:.0f} GOP/s; replicas in {cache}")
    if args.json:
        print(json.dumps(machine), flush=True)
    if getattr(args, "objects", False):
        return _objects_bench(cache, args)
    # The bench keeps its own int8 copies (int8_store), so that it can time a first load without
    # touching the user's, and a kept-copy load after it.
    os.environ["XDG_CACHE_HOME"] = str(cache / "kept-int8")
    rows: list[Row] = []
    for name in names:
        rows += _model_rows(name, cache, args, machine)
    rows.append(run_child({"kind": "idle-agent"})[0])
    if args.json:
        print(json.dumps(rows[-1].as_json()), flush=True)
    else:
        print(table(rows))
    if args.plot:
        plot(rows, Path(args.plot))
    if args.report:
        Path(args.report).write_text(report(rows, args, machine))
        say(f"wrote {args.report}")
    return 0


def _objects_bench(cache: Path, args) -> int:
    """``bench --objects``: Qwen2-VL-2B at the default precision, the object rows only (object_rows.py)."""
    from .fixtures import default_precision

    folder, source = _weights("qwen2-vl-2b", cache)
    rows = run_child({"model": "qwen2-vl-2b", "folder": str(folder), "source": source, "new_tokens": args.new_tokens,
                      "kind": "objects", "precision": default_precision()})
    for row in rows:
        if args.json:
            print(json.dumps(row.as_json()), flush=True)
    if not args.json:
        print(table(rows))
    return 0


def _model_names(args) -> list[str]:
    """The bench models ``--models`` names.

    Raises:
        A11yCaptionError: one of them is not a bench model.
    """
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCH_MODELS]
    if unknown:
        from ..errors import A11yCaptionError

        raise A11yCaptionError(f"Unknown bench model {unknown[0]}; choose from {', '.join(BENCH_MODELS)}.")
    return names


def _model_rows(name: str, cache: Path, args, machine: dict) -> list[Row]:
    """The rows of bench model ``name``, each printed (``--json``) as soon as it is measured. An int8
    or int4 variant's first load and its load and one description are timed in children of their own."""
    if BENCH_MODELS[name] == "server":  # a tiny model of its own, no replica
        rows = run_child({"kind": "server-overhead", "new_tokens": args.new_tokens})
        if args.json:
            print(json.dumps(rows[-1].as_json()), flush=True)
        return rows
    folder, source = _weights(name, cache)
    rows = []
    for spec in _variants(name, folder, source, args):
        quantized = spec.get("precision") in ("int8", "int4") and not spec.get("kernel")
        first = run_child({**spec, "kind": "first-load"})[0] if quantized else None
        one = run_child({**spec, "kind": "one-description"})[0] if quantized else None
        gops = {k: machine[k] for k in ("int8_gops", "int8_gops_int_mm") if k in machine}
        for row in run_child({**spec, **gops}):
            if first is not None and "load_s" in row.extra:
                _add_load_figures(row, first, one)
            rows.append(row)
            if args.json:
                print(json.dumps(row.as_json()), flush=True)
    return rows


def _add_load_figures(row: Row, first: Row, one: Row) -> None:
    """Add the figures of the variant's first load (``first``) and of load and one description
    (``one``) to its row that timed the load."""
    # The model's size in use: a kept copy's weights are mapped from its files and
    # resident once a description has read them.
    in_use = one.extra["rss_after_one_description_mb"]
    row.extra = {"first_load_s": first.extra["first_load_s"], **row.extra,
                 "first_load_peak_rss_mb": first.peak_rss_mb, "rss_in_use_mb": in_use,
                 "first_load_peak_to_final": first.peak_rss_mb / in_use,
                 "peak_rss_load_and_one_description_mb": one.extra["peak_rss_model_alone_mb"]}
    if "rss_after_grounded_description_mb" in one.extra:
        row.extra["peak_rss_load_and_one_grounded_description_mb"] = one.peak_rss_mb


def run_index_bench(args, cache: Path) -> int:
    """``bench --index``: the folder index (bench_index.py). Images per minute for 20 images, one
    per generate call against batches, per model; index itself over 20 files; and a second,
    unchanged run over 1,000 tiny files (target: under 1 s). Each part in a child process."""
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    say(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {torch_threads()}")
    jobs = [["unchanged", "1000"]]
    for name in names:
        folder, _ = _weights(name, cache)
        jobs += [["batch", name, str(folder)], ["folder", name, str(folder)]]
    rows = []
    for job in jobs:
        say("running index " + " ".join(job[:2]))
        proc = subprocess.run([sys.executable, "-m", "a11y_caption.bench.index", *job], stdout=subprocess.PIPE,
                              text=True)
        if proc.returncode != 0:
            from ..errors import A11yCaptionError

            raise A11yCaptionError(f"The index bench {' '.join(job[:2])} failed; its messages are above.")
        for line in proc.stdout.splitlines():
            rows.append(json.loads(line))
            print(line if args.json else "  ".join(f"{k}: {v}" for k, v in rows[-1].items()), flush=True)
    return 0


def _weights(name: str, cache: Path) -> tuple[Path, str]:
    """Real weights when they are on this computer, else a full-size replica (built once)."""
    from ..errors import ModelNotFound
    from ..models import canonical_id, resolve
    from .replica import REPLICAS, is_current

    try:
        return resolve(canonical_id(name)), "real weights"
    except ModelNotFound:
        pass
    folder = cache / name
    if not is_current(name, folder):  # missing, or built by older code that timed differently
        say(f"building a full-size random replica of {REPLICAS[name][0]} in {folder} (once; about a minute)")
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                        "from a11y_caption.bench.replica import build_replica; "
                        "build_replica(sys.argv[1], Path(sys.argv[2]), full=True)", name, str(folder)], check=True)
        say(f"built in {time.perf_counter() - start:.0f} s")
    return folder, "random replica"


def _variants(name: str, folder: Path, source: str, args) -> list[dict]:
    base = {"model": name, "folder": str(folder), "source": source, "new_tokens": args.new_tokens}
    if BENCH_MODELS[name] == "chat":
        budgets = [int(b) for b in args.image_tokens.split(",")]
        specs = [] if args.no_baseline else [{**base, "kind": "chat-baseline"}]
        for precision in args.precisions.split(","):
            specs.append({**base, "kind": "chat", "precision": precision, "budgets": budgets})
        from ..captioner.packing import int_mm_is_fast
        from .fixtures import default_budget

        if "int8" in args.precisions.split(",") and name == "qwen2-vl-2b" and int_mm_is_fast():
            # The kernel the product does not choose, measured beside it (packing.packs_int8)
            specs.append({**base, "kind": "chat", "precision": "int8", "kernel": "int_mm",
                          "budgets": [default_budget() if default_budget() in budgets else max(budgets)]})
        return specs
    specs = [] if args.no_baseline else [{**base, "kind": "blip-baseline"}]
    for precision in args.precisions.split(","):
        if precision != "bf16":  # BLIP ships fp32; bf16 is not a lever worth a row here
            specs.append({**base, "kind": "blip", "precision": precision})
    return specs
