"""What each setting accepts, written once for hotkeys.toml and the command-line flags alike, so
that the two can never drift apart."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DTYPES", "QUANTIZE_MODES", "RULES", "SECRET_SETTINGS", "SPEECH_ENGINES", "Rule", "setting_problem"]

SPEECH_ENGINES = ("auto", "orca", "speech-dispatcher", "nvda", "jaws", "voiceover", "pyttsx3", "espeak-ng", "none")
DTYPES = ("auto", "fp32", "bf16", "fp16")
QUANTIZE_MODES = ("auto", "none", "int8", "int4")


@dataclass(frozen=True)
class Rule:
    """The values a setting accepts; ``text`` completes the sentence "KEY must be ..."."""

    allows: Callable[[object], bool]
    text: str


def _between(low, high, unit: str = "") -> Rule:
    return Rule(lambda v: low <= v <= high, f"between {low} and {high}{unit}")


def _one_of(*choices: str, text: str = "") -> Rule:
    return Rule(lambda v: v in choices, text or "one of " + ", ".join(choices))


def _server_url(value: str) -> bool:
    from urllib.parse import urlsplit

    if value == "":
        return True
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        return False


# "cuda:N" picks one GPU of several; "mps" is Apple's Metal GPU, used only when asked for.
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

# What each setting accepts, for hotkeys.toml and for the command-line flags alike, so that the
# two can never drift apart. Settings not named here accept any value of their type.
RULES: dict[tuple[str, str], Rule] = {
    ("speech", "engine"): _one_of(*SPEECH_ENGINES),
    ("speech", "rate"): _between(50, 600, " words a minute"),
    ("speech", "volume"): _between(0.0, 1.0),
    ("speech", "cli"): _one_of("auto", "print", "speak"),
    ("capture", "screen"): _one_of("pointer", "all", text="\"pointer\" or \"all\""),
    ("capture", "pointer_width"): _between(32, 4096, " pixels"),
    ("capture", "pointer_height"): _between(32, 4096, " pixels"),
    ("model", "device"): Rule(lambda v: _DEVICE.fullmatch(v) is not None, "one of auto, cpu, cuda, cuda:N or mps"),
    ("model", "quantize"): _one_of(*QUANTIZE_MODES),
    ("model", "dtype"): _one_of(*DTYPES),
    ("model", "add_ocr_text"): _one_of("auto", "always", "never"),
    ("model", "ground_in_ocr"): _one_of("check", "auto", "always", "never"),
    ("model", "max_new_tokens"): _between(1, 4096),
    ("model", "num_beams"): _between(1, 8),
    ("model", "temperature"): _between(0.0, 2.0),
    ("model", "screen_image_tokens"): _between(16, 16384),
    ("model", "photo_image_tokens"): _between(16, 16384),
    ("model", "grounded_image_tokens"): _between(16, 16384),
    # Longer than a week is "never" in practice, and is written 0; the agent's wait needs a finite bound.
    ("model", "idle_unload_minutes"): _between(0, 10080, " (0 never unloads; 10080 is a week)"),
    ("model", "server"): Rule(_server_url, "an http:// or https:// URL such as \"http://127.0.0.1:11434/v1\", "
                                           "or \"\" for a model in this process"),
    ("model", "api_key_env"): Rule(lambda v: re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)?", v) is not None,
                                   "the name of an environment variable that holds the key, never the key itself"),
    ("model", "connect_timeout"): _between(0.1, 60.0, " seconds"),
    ("model", "first_token_timeout"): _between(1.0, 3600.0, " seconds"),
    ("model", "answer_timeout"): _between(10.0, 3600.0, " seconds"),
    ("model", "proxy"): Rule(_server_url, "an http:// or https:// URL such as \"http://proxy.example:3128\", "
                                          "or \"\" for none"),
    ("model", "fallback"): _one_of("", "ocr", text="\"ocr\" or \"\""),
}
# Settings whose refused value is not repeated in the error: it may be a secret pasted in the wrong place.
SECRET_SETTINGS = {("model", "api_key_env")}


def setting_problem(section: str, key: str, value) -> str | None:
    """What is wrong with ``value`` for setting ``[section] key``, as "must be ...", or None if it is fine."""
    if isinstance(value, float) and not math.isfinite(value):  # TOML and float() both accept inf and nan
        return "must be a finite number"
    rule = RULES.get((section, key))
    if rule is None or rule.allows(value):
        return None
    return f"must be {rule.text}"
