"""What every part of the bench shares: the models it knows, the row a timed run yields, its messages."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field

__all__ = ["BENCH_MODELS", "KEYS", "Row", "say"]

# server: server_overhead.py. The chat models past the first two are the shoot-out's (replicas of
# their families: replica_qwen_family.py, replica_compact.py; published scores: scores.py).
BENCH_MODELS = {"qwen2-vl-2b": "chat", "blip-base": "blip", "server": "server", "qwen3-vl-2b": "chat",
                "internvl3-1b": "chat", "internvl3-2b": "chat", "smolvlm2-500m": "chat", "lfm2-vl-450m": "chat"}
KEYS = ("model", "variant", "image_tokens", "preprocess_s", "time_to_first_token_s", "time_to_first_word_s",
        "total_s", "new_tokens", "tokens_per_s", "peak_rss_mb")


@dataclass
class Row:
    model: str
    variant: str
    image_tokens: int | None = None
    preprocess_s: float | None = None
    time_to_first_token_s: float | None = None
    time_to_first_word_s: float | None = None
    total_s: float | None = None
    new_tokens: int | None = None
    tokens_per_s: float | None = None
    peak_rss_mb: float | None = None
    extra: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "extra"}
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in {**d, **self.extra}.items()}


def say(message: str) -> None:
    print(f"a11y-caption bench: {message}", file=sys.stderr, flush=True)
