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
    try:
        folder = pull(ref)
    except Exception as e:
        if isinstance(e, A11yCaptionError):
            raise
        raise A11yCaptionError(f"Could not download {ref} ({type(e).__name__}); check the name and your connection.") from e
    print(folder)
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
                  f"stop until it does; copy {default_config_path()} there.", file=sys.stderr)
        elif not path.exists():
            print(f"a11y-caption: {path} does not exist; using the packaged default {default_config_path()}",
                  file=sys.stderr)
        return 0
    config = load_config(args.file)
    from ..speech import describe_engine

    print(f"{config.path}: OK, model {config.model.name}, speech {describe_engine(config.speech.engine)}")
    for b in config.hotkeys:
        print(f"{b.keys}\t{b.action}" + (f"\t{b.prompt}" if b.prompt else ""))
    return 0
