"""The bench's output: the table it prints, the targets checked against its rows, and
docs/PERFORMANCE.md (``--report``)."""

from __future__ import annotations

from .fixtures import default_precision
from .rows import Row

__all__ = ["report", "table", "targets"]


def _fmt(v, unit="") -> str:
    if v is None:
        return "-"
    return f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def table(rows: list[Row]) -> str:
    head = ("model", "variant", "img tok", "prep s", "1st token s", "1st word s", "total s", "tok/s", "peak MB",
            "1st word vs baseline")
    lines = ["\t".join(head)]
    baselines = {r.model: r for r in rows if r.variant.startswith("baseline")}
    for r in rows:
        base = baselines.get(r.model)
        ratio = f"{base.time_to_first_word_s / r.time_to_first_word_s:.1f}x" if base and r.time_to_first_word_s else "-"
        lines.append("\t".join([r.model, r.variant, _fmt(r.image_tokens), _fmt(r.preprocess_s),
                                _fmt(r.time_to_first_token_s), _fmt(r.time_to_first_word_s), _fmt(r.total_s),
                                _fmt(r.tokens_per_s), _fmt(r.peak_rss_mb and round(r.peak_rss_mb)), ratio]))
    return "\n".join(lines)


def _one_peak(row: Row) -> float:
    """The peak memory of loading and one description (``one_description``), else the row's own."""
    return row.extra.get("peak_rss_load_and_one_description_mb", row.peak_rss_mb)


def _find(rows: list[Row], model: str, pred):
    return next((r for r in rows if r.model == model and pred(r.variant)), None)


def targets(rows: list[Row]) -> list[str]:
    """One line per target: the measured figure, and met or MISSED."""
    lines = []
    for label, value, op, limit, unit in [*_model_checks(rows), *_issue_checks(rows), *_response_checks(rows)]:
        ok = value <= limit if op == "<=" else value >= limit
        lines.append(f"- {label}: {value:.3f}{unit} (target {op} {limit}{unit}): {'met' if ok else 'MISSED'}")
    return lines


def _model_checks(rows: list[Row]) -> list[tuple]:
    """(label, value, "<=" or ">=", limit, unit) of the models' own targets: Qwen2-VL's default row
    (speed, memory, loading), its int4 memory, BLIP's caption and memory."""
    qwen = _find(rows, "qwen2-vl-2b", lambda v: v.endswith("(default)"))
    qwen_base = _find(rows, "qwen2-vl-2b", lambda v: v.startswith("baseline"))
    blip = _find(rows, "blip-base", lambda v: v == default_precision())
    checks = []
    if qwen:
        checks.append(("Qwen2-VL-2B first spoken word, default settings", qwen.time_to_first_word_s, "<=", 3.8, "s"))
        if "prefill_efficiency" in qwen.extra:
            checks.append(("Qwen2-VL-2B prefill efficiency (prefill operations / (first token x int8 GEMM "
                           "throughput))", qwen.extra["prefill_efficiency"], ">=", 0.8, ""))
        if qwen_base:
            checks.append(("Qwen2-VL-2B first word, times faster than the baseline",
                           qwen_base.time_to_first_word_s / qwen.time_to_first_word_s, ">=", 12, "x"))
        checks.append(("Qwen2-VL-2B int8 load with the kept copy present", qwen.extra["load_s"], "<=", 5, " s"))
        checks.append(("Qwen2-VL-2B int8 peak RSS, load + one description (the model alone)", _one_peak(qwen),
                       "<=", 3000, " MB"))
        if "peak_rss_load_and_one_grounded_description_mb" in qwen.extra:
            checks.append(("Qwen2-VL-2B int8 peak RSS, load + one description + one grounded in OCR (the default)",
                           qwen.extra["peak_rss_load_and_one_grounded_description_mb"], "<=", 3000, " MB"))
        if "first_load_peak_to_final" in qwen.extra:
            checks.append(("Qwen2-VL-2B first load (conversion): peak RSS / RSS of a kept-copy load after one "
                           "description",
                           qwen.extra["first_load_peak_to_final"], "<=", 1.3, "x"))
    int4 = _find(rows, "qwen2-vl-2b", lambda v: v.startswith("int4"))
    if int4:
        checks.append(("Qwen2-VL-2B int4 peak RSS, load + one description (the model alone)", _one_peak(int4), "<=",
                       2000, " MB"))
    if blip:
        checks.append((f"BLIP-base whole caption ({blip.new_tokens} tokens, default {blip.variant})",
                       blip.total_s, "<=", 0.6, "s"))
        checks.append(("BLIP-base peak RSS, load + one caption", _one_peak(blip), "<=", 700, " MB"))
    return checks


def _response_checks(rows: list[Row]) -> list[tuple]:
    """The same of the answers around a description: a follow-up, grounding's cost, the agent's own
    latencies, and the idle agent's memory."""
    def extra(key):
        return next((r.extra[key] for r in rows if key in r.extra and r.model == "qwen2-vl-2b"), None)

    checks = []
    follow_up = _find(rows, "qwen2-vl-2b", lambda v: v == "follow-up question")
    if follow_up:
        checks.append(("Qwen2-VL-2B follow-up question, first spoken word", follow_up.time_to_first_word_s, "<=", 1.0, "s"))
    grounded = _find(rows, "qwen2-vl-2b", lambda v: v.endswith("grounded"))
    if grounded:
        checks.append(("Qwen2-VL-2B grounded in OCR: first word later than ungrounded by",
                       grounded.extra["grounding_cost_s"], "<=", 1.0, "s"))
    for key, label in (("press_to_model_start_s", "key press -> model start"),
                       ("last_token_to_audio_s", "last token -> audio start"),
                       ("identical_image_s", "identical image again")):
        value = extra(key)
        if value is not None:
            checks.append((label, value, "<=", 0.1 if "image" not in label else 0.05, "s"))
    idle = _find(rows, "none", lambda v: True)
    if idle:
        checks.append(("idle agent with no model, RSS", idle.peak_rss_mb, "<=", 150, " MB"))
    return checks


def shootout(rows: list[Row]) -> list[str]:
    """The chat models side by side, each at the default screen budget, grounded and not: prefill
    operations, first word, writing speed and memory, with their published scores (scores.py)."""
    from .scores import BENCHMARKS, SCORES

    models = [r.model for r in rows if r.variant.endswith("(default)") and r.model in SCORES]
    if not models:
        return []
    head = ["model", "image tokens", "prefill GOP", "first word s", "grounded first word s", "tokens/s",
            "peak RSS MB (load + grounded)", *BENCHMARKS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in models:
        plain = _find(rows, model, lambda v: v.endswith("(default)"))
        grounded = _find(rows, model, lambda v: v.endswith("grounded"))
        peak = plain.extra.get("peak_rss_load_and_one_grounded_description_mb")
        gop = plain.extra.get("prefill_gop")
        cells = [model, _fmt(plain.image_tokens), _fmt(gop and round(gop)), _fmt(plain.time_to_first_word_s),
                 _fmt(grounded and grounded.time_to_first_word_s), _fmt(plain.tokens_per_s),
                 _fmt(peak and round(peak)), *(_fmt(SCORES[model].get(b)) for b in BENCHMARKS)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _issue_checks(rows: list[Row]) -> list[tuple]:
    """The kernel and model-choice targets: the packed kernel against torch._int_mm in one run, and
    the default model's grounded first word against Qwen2-VL-2B's."""
    from ..config import ModelConfig
    from ..models import KNOWN_MODELS

    checks = []
    qwen = _find(rows, "qwen2-vl-2b", lambda v: v.endswith("(default)"))
    int_mm = _find(rows, "qwen2-vl-2b", lambda v: "kernel torch._int_mm" in v)
    if qwen and int_mm and qwen.image_tokens == int_mm.image_tokens:
        checks.append(("Qwen2-VL-2B first token, the product's kernel / torch._int_mm, same run",
                       qwen.time_to_first_token_s / int_mm.time_to_first_token_s, "<=", 1.0, "x"))
        checks.append(("Qwen2-VL-2B writing speed, torch._int_mm / the product's kernel, same run",
                       int_mm.tokens_per_s / qwen.tokens_per_s, "<=", 1.0, "x"))
    default = next((k.alias for k in KNOWN_MODELS if k.repo_id == ModelConfig().name or k.alias == ModelConfig().name),
                   None)
    grounded = {r.model: r for r in rows if r.variant.endswith("grounded")}
    if default and default != "qwen2-vl-2b" and default in grounded and "qwen2-vl-2b" in grounded:
        checks.append((f"the default model ({default}), grounded screen, first word / Qwen2-VL-2B's, same run",
                       grounded[default].time_to_first_word_s / grounded["qwen2-vl-2b"].time_to_first_word_s,
                       "<=", 0.5, "x"))
    return checks


def report(rows: list[Row], args, info: dict) -> str:
    """docs/PERFORMANCE.md: the machine, every row, the targets checked, the other measurements."""
    machine = (f"{info['cpu']}, {info['cores']} CPU cores ({', '.join(info['isa']) or 'no AVX2'}), torch "
               f"{info.get('torch', '?')} ({info.get('torch_build', '?')} build), torch threads "
               f"{info['torch_threads']}, measured int8 GEMM throughput ({info.get('int8_kernel', 'fbgemm')}) "
               f"{info['int8_gops']:.0f} GOP/s"
               + (f", torch._int_mm (oneDNN) {info['int8_gops_int_mm']:.0f} GOP/s" if "int8_gops_int_mm" in info else "")
               + (f". Kernel chosen: {info['int8_kernel_why']}" if "int8_kernel_why" in info else ""))
    lines = ["| model | variant | image tokens | preprocess s | first token s | first word s | total s | "
             "new tokens | tokens/s | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join([r.model, r.variant, _fmt(r.image_tokens), _fmt(r.preprocess_s),
                                         _fmt(r.time_to_first_token_s), _fmt(r.time_to_first_word_s),
                                         _fmt(r.total_s), _fmt(r.new_tokens), _fmt(r.tokens_per_s),
                                         _fmt(r.peak_rss_mb and round(r.peak_rss_mb))]) + " |")
    extras = [f"- {r.model} / {r.variant}: " + ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.extra.items()) for r in rows if r.extra]
    return "\n".join([
        "# Performance", "",
        "Written by `make bench` (`a11y-caption bench --plot docs/time_to_first_word.png --report "
        "docs/PERFORMANCE.md`); rerun it to refresh every figure here.", "",
        f"Machine: {machine}. Models: full-size random replicas (real config values, random weights) "
        "unless the row says otherwise; their text is nonsense, so every run generates exactly "
        f"{args.new_tokens} new tokens.", "",
        *lines, "", *(["## The chat models side by side (published scores beside the timings: bench/scores.py)", "",
                       *shootout(rows), ""] if shootout(rows) else []),
        "## Targets, checked against the rows above", "", *targets(rows), "",
        "## Other measurements", "", *extras, "",
        "![time to first word](time_to_first_word.png)", "",
    ])
