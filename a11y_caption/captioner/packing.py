"""Which int8 kernel the Int8Linear layers (quantize.py) run with, and packing them for it.

Packed for torch.ao's quantized engine (fbgemm; qnnpack on ARM) is the kernel on every CPU. Where
PyTorch's own ``torch._int_mm`` can run the plain int8 weights fast (AVX-512 VNNI with oneDNN), the
layers are packed in the background after a load and answer with ``torch._int_mm`` meanwhile, so
the packing costs the load nothing; elsewhere they are packed during the load.
"""

from __future__ import annotations

import logging
import weakref

import torch

from ..memory import give_back_freed_memory
from .quantize import Int8Linear, _file_mappings

__all__ = ["KERNEL_ENV", "int_mm_is_fast", "pack_for_this_cpu", "packs_int8", "wait_until_packed"]

log = logging.getLogger(__name__)

KERNEL_ENV = "A11Y_CAPTION_INT8_KERNEL"  # "packed" (default) or "int_mm": for measuring one against the other


def int_mm_is_fast() -> bool:
    """Whether PyTorch runs ``torch._int_mm`` with oneDNN here (CPUs with AVX-512 VNNI, oneDNN on);
    everywhere else it is a plain loop, far too slow for a model."""
    import torch.backends.mkldnn

    fast = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    return bool(fast and torch.cpu._is_vnni_supported())


def packs_int8() -> bool:
    """Whether Int8Linear layers are packed for torch.ao's quantized engine (fbgemm; qnnpack on ARM).

    Packed is the choice on every CPU: on AVX-512 VNNI CPUs it gave the sooner first token and the
    faster writing as well (issue 30's measurement: first token 5.38 against 6.16 s, 9.7-10.9
    against 6.4 tokens/s; single layers 5-30 % faster on an Intel Xeon, docs/PERFORMANCE.md).
    ``torch._int_mm`` is used only where ``A11Y_CAPTION_INT8_KERNEL=int_mm`` asks for it and it is
    fast on this CPU, for measurements (``a11y-caption bench``), and while packing runs in the
    background after a load (``pack_for_this_cpu``)."""
    import os

    return not (os.environ.get(KERNEL_ENV, "").strip().lower() == "int_mm" and int_mm_is_fast())


def pack_for_this_cpu(model, *, background: bool = True):
    """Pack every Int8Linear of ``model`` for torch.ao's quantized engine (``packs_int8``); the plain
    weights are let go, and their pages of a kept copy's mapped files handed back to the OS.

    Where ``torch._int_mm`` is fast (``int_mm_is_fast``) and ``background`` is true, the layers are
    packed by a background thread and this returns at once: the model answers meanwhile, each layer
    with whichever kernel it has, so the packing costs the load nothing. The packing waits while
    the model runs (``_Packer``), so a press soon after a load has all cores. Elsewhere the layers
    are packed now, on all cores at once. Returns the background packer, or None."""
    if not packs_int8():
        return None
    layers = [m for m in model.modules() if type(m) is Int8Linear and m._packed is None]
    if background and int_mm_is_fast():
        packer = _Packer(model, layers)
        _PACKERS[model] = packer
        packer.start()
        return packer
    _pack_all(layers, _file_mappings())
    return None


def wait_until_packed(model, timeout: float | None = None) -> bool:
    """Wait for ``model``'s background packing, if any (True: none left, or it finished in time)."""
    packer = _PACKERS.get(model)
    return packer is None or packer.done.wait(timeout)


def _pack_all(layers, mapped) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def pack(layer: Int8Linear) -> None:
        layer.pack(mapped)
        # Each thread frees into its own allocator arena, which keeps what it frees: handed back
        # at once, Qwen2-VL-2B's load peaked at 3.0 GB instead of 4.0 GB (replica, 2 threads).
        give_back_freed_memory()

    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:  # packing runs outside the GIL
        list(pool.map(pack, layers))


class _Packer:
    """Packs a loaded model's Int8Linear layers in background threads, largest first, waiting
    whenever the model is running (a forward pass, or one ended less than ``QUIET_S`` ago): a
    description's prefill and writing are never slowed by it. ``done`` is set when it has finished
    (or given up because the model was let go)."""

    QUIET_S = 0.5
    START_S = 1.0

    def __init__(self, model, layers):
        import threading
        import time
        import weakref

        self._model = weakref.ref(model)
        # Largest first (the head); each worker takes the next, as a weak reference: a model let go
        # is not kept alive by its packing.
        self._todo = [weakref.ref(m) for m in sorted(layers, key=lambda m: m.in_features * m.out_features)]
        # The first layer waits START_S: what the load does after the weights (the prompt-start
        # cache, the agent's own start) has both cores, and "Ready" comes no later for the packing.
        self._running, self._last = 0, time.monotonic() + self.START_S - self.QUIET_S
        self._lock = threading.Lock()
        self.done, self._stop = threading.Event(), threading.Event()
        self._hooks = [model.register_forward_pre_hook(self._began), model.register_forward_hook(self._ended)]
        # Threads of its own, not a pool: at exit a pool's threads are joined before any atexit
        # handler runs, and would finish all the packing first; these are stopped (stop) instead.
        self._workers = [threading.Thread(target=self._work, name=f"a11y-caption-int8-packing-{i}", daemon=True)
                         for i in range(max(1, torch.get_num_threads()))]
        self._left = len(self._workers)
        self._mapped = _file_mappings()

    def start(self) -> None:
        _stop_packers_at_exit()
        _LIVE.add(self)
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 30) -> None:
        """Pack no further layer, and wait for the ones being packed (about a second at most)."""
        self._stop.set()
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout)

    def _began(self, *_):
        with self._lock:
            self._running += 1

    def _ended(self, *_):
        import time

        with self._lock:
            self._running -= 1
            self._last = time.monotonic()

    def _quiet(self) -> bool:
        """Wait until the model has been idle a moment; False when the model is gone or stop was asked."""
        import time

        while True:
            if self._model() is None or self._stop.is_set():
                return False
            with self._lock:
                idle = self._running == 0 and time.monotonic() - self._last >= self.QUIET_S
            if idle:
                return True
            time.sleep(0.05)

    def _next(self):
        with self._lock:
            while self._todo:
                layer = self._todo.pop()()
                if layer is not None:
                    return layer
        return None

    def _work(self) -> None:
        try:
            while self._quiet() and (layer := self._next()) is not None:
                layer.pack(self._mapped)
                del layer
                # Each thread frees into its own allocator arena, which keeps what it frees: handed
                # back at once, as _pack_all does.
                give_back_freed_memory()
        except Exception:  # never fatal: an unpacked layer still answers with torch._int_mm
            log.warning("packing the int8 layers in the background failed; they stay unpacked", exc_info=True)
        finally:
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                for hook in self._hooks:
                    hook.remove()
                self.done.set()
                _LIVE.discard(self)


_PACKERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> its background _Packer
_LIVE: set = set()  # the packers still at work, held until they end (a model let go still ends its packer)
_AT_EXIT: list = []


def _stop_packers_at_exit() -> None:
    """Once per process: at exit, stop every background packer and wait for the layer it is on. A
    thread still inside PyTorch's packing when the interpreter ends aborts the process ("terminate
    called without an active exception"), as a one-off ``a11y-caption describe`` would."""
    if _AT_EXIT:
        return
    import atexit

    def stop_all() -> None:
        for packer in list(_LIVE):
            packer.stop()

    _AT_EXIT.append(stop_all)
    atexit.register(stop_all)
