"""IP-Adapter (image prompt) through the real diffusers pipelines with a tiny random adapter, its refusals, and
the IP-Adapter unit in the PNG metadata (sd-webui-controlnet's ``ControlNet N`` setting and Studiolo's JSON)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from desktop.api import ImageOutput, ModelFormatError, ModelNotFoundError, ParamError, validate
from desktop.testing import run_generator
from plugins.image.demo import build_tiny_controlnet, build_tiny_ip_adapter
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.ip_adapter import use_ip_adapter, values_from_a1111
from plugins.image.metadata import a1111_parameters, encode_png, read_params
from plugins.image.params import ImageParams

GEN = DiffusersImageGenerator()
BASE = {"prompt": "a red fox", "steps": 2, "width": 64, "height": 64}



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 48×48 noise reference picture, a 64×64 gradient init image, a text file posing as a picture, and an
    SDXL-shaped IP-Adapter (for the family check)."""
    root = tmp_path_factory.mktemp("ip-adapter")
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "ref.png")
    yy, xx = np.mgrid[0:64, 0:64]
    Image.fromarray(np.stack([xx * 4, yy * 4, xx + yy], -1).astype(np.uint8)).save(root / "init.png")
    (root / "notes.png").write_text("not a picture")
    return {"root": root, "ref": root / "ref.png", "init": root / "init.png", "notes": root / "notes.png",
            "xl": build_tiny_ip_adapter(root / "ip-xl", sdxl=True)}


@pytest.fixture(scope="module")
def plain(sd):
    """The base model's picture of BASE (no adapter)."""
    return image_of(sd)


def image_of(handle, **params) -> np.ndarray:
    (output,) = run_generator(GEN, {**BASE, **params}, handle=handle, seed=3).outputs
    return np.asarray(output.image).astype(np.int16)


def test_the_demo_adapter_changes_the_picture_is_kept_loaded_and_taken_off_after(sd, files, plain):
    unet = sd.pipe.unet
    own = dict(unet.attn_processors)
    adapted = image_of(sd, ip_adapter=f"demo|{files['ref']}")
    assert np.abs(adapted - plain).max() > 10
    loaded = sd.ip_adapter
    assert loaded is not None and loaded.attached is None  # kept on the handle, off the UNet
    assert unet.encoder_hid_proj is None and sd.pipe.image_encoder is None
    assert all(unet.attn_processors[name] is processor for name, processor in own.items())
    stronger = image_of(sd, ip_adapter=f"demo|{files['ref']}", ip_adapter_scale=1.5)
    assert sd.ip_adapter is loaded  # the same adapter again: not reloaded
    assert np.abs(stronger - adapted).max() > 0
    assert np.array_equal(image_of(sd), plain)  # a job without it after jobs with it: the base, exactly


def test_scale_0_is_the_picture_without_it_and_is_never_loaded(sd, files, plain, tmp_path):
    missing = tmp_path / "no-such-adapter"
    assert np.array_equal(image_of(sd, ip_adapter=f"{missing}|{files['ref']}", ip_adapter_scale=0), plain)


def test_a_job_that_stopped_with_it_on_leaves_the_next_job_the_base(sd, files, plain):
    params = validate(ImageParams(**BASE, ip_adapter=f"demo|{files['ref']}"), ImageParams)
    assert "ip_adapter_image" in use_ip_adapter(sd, params, sd.pipe)  # on, as a cancelled job would leave it
    assert sd.pipe.unet.encoder_hid_proj is not None
    assert np.array_equal(image_of(sd), plain)


def test_img2img_inpaint_and_controlnet_pipelines_take_it(sd, files, tmp_path):
    inputs = {"init_image": str(files["init"]), "mask_image": str(files["init"])}
    for mode in ("img2img", "inpaint"):
        plain = image_of(sd, mode=mode, **inputs)
        assert np.abs(image_of(sd, mode=mode, ip_adapter=f"demo|{files['ref']}", **inputs) - plain).max() > 10
    unit = f"{build_tiny_controlnet(tmp_path / 'cn')}|{files['init']}"
    controlled = image_of(sd, controlnets=[unit])
    assert np.abs(image_of(sd, controlnets=[unit], ip_adapter=f"demo|{files['ref']}") - controlled).max() > 10
    assert np.array_equal(image_of(sd, controlnets=[unit]), controlled)


def test_an_adapter_for_another_family_or_a_missing_one_is_refused(sd, files):
    with pytest.raises(ModelFormatError, match="another model family.*64.*32"):
        image_of(sd, ip_adapter=f"{files['xl'] / 'sdxl_models' / 'ip-adapter_sdxl.safetensors'}|{files['ref']}")
    with pytest.raises(ModelFormatError, match="another model family"):  # the folder: its only (SDXL) weights
        image_of(sd, ip_adapter=f"{files['xl']}|{files['ref']}")
    with pytest.raises(ModelNotFoundError, match=r"No model found at .*nowhere.*\(IP-Adapters\)"):
        image_of(sd, ip_adapter=f"{files['root'] / 'nowhere'}|{files['ref']}")


def test_a_reference_that_is_not_an_image_or_is_missing_is_refused(sd, files):
    with pytest.raises(ParamError, match="not an image"):
        image_of(sd, ip_adapter=f"demo|{files['notes']}")
    with pytest.raises(ParamError, match="no reference image"):
        image_of(sd, ip_adapter="demo|")


def test_a1111_parameters_round_trip_as_a_controlnet_unit(tmp_path):
    params = {**BASE, "controlnets": [f"{tmp_path / 'control-canny'}|{tmp_path / 'edges.png'}"],
              "ip_adapter": f"{tmp_path / 'ip-adapter_sd15'}|{tmp_path / 'ref.png'}", "ip_adapter_scale": 0.8}
    metadata = {"params": params, "seed": 5, "model": "demo"}
    text = a1111_parameters(metadata)
    assert 'ControlNet 0: "Module: none, Model: control-canny' in text
    assert 'ControlNet 1: "Module: ip-adapter_clip_sd15, Model: ip-adapter_sd15, Weight: 0.8' in text
    encoded = encode_png(ImageOutput(image=Image.new("RGB", (8, 8))), metadata)
    path = tmp_path / "out.png"
    path.write_bytes(encoded.data)
    back = read_params(path)
    assert back.ip_adapter == f"{tmp_path / 'ip-adapter_sd15'}|{tmp_path / 'ref.png'}"  # Studiolo's JSON: all
    assert back.ip_adapter_scale == 0.8
    a1111 = tmp_path / "a1111.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (8, 8)).save(a1111, pnginfo=info)
    from_a1111 = read_params(a1111)
    assert from_a1111.ip_adapter == "ip-adapter_sd15|" and from_a1111.ip_adapter_scale == 0.8  # no image
    assert from_a1111.controlnets == ["control-canny||1|0|1"]  # the IP-Adapter unit is not a ControlNet
    # as A1111 itself writes it, with the model's hash
    written = {"ControlNet 0": "Module: ip-adapter_clip_sd15, Model: ip-adapter_sd15 [6a3f6166], Weight: 1, "
                               "Resize Mode: Crop and Resize, Guidance Start: 0, Guidance End: 1"}
    assert values_from_a1111(written) == {"ip_adapter": "ip-adapter_sd15|", "ip_adapter_scale": 1.0}
