"""Outpainting (``mode=outpaint``, plugins/image/outpaint.py): the canvas, fill and feathered mask helpers; the
job through the real inpaint pipeline of the tiny SD model (size, the original area kept pixel for pixel outside
the feather band, cancel, bad input named before any step); the metadata round trip; the panel; the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from desktop.api import ImageOutput, LoadOptions, ParamError, to_json, validate
from desktop.testing import run_generator
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.metadata import a1111_parameters, read_reuse
from plugins.image.outpaint import (
    Extents,
    canvas_extents,
    extend_canvas,
    feather_mask,
    repaint_mask,
)
from plugins.image.params import ImageParams

GEN = DiffusersImageGenerator()
BASE = {"prompt": "a red fox", "steps": 3, "mode": "outpaint", "strength": 1.0}
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


@pytest.fixture(scope="module")
def sd(tiny_sd):
    values = {"dtype": "auto", "attention_slicing": False, "vae_tiling": False, "cpu_offload": False}
    return GEN.load(tiny_sd, "cpu", LoadOptions(values))


@pytest.fixture
def init(tmp_path):
    """A 64×48 gradient (wider than high, so the sides cannot be mixed up)."""
    yy, xx = np.mgrid[0:48, 0:64]
    path = tmp_path / "init.png"
    Image.fromarray(np.stack([xx * 3, yy * 5, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)).save(path)
    return path


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(np.int16)


def run(handle, seed=1, **params):
    return run_generator(GEN, {**BASE, **params}, handle=handle, seed=seed)


@pytest.fixture
def unet_calls(sd):
    calls = []
    hook = sd.pipe.unet.register_forward_hook(lambda *args: calls.append(1))
    yield calls
    hook.remove()


@pytest.fixture
def decode_calls(sd, monkeypatch):
    calls = []
    original = sd.pipe.vae.decode

    def counting(latents, *args, **kwargs):
        calls.append(latents.shape[0])
        return original(latents, *args, **kwargs)

    monkeypatch.setattr(sd.pipe.vae, "decode", counting)
    return calls


# ------------------------------------------------------------------------------------------------ helpers


def test_the_canvas_is_the_init_image_plus_the_extents_rounded_up_to_multiples_of_8():
    assert canvas_extents((64, 48), Extents(left=8, right=32)) == (Extents(left=8, right=32), (104, 48))
    used, size = canvas_extents((61, 45), Extents(top=16))  # the right and bottom grow to reach multiples of 8
    assert used == Extents(top=16, right=3, bottom=3) and size == (64, 64)


def test_extend_canvas_keeps_the_original_and_fills_the_new_area_from_the_edge_or_seeded_noise():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    extents = Extents(left=8, top=4, right=16, bottom=0)
    edge = pixels(extend_canvas(image, extents, "edge"))
    assert edge.shape == (20, 48, 3)
    assert np.array_equal(edge[4:, 8:32], pixels(image))
    assert np.array_equal(edge[4:, 0], pixels(image)[:, 0]) and np.array_equal(edge[4:, 47], pixels(image)[:, -1])
    assert np.array_equal(edge[0, 8:32], pixels(image)[0])  # the top row stretched up
    noise = pixels(extend_canvas(image, extents, "noise", seed=5))
    assert np.array_equal(noise[4:, 8:32], pixels(image))
    assert np.array_equal(noise, pixels(extend_canvas(image, extents, "noise", seed=5)))  # from the seed
    assert not np.array_equal(noise, pixels(extend_canvas(image, extents, "noise", seed=6)))
    assert noise[:4].std() > 50  # noise, not a colour


def test_the_feather_mask_is_white_outside_fades_into_the_original_and_is_black_in_its_core():
    extents = Extents(right=32, top=16)
    mask = np.asarray(feather_mask((96, 64), extents, 12)).astype(int)
    assert (mask[:16] == 255).all() and (mask[:, 64:] == 255).all()  # the new area
    assert (mask[16 + 12:, :64 - 12] == 0).all()  # the core: the original kept exactly
    ramp = mask[40, 64 - 12:64]  # along a row, into the right-hand band
    assert (np.diff(ramp) >= 0).all() and ramp[0] < 10 and ramp[-1] > 245  # fades from the edge inward
    assert ((ramp > 10) & (ramp < 245)).sum() >= 4  # a gradual fade (Gaussian), not a step
    column = mask[16:16 + 12, 20]
    assert (np.diff(column) <= 0).all() and column[0] > 245 and column[-1] < 10
    assert (mask[16:, 0] == 0)[12:].all()  # the left side was not extended: no band there
    hard = np.asarray(feather_mask((96, 64), extents, 0)).astype(int)
    assert (hard[16:, :64] == 0).all() and (hard[:16] == 255).all() and (hard[:, 64:] == 255).all()
    repaint = np.asarray(repaint_mask(Image.fromarray(mask.astype(np.uint8)))).astype(int)
    assert set(np.unique(repaint)) == {0, 255} and ((repaint == 255) == (mask > 0)).all()


# ---------------------------------------------------------------------------------------- the real job


def test_outpaint_makes_the_bigger_picture_and_keeps_the_original_outside_the_feather_band(sd, init):
    result = run(sd, seed=3, init_image=str(init), outpaint_right=32, outpaint_top=16, outpaint_feather=12)
    (output,) = result.outputs
    assert output.image.size == (64 + 32, 48 + 16) and output.metadata["mode"] == "outpaint"
    assert [p[:2] for p in result.progress] == [(1, 3), (2, 3), (3, 3)]
    out, original = pixels(output.image), pixels(Image.open(init))
    assert np.array_equal(out[16 + 12:, :64 - 12], original[12:, :64 - 12])  # pixel-identical
    edge_fill = pixels(extend_canvas(Image.open(init), Extents(right=32, top=16), "edge"))
    assert np.abs(out[:16] - edge_fill[:16]).mean() > 5 and out[:, 64:].std() > 1  # the new area is painted
    hard = pixels(run(sd, seed=3, init_image=str(init), outpaint_left=8, outpaint_feather=0).outputs[0].image)
    assert hard.shape == (48, 72, 3) and np.array_equal(hard[:, 8:], original)  # feather 0: all of it


def test_outpaint_is_reproducible_and_noise_fill_starts_elsewhere(sd, init):
    first = pixels(run(sd, seed=4, init_image=str(init), outpaint_bottom=16, strength=0.75).outputs[0].image)
    again = pixels(run(sd, seed=4, init_image=str(init), outpaint_bottom=16, strength=0.75).outputs[0].image)
    noisy = pixels(run(sd, seed=4, init_image=str(init), outpaint_bottom=16, strength=0.75,
                       outpaint_fill="noise").outputs[0].image)
    assert np.array_equal(first, again)
    assert not np.array_equal(first[48:], noisy[48:]) and np.array_equal(first[:32], noisy[:32])


def test_a_batch_outpaints_each_image(sd, init):
    result = run(sd, seed=8, init_image=str(init), outpaint_left=16, batch_size=2, steps=2)
    assert [o.image.size for o in result.outputs] == [(80, 48), (80, 48)]
    assert [o.metadata["seed"] for o in result.outputs] == [8, 9]
    first, second = (pixels(o.image) for o in result.outputs)
    assert not np.array_equal(first[:, :16], second[:, :16]) and np.array_equal(first[:, 32:], second[:, 32:])


def test_cancel_lands_within_a_step_and_never_decodes(sd, init, unet_calls, decode_calls):
    result = run_generator(GEN, {**BASE, "steps": 4, "init_image": str(init), "outpaint_right": 16}, handle=sd,
                           seed=1, cancel_after=1)
    assert result.cancelled and result.outputs == [] and result.progress_after_cancel == 0
    assert len(unet_calls) == 1 and decode_calls == []


def test_bad_input_is_named_before_any_step(sd, init, tmp_path, unet_calls):
    with pytest.raises(ParamError, match="'outpaint_right': 0 — outpaint needs at least one side extended"):
        run(sd, init_image=str(tmp_path / "nowhere.png"))  # checked before the image is read
    with pytest.raises(ParamError, match="'init_image': None — outpaint needs an init image"):
        run(sd, outpaint_right=64)
    with pytest.raises(ParamError, match=r"'init_image': '.*nowhere\.png' — no such image file"):
        run(sd, init_image=str(tmp_path / "nowhere.png"), outpaint_top=8)
    with pytest.raises(ParamError, match="'outpaint_right': 1024 — the picture would be 2112×48 pixels, over 2048"):
        run(sd, init_image=str(init), outpaint_left=1024, outpaint_right=1024)
    with pytest.raises(ParamError, match="'outpaint_bottom': 1024 — the picture would be 64×2080 pixels"):
        run(sd, init_image=str(init), outpaint_top=1008, outpaint_bottom=1024)
    with pytest.raises(ParamError, match="'outpaint_right': 12 — must be a multiple of 8"):
        validate(ImageParams(**{**BASE, "outpaint_right": 12}))
    assert unet_calls == []


def test_an_inpainting_model_may_outpaint():
    import types

    handle = types.SimpleNamespace(inpainting_only=True, notes=[])  # passes the mode check, then the params'
    with pytest.raises(ParamError, match="'outpaint_right': 0 — outpaint needs at least one side"):
        run(handle)


# ------------------------------------------------------------------------------------------------ metadata


def test_outpaint_params_round_trip_through_studiolo_json_and_the_a1111_text(tmp_path, init):
    params = ImageParams(prompt="a red fox", steps=3, mode="outpaint", init_image=init, strength=0.8,
                         outpaint_left=16, outpaint_bottom=64, outpaint_feather=20, outpaint_fill="noise")
    metadata = {"params": to_json(params), "seed": 42, "model": "demo", "output": {"seed": 42}}
    path = tmp_path / "out.png"
    path.write_bytes(GEN.encode_output(ImageOutput(image=Image.new("RGB", (80, 112))), metadata).data)
    assert GEN.params_from_file(path) == params
    text = a1111_parameters(metadata)
    assert 'Denoising strength: 0.8, Outpaint: "left=16, right=0, top=0, bottom=64, feather=20, fill=noise"' in text
    a1111 = tmp_path / "a1111.png"
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (8, 8)).save(a1111, pnginfo=info)
    reuse = read_reuse(a1111)
    assert reuse is not None and reuse.source == "a1111" and reuse.seed == 42
    got = reuse.params
    assert (got.mode, got.outpaint_left, got.outpaint_right, got.outpaint_top, got.outpaint_bottom,
            got.outpaint_feather, got.outpaint_fill, got.strength) == ("outpaint", 16, 0, 0, 64, 20, "noise", 0.8)
    assert "Outpaint" not in a1111_parameters({"params": to_json(ImageParams(mode="inpaint", outpaint_left=8))})


# ------------------------------------------------------------------------------------------ panel and CLI


def test_the_panel_shows_the_extents_in_outpaint_mode_and_submits_them(qtbot, studiolo_home, init):
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.panel_host import GeneratorHost

    plugins = PluginManager(Settings()).load()
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None)
    host = GeneratorHost(engine, plugins.generator("image.diffusers"), model=lambda: "demo", seed=lambda: None,
                         message=lambda text, error: None)
    panel = GEN.create_panel(host)
    qtbot.addWidget(panel)
    panel.show()
    try:
        assert not panel.outpaint_form.isVisible() and panel.width_spin.isVisible()
        panel.set_mode("outpaint")
        assert panel.outpaint_form.isVisible() and not panel.width_spin.isVisible()
        assert panel.outpaint_form.field_widget("outpaint_feather").isVisible()
        assert panel.set_init_image(init)
        assert panel.generate() is None  # no side extended: named at once
        assert "Extend right" in panel.status.text()
        panel.apply_params(ImageParams(mode="outpaint", init_image=init, outpaint_top=24, outpaint_feather=4))
        params = panel.params()
        assert (params.mode, params.outpaint_top, params.outpaint_feather) == ("outpaint", 24, 4)
        assert panel.panel_state()["outpaint_top"] == 24
        panel.set_mode("img2img")
        assert not panel.outpaint_form.isVisible() and panel.width_spin.isVisible()
    finally:
        engine.shutdown()


def test_the_command_line_writes_the_bigger_png(tmp_path, init):
    out = tmp_path / "wide.png"
    result = run_cli("generate", "image.diffusers", "--model", "demo", "--param", "mode=outpaint",
                     "--param", f"init_image={init}", "--param", "outpaint_right=64", "--param", "steps=2",
                     "--seed", "7", "--output", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (64 + 64, 48)
        assert 'Outpaint: "left=0, right=64' in image.text["parameters"]
    bad = run_cli("generate", "image.diffusers", "--model", "demo", "--param", "mode=outpaint",
                  "--param", f"init_image={init}", "--output", str(tmp_path / "none.png"))
    assert bad.returncode in (1, 2) and "outpaint needs at least one side extended" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "none.png").exists()
