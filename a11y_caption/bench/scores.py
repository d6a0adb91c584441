"""Published scores of the chat models the bench compares, beside its timings: what a model is
worth reading a screen, from its authors (or, where marked, another's evaluation), since a random
replica says nothing of quality. None: not published in a form found (see the sources)."""

from __future__ import annotations

__all__ = ["BENCHMARKS", "SCORES", "SOURCES", "reads_screens_as_well_as"]

BENCHMARKS = ("OCRBench", "DocVQA", "InfoVQA", "ChartQA", "MMStar", "RealWorldQA", "HallusionBench")

# {bench model: {benchmark: score}}; a missing benchmark was not found published.
SCORES = {
    "qwen2-vl-2b": {"OCRBench": 794, "DocVQA": 90.1, "InfoVQA": 65.5, "ChartQA": 73.5, "RealWorldQA": 62.9},
    "internvl3-2b": {"OCRBench": 831, "InfoVQA": 66.1, "MMStar": 61.1, "RealWorldQA": 65.1},
    "internvl3-1b": {"OCRBench": 798, "InfoVQA": 54.9, "MMStar": 52.3, "RealWorldQA": 57.0},
    "lfm2-vl-450m": {"OCRBench": 655, "InfoVQA": 46.51, "MMStar": 40.87, "RealWorldQA": 52.29},
    "qwen3-vl-2b": {},  # its report's tables are images; OCRBench v2 (EN) 56.3 is another benchmark
    "smolvlm2-500m": {},  # its official tables are images
}

SOURCES = {
    "qwen2-vl-2b": "Qwen2-VL-2B-Instruct model card",
    "internvl3-2b": "the comparison columns of Liquid AI's LFM2-VL blog (12 Aug 2025; InfoVQA by VLMEvalKit), "
                    "not InternVL's own report",
    "internvl3-1b": "the comparison columns of Liquid AI's LFM2-VL blog (not InternVL's own report)",
    "lfm2-vl-450m": "Liquid AI's LFM2-VL blog (12 Aug 2025)",
    "qwen3-vl-2b": "none comparable found as text",
    "smolvlm2-500m": "none found as text",
}

# Documents and screens: what a grounded screen description needs of a model.
SCREEN_BENCHMARKS = ("OCRBench", "DocVQA", "InfoVQA", "ChartQA")


def reads_screens_as_well_as(model: str, reference: str = "qwen2-vl-2b") -> bool:
    """Whether ``model``'s published document and screen scores are at least ``reference``'s on every
    such benchmark both publish, with at least two in common (fewer cannot show it)."""
    mine, theirs = SCORES.get(model, {}), SCORES.get(reference, {})
    common = [b for b in SCREEN_BENCHMARKS if b in mine and b in theirs]
    return len(common) >= 2 and all(mine[b] >= theirs[b] for b in common)
