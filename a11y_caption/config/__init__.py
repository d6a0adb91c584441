"""hotkeys.toml -> frozen dataclasses, with ``file:line`` errors for anything wrong."""

from __future__ import annotations

import math
import os
import re
import stat
import sys
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

# The actions a hotkey may name, and those that need the captioning model: from the one table.
from .actions import HOTKEY_ACTIONS as ACTIONS
from .actions import MODEL_ACTIONS
from .errors import ConfigError
from .hotkeys import Chord, parse_chord

__all__ = [
    "ACTIONS", "DTYPES", "MODEL_ACTIONS", "QUANTIZE_MODES", "RULES", "SPEECH_ENGINES", "Binding", "CaptureConfig",
    "Config", "ModelConfig", "Rule", "SpeechConfig", "default_config_path", "load_config", "parse_chord",
    "setting_problem", "user_config_path",
]

SPEECH_ENGINES = ("auto", "orca", "speech-dispatcher", "nvda", "jaws", "voiceover", "pyttsx3", "espeak-ng", "none")
DTYPES = ("auto", "fp32", "bf16", "fp16")
QUANTIZE_MODES = ("auto", "none", "int8", "int4")

@dataclass(frozen=True)
class ModelConfig:
    name: str = "Qwen/Qwen2-VL-2B-Instruct"
    device: str = "auto"
    dtype: str = "auto"
    quantize: str = "auto"
    trust_remote_code: bool = False
    max_new_tokens: int = 128
    temperature: float = 0.0
    num_beams: int = 1
    language: str = ""
    blip_prefix: str = ""
    screen_image_tokens: int = 256
    photo_image_tokens: int = 192
    # A screen grounded in OCR (ground_in_ocr "auto"/"always"): its text comes from OCR, so the
    # image, read for layout, icons and pictures, gets fewer tokens (README: grounding)
    grounded_image_tokens: int = 128
    add_ocr_text: str = "auto"
    ground_in_ocr: str = "auto"  # screens, windows and questions: the OCR lines in the prompt, quotes checked
    idle_unload_minutes: float = 0.0
    # A model on an OpenAI-compatible server instead of in this process ("" = in this process);
    # name is then the server's name for the model. The key is read from the environment variable
    # named here, never written in this file.
    server: str = ""
    api_key_env: str = ""
    connect_timeout: float = 3.0
    first_token_timeout: float = 60.0
    answer_timeout: float = 300.0  # the whole answer from a server, first token to last
    proxy: str = ""  # a proxy for the server; the environment's proxy variables are never used
    fallback: str = ""  # "ocr": when the server cannot be reached, read the text on the image here


@dataclass(frozen=True)
class SpeechConfig:
    engine: str = "auto"
    voice: str = ""
    rate: int = 200
    volume: float = 1.0
    transcript: str = ""
    braille: bool = True


@dataclass(frozen=True)
class CaptureConfig:
    screen: str = "pointer"


@dataclass(frozen=True)
class Binding:
    keys: str
    action: str
    prompt: str = ""


@dataclass(frozen=True)
class Config:
    path: Path
    model: ModelConfig = ModelConfig()
    speech: SpeechConfig = SpeechConfig()
    capture: CaptureConfig = CaptureConfig()
    hotkeys: tuple[Binding, ...] = field(default_factory=tuple)


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
    ("capture", "screen"): _one_of("pointer", "all", text="\"pointer\" or \"all\""),
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
_SECRET_SETTINGS = {("model", "api_key_env")}


def setting_problem(section: str, key: str, value) -> str | None:
    """What is wrong with ``value`` for setting ``[section] key``, as "must be ...", or None if it is fine."""
    if isinstance(value, float) and not math.isfinite(value):  # TOML and float() both accept inf and nan
        return "must be a finite number"
    rule = RULES.get((section, key))
    if rule is None or rule.allows(value):
        return None
    return f"must be {rule.text}"


def default_config_path() -> Path:
    """The packaged default, which is the repository's hotkeys.toml."""
    return Path(str(resources.files("a11y_caption") / "hotkeys.toml"))


def user_config_path() -> Path:
    """``$A11Y_CAPTION_CONFIG``, else hotkeys.toml in the platform's user config folder."""
    if os.environ.get("A11Y_CAPTION_CONFIG"):
        return Path(os.environ["A11Y_CAPTION_CONFIG"])
    from platformdirs import user_config_path as ucp

    return ucp("a11y-caption", appauthor=False) / "hotkeys.toml"


def _line_of(lines: list[str], header: str, occurrence: int = 0, key: str | None = None) -> int | None:
    """1-based line of ``key`` inside the ``occurrence``-th table ``header`` (or of the header itself)."""
    seen = -1
    for i, raw in enumerate(lines):
        if raw.strip().split("#")[0].strip() == header:
            seen += 1
            if seen != occurrence:
                continue
            if key is None:
                return i + 1
            for j in range(i + 1, len(lines)):
                s = lines[j].strip()
                if s.startswith("["):
                    break
                if re.match(rf"{re.escape(key)}\s*=", s):
                    return j + 1
            return i + 1
    return None


def _line_of_key(lines: list[str], key: str) -> int | None:
    """1-based line of a top-level ``key = ...`` (written before any table header), or None."""
    for i, raw in enumerate(lines):
        s = raw.strip()
        if s.startswith("["):
            return None
        if re.match(rf"{re.escape(key)}\s*=", s):
            return i + 1
    return None


def _shown(value) -> str:
    """A refused value as the error repeats it: short enough to hear (a 400-digit number is not)."""
    text = repr(value)
    if len(text) <= 40:
        return text
    if isinstance(value, int):
        return f"a number of {len(str(abs(value)))} digits"
    return f"{text[:30]}... ({len(text)} characters)"


def _has_control_character(text: str) -> bool:
    """True when ``text`` holds a line break or another control character (a tab, an escape...)."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def _build(cls, table, path: Path, lines: list[str], header: str, occurrence: int = 0):
    if not isinstance(table, dict):
        line = _line_of(lines, header, occurrence) or _line_of_key(lines, header.strip("[]"))
        raise ConfigError(path, line, f"{header} must be a table")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in table.items():
        line = _line_of(lines, header, occurrence, key)
        if key not in known:
            raise ConfigError(path, line, f"unknown key {key!r} in {header}; known keys: {', '.join(known)}")
        expected = known[key].type
        ok = {"str": isinstance(value, str), "bool": isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool)}[expected]
        if not ok:
            raise ConfigError(path, line, f"{key} must be a {expected}, not {_shown(value)}")
        if expected == "float":
            try:
                value = float(value)
            except OverflowError as e:  # an integer of hundreds of digits
                rule = RULES.get((header.strip("[]"), key))
                raise ConfigError(path, line, f"{key} must be {rule.text if rule else 'a smaller number'}, "
                                              f"not {_shown(value)}") from e
        values[key] = value
    return cls(**values)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read ``path`` (default: the user's file if it exists, else the packaged default).

    Raises:
        ConfigError: unreadable or malformed TOML, unknown tables/keys/actions, bad or duplicate chords,
            or a file named by ``$A11Y_CAPTION_CONFIG`` that does not exist.
    """
    if path is None:
        path = user_config_path()
        if not path.exists():
            if os.environ.get("A11Y_CAPTION_CONFIG"):  # asked for by name: the default would be a surprise
                raise ConfigError(path, None, "A11Y_CAPTION_CONFIG names this file, which does not exist.")
            path = default_config_path()
    path = Path(path)
    text = _read_text(path)
    data = _parse_toml(text, path)
    lines = text.splitlines()
    sections = {"model": ModelConfig, "speech": SpeechConfig, "capture": CaptureConfig}
    for name in data:
        if name not in (*sections, "hotkey"):
            raise ConfigError(path, _line_of(lines, f"[{name}]") or _line_of(lines, f"[[{name}]]"),
                              f"unknown table [{name}]; known: [model], [speech], [capture], [[hotkey]]")
    parts = {name: _build(cls, data.get(name, {}), path, lines, f"[{name}]") for name, cls in sections.items()}
    _check_values(parts, path, lines)

    raw_bindings = data.get("hotkey", [])
    if not isinstance(raw_bindings, list):
        raise ConfigError(path, _line_of(lines, "[hotkey]") or _line_of_key(lines, "hotkey"),
                          "hotkeys are written as [[hotkey]] tables")
    bindings, chords = [], []
    for i, table in enumerate(raw_bindings):
        header_line = _line_of(lines, "[[hotkey]]", i)
        if not isinstance(table, dict):  # hotkey = [1]
            raise ConfigError(path, header_line or _line_of_key(lines, "hotkey"),
                              "each hotkey is a [[hotkey]] table with keys and action")
        for required in ("keys", "action"):
            if required not in table:
                raise ConfigError(path, header_line, f"this [[hotkey]] has no {required!r}")
        binding = _build(Binding, table, path, lines, "[[hotkey]]", i)
        for f in fields(Binding):  # the shortcut writers put each one in another program's file
            if _has_control_character(getattr(binding, f.name)):
                raise ConfigError(path, _line_of(lines, "[[hotkey]]", i, f.name),
                                  f"{f.name} must be one line, with no line break or other control character")
        if binding.action not in ACTIONS:
            raise ConfigError(path, _line_of(lines, "[[hotkey]]", i, "action"),
                              f"unknown action {binding.action!r}; actions: {', '.join(ACTIONS)}")
        keys_line = _line_of(lines, "[[hotkey]]", i, "keys")
        try:
            chord = Chord.parse(binding.keys)
        except ValueError as e:
            raise ConfigError(path, keys_line, str(e)) from e
        for earlier, line in chords:
            if chord.overlaps(earlier):  # one press would fire both
                same = (earlier.modifiers, earlier.main) == (chord.modifiers, chord.main)
                how = "" if same else f" as {earlier.keys!r}, and one press would fire both"
                raise ConfigError(path, keys_line, f"chord {binding.keys!r} is already bound on line {line}{how}")
        chords.append((chord, keys_line))
        bindings.append(binding)
    return Config(path=path, hotkeys=tuple(bindings), **parts)


# The largest settings file read: the packaged one is 10 KB; a bound keeps /dev/zero or a huge file
# from filling the memory.
MAX_CONFIG_BYTES = 1024 * 1024


def _read_text(path: Path) -> str:
    """The file's text, if it is a regular file of at most MAX_CONFIG_BYTES in UTF-8 (ConfigError if not).

    Opened without blocking (a FIFO would wait for a writer for ever), then checked on the open file
    itself, so what is read is what was checked.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read the file ({e.strerror or e})") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(path, None, "this is a folder; name the settings file itself")
        if not stat.S_ISREG(mode):
            raise ConfigError(path, None, "this is not a regular file (a pipe or a device); name a settings file")
        chunks, size = [], 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read the file ({e.strerror or e})") from e
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(path, None, f"the file is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB, "
                                      "far more than a settings file holds")
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, "the file is not UTF-8 text") from e
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def _parse_toml(text: str, path: Path) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise ConfigError(path, int(m.group(1)) if m else None, f"invalid TOML: {message}") from e
    except ValueError as e:  # int() refuses a number of more than sys.get_int_max_str_digits() digits
        limit = sys.get_int_max_str_digits()
        line = next((i + 1 for i, raw in enumerate(text.splitlines())
                     if any(len(run.replace("_", "")) > limit for run in re.findall(r"[0-9_]+", raw))), None)
        raise ConfigError(path, line, f"a number has more than {limit} digits") from e
    except RecursionError as e:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(path, _deepest_line(text), "arrays or tables are nested too deeply") from e


def _deepest_line(text: str) -> int | None:
    """1-based line where ``[``/``{`` nesting is deepest (brackets in strings count too: a guess)."""
    depth = deepest = 0
    line = None
    for i, raw in enumerate(text.splitlines()):
        for ch in raw:
            depth += (ch in "[{") - (ch in "]}")
            if depth > deepest:
                deepest, line = depth, i + 1
    return line


def _check_values(parts: dict, path: Path, lines: list[str]) -> None:
    for section, part in parts.items():
        for f in fields(part):
            value = getattr(part, f.name)
            problem = setting_problem(section, f.name, value)
            if problem:
                shown = "" if (section, f.name) in _SECRET_SETTINGS else f", not {_shown(value)}"
                raise ConfigError(path, _line_of(lines, f"[{section}]", 0, f.name), f"{f.name} {problem}{shown}")
