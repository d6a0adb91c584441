"""Looking after models and settings: models pull, list and remove; config path and check."""

from __future__ import annotations

import os
import sys

from ..errors import A11yCaptionError
from ..safe_text import one_line

__all__ = ["config_command", "models_command"]


def models_command(args) -> int:
    if args.models_command == "pull":
        return _pull(args)
    if args.models_command == "remove":
        from ..captioner.factory import remove_model

        for folder in remove_model(args.model):
            print(f"removed {folder}")
        return 0
    if args.server:
        return _server_models(args)
    return _local_models()


def _pull(args) -> int:
    from ..models import pull

    ref = args.model
    if not ref:
        from ..config import load_config

        ref = load_config(args.config).model.name
    print(pull(ref))  # a DownloadError says which way it failed: offline, network, name, gated, disk...
    return 0


def _local_models() -> int:
    """``models list``: the downloaded models and their int8 copies, and the known ones not here."""
    from ..captioner.int8_store import stores
    from ..models import KNOWN_MODELS, list_local

    rows = list_local()
    for repo_id, size, folder in rows:
        print(f"{repo_id}\t{size / 1e9:.2f} GB\t{folder}")
    for model, size, folder in stores():
        print(f"{model} (int8 copy)\t{size / 1e9:.2f} GB\t{folder}")
    if not rows:
        print("No models downloaded yet. Text reading (OCR) works without one.", file=sys.stderr)
    missing = [k for k in KNOWN_MODELS if k.repo_id not in {r[0] for r in rows}]
    if missing:
        print("Available to pull: " + ", ".join(f"{k.alias} ({k.repo_id}, {k.download})" for k in missing),
              file=sys.stderr)
    return 0


def _server_models(args) -> int:
    """``models list --server URL``: the server's models; a server without a usable list is no error."""
    from ..captioner.server import ServerCaptioner
    from ..config import load_config
    from ..errors import ServerRedirected, ServerUnreachable

    model = load_config(args.config).model
    server = ServerCaptioner("", args.server, api_key_env=model.api_key_env, connect_timeout=model.connect_timeout,
                             first_token_timeout=model.first_token_timeout, answer_timeout=model.answer_timeout,
                             proxy=model.proxy)
    try:
        names = server.list_models()
    except (ServerUnreachable, ServerRedirected):  # not a server without a list: say it, exit 1
        raise
    except A11yCaptionError as e:
        print(f"a11y-caption: {e} Ask for a model by the name the server knows it as (--model).", file=sys.stderr)
        return 0
    finally:
        server.close()
    for name in names:
        print(one_line(name))
    if not names:
        print("a11y-caption: the server lists no models.", file=sys.stderr)
    return 0


def config_command(args) -> int:
    from ..config import default_config_path, load_config, user_config_path

    if args.config_command == "path":
        path = user_config_path()
        print(path)
        if not path.exists() and os.environ.get("A11Y_CAPTION_CONFIG"):
            print(f"a11y-caption: {path} does not exist, and A11Y_CAPTION_CONFIG names it, so the other commands "
                  f"stop until it does; write there only the settings you change (the packaged defaults "
                  f"{default_config_path()} give the rest).", file=sys.stderr)
        elif not path.exists():
            print(f"a11y-caption: {path} does not exist; using the packaged default {default_config_path()}. "
                  "To change a setting, write there only the settings you change.", file=sys.stderr)
        return 0
    config = load_config(args.file)
    for line in check_lines(config):
        print(line)
    return 0


def check_lines(config) -> list[str]:
    """What ``config check`` says: the file it read (and over what), then each hotkey as people
    write it ("Ctrl+Alt+Shift+D  describe_screen: describe the screen"), and the defaults replaced."""
    from ..speech import describe_engine

    read = (f"read over the packaged defaults {config.defaults}" if config.defaults else "the packaged defaults")
    lines = [f"{config.path}: OK, {read}; model {config.model.name}, speech {describe_engine(config.speech.engine)}"]
    defaults = set(config.replaced_hotkeys)  # a user's entry that is a default, copied, is no change
    for i, b in enumerate(config.hotkeys):
        yours = i < config.own_hotkeys and b not in defaults
        lines.append(_hotkey_line(b) + (" (yours)" if yours else ""))
    own = set(config.hotkeys[:config.own_hotkeys])
    bound = {b.action for b in config.hotkeys}
    lines += [f"replaced default: {_hotkey_line(b)}" + ("" if b.action in bound else f" ({b.action} has no key now)")
              for b in config.replaced_hotkeys if b not in own]
    if not config.hotkeys:
        lines.append("No hotkeys are bound.")
    return lines


def _hotkey_line(b) -> str:
    from ..actions import action
    from ..hotkeys import chord_name

    words = action(b.action).shortcut
    what = f"{b.action}: {words[:1].lower()}{words[1:]}" if words else b.action
    return f"{chord_name(b.keys)}  {what}" + (f", asking: {one_line(b.prompt)}" if b.prompt else "")
