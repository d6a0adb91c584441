"""Pick and load the backend for a checkpoint from its config.json, importing only that backend."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import DeviceError, ModelLoadError, UnsupportedModel
from ..models import canonical_id, resolve
from .base import Captioner
from .ocr import OCR_NAME

__all__ = ["backend_for", "load_captioner", "remove_model"]

log = logging.getLogger(__name__)


def backend_for(folder: Path, *, trust_remote_code: bool = False) -> str:
    """"blip" or "chat_vlm" for the checkpoint in ``folder``.

    Raises:
        ModelLoadError: no readable config.json, or no safetensors weights.
        UnsupportedModel: the architecture cannot caption images.
    """
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelLoadError(f"{folder} has no config.json, so it is not a transformers model folder.") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"The config.json in {folder} is damaged.") from e
    if not any(folder.glob("*.safetensors")):
        raise ModelLoadError(f"{folder} has no safetensors weights; other weight formats are not loaded for safety.")
    model_type = config.get("model_type", "")
    architectures = config.get("architectures") or []
    if model_type == "blip":
        if "BlipForConditionalGeneration" in architectures:
            return "blip"
        raise UnsupportedModel(f"{folder.name} is a BLIP model for {', '.join(architectures) or 'another task'}, not captioning.")
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return "chat_vlm"
    if trust_remote_code and "AutoModelForImageTextToText" in config.get("auto_map", {}):
        return "chat_vlm"
    raise UnsupportedModel(f"{folder.name} is a {model_type or 'unknown'} model, which cannot describe images.")


def load_captioner(ref: str, *, device: str = "auto", dtype: str = "auto", quantize: str = "auto",
                   trust_remote_code: bool = False, blip_prefix: str = "", screen_image_tokens: int = 256,
                   photo_image_tokens: int = 192, server: str = "", api_key_env: str = "",
                   connect_timeout: float = 3.0, first_token_timeout: float = 60.0, answer_timeout: float = 300.0,
                   proxy: str = "") -> Captioner:
    """Load model ``ref`` (hub id, alias, local folder, or "ocr") with the backend its config names;
    with ``server``, ``ref`` is the name of a model on that OpenAI-compatible server (nothing loads here).

    Raises:
        ModelNotFound, ModelLoadError, UnsupportedModel: one sentence each, chained to the cause.
        ServerError: ``api_key_env`` names a variable that is not set.
    """
    if server:
        from .server import ServerCaptioner

        return ServerCaptioner(ref, server, api_key_env=api_key_env, connect_timeout=connect_timeout,
                               first_token_timeout=first_token_timeout, answer_timeout=answer_timeout, proxy=proxy,
                               screen_pixels=screen_image_tokens * 28 * 28, photo_pixels=photo_image_tokens * 28 * 28)
    if ref == OCR_NAME:
        from .ocr import OcrReader

        return OcrReader()
    name = canonical_id(ref)
    folder = resolve(name)
    from ._hf import pick_device

    device = pick_device(device)  # a DeviceError now, not a "damaged files" error halfway through loading
    if quantize == "auto":  # int8 kernels are for the CPU; a GPU runs the model in fp16
        quantize = "int8" if device == "cpu" else "none"
    elif quantize in ("int8", "int4") and device != "cpu":
        raise DeviceError(f"quantize = \"{quantize}\" runs on the CPU only; use quantize = \"auto\" or \"none\" "
                          f"with device = \"{device}\".")
    backend = backend_for(folder, trust_remote_code=trust_remote_code)
    try:
        _quiet_transformers()
        if backend == "blip":
            from .blip import BlipCaptioner

            return BlipCaptioner(name, folder, device=device, dtype=dtype, prefix=blip_prefix,
                                 quantize=None if quantize == "none" else quantize)
        from .chat_vlm import ChatVLMCaptioner

        return ChatVLMCaptioner(
            name, folder, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
            screen_pixels=screen_image_tokens * 28 * 28, photo_pixels=photo_image_tokens * 28 * 28,
            quantize=None if quantize == "none" else quantize,
        )
    except MemoryError as e:
        raise ModelLoadError(f"Not enough memory to load {name}. Close other programs or pick a smaller model.") from e
    except Exception as e:
        if type(e).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA)
            raise ModelLoadError(f"Not enough GPU memory to load {name}. Try device = \"cpu\".") from e
        if type(e).__name__ == "AcceleratorError":  # torch.AcceleratorError: the GPU failed, not the files
            raise DeviceError(f"The GPU could not run {name} (device = \"{device}\"); use device = \"cpu\".") from e
        if isinstance(e, (OSError, ValueError, KeyError, RuntimeError)) or "safetensor" in type(e).__name__.lower():
            raise ModelLoadError(f"The files of {name} are damaged or incomplete; pull it again.") from e
        raise


def _quiet_transformers() -> None:
    """Progress bars and advice from transformers are noise for a listener; keep them in the log."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def remove_model(ref: str) -> list[str]:
    """Remove model ``ref`` from the Hugging Face cache and its kept int8 copies; returns what went.

    A local folder is the user's own: only its int8 copies are removed.

    Raises:
        A11yCaptionError: there is nothing of ``ref`` on this computer.
    """
    import shutil

    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    from ..errors import A11yCaptionError
    from .int8_store import model_key, remove_stores

    name = model_key(canonical_id(ref))
    gone = [str(folder) for folder in remove_stores(name)]
    try:
        repos = [r for r in scan_cache_dir().repos if r.repo_type == "model" and r.repo_id == name]
    except CacheNotFound:
        repos = []
    for repo in repos:
        shutil.rmtree(repo.repo_path, ignore_errors=True)
        gone.append(str(repo.repo_path))
    if not gone:
        raise A11yCaptionError(f"There is no model {name} on this computer; a11y-caption models list shows what there is.")
    return gone

