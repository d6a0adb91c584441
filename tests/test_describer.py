"""The describer's promises around its model: a fallback answer is never cached, releasing keeps
reading working and gives memory back, a device that is not here is one sentence."""

from __future__ import annotations

import pytest

from conftest import SAMPLE, run_cli


def _text_image():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 120), "white")
    ImageDraw.Draw(image).text((10, 40), "Invoice 42 due Friday", fill="black")
    return image


def test_answer_without_the_model_is_not_cached_for_after_the_pull(tiny_qwen, tmp_path):
    import shutil

    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    folder = tmp_path / "model-pulled-later"
    describer = Describer(ModelConfig(name=str(folder), max_new_tokens=3))
    image = _text_image()
    first = describer.describe(image, "photo").collect()
    assert first.model == "ocr" and "does not exist" in first.text
    shutil.copytree(tiny_qwen, folder)
    again = describer.describe(image, "photo").collect()
    assert again.model == str(folder), "the same image is described by the model now on disk"
    assert "does not exist" not in again.text
    # The model's complete answer is what gets cached.
    cached = describer.describe(image, "photo").collect()
    assert (cached.model, cached.text) == ("cache", again.text)


# -- releasing the "ocr" model does not break reading ------------------------------------------

def test_release_with_the_ocr_model_leaves_reading_working():
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    describer = Describer(ModelConfig(name="ocr"))
    image = _text_image()
    assert describer.describe(image, "photo").collect().text == "Invoice 42 due Friday"
    assert describer.read(image) == ("Invoice 42 due Friday", ["Invoice 42 due Friday"])
    describer.release()
    assert describer.read(image) == ("Invoice 42 due Friday", ["Invoice 42 due Friday"])
    assert describer.describe(image, "photo").collect().text == "Invoice 42 due Friday"


# -- the device is checked, and a missing GPU is said as such ------------------------------------

@pytest.fixture
def no_gpu(monkeypatch):
    """This computer as one without a usable GPU, also where the tests run on a machine with one."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("device, message", [
    ("cuda", 'CUDA was asked for (device = "cuda"), but this computer has no usable GPU; '
             'use device = "auto" or "cpu".'),
    ("cuda:1", 'CUDA was asked for (device = "cuda:1"), but this computer has no usable GPU; '
               'use device = "auto" or "cpu".'),
    ("mps", 'Apple\'s Metal GPU was asked for (device = "mps"), but it is not usable on this computer; '
            'use device = "auto" or "cpu".'),
    ("gpu", 'There is no device "gpu"; device must be one of auto, cpu, cuda, cuda:N or mps.'),
])
def test_a_device_that_is_not_here_is_one_sentence_not_damaged_files(tiny_qwen, no_gpu, device, message):
    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer
    from a11y_caption.errors import DeviceError, ModelLoadError

    describer = Describer(ModelConfig(name=str(tiny_qwen), device=device))
    with pytest.raises(DeviceError) as caught:
        describer.load()
    assert str(caught.value) == message
    assert isinstance(caught.value, ModelLoadError), "the agent and CLI treat it as a load failure"


def test_a_gpu_number_beyond_the_gpus_here(tiny_qwen, monkeypatch):
    import torch

    from a11y_caption.captioner.factory import load_captioner
    from a11y_caption.errors import DeviceError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match=r'^GPU 2 was asked for \(device = "cuda:2"\), but this computer has '
                                          r'only 1 usable GPU, numbered from 0; use device = "cuda"\.$'):
        load_captioner(str(tiny_qwen), device="cuda:2")


def test_cli_with_cuda_and_no_gpu_says_so(tiny_qwen):
    r = run_cli("describe", str(SAMPLE), "--model", str(tiny_qwen), "--device", "cuda", "--no-speak",
                env={"CUDA_VISIBLE_DEVICES": ""})  # no GPU, also on a machine that has one
    assert r.returncode == 1
    *cues, error = r.stderr.splitlines()
    assert error == ('a11y-caption: CUDA was asked for (device = "cuda"), but this computer has no '
                     'usable GPU; use device = "auto" or "cpu".')
    assert all(line.startswith("a11y-caption: Loading the model") for line in cues), cues  # the wait, said


def test_release_gives_the_gpus_cached_memory_back(monkeypatch):
    """No GPU here: torch.cuda is replaced, so this checks the call, not CUDA."""
    import torch

    from a11y_caption.config import ModelConfig
    from a11y_caption.describe.describer import Describer

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    Describer(ModelConfig(name="ocr")).release()
    assert emptied == [True]
