"""The command line's parser: every sub-command and flag, and the check of flag values against the
settings they set (config.RULES)."""

from __future__ import annotations

import argparse

from .. import __version__
from ..safe_text import one_line
from .help_text import TOP_EPILOG, ByEarFormatter, page


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line and exit status 2, like every other error: a listener should not
    have to hear the whole usage text to learn which flag was wrong. Help is formatted for the ear
    (``help_text``), on every sub-command's page too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", ByEarFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"a11y-caption: {message} (see {self.prog} --help)\n")


# Flags that set a hotkeys.toml setting accept exactly what the setting accepts (config.RULES).
FLAG_SETTINGS = {
    "max_new_tokens": ("model", "max_new_tokens"), "temperature": ("model", "temperature"),
    "beams": ("model", "num_beams"), "device": ("model", "device"),
    "rate": ("speech", "rate"), "volume": ("speech", "volume"),
    "new_tokens": ("model", "max_new_tokens"),  # bench
    "server": ("model", "server"),
}
# Comma-separated lists of such values.
LIST_FLAG_SETTINGS = {"image_tokens": ("model", "screen_image_tokens")}  # bench


# Flags that are text for a model, a voice or a search (not file names, which may be any bytes).
_TEXT_FLAGS = ("prompt", "question", "language", "voice", "model", "server", "query")
_LIST_FLAG_CHOICES = {"precisions": ("int8", "int4", "bf16", "fp32")}


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with one line (status 2) naming the first flag whose value its setting would refuse."""
    from ..config import setting_problem

    def refuse(dest: str, what: str) -> None:
        parser.exit(2, f"a11y-caption: --{dest.replace('_', '-')} {what}\n")

    for dest in _TEXT_FLAGS:  # undecodable bytes in argv arrive as lone surrogates: no model, file or socket takes them
        value = getattr(args, dest, None)
        if isinstance(value, str) and not _is_text(value):
            name = dest if dest in ("question", "query") else f"--{dest.replace('_', '-')}"
            parser.exit(2, f"a11y-caption: {name} is not valid text (check the terminal's character encoding)\n")
    for dest, choices in _LIST_FLAG_CHOICES.items():
        for piece in [] if getattr(args, dest, None) is None else getattr(args, dest).split(","):
            if piece not in choices:
                refuse(dest, f"must be some of {', '.join(choices)}, separated by commas, not {one_line(piece)!r}")
    given = [(dest, setting, getattr(args, dest)) for dest, setting in FLAG_SETTINGS.items()
             if getattr(args, dest, None) is not None]
    for dest, setting in LIST_FLAG_SETTINGS.items():
        for piece in [] if getattr(args, dest, None) is None else getattr(args, dest).split(","):
            try:
                given.append((dest, setting, int(piece)))
            except ValueError:
                refuse(dest, f"must be whole numbers separated by commas, not {piece!r}")
    for dest, (section, key), value in given:
        problem = setting_problem(section, key, value)
        if problem:
            refuse(dest, f"{problem}, not {value!r}")


def missing_command(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The parser of the command or group given without its sub-command (``a11y-caption``,
    ``a11y-caption models``), whose help is printed instead; None when a whole command was given."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return None
        name = getattr(args, subs[0].dest, None)
        if name is None:
            return parser
        parser = subs[0].choices[name]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="a11y-caption",
        description="Describe screens and images aloud with a local vision model. Nothing leaves this computer "
                    "unless you configure a model server (--server), and then only to that server.",
        epilog=TOP_EPILOG,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    _add_describe_and_read(sub)
    _add_agent_commands(sub)
    _add_models_and_config(sub)
    from ..desktop import autostart, shortcuts

    shortcuts.add_parser(sub)
    autostart.add_parser(sub)
    _add_bench(sub)
    from .index import add_parsers as add_index_parsers

    add_index_parsers(sub, _common_flags)  # index, search, show, export
    return p


def _common_flags(sp, *, model: bool = True) -> None:
    """The settings file, the model (unless ``model`` is false) and the voice."""
    from ..config import SPEECH_ENGINES

    sp.add_argument("--config", metavar="FILE", help="settings file (default: your hotkeys.toml, else the packaged one)")
    if model:
        sp.add_argument("--model", metavar="ID_OR_DIR", help="hub id, alias (blip-base, ...), local folder, or 'ocr'")
        sp.add_argument("--server", metavar="URL", help="describe with a model on this OpenAI-compatible server, "
                        "e.g. http://127.0.0.1:11434/v1 (--model: its name there)")
    sp.add_argument("--speech", metavar="ENGINE", choices=SPEECH_ENGINES,
                    help=", ".join(SPEECH_ENGINES) + " (auto: your screen reader if one runs, else the system voice)")
    sp.add_argument("--no-speak", action="store_true", help="print only (same as --speech none)")
    sp.add_argument("--speak", action="store_true",
                    help="speak as well as print, even in a terminal where your screen reader reads the output")
    sp.add_argument("--voice", help="voice id or name")
    sp.add_argument("--rate", type=int, help="words per minute, 50 to 600")
    sp.add_argument("--volume", type=float, help="0.0 to 1.0")
    sp.add_argument("--transcript", metavar="FILE", help="append every spoken sentence to FILE")


def _source_flags(sp, objects: bool = False) -> None:
    """Image files, or one capture: the screen, the active window or the clipboard (and for
    describe, ``objects``: what the accessibility tree shows)."""
    sp.add_argument("--local", action="store_true",
                    help="work in this process even when the agent is running (it loads the model itself)")
    sp.add_argument("images", nargs="*", metavar="IMAGE", help="image files")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--screen", action="store_true", help="capture the screen instead of reading files")
    g.add_argument("--window", action="store_true", help="capture the active window")
    g.add_argument("--clipboard", action="store_true", help="use the image on the clipboard")
    if objects:
        g.add_argument("--focus", action="store_true", help="the focused object (a control, an image), with "
                       "what the accessibility tree says of it")
        g.add_argument("--pointer", action="store_true", help="the object under the mouse pointer")
        g.add_argument("--images", action="store_true", dest="unlabeled_images",
                       help="each image of the active window that has no description")


def _add_describe_and_read(sub) -> None:
    from ..config import DTYPES, QUANTIZE_MODES

    d = sub.add_parser("describe", help="describe images (or the screen) aloud", **page("describe"))
    _source_flags(d, objects=True)
    _common_flags(d)
    d.add_argument("--prompt", metavar="TEXT", help="ask this instead of the default description (chat models)")
    d.add_argument("--alt-text", action="store_true", help="write one concise sentence of alt text")
    d.add_argument("--language", help="answer language for chat models, e.g. German")
    d.add_argument("--copy", action="store_true", help="copy the (last) result to the clipboard")
    d.add_argument("--json", action="store_true", help="one JSON object per image: path, text, model, seconds "
                   "(and text_on_screen, the OCR lines a grounded description was given; for an object, "
                   "box and object, what the accessibility tree said of it)")
    d.add_argument("--max-new-tokens", type=int, metavar="N", help="longest description in tokens, 1 to 4096")
    d.add_argument("--temperature", type=float, metavar="T", help="0 for greedy decoding, up to 2")
    d.add_argument("--beams", type=int, metavar="N", help="beam search width, 1 to 8 (1 streams speech)")
    d.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    d.add_argument("--dtype", choices=DTYPES, metavar="TYPE",
                   help="the weights' number type: " + ", ".join(DTYPES))
    d.add_argument("--quantize", choices=QUANTIZE_MODES, metavar="MODE",
                   help=", ".join(QUANTIZE_MODES) + " (auto: int8 on the CPU, none on a GPU)")
    d.add_argument("--trust-remote-code", action="store_true", help="allow code shipped with the model (only if you trust it)")
    d.add_argument("--tags", action="store_true", help="with --json: add tags, a list of lowercase words for what is in it")

    r = sub.add_parser("read", help="read the text of images (or the screen) exactly, with OCR",
                       **page("read"))
    _source_flags(r)
    _common_flags(r, model=False)
    r.add_argument("--copy", action="store_true", help="copy the text to the clipboard")
    r.add_argument("--json", action="store_true", help="one JSON object per image: path, text, lines, seconds")


def _add_agent_commands(sub) -> None:
    """run, and what is asked of the running agent."""
    run = sub.add_parser("run", help="start the hotkey agent", **page("run"))
    _common_flags(run)

    a = sub.add_parser("ask", help="ask the running agent about what it described last", **page("ask"))
    a.add_argument("question", metavar="QUESTION", nargs="?",
                   help="the question, in quotes if it has spaces; without one the agent opens its question box")
    a.add_argument("--no-speak", action="store_true", help="print only; the agent stays silent")
    a.add_argument("--speak", action="store_true", help="the agent speaks the answer even where your screen reader "
                   "reads this terminal")
    a.add_argument("--config", metavar="FILE", help="settings file (for [speech] cli)")
    a.add_argument("--json", action="store_true", help="one JSON object: question, text, model, seconds")
    k = sub.add_parser("keys", help="say and print the hotkeys, each with what it does", **page("keys"))
    k.add_argument("--no-speak", action="store_true", help="print only")
    k.add_argument("--speak", action="store_true", help="speak them even where your screen reader reads this terminal")
    k.add_argument("--config", metavar="FILE", help="settings file (its hotkeys, and [speech] cli)")
    sub.add_parser("stop", help="make the running agent stop speaking and generating", **page("stop"))
    sub.add_parser("copy-last", help="the running agent copies its last answer to the clipboard", **page("copy-last"))
    sub.add_parser("release", help="the running agent frees the model's memory (the next description reloads it)",
                   **page("release"))
    rep = sub.add_parser("repeat", help="the running agent says its last answer again (and it is printed)",
                         **page("repeat"))
    rep.add_argument("--no-speak", action="store_true", help="print only")
    rep.add_argument("--speak", action="store_true", help="the agent speaks it even where your screen reader "
                     "reads this terminal")
    rep.add_argument("--config", metavar="FILE", help="settings file (for [speech] cli)")
    st = sub.add_parser("status", help="is an agent running, and with which model", **page("status"))
    st.add_argument("--json", action="store_true", help="one JSON object")


def _add_models_and_config(sub) -> None:
    m = sub.add_parser("models", help="download or list models", **page("models"))
    msub = m.add_subparsers(dest="models_command", title="actions", metavar="ACTION")
    pull = msub.add_parser("pull", help="download a model (configs, tokenizer and safetensors weights only)",
                           **page("models pull"))
    pull.add_argument("model", nargs="?", metavar="MODEL", help="hub id or alias (default: the configured model)")
    pull.add_argument("--config", metavar="FILE", help="settings file (for the configured model)")
    mlist = msub.add_parser("list", help="models on this computer, with their size on disk (or on --server)",
                            **page("models list"))
    mlist.add_argument("--server", metavar="URL", help="list the models of this OpenAI-compatible server instead")
    mlist.add_argument("--config", metavar="FILE", help="settings file (for api_key_env)")
    rm = msub.add_parser("remove", help="delete a downloaded model and its int8 copy", **page("models remove"))
    rm.add_argument("model", metavar="MODEL", help="hub id, alias or folder")

    from ..config import SPEECH_ENGINES

    v = sub.add_parser("voices", help="list the voices --voice can choose", **page("voices"))
    v.add_argument("--speech", metavar="ENGINE", choices=SPEECH_ENGINES,
                   help="whose voices: " + ", ".join(SPEECH_ENGINES[:-1]) + " or none (default: your [speech] engine)")
    v.add_argument("--config", metavar="FILE", help="settings file (for [speech] engine)")

    c = sub.add_parser("config", help="show or check the settings file", **page("config"))
    csub = c.add_subparsers(dest="config_command", title="actions", metavar="ACTION")
    csub.add_parser("path", help="print where your hotkeys.toml is read from", **page("config path"))
    check = csub.add_parser("check", help="check a settings file and list its hotkeys", **page("config check"))
    check.add_argument("file", nargs="?", metavar="FILE",
                       help="the settings file to check (default: your hotkeys.toml, else the packaged one)")


def _add_bench(sub) -> None:
    b = sub.add_parser("bench", help="time to first spoken word and memory on full-size models (slow; minutes)",
                       **page("bench"))
    b.add_argument("--models", default="qwen2-vl-2b,blip-base", help="comma-separated: qwen2-vl-2b, blip-base, server, and to compare "
                   "chat models qwen3-vl-2b, internvl3-1b, internvl3-2b, smolvlm2-500m, lfm2-vl-450m")
    b.add_argument("--json", action="store_true", help="one JSON object per line")
    b.add_argument("--cache-dir", metavar="DIR", help="where full-size random replicas are built and kept")
    b.add_argument("--new-tokens", type=int, default=20, metavar="N", help="tokens generated per run (default 20)")
    b.add_argument("--image-tokens", default="64,128,256,512", metavar="LIST",
                   help="image-token budgets to time for chat models (default 64,128,256,512)")
    b.add_argument("--precisions", default="int8,int4,bf16,fp32", metavar="LIST", help="default int8,int4,bf16,fp32")
    b.add_argument("--no-baseline", action="store_true", help="skip the slow naive baseline")
    b.add_argument("--plot", metavar="PNG", help="also plot time to first word against image tokens (needs matplotlib)")
    b.add_argument("--report", metavar="MD", help="also write the results as Markdown (docs/PERFORMANCE.md)")
    b.add_argument("--objects", action="store_true", help="time describing what you are on instead (--focus, "
                   "--pointer, --images): a 64x64 icon, a 400x300 chart, a 1280x800 screen, and the tree's own cost")
    b.add_argument("--index", action="store_true", help="time the folder index instead: images per minute, "
                   "batched or not, and a second unchanged run over 1,000 files")
