"""Single-file ControlNets (plugins/image/controlnet_file.py): the original release's key layout and a diffusers
model saved as one file load through ``from_single_file`` with a config made from the base UNet (no hub), and give
the picture the same ControlNet's folder gives; one made for another model family is refused before loading."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from image_models import write_controlnet_single_file
from PIL import Image

from desktop.api import ModelFormatError
from desktop.testing import run_generator
from plugins.image.controlnet_file import cross_attention_width
from plugins.image.demo import build_tiny_controlnet
from plugins.image.generator import DiffusersImageGenerator

GEN = DiffusersImageGenerator()



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("controlnet-files")
    folder = build_tiny_controlnet(root / "folder", seed=7)
    original = write_controlnet_single_file(folder, root / "control_tiny_canny.safetensors")
    one_file = root / "diffusers-layout.safetensors"
    shutil.copyfile(folder / "diffusion_pytorch_model.safetensors", one_file)
    sdxl = write_controlnet_single_file(build_tiny_controlnet(root / "xl", sdxl=True), root / "xl.safetensors")
    yy, xx = np.mgrid[0:64, 0:64]
    board = root / "board.png"
    Image.fromarray(((xx // 8 + yy // 8) % 2 * 255).astype(np.uint8)).convert("RGB").save(board)
    return {"folder": folder, "original": original, "one_file": one_file, "sdxl": sdxl, "board": board}


def picture(sd, files, model) -> np.ndarray:
    params = {"prompt": "a fox", "steps": 2, "width": 64, "height": 64, "controlnets": [f"{model}|{files['board']}"]}
    return np.asarray(run_generator(GEN, params, handle=sd, seed=3).outputs[0].image)


def test_single_files_in_either_layout_give_the_folders_picture(sd, files):
    from_folder = picture(sd, files, files["folder"])
    assert np.array_equal(picture(sd, files, files["original"]), from_folder)
    assert np.array_equal(picture(sd, files, files["one_file"]), from_folder)


def test_a_single_file_for_another_family_or_not_a_controlnet_is_refused(sd, files, tmp_path):
    assert cross_attention_width(files["sdxl"]) == 64 and cross_attention_width(files["original"]) == 32
    with pytest.raises(ModelFormatError, match="xl.safetensors is made for another model family"):
        picture(sd, files, files["sdxl"])
    pickled = tmp_path / "control.ckpt"
    pickled.write_bytes(b"\x80\x04not really")
    with pytest.raises(ModelFormatError, match="pickle"):
        picture(sd, files, pickled)
    import torch
    from safetensors.torch import save_file

    other = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(ModelFormatError, match="holds no ControlNet weights"):
        picture(sd, files, other)
