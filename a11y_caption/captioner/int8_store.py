"""Convert a checkpoint to int8 once, keep the result, and load that copy afterwards.

Quantizing Qwen2-VL-2B's 2.2 B weights takes half a minute on a laptop CPU, at every start. The first
load therefore writes the int8 model into the user cache folder: int8 weights and their per-row
scales as plain tensors in safetensors files, with the float tensors kept as they were after
conversion (norms, the embedding table) and a meta.json that lists which layers are int8. Later loads
build the model's modules without weights (on PyTorch's "meta" device) and fill them from those files.

The copy is keyed by the checkpoint's files (the content hash in a Hugging Face cache link, else size
and modification time), the torch and transformers versions and the quantization scheme: a changed
checkpoint or an upgrade makes a new copy. It is written under a temporary name and renamed into place,
so a crash or two processes at once never leave a half-written copy where a reader looks; a copy that
fails its check on loading is removed and converted again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

__all__ = ["SCHEMES", "load_int8", "model_key", "stores", "remove_stores", "store_for", "store_root"]

log = logging.getLogger(__name__)

# What quantize.quantize_int8 and quantize_int4 make, by the setting's name.
SCHEMES = {"int8": "int8-dynamic-per-row", "int4": "int4-g128-language-model+int8-dynamic-per-row"}
FORMAT = 2  # of the files below; a new layout gets a new number (and a new folder). 2: fp32 scales
SHARD_BYTES = 512 * 2**20  # at most this much is gathered in memory before it is written


class _Damaged(Exception):
    """The kept copy does not match the model it claims to be."""


def store_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("a11y-caption", appauthor=False)) / "quantized"


def _fingerprint(folder: Path, scheme: str) -> str:
    """Identity of the checkpoint's weights and config and of the conversion, cheap to compute at every start."""
    import torch
    import transformers

    h = hashlib.sha256(f"{SCHEMES[scheme]}\0{FORMAT}\0torch {torch.__version__}\0transformers {transformers.__version__}\n"
                       .encode())
    for path in sorted(folder.iterdir()):
        if not (path.name == "config.json" or path.name.endswith((".safetensors", ".safetensors.index.json"))):
            continue
        if path.is_symlink():  # a Hugging Face cache links each file to a blob named by its content hash
            ident = Path(os.readlink(path)).name
        else:
            st = path.stat()
            ident = f"{st.st_size}:{st.st_mtime_ns}"
        h.update(f"{path.name}\0{ident}\n".encode())
    return h.hexdigest()[:24]


def model_key(name: str) -> str:
    """How a kept copy names its model: the hub id, or a local folder's absolute path."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def store_for(folder: Path, name: str, scheme: str = "int8") -> Path:
    """Where the kept ``scheme`` copy of the checkpoint in ``folder`` (model ``name``, as ``model_key``
    names it) is, or would be, written."""
    slug = Path(name).name if Path(name).is_absolute() else name.replace("/", "--")
    return store_root() / f"{slug}-{scheme}-{_fingerprint(folder, scheme)}"


def load_int8(build, load, folder: Path, name: str, scheme: str = "int8"):
    """The int8 (or int4, ``scheme``) model of the checkpoint in ``folder``: from its kept copy, else
    converted (and kept).

    ``build(config)`` makes the model's modules (called on the meta device); ``load()`` loads the float
    checkpoint as from_pretrained does. Returns (model, "kept copy" | "converted").
    """
    from ..memory import give_back_freed_memory
    from .packing import pack_for_this_cpu
    from .quantize import quantize_int4, quantize_int8

    name = model_key(name)
    store = store_for(folder, name, scheme)
    if (store / "meta.json").exists():
        try:
            model = _read(build, folder, store, scheme)
            pack_for_this_cpu(model)
            give_back_freed_memory()
            return model, "kept copy"
        except Exception as e:  # anything wrong with a cached file: never trusted, made again
            log.warning("the %s copy of %s failed its check (%s); converting the model again", scheme, name,
                        type(e).__name__)
            shutil.rmtree(store, ignore_errors=True)
    model = load()
    (quantize_int4 if scheme == "int4" else quantize_int8)(model)
    give_back_freed_memory()
    try:
        _write(model, store, name, scheme)
    except Exception as e:  # a full disk or a read-only cache costs speed next time, never this load
        log.warning("could not keep the %s copy of %s (%s); it will be converted again next time", scheme, name,
                    getattr(e, "strerror", None) or type(e).__name__)
    pack_for_this_cpu(model)  # after writing: the copy keeps the plain int8 weights
    give_back_freed_memory()  # the copies written out
    return model, "converted"


def _int8_modules(model) -> list[str]:
    from .quantize import Int8Linear

    return [n for n, m in model.named_modules() if type(m) is Int8Linear]


def _float_tensors(model, int8_layers: list[str]) -> dict:
    """{"p:NAME" or "b:NAME": (tensor, [(module, attribute), ...])} for the parameters and buffers
    outside the int8 layers, non-persistent buffers included (a model built on the meta device has
    none of their values). A tensor shared under several names is listed once, under its first."""
    inside = tuple(f"{m}." for m in int8_layers)
    found: dict = {}
    first: dict[int, str] = {}
    for kind, items in (("p", model.named_parameters(remove_duplicate=False)),
                        ("b", model.named_buffers(remove_duplicate=False))):
        for key, tensor in items:
            if tensor is None or key.startswith(inside):
                continue
            parent, _, attr = key.rpartition(".")
            name = first.setdefault(id(tensor), f"{kind}:{key}")
            found.setdefault(name, (tensor, []))[1].append((model.get_submodule(parent), attr))
    return found


def _write(model, store: Path, name: str, scheme: str) -> None:
    """Write ``model`` (already int8) into ``store`` by way of a temporary folder and a rename."""
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{store.name}-", dir=store.parent))
    try:
        linear = _int8_modules(model)
        shards = _write_tensors(model, linear, tmp)
        (tmp / "meta.json").write_text(json.dumps(_meta(model, name, scheme, linear, shards), indent=1))
        try:
            os.rename(tmp, store)
        except OSError:  # another process kept its copy first: use that one next time
            shutil.rmtree(tmp, ignore_errors=True)
            return
        log.info("kept the %s copy of %s in %s", scheme, name, store)
        _remove_older_formats(name, scheme)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_tensors(model, linear: list[str], folder: Path) -> dict[str, int]:
    """The int8 layers' weights, scales and biases, then the float tensors, into safetensors files in
    ``folder``, at most SHARD_BYTES gathered in memory at once. Returns {file name: bytes}."""
    from safetensors.torch import save_file

    from .quantize import _drop_pages, _file_mappings

    shards: dict[str, int] = {}
    batch: dict = {}
    gathered = 0  # bytes in batch

    mapped = _file_mappings()

    def flush() -> None:
        nonlocal gathered
        if batch:
            file = f"int8-{len(shards) + 1:05d}.safetensors"
            save_file(batch, str(folder / file), metadata={"format": "pt"})
            for tensor in batch.values():  # the checkpoint's pages just read (the embedding table)
                _drop_pages(tensor, mapped)
            shards[file] = (folder / file).stat().st_size
            batch.clear()
            gathered = 0

    def add(key: str, tensor) -> None:
        nonlocal gathered
        batch[key] = tensor.detach().contiguous()
        gathered += tensor.numel() * tensor.element_size()
        if gathered >= SHARD_BYTES:
            flush()

    for mname in linear:
        module = model.get_submodule(mname)
        add(f"{mname}.qweight", module.qweight)
        add(f"{mname}.scale", module.scale)
        if module.bias is not None:  # may share memory with a parameter (BLIP's decoder bias): a copy
            add(f"{mname}.bias", module.bias.clone())
    for key, (tensor, _) in _float_tensors(model, linear).items():
        add(key, tensor)
    flush()
    return shards


def _meta(model, name: str, scheme: str, linear: list[str], shards: dict[str, int]) -> dict:
    """meta.json of a kept copy: its format and scheme, and which layers are int8 and int4."""
    import torch

    from .quantize import Int4Linear

    int4 = {n: [m.in_features, m.out_features, m.group, m.bias is not None]
            for n, m in model.named_modules() if isinstance(m, Int4Linear)}
    return {"format": FORMAT, "scheme": SCHEMES[scheme], "model": name, "torch": torch.__version__,
            "int8_layers": linear, "int4_layers": int4, "files": shards}


def _remove_older_formats(name: str, scheme: str) -> None:
    """Remove the copies of model ``name`` and ``scheme`` written in an older format: this code can
    never read them, and each is as large as the model (2.6 GB for Qwen2-VL-2B)."""
    for folder in store_root().glob("*"):
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        if meta.get("model") == name and meta.get("scheme") == SCHEMES[scheme] \
                and isinstance(meta.get("format"), int) and meta["format"] < FORMAT:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed a %s copy of %s in an older format: %s", scheme, name, folder)


def _read(build, folder: Path, store: Path, scheme: str):
    """The int8 model from ``store``, checked against the modules ``build`` makes.

    Raises:
        _Damaged (or a safetensors/OS error): the copy is incomplete or does not fit the model.
    """
    from transformers import GenerationConfig

    from .quantize import float_embedding_output

    meta = _checked_meta(store, scheme)
    model = _empty_model(build, folder, meta)
    linear = meta["int8_layers"]
    floats = _float_tensors(model, linear)
    _fill(model, store, meta["files"], linear, floats)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise _Damaged("tensors left unfilled")
    if (folder / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    float_embedding_output(model)
    return model.eval()


def _checked_meta(store: Path, scheme: str) -> dict:
    """The copy's meta.json, once its format, scheme and file sizes are what this code writes."""
    meta = json.loads((store / "meta.json").read_text())
    if meta.get("format") != FORMAT or meta.get("scheme") != SCHEMES[scheme]:
        raise _Damaged("another format")
    for file, size in meta["files"].items():
        if (store / file).stat().st_size != size:
            raise _Damaged(f"{file} has the wrong size")
    return meta


def _empty_model(build, folder: Path, meta: dict):
    """The model's modules on the meta device, its Linear layers made the int8 and int4 layers
    ``meta`` lists (which must be every Linear but those kept float, quantize.FLOAT_LINEARS)."""
    import torch
    from torch import nn
    from transformers import AutoConfig

    from .quantize import FLOAT_LINEARS, Int4Linear, Int8Linear

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = build(config)
    linear, int4 = meta["int8_layers"], meta.get("int4_layers", {})
    if sorted([*linear, *int4]) != sorted(n for n, m in model.named_modules()
                                          if type(m) is nn.Linear and n.rpartition(".")[2] not in FLOAT_LINEARS):
        raise _Damaged("other layers")
    with torch.device("meta"):
        for mname in linear:
            old = model.get_submodule(mname)
            parent, _, attr = mname.rpartition(".")
            setattr(model.get_submodule(parent), attr, Int8Linear(old.in_features, old.out_features, old.bias is not None))
        for mname, (n_in, n_out, group, bias) in int4.items():
            parent, _, attr = mname.rpartition(".")
            setattr(model.get_submodule(parent), attr, Int4Linear(n_in, n_out, group, bias))
    return model


def _expected_shapes(model, linear: list[str], floats: dict) -> dict[str, tuple]:
    """{tensor name in the files: its shape} for every tensor the model needs from them."""
    expected = {key: tuple(tensor.shape) for key, (tensor, _) in floats.items()}
    for mname in linear:
        module = model.get_submodule(mname)
        expected[f"{mname}.qweight"] = tuple(module.qweight.shape)
        expected[f"{mname}.scale"] = (module.out_features,)
        if module.bias is not None:
            expected[f"{mname}.bias"] = (module.out_features,)
    return expected


def _fill(model, store: Path, files: dict, linear: list[str], floats: dict) -> None:
    """Fill ``model``'s int8 layers and float tensors (``floats``, as ``_float_tensors`` lists them)
    from the copy's ``files``, once they hold exactly the tensors and shapes the model needs."""
    from safetensors import safe_open
    from torch import nn

    expected = _expected_shapes(model, linear, floats)
    with ExitStack() as stack:
        opened = {file: stack.enter_context(safe_open(str(store / file), framework="pt")) for file in files}
        found: dict[str, tuple[str, object]] = {}
        for file, f in opened.items():
            for key in f.keys():
                found[key] = (file, f.get_slice(key).get_shape())
        if set(found) != set(expected) or any(tuple(found[k][1]) != v for k, v in expected.items()):
            raise _Damaged("other tensors")

        def get(key: str):
            return opened[found[key][0]].get_tensor(key)

        for mname in linear:  # the int8 weights as stored: mapped from the file, read by the kernel as they are
            module = model.get_submodule(mname)
            module.qweight, module.scale = get(f"{mname}.qweight"), get(f"{mname}.scale")
            if module.bias is not None:
                module.bias = nn.Parameter(get(f"{mname}.bias"), requires_grad=False)
        for key, (_, places) in floats.items():
            tensor = get(key)
            if key.startswith("p:"):
                tensor = nn.Parameter(tensor, requires_grad=False)
            for module, attr in places:  # every name the model shares it under
                (module._parameters if key.startswith("p:") else module._buffers)[attr] = tensor


def stores() -> list[tuple[str, int, Path]]:
    """(model, bytes, folder) of every kept int8 copy."""
    root = store_root()
    found = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        meta = folder / "meta.json"
        if folder.name.startswith(".") or not meta.exists():
            continue
        try:
            model = json.loads(meta.read_text())["model"]
        except (OSError, ValueError, KeyError):
            model = folder.name
        found.append((model, sum(p.stat().st_size for p in folder.iterdir() if p.is_file()), folder))
    return found


def remove_stores(name: str) -> list[Path]:
    """Remove the kept int8 copies of model ``name``; returns their folders."""
    gone = []
    for model, _, folder in stores():
        if model == name:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone
