"""``bench --plot``: time to the first spoken word against image tokens, per precision."""

from __future__ import annotations

from pathlib import Path

from .rows import Row, say

__all__ = ["plot"]


def plot(rows: list[Row], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    chat = [r for r in rows if r.model == "qwen2-vl-2b" and r.image_tokens and not r.variant.startswith("baseline")
            and not r.variant.endswith("grounded")]
    for precision in dict.fromkeys(r.variant.split(",")[0] for r in chat):
        points = sorted((r.image_tokens, r.time_to_first_word_s) for r in chat if r.variant.startswith(precision + ","))
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=precision)
    for r in rows:
        if r.model == "qwen2-vl-2b" and r.variant.startswith("baseline"):
            ax.scatter([r.image_tokens], [r.time_to_first_word_s], marker="x", color="black", label=r.variant)
    ax.set_xlabel("image tokens (1280x800 screenshot)")
    ax.set_ylabel("key press to first spoken word (s)")
    ax.set_yscale("log")
    ax.set_title("Qwen2-VL-2B, full-size random replica, 2 CPU threads")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    say(f"wrote {out}")
