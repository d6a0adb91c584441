"""What the machine is and can do, for comparing figures across CPUs, and this process's memory."""

from __future__ import annotations

import os
import platform
import resource
import time

__all__ = ["ISA", "int8_gops", "int8_kernel", "machine_info", "peak_rss_mb", "rss_mb", "torch_build",
           "torch_threads"]

ISA = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def machine_info() -> dict:
    """What this machine can do, for comparing figures across CPUs: the model, the instruction-set
    features that decide int8 and bf16 speed, and this machine's measured int8 GEMM throughput."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    cpu = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    import torch

    from ..captioner.packing import int_mm_is_fast

    return {"model": "machine", "cpu": cpu, "isa": [f for f in ISA if f in flags], "cores": os.cpu_count(),
            "torch": torch.__version__, "torch_build": torch_build(), "torch_threads": torch_threads(),
            "int8_kernel": int8_kernel(), "int8_kernel_why": int8_kernel_why(), "int8_gops": int8_gops(),
            **({"int8_gops_int_mm": int8_gops(kernel="int_mm")} if int_mm_is_fast() else {})}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def torch_build() -> str:
    """Which PyTorch build runs: one with GPU support loads its CUDA (or ROCm) libraries even on a
    machine without a GPU, which costs memory (README: measured 0.29 GB more RSS on import)."""
    import torch

    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip}"
    return "CPU only"


def int8_kernel(kernel: str | None = None) -> str:
    """The name of an int8 kernel (``"packed"`` or ``"int_mm"``; default: the one the int8 Linear
    layers use here, packing.packs_int8)."""
    import torch

    from ..captioner.packing import packs_int8

    kernel = kernel or ("packed" if packs_int8() else "int_mm")
    return f"torch.ao packed ({torch.backends.quantized.engine})" if kernel == "packed" else "torch._int_mm (oneDNN)"


def int8_kernel_why() -> str:
    """Why the product uses the kernel it uses on this machine, in one sentence."""
    from ..captioner.packing import KERNEL_ENV, int_mm_is_fast, packs_int8

    if not packs_int8():
        return f"{KERNEL_ENV}=int_mm asks for torch._int_mm (for measuring it)"
    if int_mm_is_fast():
        return ("packed: on AVX-512 VNNI CPUs it gave the sooner first token and the faster writing (the kernel "
                "rows below); torch._int_mm serves only while the layers are packed in the background after a load")
    return "packed: torch._int_mm is a plain loop on this CPU (no AVX-512 VNNI with oneDNN)"


def int8_gops(seconds: float = 0.5, windows: int = 3, kernel: str | None = None) -> float:
    """Measured int8 GEMM throughput (GOP/s) of an int8 kernel (``"packed"`` or ``"int_mm"``; default
    the one our int8 Linear layers use here, ``int8_kernel``): a 512 x 2048 by 2048 x 2048 product (a
    prefill's shape), the weight as Int8Linear holds it, repeated for about ``seconds`` after a
    warm-up, in ``windows`` windows; the best window counts. A shared virtual machine has slow
    moments: one 1 s window measured 192 and 234 GOP/s on the same machine an hour apart, which
    moved the prefill efficiency computed from it by a fifth."""
    import torch

    from ..captioner.packing import packs_int8
    from ..captioner.quantize import int8_linear, int8_matmul

    m, k, n = 512, 2048, 2048
    if (kernel or ("packed" if packs_int8() else "int_mm")) == "packed":
        layer = int8_linear(torch.randn(n, k), None)
        layer.pack()
        x = torch.randn(m, k)
        step = lambda: layer(x)  # noqa: E731 - includes quantizing the input, as fbgemm's kernel does it
    else:
        weight = torch.randint(-127, 128, (n, k), dtype=torch.int8)
        x8 = torch.randint(-127, 128, (m, k), dtype=torch.int8)
        step = lambda: int8_matmul(x8, weight.t())  # noqa: E731
    for _ in range(3):
        step()
    best = 0.0
    for _ in range(windows):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or count < 3:
            step()
            count += 1
        best = max(best, 2 * m * k * n * count / (time.perf_counter() - start) / 1e9)
    return best


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
