"""The bench command's plumbing, on tiny replicas placed where it keeps its full-size ones.

Timings of tiny models mean nothing; the real figures come from `make bench` (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from a11y_caption.bench import KEYS
from conftest import run_cli


def test_bench_json_rows_for_every_variant(tiny_models, tmp_path):
    cache = tmp_path / "replicas"
    for name in ("qwen2-vl-2b", "blip-base"):
        shutil.copytree(tiny_models[name], cache / name)
    plot = tmp_path / "plot.png"
    report = tmp_path / "PERFORMANCE.md"
    r = run_cli("bench", "--json", "--cache-dir", str(cache), "--new-tokens", "6", "--image-tokens", "64,128",
                "--precisions", "int8,int4,fp32", "--plot", str(plot), "--report", str(report), timeout=600)
    assert r.returncode == 0, r.stderr
    machine, *rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert machine["model"] == "machine" and machine["cpu"] and machine["int8_gops"] > 0
    assert machine["int8_kernel"].startswith(("torch._int_mm", "torch.ao packed"))
    assert machine["torch"] == torch.__version__
    assert machine["torch_build"] == (f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only")
    assert isinstance(machine["isa"], list) and set(machine["isa"]) <= {
        "avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}
    for row in rows:
        assert set(KEYS) <= set(row), row
    variants = [(row["model"], row["variant"]) for row in rows]
    assert variants == [
        ("qwen2-vl-2b", "baseline (float32, default image size, no streaming)"),
        ("qwen2-vl-2b", "int8, 64 image tokens"), ("qwen2-vl-2b", "int8, 128 image tokens"),
        ("qwen2-vl-2b", "int8, 128 image tokens, grounded"), ("qwen2-vl-2b", "follow-up question"),
        ("qwen2-vl-2b", "int4, 64 image tokens"), ("qwen2-vl-2b", "int4, 128 image tokens"),
        ("qwen2-vl-2b", "fp32, 64 image tokens"), ("qwen2-vl-2b", "fp32, 128 image tokens"),
        ("blip-base", "baseline (float32, default image size, no streaming)"),
        ("blip-base", "int8"), ("blip-base", "int4"), ("blip-base", "fp32"),
        ("none", "idle agent, no model loaded"),
    ]
    timed = [row for row in rows if row["model"] != "none"]
    for row in timed:
        assert row["new_tokens"] == 6
        assert 0 < row["time_to_first_token_s"] <= row["time_to_first_word_s"] <= row["total_s"] + 0.5
        assert row["peak_rss_mb"] > 0
    qwen = {row["variant"]: row for row in rows if row["model"] == "qwen2-vl-2b"}
    assert qwen["int8, 64 image tokens"]["image_tokens"] <= 64 < qwen["int8, 128 image tokens"]["image_tokens"] <= 128
    assert qwen["fp32, 128 image tokens"]["identical_image_s"] < 0.05
    assert qwen["fp32, 128 image tokens"]["press_to_model_start_s"] < 0.5
    grounded = qwen["int8, 128 image tokens, grounded"]
    assert grounded["ocr_lines"] > 5 and grounded["prompt_tokens_added_by_ocr"] > 20
    assert grounded["image_tokens"] <= grounded["grounded_image_tokens"] == 128  # the ungrounded run had 256
    assert grounded["ocr_s"] > 0  # timed on its own; the row's first word includes a second OCR run
    assert grounded["grounding_cost_s"] == pytest.approx(
        grounded["time_to_first_word_s"] - grounded["ungrounded_time_to_first_word_s"], abs=0.002)
    # Both ways of running OCR are timed; on the CPU the row is the product's: OCR before the model.
    assert grounded["ocr_runs"] == "before the model"
    assert grounded["grounding_cost_s"] == pytest.approx(grounded["ocr_first_cost_s"], abs=0.002)
    assert "ocr_beside_model_cost_s" in grounded and grounded["prompt_tokens_read_while_ocr_ran"] > 0
    # What the model itself sees of a screen, at the default budget (the tiny model has Qwen2-VL's processor).
    assert 0.2 < grounded["scale_1920x1080"] < grounded["scale_1280x800"] < 0.6
    assert grounded["text_12px_in_model_input_px_1920x1080"] == pytest.approx(12 * grounded["scale_1920x1080"], abs=0.06)
    assert "grounded in OCR: first word later than ungrounded by" in report.read_text()
    # int8 rows: the first load converted (timed in a process of its own), the timed one read the kept copy.
    blip = {r["variant"]: r for r in rows if r["model"] == "blip-base"}
    for row in (qwen["int8, 64 image tokens"], qwen["int4, 128 image tokens"], blip["int8"], blip["int4"]):
        assert row["first_load_s"] > 0 and row["load_s"] > 0 and row["loaded_from"] == "kept copy"
        assert row["first_load_peak_rss_mb"] > 0 and row["first_load_peak_to_final"] > 0 and row["rss_in_use_mb"] > 0
    assert {"prefill_efficiency", "prefill_gop"} <= set(qwen["int8, 64 image tokens"])  # a tiny model's: ~0
    # The chat model's memory with grounding's OCR too (the default), beside the model alone.
    int8 = qwen["int8, 64 image tokens"]
    assert int8["peak_rss_load_and_one_grounded_description_mb"] >= int8["peak_rss_load_and_one_description_mb"] > 0
    assert "peak_rss_load_and_one_grounded_description_mb" not in blip["int8"]
    assert "measured int8 GEMM throughput" in report.read_text()
    assert f"torch {torch.__version__} ({machine['torch_build']} build)" in report.read_text()
    follow_up = qwen["follow-up question"]
    assert follow_up["reused_prompt_tokens"] > follow_up["new_tokens"] and follow_up["kept_cache_mb"] > 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "| qwen2-vl-2b | int8, 64 image tokens |" in report.read_text()


def test_bench_server_overhead_row():
    """The server path against in-process (its own tiny model and `transformers serve`): the row's
    fields only; its figures come from a quiet machine (README)."""
    r = run_cli("bench", "--models", "server", "--json", "--new-tokens", "4", timeout=600)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["model"] for row in rows if row["model"] not in ("machine", "none")] == ["tiny qwen2-vl"]
    row = next(row for row in rows if row["model"] == "tiny qwen2-vl")
    assert 0 < row["time_to_first_token_s"] <= row["total_s"] and row["in_process_total_s"] > 0
    assert row["server_overhead_ms_per_description"] == pytest.approx(
        (row["total_s"] - row["in_process_total_s"]) * 1000, abs=1.0)
    assert row["png_data_url_ms"] > 0 and row["runs"] == 10
