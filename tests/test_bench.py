"""The bench command's plumbing, on tiny replicas placed where it keeps its full-size ones.

Timings of tiny models mean nothing; the real figures come from `make bench` (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from a11y_caption.bench import KEYS
from conftest import isolate_home, run_cli


@pytest.fixture(scope="module")
def bench(tiny_models, tmp_path_factory):
    """One `bench --json` run of every variant, with a plot and a report, for the tests below."""
    tmp_path = tmp_path_factory.mktemp("bench")
    cache = tmp_path / "replicas"
    for name in ("qwen2-vl-2b", "blip-base"):
        shutil.copytree(tiny_models[name], cache / name)
    plot = tmp_path / "plot.png"
    report = tmp_path / "PERFORMANCE.md"
    with pytest.MonkeyPatch.context() as mp:
        isolate_home(mp, tmp_path)  # a module fixture is made before each test's own isolated_home
        r = run_cli("bench", "--json", "--cache-dir", str(cache), "--new-tokens", "6", "--image-tokens", "64,128",
                    "--precisions", "int8,int4,fp32", "--plot", str(plot), "--report", str(report), timeout=600,
                    env={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent", "AT_SPI_BUS_ADDRESS": ""})  # no tree
    return SimpleNamespace(r=r, plot=plot, report=report)


@pytest.fixture(scope="module")
def out(bench):
    """The run's JSON lines: the machine, then the rows, with the Qwen2-VL and BLIP rows by variant."""
    if bench.r.returncode != 0:
        pytest.fail(f"the bench failed (test_the_bench_runs_every_variant says how): {bench.r.stderr[-2000:]}")
    machine, *rows = [json.loads(line) for line in bench.r.stdout.splitlines()]
    return SimpleNamespace(machine=machine, rows=rows,
                           qwen={row["variant"]: row for row in rows if row["model"] == "qwen2-vl-2b"},
                           blip={r["variant"]: r for r in rows if r["model"] == "blip-base"})


def test_the_bench_runs_every_variant(bench):
    r = bench.r
    assert r.returncode == 0, r.stderr


def test_the_machine_row_says_what_the_machine_is(out):
    machine = out.machine
    assert machine["model"] == "machine" and machine["cpu"] and machine["int8_gops"] > 0
    assert machine["int8_kernel"].startswith(("torch._int_mm", "torch.ao packed"))
    assert machine["torch"] == torch.__version__
    assert machine["torch_build"] == (f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only")
    assert isinstance(machine["isa"], list) and set(machine["isa"]) <= {
        "avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}


def test_json_rows_for_every_variant_in_order(out):
    rows = out.rows
    for row in rows:
        assert set(KEYS) <= set(row), row
    variants = [(row["model"], row["variant"]) for row in rows]
    assert variants == [
        ("qwen2-vl-2b", "baseline (float32, default image size, no streaming)"),
        ("qwen2-vl-2b", "int8, 64 image tokens"), ("qwen2-vl-2b", "int8, 128 image tokens"),
        ("qwen2-vl-2b", "int8, 128 image tokens, grounded"), ("qwen2-vl-2b", "follow-up question"),
        ("qwen2-vl-2b", "object: icon 64x64"), ("qwen2-vl-2b", "object: chart 400x300"),
        ("qwen2-vl-2b", "object: screen 1280x800"),
        ("qwen2-vl-2b", "int4, 64 image tokens"), ("qwen2-vl-2b", "int4, 128 image tokens"),
        ("qwen2-vl-2b", "fp32, 64 image tokens"), ("qwen2-vl-2b", "fp32, 128 image tokens"),
        # The kernel the product does not choose, where it can run (AVX-512 VNNI): measured beside it
        *([("qwen2-vl-2b", "int8, 128 image tokens, kernel torch._int_mm (oneDNN) (measured, not the product's)")]
          if "int8_gops_int_mm" in out.machine else []),
        ("blip-base", "baseline (float32, default image size, no streaming)"),
        ("blip-base", "int8"), ("blip-base", "int4"), ("blip-base", "fp32"),
        ("none", "idle agent, no model loaded"),
    ]


def test_every_timed_row_generated_its_tokens_in_order(out):
    timed = [row for row in out.rows if row["model"] != "none"]
    for row in timed:
        assert row["new_tokens"] == 6
        assert 0 < row["time_to_first_token_s"] <= row["time_to_first_word_s"] <= row["total_s"] + 0.5
        assert row["peak_rss_mb"] > 0


def test_image_budgets_and_the_latencies_around_a_description(out):
    qwen = out.qwen
    assert qwen["int8, 64 image tokens"]["image_tokens"] <= 64 < qwen["int8, 128 image tokens"]["image_tokens"] <= 128
    assert qwen["fp32, 128 image tokens"]["identical_image_s"] < 0.05
    assert qwen["fp32, 128 image tokens"]["press_to_model_start_s"] < 0.5


def test_the_grounded_row_times_ocr_both_ways(out):
    grounded = out.qwen["int8, 128 image tokens, grounded"]
    assert grounded["ocr_lines"] > 5 and grounded["prompt_tokens_added_by_ocr"] > 20
    assert grounded["image_tokens"] <= grounded["grounded_image_tokens"] == 128  # the ungrounded run had 256
    assert grounded["ocr_s"] > 0  # timed on its own; the row's first word includes a second OCR run
    assert grounded["grounding_cost_s"] == pytest.approx(
        grounded["time_to_first_word_s"] - grounded["ungrounded_time_to_first_word_s"], abs=0.002)
    # Both ways of running OCR are timed; on the CPU the row is the product's: OCR before the model.
    assert grounded["ocr_runs"] == "before the model"
    assert grounded["grounding_cost_s"] == pytest.approx(grounded["ocr_first_cost_s"], abs=0.002)
    assert "ocr_beside_model_cost_s" in grounded and grounded["prompt_tokens_read_while_ocr_ran"] > 0


def test_the_grounded_row_says_what_the_model_sees_of_a_screen(out):
    grounded = out.qwen["int8, 128 image tokens, grounded"]
    # What the model itself sees of a screen, at the default budget (the tiny model has Qwen2-VL's processor).
    assert 0.2 < grounded["scale_1920x1080"] < grounded["scale_1280x800"] < 0.6
    assert grounded["text_12px_in_model_input_px_1920x1080"] == pytest.approx(12 * grounded["scale_1920x1080"], abs=0.06)


def test_quantized_rows_time_the_first_load_and_the_kept_copy(out):
    qwen, blip = out.qwen, out.blip
    # int8 rows: the first load converted (timed in a process of its own), the timed one read the kept copy.
    for row in (qwen["int8, 64 image tokens"], qwen["int4, 128 image tokens"], blip["int8"], blip["int4"]):
        assert row["first_load_s"] > 0 and row["load_s"] > 0 and row["loaded_from"] == "kept copy"
        assert row["first_load_peak_rss_mb"] > 0 and row["first_load_peak_to_final"] > 0 and row["rss_in_use_mb"] > 0
    assert {"prefill_efficiency", "prefill_gop"} <= set(qwen["int8, 64 image tokens"])  # a tiny model's: ~0
    assert qwen["int8, 64 image tokens"]["int8_kernel"] == out.machine["int8_kernel"]
    assert qwen["int8, 64 image tokens"]["background_packing_s"] >= 0


def test_the_kernel_row_measures_the_kernel_the_product_does_not_choose(out):
    """On CPUs where torch._int_mm runs (AVX-512 VNNI), the bench times it beside the packed kernel
    the product uses (packing.packs_int8) and the machine line says why; elsewhere there is no row."""
    assert out.machine["int8_kernel"].startswith("torch.ao packed") and "packed" in out.machine["int8_kernel_why"]
    rows = [r for r in out.rows if "kernel torch._int_mm" in r["variant"]]
    assert len(rows) == ("int8_gops_int_mm" in out.machine)
    for row in rows:
        assert row["int8_kernel"] == "torch._int_mm (oneDNN)" and row["new_tokens"] == 6
        assert row["loaded_from"] == "kept copy" and row["prefill_gop"] > 0


def test_the_chat_models_memory_with_groundings_ocr(out):
    qwen, blip = out.qwen, out.blip
    # The chat model's memory with grounding's OCR too (the default), beside the model alone.
    int8 = qwen["int8, 64 image tokens"]
    assert int8["peak_rss_load_and_one_grounded_description_mb"] >= int8["peak_rss_load_and_one_description_mb"] > 0
    assert "peak_rss_load_and_one_grounded_description_mb" not in blip["int8"]


def test_the_follow_up_row_reuses_the_kept_cache(out):
    follow_up = out.qwen["follow-up question"]
    assert follow_up["reused_prompt_tokens"] > follow_up["new_tokens"] and follow_up["kept_cache_mb"] > 0


def test_the_report_and_the_plot(bench, out):
    report, plot, machine = bench.report, bench.plot, out.machine
    assert "grounded in OCR: first word later than ungrounded by" in report.read_text()
    assert "measured int8 GEMM throughput" in report.read_text()
    assert f"torch {torch.__version__} ({machine['torch_build']} build)" in report.read_text()
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


def test_the_prefill_operations_are_counted_from_the_layers_that_ran(tiny_models):
    """bench.timed.PrefillOps counts every Linear of the first forward pass as it ran: for Qwen2-VL
    that is its vision tower over the patches, the merger over the image tokens, the language model
    over the prompt after its cached start (prefix_cache.py) and the head over the last position,
    worked out here from the shapes."""
    from PIL import Image

    from a11y_caption.bench.timed import PrefillOps
    from a11y_caption.captioner import GenerationOptions, Request, load_captioner

    captioner = load_captioner(str(tiny_models["qwen2-vl-2b"]), quantize="int8")
    request = Request(Image.new("RGB", (320, 200), "white"), "screen")
    inputs = captioner.prepare(request)
    model = captioner.model
    image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    merge = model.config.vision_config.spatial_merge_size ** 2
    expected = 0.0
    for name, module in model.named_modules():
        if type(module).__name__ in ("Linear", "Int8Linear"):
            rows = (image_tokens if ".merger." in f".{name}." else image_tokens * merge if ".visual." in f".{name}."
                    else 1 if name.endswith("lm_head") else inputs["input_ids"].shape[-1] - captioner.prefix_tokens)
            expected += 2 * rows * module.in_features * module.out_features
    counted = PrefillOps(model)
    captioner.generate(request, GenerationOptions(max_new_tokens=3)).collect()
    assert counted.ops == pytest.approx(expected) and expected > 0


def test_the_object_rows_time_each_natural_size_and_say_the_tree_first(out):
    """The full bench's object rows (object_rows.py): an icon, a chart and a screen at their own
    sizes, each with the tree's facts said before the model's first word; no tree answers here."""
    rows = [r for r in out.rows if r["variant"].startswith("object: ")]
    assert [r["variant"] for r in rows] == ["object: icon 64x64", "object: chart 400x300", "object: screen 1280x800"]
    icon, chart, screen = rows
    assert 0 < icon["image_tokens"] < chart["image_tokens"] <= screen["image_tokens"]
    for r in rows:
        assert 0 <= r["tree_facts_said_s"] < r["time_to_first_word_s"], r  # the tree's words first
        assert r["tree_facts_said_s"] < r["time_to_first_token_s"] <= r["total_s"], r
    assert chart["grounded_lines"] >= 1  # the chart's title and labels were read and given to the model
    assert icon["tree"] == "no accessibility tree answers here"


def test_bench_objects_runs_the_object_rows_alone(tiny_models, tmp_path, isolated_home):
    cache = tmp_path / "replicas"
    shutil.copytree(tiny_models["qwen2-vl-2b"], cache / "qwen2-vl-2b")
    r = run_cli("bench", "--objects", "--json", "--cache-dir", str(cache), "--new-tokens", "4",
                env={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}, timeout=600)
    assert r.returncode == 0, r.stderr
    machine, *rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert machine["model"] == "machine"
    assert [row["variant"] for row in rows] == ["object: icon 64x64", "object: chart 400x300",
                                                "object: screen 1280x800"]
    assert all(row["peak_rss_mb"] > 0 for row in rows)
