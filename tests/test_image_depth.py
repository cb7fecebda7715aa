"""The ``control_map`` mode (a ControlNet unit's preprocessed map alone) and the depth preprocessor (a tiny random
Depth Anything model through transformers), in jobs and in A1111's ``ControlNet N`` metadata."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from desktop.api import ModelFormatError, ModelNotFoundError, ParamError
from desktop.testing import run_generator
from plugins.image.control_map import annotator_path, estimate_depth
from plugins.image.controlnet import a1111_fields, format_unit, parse_unit, units_from_a1111
from plugins.image.demo import build_tiny_controlnet, build_tiny_depth
from plugins.image.generator import DiffusersImageGenerator
from plugins.image.metadata import encode_png, read_params
from plugins.image.preprocess import canny

GEN = DiffusersImageGenerator()
BASE = {"prompt": "a red fox", "steps": 3, "width": 64, "height": 64}



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny ControlNet, the tiny depth model, an 80×80 "photo" (resized to 64×64 by every job) and its
    64×64 resize as a job makes it."""
    root = tmp_path_factory.mktemp("depth")
    yy, xx = np.mgrid[0:80, 0:80]
    photo = np.stack([xx * 3, yy * 3, (xx + yy) * 1.5], -1).astype(np.uint8)
    photo[20:60, 20:60] = 255  # a bright square: edges for canny, a shape for depth
    Image.fromarray(photo).save(root / "photo.png")
    resized = Image.fromarray(photo).resize((64, 64), Image.Resampling.LANCZOS)
    return {"net": build_tiny_controlnet(root / "cn", seed=1), "depth": build_tiny_depth(root / "depth-model"),
            "photo": root / "photo.png", "resized": resized, "root": root}


def unit(files, rest=""):
    return f"{files['net']}|{files['photo']}{rest}"


def pixels(result) -> np.ndarray:
    (output,) = result.outputs
    return np.asarray(output.image).astype(np.int16)


# ------------------------------------------------------------------------------------------------ control_map


def test_control_map_is_the_canny_map_of_the_resized_image_with_no_diffusion(sd, files):
    result = run_generator(GEN, {**BASE, "mode": "control_map",
                                 "controlnets": [f"any text|{files['photo']}|preprocess=canny|low=50|high=150"]},
                           handle=sd, seed=3)
    (output,) = result.outputs
    assert output.image.size == (64, 64) and output.image.mode == "RGB"
    assert np.array_equal(np.asarray(output.image), np.asarray(canny(files["resized"], 50, 150)))
    assert [(done, total) for done, total, _ in result.progress] == [(0, 1), (1, 1)]
    assert output.metadata["mode"] == "control_map" and output.metadata["control_map"] == "canny"
    assert any("80×80" in warning for warning in result.warnings)  # resized, with a note, as a real job does
    assert not sd.controlnets  # no ControlNet model was loaded
    params = {**BASE, "mode": "control_map", "controlnets": [f"any|{files['photo']}|preprocess=canny"]}
    png = encode_png(output, {"params": params, "prompt": "", "seed": 3, "output": output.metadata}).data
    assert read_params(png).mode == "control_map"  # the gallery's record says what it is


def test_control_map_needs_a_unit(sd):
    with pytest.raises(ParamError, match="needs a ControlNet unit"):
        run_generator(GEN, {**BASE, "mode": "control_map"}, handle=sd)


def test_control_map_with_depth_is_the_depth_map(sd, files):
    result = run_generator(GEN, {**BASE, "mode": "control_map",
                                 "controlnets": [unit(files, f"|preprocess=depth|annotator={files['depth']}")]},
                           handle=sd)
    expected = np.asarray(estimate_depth(files["resized"], str(files["depth"]))).astype(np.int16)
    assert np.array_equal(pixels(result), expected)
    assert result.outputs[0].metadata["control_map"] == "depth"


# ------------------------------------------------------------------------------------------------ depth


def test_the_depth_map_is_a_deterministic_rgb_map_of_the_picture(files, tmp_path):
    depth = estimate_depth(files["resized"], str(files["depth"]))
    assert depth.size == (64, 64) and depth.mode == "RGB"
    values = np.asarray(depth)
    assert np.array_equal(values[..., 0], values[..., 1]) and np.array_equal(values[..., 0], values[..., 2])
    assert values.min() == 0 and values.max() == 255 and len(np.unique(values)) > 20  # normalised, not flat
    again = estimate_depth(files["resized"], str(build_tiny_depth(tmp_path / "again")))  # rebuilt, loaded anew
    assert np.array_equal(np.asarray(again), values)
    other = estimate_depth(Image.fromarray(255 - np.asarray(files["resized"])), str(files["depth"]))
    assert not np.array_equal(np.asarray(other), values)  # it depends on the picture
    assert annotator_path("demo") == annotator_path("demo")  # the demo is built once per process


def test_a_controlnet_job_with_depth_runs_on_the_depth_map_and_differs_from_canny(sd, files):
    from types import SimpleNamespace

    from plugins.image.controlnet import _control_image  # what prepare_control hands the pipeline

    depth_unit = unit(files, f"|preprocess=depth|annotator={files['depth']}")
    control = _control_image(parse_unit(depth_unit), 1, (64, 64), SimpleNamespace(warn=lambda note: None))
    assert np.array_equal(np.asarray(control), np.asarray(estimate_depth(files["resized"], str(files["depth"]))))
    plain = pixels(run_generator(GEN, BASE, handle=sd, seed=3))
    with_depth = pixels(run_generator(GEN, {**BASE, "controlnets": [depth_unit]}, handle=sd, seed=3))
    with_canny = pixels(run_generator(GEN, {**BASE, "controlnets": [unit(files, "|preprocess=canny")]},
                                      handle=sd, seed=3))
    assert np.abs(with_depth - plain).max() > 10
    # the tiny random ControlNet barely tells one map from another (a level or so), but it does tell them apart
    assert not np.array_equal(with_depth, with_canny)


def test_a_bad_annotator_is_refused(sd, files):
    def job(annotator):
        return run_generator(GEN, {**BASE, "mode": "control_map",
                                   "controlnets": [unit(files, f"|preprocess=depth|annotator={annotator}")]},
                             handle=sd)

    with pytest.raises(ModelNotFoundError, match=r"No model found at .*nowhere.*\(Depth estimators\)") as missing:
        job(files["root"] / "nowhere")
    assert "folder" in missing.value.hint
    with pytest.raises(ModelNotFoundError, match="is not downloaded") as not_here:
        job("nobody/no-such-depth-model")
    assert "Models page" in not_here.value.hint
    with pytest.raises(ModelFormatError, match="could not be loaded"):
        job(files["net"])  # a ControlNet folder, not a depth model


# ------------------------------------------------------------------------------------------------ metadata


def test_depth_units_round_trip_through_a1111_module_names(files):
    text = unit(files, f"|0.7|0|0.8|preprocess=depth|annotator={files['depth']}")
    assert parse_unit(format_unit(parse_unit(text))) == parse_unit(text)
    ((key, value),) = a1111_fields([text])
    assert key == "ControlNet 0" and "Module: depth_anything_v2" in value
    (back,) = units_from_a1111({key: value})
    assert parse_unit(back).preprocess == "depth" and parse_unit(back).weight == 0.7
    (midas,) = units_from_a1111({"ControlNet 0": "Module: depth_midas, Model: control_v11f1p_sd15_depth [cfd03158], "
                                                  "Weight: 1, Guidance Start: 0, Guidance End: 1"})
    assert parse_unit(midas).preprocess == "depth" and parse_unit(midas).model == "control_v11f1p_sd15_depth"
