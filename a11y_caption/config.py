"""hotkeys.toml -> frozen dataclasses, with ``file:line`` errors for anything wrong."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from .errors import ConfigError
from .hotkeys import parse_chord

__all__ = [
    "ACTIONS", "MODEL_ACTIONS", "Binding", "CaptureConfig", "Config", "ModelConfig", "SpeechConfig",
    "default_config_path", "load_config", "parse_chord", "user_config_path",
]

ACTIONS = (
    "describe_screen", "describe_window", "describe_clipboard", "alt_text_to_clipboard", "read_text",
    "repeat_last", "copy_last", "stop", "release_model",
)
# Actions that need the captioning model (the others answer at once).
MODEL_ACTIONS = ("describe_screen", "describe_window", "describe_clipboard", "alt_text_to_clipboard")
SPEECH_ENGINES = ("auto", "orca", "speech-dispatcher", "nvda", "jaws", "voiceover", "pyttsx3", "espeak-ng", "none")

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
    add_ocr_text: str = "auto"
    idle_unload_minutes: float = 0.0


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


def _build(cls, table, path: Path, lines: list[str], header: str, occurrence: int = 0):
    if not isinstance(table, dict):
        raise ConfigError(path, _line_of(lines, header, occurrence), f"{header} must be a table")
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
            raise ConfigError(path, line, f"{key} must be a {expected}, not {value!r}")
        values[key] = float(value) if expected == "float" else value
    return cls(**values)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read ``path`` (default: the user's file if it exists, else the packaged default).

    Raises:
        ConfigError: unreadable or malformed TOML, unknown tables/keys/actions, bad or duplicate chords.
    """
    if path is None:
        path = user_config_path()
        if not path.exists():
            path = default_config_path()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(path, None, f"cannot read the file ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, "the file is not UTF-8 text") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise ConfigError(path, int(m.group(1)) if m else None, f"invalid TOML: {message}") from e
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
        raise ConfigError(path, _line_of(lines, "[hotkey]"), "hotkeys are written as [[hotkey]] tables")
    bindings, chords = [], {}
    for i, table in enumerate(raw_bindings):
        header_line = _line_of(lines, "[[hotkey]]", i)
        for required in ("keys", "action"):
            if required not in table:
                raise ConfigError(path, header_line, f"this [[hotkey]] has no {required!r}")
        binding = _build(Binding, table, path, lines, "[[hotkey]]", i)
        if binding.action not in ACTIONS:
            raise ConfigError(path, _line_of(lines, "[[hotkey]]", i, "action"),
                              f"unknown action {binding.action!r}; actions: {', '.join(ACTIONS)}")
        keys_line = _line_of(lines, "[[hotkey]]", i, "keys")
        try:
            chord = parse_chord(binding.keys)
        except ValueError as e:
            raise ConfigError(path, keys_line, str(e)) from e
        if chord in chords:
            raise ConfigError(path, keys_line, f"chord {binding.keys!r} is already bound on line {chords[chord]}")
        chords[chord] = keys_line
        bindings.append(binding)
    return Config(path=path, hotkeys=tuple(bindings), **parts)


def _check_values(parts: dict, path: Path, lines: list[str]) -> None:
    checks = [
        ("speech", "engine", lambda v: v in SPEECH_ENGINES, f"must be one of {', '.join(SPEECH_ENGINES)}"),
        ("speech", "rate", lambda v: 50 <= v <= 600, "must be between 50 and 600 words a minute"),
        ("speech", "volume", lambda v: 0.0 <= v <= 1.0, "must be between 0.0 and 1.0"),
        ("capture", "screen", lambda v: v in ("pointer", "all"), "must be \"pointer\" or \"all\""),
        ("model", "quantize", lambda v: v in ("auto", "none", "int8"), "must be auto, none or int8"),
        ("model", "dtype", lambda v: v in ("auto", "fp32", "bf16", "fp16"), "must be auto, fp32, bf16 or fp16"),
        ("model", "add_ocr_text", lambda v: v in ("auto", "always", "never"), "must be auto, always or never"),
        ("model", "max_new_tokens", lambda v: 1 <= v <= 4096, "must be between 1 and 4096"),
        ("model", "num_beams", lambda v: 1 <= v <= 8, "must be between 1 and 8"),
        ("model", "temperature", lambda v: 0.0 <= v <= 2.0, "must be between 0.0 and 2.0"),
        ("model", "screen_image_tokens", lambda v: 16 <= v <= 16384, "must be between 16 and 16384"),
        ("model", "photo_image_tokens", lambda v: 16 <= v <= 16384, "must be between 16 and 16384"),
        ("model", "idle_unload_minutes", lambda v: v >= 0, "must be 0 (never) or more"),
    ]
    for section, key, ok, message in checks:
        value = getattr(parts[section], key)
        if not ok(value):
            raise ConfigError(path, _line_of(lines, f"[{section}]", 0, key), f"{key} {message}, not {value!r}")
