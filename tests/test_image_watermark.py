"""The image generator's optional invisible watermark (plugins/image/watermark.py: invisible-watermark's dwtDct
in the luma channel, Studiolo's own 48 bits).

The robustness asserted here is what was measured (the module docstring states the numbers): the mark survives a
lossless copy, Pillow's default JPEG at quality 90 (4:2:0 chroma subsampling) and at 75, a JPEG at quality 90
with 4:4:4, cutting rows off the bottom, and a resize to 50 % and back; it does NOT survive a 10 % crop (5 % off
each side, or 10 % off the right and bottom) or a resize to 75 %. Should one of these change (a new
invisible-watermark, OpenCV or Pillow), the test says so, and the docs (docs/generators/image.md, "Invisible
watermark") must change with it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import run_python
from PIL import Image, ImageFilter

from desktop.api import WatermarkCheck
from desktop.testing import run_generator
from plugins.image import watermark as wm
from plugins.image.generator import DiffusersImageGenerator

GEN = DiffusersImageGenerator()
WAIT = 120_000  # ms: a safety net only; every wait ends on a signal


def natural(size: int = 512, seed: int = 0) -> Image.Image:
    """A smooth, natural-looking picture (seeded): gradients, soft colour blobs and fine blurred grain — the kind
    of picture the measurements in plugins/image/watermark.py were made on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    for c in range(3):
        img[..., c] = 60 + 120 * (rng.random() * x + rng.random() * y)
    for _ in range(12):
        cx, cy, r = rng.random(), rng.random(), 0.05 + 0.25 * rng.random()
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-90, 90, 3)
    grain = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    img += (np.asarray(grain, dtype=np.float64) - 128) * 0.6
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image, quality: int = 90, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **options)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


@pytest.fixture(scope="module")
def pictures():
    original = natural(512, seed=0)
    return original, wm.mark(original)


def test_a_marked_picture_reads_back_and_an_unmarked_one_does_not(pictures):
    original, marked = pictures
    assert marked.size == original.size and marked.mode == "RGB" and marked.tobytes() != original.tobytes()
    found = wm.read(marked)
    assert found.detected and found.score == 1.0 and found.method == "invisible-watermark dwtDct, 48 bits"
    assert "48 of 48 bits" in found.detail
    plain = wm.read(original)
    assert not plain.detected and plain.score <= wm.MEASURED_UNMARKED_MAX < wm.THRESHOLD
    assert abs(wm.psnr(original, marked) - wm.MEASURED_PSNR_DB) <= 1.0  # the figure the settings page quotes
    assert wm.psnr(original, original) == float("inf")
    assert not wm.read(Image.new("RGB", (512, 512), (90, 120, 200))).detected  # flat: all zeros, half the bits
    assert wm.record() == {"method": "dwtDct", "bits": 48, "message": "5374646c6f31", "scales": [24, 0, 0]}
    assert wm.MESSAGE.hex() != "b3ec907bb19e"  # not Stability's SDXL message


def test_what_the_mark_survives_is_what_was_measured(pictures, tmp_path):
    _original, marked = pictures
    marked.save(tmp_path / "marked.webp", lossless=True)
    assert GEN.detect_watermark(tmp_path / "marked.webp", None).score == 1.0
    assert wm.read(jpeg(marked, 90, subsampling=0)).detected  # JPEG q90, 4:4:4
    assert wm.read(jpeg(marked, 90)).detected  # JPEG q90 as Pillow saves it by default (4:2:0): the mark is in luma
    assert wm.read(jpeg(marked, 75)).detected  # JPEG q75, 4:2:0
    w, h = marked.size
    assert wm.read(marked.crop((0, 0, w, h - 51))).detected  # 10 % of the rows off the bottom: the rows stay whole
    assert not wm.read(marked.crop((26, 26, w - 26, h - 26))).detected  # 5 % off each side
    assert not wm.read(marked.crop((0, 0, w - 51, h - 51))).detected  # 10 % off the right and bottom
    assert not wm.read(marked.resize((384, 384), Image.Resampling.LANCZOS)).detected  # 75 %
    half = marked.resize((256, 256), Image.Resampling.LANCZOS)
    assert wm.read(half.resize((w, h), Image.Resampling.LANCZOS)).detected  # 50 % and back up


def test_the_chroma_mark_sdxl_uses_is_lost_to_the_default_jpeg(pictures):
    """Why SCALES marks luma: the library's default (SDXL's chroma) does not survive Pillow's default JPEG."""
    from imwatermark import WatermarkDecoder, WatermarkEncoder

    original, _marked = pictures
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", wm.MESSAGE)
    chroma = Image.fromarray(encoder.encode(np.asarray(original)[:, :, ::-1].copy(), wm.METHOD)[:, :, ::-1].copy())
    expected = np.unpackbits(np.frombuffer(wm.MESSAGE, dtype=np.uint8)).astype(bool)

    def score(image):
        bits = WatermarkDecoder("bits", wm.BITS).decode(np.asarray(image)[:, :, ::-1].copy(), wm.METHOD)
        return float((np.asarray(bits, dtype=bool) == expected).mean())

    assert score(chroma) >= wm.THRESHOLD > score(jpeg(chroma, 90))
    assert wm.SCALES == [24, 0, 0] and wm.read(jpeg(wm.mark(original), 90)).detected


def test_the_settings_page_quotes_the_measured_psnr():
    from desktop.provenance.costs import IMAGE_WATERMARK_PSNR_DB, WATERMARK_COST

    assert IMAGE_WATERMARK_PSNR_DB == wm.MEASURED_PSNR_DB
    assert f"PSNR {wm.MEASURED_PSNR_DB:.0f} dB" in WATERMARK_COST


def test_pictures_too_small_are_left_unmarked_with_one_warning(sd):
    small = Image.new("RGB", (128, 128), (10, 20, 30))
    assert wm.mark(small) is small and not wm.can_mark(small.size) and wm.can_mark((256, 256))
    check = wm.read(small)
    assert not check.detected and "too small" in check.detail
    result = run_generator(GEN, {"prompt": "a red fox", "steps": 2, "width": 64, "height": 64, "batch_size": 2},
                           handle=sd, seed=3, watermark=True)
    assert len(result.outputs) == 2 and all("watermark" not in o.metadata for o in result.outputs)
    assert [w for w in result.warnings if "Invisible watermark" in w] == [
        "Invisible watermark: 64×64 pictures are too small to carry it (it needs at least 65,536 pixels, e.g. "
        "256×256); they were saved without it."]


def test_upscale_mode_marks_its_picture(sd, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    values = {"mode": "upscale", "init_image": str(tmp_path / "in.png"), "upscaler": "demo", "upscale_tile": 64}
    (output,) = run_generator(GEN, values, handle=sd, seed=5, watermark=True).outputs
    assert output.image.size == (256, 256) and output.metadata["watermark"] == wm.record()
    assert wm.read(output.image).detected


def test_detect_watermark_never_raises_for_a_bad_file(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    for path, said in ((tmp_path / "notes.png", "not a picture"), (tmp_path / "absent.png", "no such file")):
        check = GEN.detect_watermark(path, {"watermark": wm.record()})
        assert isinstance(check, WatermarkCheck) and not check.detected and check.score == 0.0
        assert said in check.detail


def test_an_engine_job_marks_its_saved_picture_only_when_asked(tiny_sd, qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    plugins = PluginManager(Settings()).load()
    engine = Engine(plugins, Settings(idle_unload_minutes=0), cache=ModelCache(), in_process=True)
    params = {"prompt": "a lighthouse", "steps": 1, "width": 256, "height": 256}
    try:
        checks = {}
        for watermark in (True, False):
            with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
                job = engine.submit("image.diffusers", params, model=str(tiny_sd), seed=7, watermark=watermark)
            (path,), (metadata,) = job.saved, job.saved_metadata
            assert metadata["output"].get("watermark") == (wm.record() if watermark else None)  # ImageOutput's
            checks[watermark] = GEN.detect_watermark(path, metadata)
        assert checks[True].detected and checks[True].score >= wm.THRESHOLD
        assert not checks[False].detected and checks[False].score < wm.THRESHOLD
    finally:
        assert engine.shutdown(timeout=30)


def test_importing_the_image_plugin_does_not_import_invisible_watermark():
    code = ("import sys\nimport plugins.image.generator, plugins.image.watermark\n"
            "print(sorted({'imwatermark', 'torch', 'cv2', 'pywt'} & set(sys.modules)) or 'CLEAN')\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CLEAN"
