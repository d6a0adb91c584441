"""int8 dynamic weight quantization for the CPU, one layer at a time.

Each nn.Linear becomes an Int8Linear: int8 weights with a scale per output row, and activations
quantized per row on the fly. A kept copy (int8_store) holds the plain int8 weights, mapped from its
file at load. Every layer is then packed for torch.ao's quantized engine (fbgemm, or qnnpack on
ARM), the kernel that gave the sooner first token and the faster writing on every CPU measured
(packing.py). Where PyTorch's own int8 product (``torch._int_mm``, oneDNN on CPUs with AVX-512
VNNI) can run the plain weights, the packing happens in the background after the load, the layers
answering with ``torch._int_mm`` until each is packed; elsewhere ``torch._int_mm`` is a plain loop,
so the layers are packed during the load. The other layers (norms, attention, embeddings) run in
fp32, which CPUs without native bf16 do far faster.

Memory: transformers maps the checkpoint's safetensors file into memory. Each Linear is read once,
quantized, and its pages of the mapping handed back to the OS (Linux), so the float weights are
never all resident next to the int8 ones: peak memory stays close to the final size.
"""

from __future__ import annotations

import logging
import sys

import torch
from torch import nn

from ..memory import give_back_freed_memory

__all__ = ["FLOAT_LINEARS", "Int4Linear", "Int8Linear", "float_embedding_output", "int4_layers", "int8_linear",
           "int8_matmul", "quantize_int4", "quantize_int8"]

log = logging.getLogger(__name__)


# Linear layers left in float: a vision tower's patch embedding as a Linear (SigLIP2 NaFlex, in
# LFM2-VL), whose weight's dtype the model reads to convert the pixels (under a million weights).
FLOAT_LINEARS = ("patch_embedding",)


def quantize_int8(model) -> None:
    """Replace every nn.Linear in ``model`` (in place) by an Int8Linear; the rest -> fp32.

    The language-model head is quantized too (it is read in full for every generated token). When
    it is tied to the input embeddings, the embedding table stays in its stored precision and only
    its looked-up rows become fp32, so the largest matrix is never held in fp32.
    """
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    names = [name for name, m in model.named_modules()
             if type(m) is nn.Linear and name.rpartition(".")[2] not in FLOAT_LINEARS]
    mapped = _file_mappings()
    for name in names:  # by name, so that no list keeps the float layers alive
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        linear = getattr(parent, attr)
        weight = linear.weight.detach()
        bias = None if linear.bias is None else linear.bias.detach().float()
        setattr(parent, attr, int8_linear(weight, bias))
        if embedding is None or weight.data_ptr() != embedding.weight.data_ptr():  # tied: still in use
            _drop_pages(weight, mapped)
        del linear, weight
        # The float blocks each layer converts through are freed, but the C allocator keeps them:
        # handed back at once, Qwen2-VL-2B's first load peaked at 3.46 GB, not 4.2-5.0 GB (replica).
        give_back_freed_memory()
    keep = embedding.weight if embedding is not None else None
    if keep is not None:
        # A tied head was read in full: only the rows a prompt looks up are needed from now on.
        _drop_pages(keep.detach(), mapped)
    for module in model.modules():  # norms, attention, biases: fp32; the embedding table as stored
        if isinstance(module, Int4Linear):
            continue  # its scales are bf16 for its kernel
        for pname, param in module.named_parameters(recurse=False):
            if param is not keep and param.dtype != torch.float32:
                setattr(module, pname, nn.Parameter(param.detach().float(), requires_grad=False))
        for bname, buf in module.named_buffers(recurse=False):
            if buf is not None and buf.is_floating_point() and buf.dtype != torch.float32:
                setattr(module, bname, buf.float())
    float_embedding_output(model)


def int8_linear(weight, bias) -> "Int8Linear":
    """The Int8Linear of a float ``weight`` (out, in) and ``bias`` (or None): int8 rows, a scale each."""
    module = Int8Linear(weight.shape[1], weight.shape[0], bias is not None, device="cpu")
    module.qweight, module.scale = _quantize_rows(weight)
    if bias is not None:
        module.bias = nn.Parameter(bias.float(), requires_grad=False)
    return module


def int8_matmul(a, b):
    """int8 x int8 -> int32 matrix product, the kernel an unpacked Int8Linear computes with
    (``torch._int_mm``: oneDNN's on CPUs with AVX-512 VNNI, packing.int_mm_is_fast)."""
    return torch._int_mm(a, b)


# Rows per block when Int8Linear.pack packs a weight (only a vocabulary-sized head has more).
PACK_ROWS = 16384

# Up to this many rows, Int8Linear computes (W x^T)^T rather than x W^T: the same kernel then reads
# the weight about 1.6x faster from memory (19.5 against 11.9 GB/s for one row, measured on 60
# distinct 8960 x 1536 weights, past the caches); from about 48 rows on, x W^T is the faster.
SMALL_BATCH = 32


class Int8Linear(nn.Module):
    """y = x W^T + b with W as int8 rows (``qweight``) times a float scale per row (``scale``).

    Each call quantizes its input per row (symmetric int8, the row's largest magnitude -> 127),
    multiplies with ``torch._int_mm`` (int8 x int8 -> int32) and scales the result back. The weight
    is used as stored, (out, in) in rows: the kernel reads it transposed in place, so nothing is
    packed at load time and a kept copy's mapped file is the weight itself. After ``pack`` (CPUs
    where that kernel is slow) torch.ao's dynamic int8 Linear kernel computes it instead.
    """

    _packed = None  # after pack(): torch.ao's packed weights and biases, a block of rows each

    def __init__(self, in_features: int, out_features: int, bias: bool, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("qweight", torch.empty(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("scale", torch.empty(out_features, dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.empty(out_features, device=device), requires_grad=False) if bias else None

    def pack(self, mapped: list[tuple[int, int]] = ()) -> None:
        """Pack the weight for torch.ao's quantized engine and let the plain one go, at most
        ``PACK_ROWS`` rows at a time: a head over a 151,936-token vocabulary is packed as blocks
        of rows, so that it is never held three times at once (read, quantized, packed)."""
        import warnings

        blocks = []
        with warnings.catch_warnings():  # torch.ao's deprecation notes: for developers, noise for users
            warnings.simplefilter("ignore")
            for start in range(0, self.out_features, PACK_ROWS):
                rows = slice(start, start + PACK_ROWS)
                scale = self.scale[rows].double()
                weight = torch._make_per_channel_quantized_tensor(self.qweight[rows], scale,
                                                                  torch.zeros_like(scale, dtype=torch.long), 0)
                blocks.append(torch.ops.quantized.linear_prepack(weight, None if self.bias is None else self.bias[rows]))
                _drop_pages(self.qweight[rows], list(mapped))
                del weight
        self._packed = blocks
        self.qweight = torch.empty(0, self.in_features, dtype=torch.int8)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, self.in_features).float()
        # The weight first, then the packed blocks: a background packer (_Packer) sets the blocks
        # before it lets the weight go, so one of the two is always whole.
        qweight, packed = self.qweight, self._packed
        if packed is not None:
            # reduce_range: 7-bit inputs, as torch.ao's dynamic Linear uses them with fbgemm (whose
            # kernels without VNNI saturate on full-range products)
            ys = [torch.ops.quantized.linear_dynamic(x, block, reduce_range=True) for block in packed]
            return (ys[0] if len(ys) == 1 else torch.cat(ys, dim=-1)).reshape(*shape[:-1], self.out_features)
        # Per-row scale: the row's largest magnitude maps to 127 (a zero row to a tiny scale).
        step = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12).div_(127.0)
        q = torch.div(x, step).round_().to(torch.int8)
        if q.shape[0] <= SMALL_BATCH:  # decoding: the weight as the kernel's left operand streams it fastest
            y = int8_matmul(qweight, q.t()).t().contiguous()
        else:
            y = int8_matmul(q, qweight.t())
        y = torch.mul(y, step)  # int32 * fp32 -> fp32, one pass
        y.mul_(self.scale)
        if self.bias is not None:
            y.add_(self.bias)
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        kernel = "packed" if self._packed is not None else "int_mm"
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 ({kernel})"


def float_embedding_output(model) -> None:
    """Make an embedding table kept in bf16 hand fp32 rows to the fp32 layers after it."""
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embedding is not None and embedding.weight.dtype != torch.float32:
        embedding.register_forward_hook(lambda mod, args, out: out.float())


def _quantize_rows(weight, block: int = 8192):
    """(int8 rows, fp32 scale per row): per-row symmetric int8 of a float matrix, converting at
    most ``block`` rows to fp32 at once."""
    rows = torch.empty(weight.shape, dtype=torch.int8)
    scales = torch.empty(weight.shape[0], dtype=torch.float32)
    for start in range(0, weight.shape[0], block):
        part = weight[start:start + block].float()
        scale = part.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        rows[start:start + block] = torch.round(part / scale[:, None]).clamp(-127, 127)
        scales[start:start + block] = scale
        del part
    return rows, scales


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


# -- int4: weight-only 4-bit for the language model, for small machines ---------------------------

INT4_GROUP = 128  # weights per scale and zero point, along the input dimension


def int4_layers(model) -> list[str]:
    """The nn.Linear layers that ``quantize_int4`` makes 4-bit: the language model's, except the
    head; the vision tower (read once per image, where precision matters for small text) and the
    head stay int8. A layer whose sizes do not fit the kernel's layout stays int8 too."""
    names = []
    for name, module in model.named_modules():
        if type(module) is not nn.Linear or name.endswith("lm_head"):
            continue
        if any(part in ("visual", "vision_model", "vision_tower", "vision") for part in name.split(".")):
            continue
        # The kernel's layout: whole groups along the input, output rows in sixteens.
        if module.in_features % _group(module.in_features) == 0 and module.in_features >= 32 \
                and module.out_features % 16 == 0:
            names.append(name)
    return names


def _group(in_features: int) -> int:
    return INT4_GROUP if in_features % INT4_GROUP == 0 else 32


def quantize_int4(model) -> None:
    """4-bit weights (groups of 128, with a bf16 scale and zero point each) for the language model's
    Linear layers, run by PyTorch's CPU int4 kernel; every other Linear becomes int8 (quantize_int8)."""
    mapped = _file_mappings()
    for name in int4_layers(model):
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        linear = getattr(parent, attr)
        setattr(parent, attr, Int4Linear.from_float(linear.weight.detach(),
                                                    None if linear.bias is None else linear.bias.detach()))
        _drop_pages(linear.weight.detach(), mapped)
        del linear
    quantize_int8(model)


class Int4Linear(nn.Module):
    """y = x W^T + b with W in 4 bits: ``packed`` (the CPU kernel's layout) and per-group
    ``scales_zeros`` are buffers, so a kept copy (int8_store) stores them as plain tensors."""

    def __init__(self, in_features: int, out_features: int, group: int, bias: bool):
        super().__init__()
        self.in_features, self.out_features, self.group = in_features, out_features, group
        self.register_buffer("packed", torch.empty(out_features, in_features // 2, dtype=torch.uint8))
        self.register_buffer("scales_zeros", torch.empty(in_features // group, out_features, 2, dtype=torch.bfloat16))
        self.bias = nn.Parameter(torch.empty(out_features), requires_grad=False) if bias else None

    @classmethod
    def from_float(cls, weight, bias) -> "Int4Linear":
        """Asymmetric 4-bit per group of ``group`` input weights, rows converted a block at a time."""
        out_features, in_features = weight.shape
        group = _group(in_features)
        module = cls(2, 1, 2, bias is not None)  # placeholder sizes, replaced below
        module.in_features, module.out_features, module.group = in_features, out_features, group
        packed, scales_zeros = [], []
        for start in range(0, out_features, 4096):
            w = weight[start:start + 4096].float().reshape(-1, in_features // group, group)
            low, high = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
            scale = ((high - low) / 15).clamp(min=1e-8)
            q = torch.round((w - low) / scale).clamp(0, 15).to(torch.int32).reshape(-1, in_features)
            packed.append(torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
            zero = low + 8 * scale  # the kernel computes (q - 8) * scale + zero
            scales_zeros.append(torch.stack([scale.squeeze(-1).t(), zero.squeeze(-1).t()], dim=-1).to(torch.bfloat16))
            del w, q
        module.packed = torch.cat(packed)
        module.scales_zeros = torch.cat(scales_zeros, dim=1).contiguous()
        if bias is not None:
            module.bias = nn.Parameter(bias.float(), requires_grad=False)
        return module

    def forward(self, x):
        shape = x.shape
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.reshape(-1, self.in_features).to(torch.bfloat16), self.packed, self.group, self.scales_zeros)
        y = y.to(x.dtype).reshape(*shape[:-1], self.out_features)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, group={self.group}, int4"
