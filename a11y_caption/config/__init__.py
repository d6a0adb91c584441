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
    "ACTIONS", "DTYPES", "MODEL_ACTIONS", "QUANTIZE_MODES", "RULES", "SECTIONS", "SPEECH_ENGINES", "Binding",
    "CaptureConfig", "Config", "HotkeysConfig", "ModelConfig", "Rule", "SpeechConfig", "default_config_path",
    "load_config", "merge_hotkeys", "parse_chord", "setting_problem", "user_config_path",
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
    # The area around the mouse pointer described where no accessibility tree answers, in pixels.
    pointer_width: int = 400
    pointer_height: int = 300


@dataclass(frozen=True)
class Binding:
    keys: str
    action: str
    prompt: str = ""


@dataclass(frozen=True)
class HotkeysConfig:
    replace: bool = False  # true: only this file's [[hotkey]] entries, none of the packaged defaults'


@dataclass(frozen=True)
class Config:
    path: Path
    model: ModelConfig = ModelConfig()
    speech: SpeechConfig = SpeechConfig()
    capture: CaptureConfig = CaptureConfig()
    hotkeys: tuple[Binding, ...] = field(default_factory=tuple)
    # The packaged defaults that ``path`` was read over (None: ``path`` is the packaged file itself).
    defaults: Path | None = None
    own_hotkeys: int = 0  # the first ``own_hotkeys`` of ``hotkeys`` are the ones ``path`` wrote
    replaced_hotkeys: tuple[Binding, ...] = ()  # default bindings that those replaced


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
    return cls(**_values(cls, table, path, lines, header, occurrence))


def _values(cls, table, path: Path, lines: list[str], header: str, occurrence: int = 0) -> dict:
    """The keys ``table`` writes, each checked against ``cls``'s fields and their types."""
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
    return values


SECTIONS = {"model": ModelConfig, "speech": SpeechConfig, "capture": CaptureConfig}
_TABLES = "[model], [speech], [capture], [hotkeys], [[hotkey]]"


@dataclass(frozen=True)
class _File:
    """One settings file, checked: the settings it writes (and only those), its bindings, and
    whether it replaces the default hotkeys (``[hotkeys] replace = true``, or ``hotkey = []``)."""

    path: Path
    settings: dict
    bindings: tuple[Binding, ...]
    replace: bool


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read ``path`` (default: the user's file if it exists, else the packaged default) over the
    packaged defaults: each setting it writes replaces the default's; its [[hotkey]] entries come
    first, then each default binding that none of them replaces (see ``merge_hotkeys``).

    Raises:
        ConfigError: unreadable or malformed TOML, unknown tables/keys/actions, bad or duplicate chords,
            or a file named by ``$A11Y_CAPTION_CONFIG`` that does not exist; with the file and line.
    """
    if path is None:
        path = user_config_path()
        if not path.exists():
            if os.environ.get("A11Y_CAPTION_CONFIG"):  # asked for by name: the default would be a surprise
                raise ConfigError(path, None, "A11Y_CAPTION_CONFIG names this file, which does not exist.")
            path = default_config_path()
    path = Path(path)
    own = _read(path)
    packaged = default_config_path()
    if _same_file(path, packaged):
        return Config(path=path, hotkeys=own.bindings, **{n: cls(**own.settings[n]) for n, cls in SECTIONS.items()})
    base = _read(packaged)
    parts = {n: cls(**{**base.settings[n], **own.settings[n]}) for n, cls in SECTIONS.items()}
    hotkeys, replaced = merge_hotkeys(base.bindings, own.bindings, own.replace)
    return Config(path=path, hotkeys=hotkeys, defaults=packaged, own_hotkeys=len(own.bindings),
                  replaced_hotkeys=replaced, **parts)


def merge_hotkeys(defaults: tuple[Binding, ...], own: tuple[Binding, ...],
                  replace: bool) -> tuple[tuple[Binding, ...], tuple[Binding, ...]]:
    """(the bindings in force, the defaults that ``own`` replaced): ``own`` first, then each default
    binding except those on a chord that one press of an own chord fires too, and those for an
    action (with the same prompt) that ``own`` binds: that action moved to another key."""
    if replace:
        return own, ()
    chords = [Chord.parse(b.keys) for b in own]
    moved = {(b.action, b.prompt) for b in own}
    kept, replaced = [], []
    for b in defaults:
        taken = (b.action, b.prompt) in moved or any(Chord.parse(b.keys).overlaps(c) for c in chords)
        (replaced if taken else kept).append(b)
    return (*own, *kept), tuple(replaced)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _read(path: Path) -> _File:
    """One file read and checked on its own, every error with its line."""
    text = read_text(path)
    data = parse_toml(text, path)
    lines = text.splitlines()
    for name in data:
        if name not in (*SECTIONS, "hotkeys", "hotkey"):
            raise ConfigError(path, line_of(lines, f"[{name}]") or line_of(lines, f"[[{name}]]"),
                              f"unknown table [{name}]; known: {_TABLES}")
    for name in SECTIONS:  # hotkey = [] is a top-level key: written under a table, it is that table's
        table = data.get(name)
        if isinstance(table, dict) and "hotkey" in table:
            raise ConfigError(path, line_of(lines, f"[{name}]", 0, "hotkey"),
                              f"unknown key 'hotkey' in [{name}]; hotkey = [] goes at the top of the file, "
                              "before the first [table]")
    settings = {name: _values(cls, data.get(name, {}), path, lines, f"[{name}]") for name, cls in SECTIONS.items()}
    _check_values({name: cls(**settings[name]) for name, cls in SECTIONS.items()}, path, lines)
    replace = _values(HotkeysConfig, data.get("hotkeys", {}), path, lines, "[hotkeys]").get(
        "replace", data.get("hotkey") == [])
    return _File(path, settings, _bindings(data.get("hotkey", []), path, lines), replace)


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
