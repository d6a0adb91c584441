"""hotkeys.toml -> frozen dataclasses, with ``file:line`` errors for anything wrong.

What each setting accepts is in rules.py; reading the file and finding lines in it, toml_file.py.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

# The actions a hotkey may name, and those that need the captioning model: from the one table.
from ..actions import HOTKEY_ACTIONS as ACTIONS
from ..actions import MODEL_ACTIONS
from ..errors import ConfigError
from ..hotkeys import Chord, parse_chord
from .rules import DTYPES, QUANTIZE_MODES, RULES, SECRET_SETTINGS, SPEECH_ENGINES, Rule, setting_problem
from .toml_file import line_of, line_of_key, parse_toml, read_text

__all__ = [
    "ACTIONS", "DTYPES", "MODEL_ACTIONS", "QUANTIZE_MODES", "RULES", "SPEECH_ENGINES", "Binding", "CaptureConfig",
    "Config", "ModelConfig", "Rule", "SpeechConfig", "default_config_path", "load_config", "parse_chord",
    "setting_problem", "user_config_path",
]


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
    cli: str = "auto"  # whether a command run in a terminal speaks: "print", "speak" or "auto"


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
        line = line_of(lines, header, occurrence) or line_of_key(lines, header.strip("[]"))
        raise ConfigError(path, line, f"{header} must be a table")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in table.items():
        line = line_of(lines, header, occurrence, key)
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
    text = read_text(path)
    data = parse_toml(text, path)
    lines = text.splitlines()
    sections = {"model": ModelConfig, "speech": SpeechConfig, "capture": CaptureConfig}
    for name in data:
        if name not in (*sections, "hotkey"):
            raise ConfigError(path, line_of(lines, f"[{name}]") or line_of(lines, f"[[{name}]]"),
                              f"unknown table [{name}]; known: [model], [speech], [capture], [[hotkey]]")
    parts = {name: _build(cls, data.get(name, {}), path, lines, f"[{name}]") for name, cls in sections.items()}
    _check_values(parts, path, lines)

    return Config(path=path, hotkeys=_bindings(data.get("hotkey", []), path, lines), **parts)


def _bindings(raw_bindings, path: Path, lines: list[str]) -> tuple[Binding, ...]:
    """The [[hotkey]] tables, each checked: its keys and action there, one line each, a known
    action, a chord that parses and that no earlier one already fires."""
    if not isinstance(raw_bindings, list):
        raise ConfigError(path, line_of(lines, "[hotkey]") or line_of_key(lines, "hotkey"),
                          "hotkeys are written as [[hotkey]] tables")
    bindings, chords = [], []
    for i, table in enumerate(raw_bindings):
        binding = _binding(table, i, path, lines)
        keys_line = line_of(lines, "[[hotkey]]", i, "keys")
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
    return tuple(bindings)


def _binding(table, i: int, path: Path, lines: list[str]) -> Binding:
    header_line = line_of(lines, "[[hotkey]]", i)
    if not isinstance(table, dict):  # hotkey = [1]
        raise ConfigError(path, header_line or line_of_key(lines, "hotkey"),
                          "each hotkey is a [[hotkey]] table with keys and action")
    for required in ("keys", "action"):
        if required not in table:
            raise ConfigError(path, header_line, f"this [[hotkey]] has no {required!r}")
    binding = _build(Binding, table, path, lines, "[[hotkey]]", i)
    for f in fields(Binding):  # the shortcut writers put each one in another program's file
        if _has_control_character(getattr(binding, f.name)):
            raise ConfigError(path, line_of(lines, "[[hotkey]]", i, f.name),
                              f"{f.name} must be one line, with no line break or other control character")
    if binding.action not in ACTIONS:
        raise ConfigError(path, line_of(lines, "[[hotkey]]", i, "action"),
                          f"unknown action {binding.action!r}; actions: {', '.join(ACTIONS)}")
    return binding


def _check_values(parts: dict, path: Path, lines: list[str]) -> None:
    for section, part in parts.items():
        for f in fields(part):
            value = getattr(part, f.name)
            problem = setting_problem(section, f.name, value)
            if problem:
                shown = "" if (section, f.name) in SECRET_SETTINGS else f", not {_shown(value)}"
                raise ConfigError(path, line_of(lines, f"[{section}]", 0, f.name), f"{f.name} {problem}{shown}")
