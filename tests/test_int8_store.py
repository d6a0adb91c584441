"""The int8 model is converted once and kept (captioner/int8_store.py): later loads use the kept copy,
answer exactly as the converted model does, and a damaged, stale or half-written copy is never used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from a11y_caption.captioner import GenerationOptions, Request, load_captioner
from a11y_caption.captioner.int8_store import store_root, stores
from a11y_caption.captioner.quantize import Int8Linear
from conftest import REPO, SAMPLE, run_cli


@pytest.fixture()
def screen():
    return Image.open(SAMPLE).convert("RGB")


def _answer(captioner, screen) -> str:
    """The answer of ``captioner`` once its layers are packed (in the background after a load where
    torch._int_mm can serve meanwhile): one kernel, so two loads of one copy answer alike."""
    from a11y_caption.captioner.packing import wait_until_packed

    assert wait_until_packed(captioner.model, timeout=120)
    generation = captioner.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=12))
    return generation.collect().text


@pytest.mark.parametrize("family", ["qwen2-vl-2b", "blip-base"])
def test_the_first_load_converts_and_keeps_a_copy_that_later_loads_use(tiny_models, family, screen):
    first = load_captioner(str(tiny_models[family]), quantize="int8")
    assert first.loaded_from == "converted"
    [(model, size, folder)] = stores()
    assert model == str(tiny_models[family].resolve()) and size > 0 and folder.parent == store_root()
    kept = load_captioner(str(tiny_models[family]), quantize="int8")
    assert kept.loaded_from == "kept copy"
    assert _answer(kept, screen) == _answer(first, screen)
    # Every layer that was converted is int8 again, and its weights are the converted ones.
    ours = {n: m for n, m in kept.model.named_modules() if type(m) is Int8Linear}
    theirs = {n: m for n, m in first.model.named_modules() if n in ours}
    assert ours and ours.keys() == theirs.keys()
    for name, module in ours.items():
        assert module.qweight.equal(theirs[name].qweight) and module.scale.equal(theirs[name].scale)
    assert not any(p.is_meta for p in kept.model.parameters())


def test_the_kept_copys_int8_weights_are_its_file_mapped_not_copies(tiny_qwen, screen, monkeypatch):
    """Loading the kept copy with the unpacked kernel (A11Y_CAPTION_INT8_KERNEL=int_mm on a CPU with
    AVX-512 VNNI, stood in for here) packs nothing: every int8
    weight the model computes with lies in a memory mapping of one of the copy's files (Linux
    /proc/self/maps), so a load costs no conversion and the weights are shared with the page cache."""
    from a11y_caption.captioner import packing

    monkeypatch.setattr(packing, "packs_int8", lambda: False)
    load_captioner(str(tiny_qwen), quantize="int8")
    kept = load_captioner(str(tiny_qwen), quantize="int8")
    assert kept.loaded_from == "kept copy"
    [(_, _, folder)] = stores()
    maps = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and Path(fields[5]).parent == folder:
            maps.append(tuple(int(x, 16) for x in fields[0].split("-")))
    weights = [m.qweight for m in kept.model.modules() if type(m) is Int8Linear]
    assert maps and weights
    for weight in weights:
        start = weight.data_ptr()
        assert any(lo <= start and start + weight.numel() <= hi for lo, hi in maps)
    assert kept.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=4)).collect().new_tokens == 4


def test_on_a_cpu_without_vnni_the_layers_are_packed_and_the_kept_copy_answers_the_same(tiny_qwen, screen,
                                                                                       monkeypatch):
    """PyTorch runs torch._int_mm with a plain loop on CPUs without AVX-512 VNNI: there each int8
    layer is packed for torch.ao's engine at load, from the same kept copy, and lets its plain
    weight go. The head is packed in blocks of rows (here 64 stand in for 16,384)."""
    from a11y_caption.captioner import packing, quantize

    monkeypatch.setattr(packing, "packs_int8", lambda: True)
    monkeypatch.setattr(packing, "int_mm_is_fast", lambda: False)
    monkeypatch.setattr(quantize, "PACK_ROWS", 64)
    converted = load_captioner(str(tiny_qwen), quantize="int8")
    kept = load_captioner(str(tiny_qwen), quantize="int8")
    assert (converted.loaded_from, kept.loaded_from) == ("converted", "kept copy")
    for captioner in (converted, kept):
        layers = [m for m in captioner.model.modules() if type(m) is Int8Linear]
        assert layers and all(m._packed is not None and m.qweight.numel() == 0 for m in layers)
        assert len(captioner.model.lm_head._packed) > 1
    assert _answer(kept, screen) == _answer(converted, screen)


def test_a_new_copy_removes_the_models_copies_in_an_older_format_and_no_others(tiny_qwen):
    from a11y_caption.captioner.int8_store import FORMAT, SCHEMES

    name = str(tiny_qwen.resolve())
    root = store_root()
    root.mkdir(parents=True, exist_ok=True)
    made = {}
    for label, meta in {"older": {"format": FORMAT - 1, "model": name, "scheme": SCHEMES["int8"]},
                        "other model": {"format": FORMAT - 1, "model": "someone/else", "scheme": SCHEMES["int8"]},
                        "other scheme": {"format": FORMAT - 1, "model": name, "scheme": SCHEMES["int4"]}}.items():
        folder = root / label.replace(" ", "-")
        folder.mkdir()
        (folder / "meta.json").write_text(json.dumps(meta))
        (folder / "int8-00001.safetensors").write_bytes(b"old")
        made[label] = folder
    assert load_captioner(str(tiny_qwen), quantize="int8").loaded_from == "converted"
    assert not made["older"].exists()
    assert made["other model"].exists() and made["other scheme"].exists()
    assert [m for m, *_ in stores()].count(name) == 2  # the new copy and the int4 one, untouched


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


@pytest.mark.parametrize("damage", ["truncated", "meta", "missing"])
def test_a_damaged_copy_is_converted_again_never_trusted(tiny_qwen, screen, damage, caplog):
    expected = _answer(load_captioner(str(tiny_qwen), quantize="int8"), screen)
    [(_, _, folder)] = stores()
    shard = _shards(folder)[0]
    if damage == "truncated":
        data = shard.read_bytes()
        shard.write_bytes(data[: len(data) // 2])
    elif damage == "meta":
        meta = json.loads((folder / "meta.json").read_text())
        meta["int8_layers"] = meta["int8_layers"][1:]
        (folder / "meta.json").write_text(json.dumps(meta))
    else:
        shard.unlink()
    with caplog.at_level("WARNING"):
        again = load_captioner(str(tiny_qwen), quantize="int8")
    assert again.loaded_from == "converted"
    assert any("failed its check" in r.getMessage() for r in caplog.records)
    assert _answer(again, screen) == expected
    assert load_captioner(str(tiny_qwen), quantize="int8").loaded_from == "kept copy"  # made anew


def test_a_changed_checkpoint_gets_a_copy_of_its_own(tiny_qwen, tmp_path):
    folder = shutil.copytree(tiny_qwen, tmp_path / "model")
    assert load_captioner(str(folder), quantize="int8").loaded_from == "converted"
    weights = next(folder.glob("*.safetensors"))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file was written again
    assert load_captioner(str(folder), quantize="int8").loaded_from == "converted"
    assert len(stores()) == 2


def test_a_crash_while_writing_leaves_no_copy_and_no_debris(tiny_qwen, screen, monkeypatch):
    import safetensors.torch

    calls = []
    real = safetensors.torch.save_file

    def dies_after_one_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", dies_after_one_shard)
    monkeypatch.setattr("a11y_caption.captioner.int8_store.SHARD_BYTES", 1)  # a shard per tensor
    captioner = load_captioner(str(tiny_qwen), quantize="int8")
    assert captioner.loaded_from == "converted" and _answer(captioner, screen)  # this load still works
    assert len(calls) == 2 and stores() == []
    assert list(store_root().iterdir()) == []  # no temporary folder left behind


def test_two_processes_converting_at_once_leave_one_good_copy(tiny_qwen):
    code = ("import sys; from a11y_caption.captioner import load_captioner; "
            "print(load_captioner(sys.argv[1], quantize='int8').loaded_from)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tiny_qwen)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=180)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(stores()) == 1 and len(list(store_root().iterdir())) == 1
    assert load_captioner(str(tiny_qwen), quantize="int8").loaded_from == "kept copy"


def test_models_list_shows_the_copy_and_models_remove_removes_it(tiny_qwen):
    load_captioner(str(tiny_qwen), quantize="int8")
    listed = run_cli("models", "list")
    assert listed.returncode == 0
    line = next(l for l in listed.stdout.splitlines() if "(int8 copy)" in l)
    assert line.startswith(str(tiny_qwen.resolve())) and " GB\t" in line
    removed = run_cli("models", "remove", str(tiny_qwen))
    assert removed.returncode == 0 and removed.stdout.startswith("removed ")
    assert stores() == [] and tiny_qwen.is_dir(), "a local folder is the user's: only the copy goes"
    again = run_cli("models", "remove", str(tiny_qwen))
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "no model" in again.stderr


def test_int4_makes_the_language_model_4_bit_keeps_the_vision_tower_int8_and_is_kept_too(tiny_qwen, screen):
    from a11y_caption.captioner.quantize import Int4Linear

    first = load_captioner(str(tiny_qwen), quantize="int4")
    kinds = {name: type(m).__name__ for name, m in first.model.named_modules()
             if type(m).__name__ in ("Int4Linear", "Int8Linear", "Linear")}
    four = [n for n, k in kinds.items() if k == "Int4Linear"]
    assert four and all("visual" not in n and not n.endswith("lm_head") for n in four)
    assert any("visual" in n and k == "Int8Linear" for n, k in kinds.items())
    assert "Linear" not in kinds.values()
    assert first.loaded_from == "converted"
    kept = load_captioner(str(tiny_qwen), quantize="int4")
    assert kept.loaded_from == "kept copy" and _answer(kept, screen) == _answer(first, screen)
    assert sum(isinstance(m, Int4Linear) for m in kept.model.modules()) == len(four)
    assert {m for m, *_ in stores()} == {str(tiny_qwen.resolve())} and len(stores()) == 1  # int4's own copy


def test_int4_linear_is_close_to_the_float_layer():
    """4 bits per weight in groups of 128 with a scale and zero point each: about 10 % relative error
    on random normal weights (a step of a fifteenth of each group's range)."""
    import torch

    from a11y_caption.captioner.quantize import Int4Linear

    torch.manual_seed(0)
    weight, bias = torch.randn(64, 256), torch.randn(64)
    layer = Int4Linear.from_float(weight, bias)
    x = torch.randn(5, 256)
    expected = x @ weight.t() + bias
    error = (layer(x) - expected).abs().mean() / expected.abs().mean()
    assert 0 < error < 0.15
    assert layer.packed.dtype == torch.uint8 and layer.packed.numel() == 64 * 256 // 2


def test_packed_is_the_kernel_on_every_cpu_and_int_mm_only_when_asked_where_it_is_fast(monkeypatch):
    from a11y_caption.captioner import packing

    monkeypatch.delenv(packing.KERNEL_ENV, raising=False)
    for fast in (True, False):
        monkeypatch.setattr(packing, "int_mm_is_fast", lambda: fast)
        assert packing.packs_int8()
    monkeypatch.setenv(packing.KERNEL_ENV, "int_mm")
    assert packing.packs_int8()  # not fast here (stood in for): a plain loop would be far too slow
    monkeypatch.setattr(packing, "int_mm_is_fast", lambda: True)
    assert not packing.packs_int8()


def test_where_int_mm_is_fast_the_layers_are_packed_after_the_load_and_never_while_the_model_runs(
        tiny_qwen, screen, monkeypatch):
    """On a CPU with AVX-512 VNNI (stood in for) a load returns before any layer is packed; the model
    answers meanwhile with torch._int_mm; the packing waits while the model runs, then packs every
    layer, which then answers with the packed kernel."""
    import threading

    from a11y_caption.captioner import packing

    monkeypatch.setattr(packing, "packs_int8", lambda: True)
    monkeypatch.setattr(packing, "int_mm_is_fast", lambda: True)
    load_captioner(str(tiny_qwen), quantize="int8")  # converted; its packing in the background too
    running, release = threading.Event(), threading.Event()
    real_init = packing._Packer.__init__

    def held_in_a_forward(self, model, layers):  # the model is running when the packer starts
        real_init(self, model, layers)
        self._began()
        running.set()
        threading.Thread(target=lambda: (release.wait(30), self._ended()), daemon=True).start()

    monkeypatch.setattr(packing._Packer, "__init__", held_in_a_forward)
    kept = load_captioner(str(tiny_qwen), quantize="int8")
    assert kept.loaded_from == "kept copy" and running.wait(5)
    layers = [m for m in kept.model.modules() if type(m) is Int8Linear]
    assert not packing.wait_until_packed(kept.model, timeout=1.0)
    assert layers and all(m._packed is None and m.qweight.numel() > 0 for m in layers)
    release.set()
    assert packing.wait_until_packed(kept.model, timeout=60)
    assert all(m._packed is not None and m.qweight.numel() == 0 for m in layers)
    assert kept.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=4)).collect().new_tokens == 4


def test_a_description_during_the_background_packing_answers_whole(tiny_qwen, screen, monkeypatch):
    """Layers packed while the model writes: each forward sees one whole kernel, never half a layer."""
    from a11y_caption.captioner import packing

    monkeypatch.setattr(packing, "packs_int8", lambda: True)
    monkeypatch.setattr(packing, "int_mm_is_fast", lambda: True)
    monkeypatch.setattr(packing._Packer, "QUIET_S", 0.0)  # pack between any two forward passes
    monkeypatch.setattr(packing._Packer, "START_S", 0.0)
    load_captioner(str(tiny_qwen), quantize="int8")
    for _ in range(3):
        kept = load_captioner(str(tiny_qwen), quantize="int8")
        assert kept.generate(Request(screen, "screen"), GenerationOptions(max_new_tokens=8)).collect().new_tokens == 8
        assert packing.wait_until_packed(kept.model, timeout=60)


_EXIT_MID_PACKING = """
import gc, sys
import torch
from torch import nn
from a11y_caption.captioner import packing, quantize
packing.int_mm_is_fast = lambda: True
packing._Packer.START_S = 0.0
if sys.argv[1] == "unguarded":
    packing._stop_packers_at_exit = lambda: None
model = nn.Sequential(*[nn.Linear(4096, 4096) for _ in range(12)])
quantize.quantize_int8(model)
packing.pack_for_this_cpu(model)
del model
gc.collect()
"""


@pytest.mark.parametrize("run", range(3))
def test_a_process_that_ends_while_layers_are_packed_in_the_background_exits_cleanly(run):
    """A one-off command ends soon after its load, while the background packer may be inside
    PyTorch's packing of a layer, its model already let go: the process waits for that layer and
    exits 0, where a thread left in C++ at exit aborts it ("terminate called ...")."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", _EXIT_MID_PACKING, "guarded"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and "terminate" not in r.stderr, r.stderr[-500:]
