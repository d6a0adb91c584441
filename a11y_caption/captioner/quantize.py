"""int8 dynamic weight quantization for the CPU, one layer at a time.

Each nn.Linear becomes an int8 Linear (fbgemm kernels quantize activations on the fly); the other
layers (norms, attention, embeddings) run in fp32, which CPUs without native bf16 do far faster.

Memory: transformers maps the checkpoint's safetensors file into memory. Each Linear is read once,
quantized, and its pages of the mapping handed back to the OS (Linux), so the float weights are
never all resident next to the int8 ones: peak memory stays close to the final size.
"""

from __future__ import annotations

import logging
import sys
import warnings

__all__ = ["float_embedding_output", "quantize_int8"]

log = logging.getLogger(__name__)


def quantize_int8(model) -> None:
    """Replace every nn.Linear in ``model`` (in place) by an int8 dynamic Linear; the rest -> fp32.

    The language-model head is quantized too (it is read in full for every generated token). When
    it is tied to the input embeddings, the embedding table stays in its stored precision and only
    its looked-up rows become fp32, so the largest matrix is never held in fp32.
    """
    # torch.ao.quantization and its quantized tensors warn that they are deprecated (their successor
    # is torchao): advice for developers, noise on a user's stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        _quantize_int8(model)


def _quantize_int8(model) -> None:
    import torch
    from torch import nn
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    names = [name for name, m in model.named_modules() if type(m) is nn.Linear]
    mapped = _file_mappings()
    for name in names:  # by name, so that no list keeps the float layers alive
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        linear = getattr(parent, attr)
        weight = linear.weight.detach()
        int8 = DynamicLinear(linear.in_features, linear.out_features, bias_=linear.bias is not None,
                             dtype=torch.qint8)
        int8.set_weight_bias(_quantize_rows(weight), None if linear.bias is None else linear.bias.detach().float())
        setattr(parent, attr, int8)
        if embedding is None or weight.data_ptr() != embedding.weight.data_ptr():  # tied: still in use
            _drop_pages(weight, mapped)
        del linear, weight
    keep = embedding.weight if embedding is not None else None
    for module in model.modules():  # norms, attention, biases: fp32; the embedding table as stored
        for pname, param in module.named_parameters(recurse=False):
            if param is not keep and param.dtype != torch.float32:
                setattr(module, pname, nn.Parameter(param.detach().float(), requires_grad=False))
        for bname, buf in module.named_buffers(recurse=False):
            if buf is not None and buf.is_floating_point() and buf.dtype != torch.float32:
                setattr(module, bname, buf.float())
    float_embedding_output(model)


def float_embedding_output(model) -> None:
    """Make an embedding table kept in bf16 hand fp32 rows to the fp32 layers after it."""
    import torch

    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embedding is not None and embedding.weight.dtype != torch.float32:
        embedding.register_forward_hook(lambda mod, args, out: out.float())


def _quantize_rows(weight, block: int = 8192):
    """Per-row symmetric int8 of a float matrix, converting at most ``block`` rows to fp32 at once."""
    import torch

    rows, scales = [], []
    for start in range(0, weight.shape[0], block):
        part = weight[start:start + block].float()
        scale = part.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        rows.append(torch.round(part / scale[:, None]).clamp(-128, 127).to(torch.int8))
        scales.append(scale.double())
        del part
    scale = torch.cat(scales)
    return torch._make_per_channel_quantized_tensor(torch.cat(rows), scale,
                                                   torch.zeros_like(scale, dtype=torch.long), 0)


def _file_mappings() -> list[tuple[int, int]]:
    """Address ranges of this process's memory-mapped .safetensors files (Linux), else []."""
    if not sys.platform.startswith("linux"):
        return []
    ranges = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 6 and fields[5].endswith(".safetensors"):
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    ranges.append((start, end))
    except OSError:
        pass
    return ranges


def _drop_pages(tensor, mapped: list[tuple[int, int]]) -> None:
    """Tell the kernel this process no longer needs the file pages under ``tensor``.

    Only for memory that maps the (read-only) checkpoint file: the kernel reads such pages back
    from the file if they are touched again, so this frees memory without changing any value.
    """
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    if not any(lo <= start and end <= hi for lo, hi in mapped):
        return
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    first, last = -(-start // page) * page, end // page * page  # whole pages inside the tensor only
    if last <= first:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.madvise(first, last - first, 4) != 0:  # 4 = MADV_DONTNEED
        log.debug("madvise failed: errno %d", ctypes.get_errno())
