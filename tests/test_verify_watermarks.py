"""Invisible watermarks, the host's part: the ``watermark`` setting reaches a generator's ``RunContext`` (also in
its worker process), and ``studiolo verify`` asks the generator that made a file — or, when the metadata was
stripped, every generator of the file's kind — whether its mark is there (``Generator.detect_watermark``).

Through a third-party plugin installed by entry point whose "watermark" is a pixel value it can find again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from desktop.cli import main
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.library import metadata_for
from desktop.plugins import PluginManager
from desktop.settings import Settings

WAIT = 60_000

PLUGIN = '''
from dataclasses import dataclass

from desktop.api import Generator, ImageOutput, WatermarkCheck, hookimpl, param


@dataclass(frozen=True)
class Params:
    prompt: str = param("a dot", prompt=True)


class Dot(Generator):
    id, name, kind, Params, default_model = "image.dot", "Dot", "image", Params, None

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        from PIL import Image

        image = Image.new("RGB", (8, 8), (10, 10, 10))
        metadata = {}
        if ctx.watermark:
            image.putpixel((0, 0), (1, 2, 3))
            metadata["watermark"] = {"method": "dot"}
        return [ImageOutput(image=image, metadata=metadata)]

    def detect_watermark(self, path, metadata, model_path=None):
        from PIL import Image

        try:
            with Image.open(path) as image:
                found = image.convert("RGB").getpixel((0, 0)) == (1, 2, 3)
        except OSError as exc:
            return WatermarkCheck("dot", False, 0.0, f"not an image: {exc}")
        return WatermarkCheck("dot", found, 1.0 if found else 0.0, "had metadata" if metadata else "no metadata")


@hookimpl
def register_generators(register):
    register(Dot())
'''


@pytest.fixture
def plugins(studiolo_site):
    studiolo_site.install("studiolo-dot", modules={"studiolo_dot": PLUGIN}, entry_points={"dot": "studiolo_dot"})
    return PluginManager(Settings(idle_unload_minutes=0)).load()


def made(plugins, qtbot, *, in_process: bool, watermark: bool | None) -> Path:
    engine = Engine(plugins, plugins.settings, cache=ModelCache(), in_process=in_process)
    try:
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
            job = engine.submit("image.dot", {}, watermark=watermark)
    finally:
        assert engine.shutdown(timeout=30)
    (path,) = job.saved
    return path


def verify(capsys, *files: Path) -> list[dict]:
    capsys.readouterr()
    main(["verify", "--json", *map(str, files)])
    return json.loads(capsys.readouterr().out)


def stripped(path: Path, dest: Path) -> Path:
    with Image.open(path) as image:
        image.convert("RGB").save(dest)  # pixels only: no text chunks, no manifest
    assert metadata_for(dest) is None
    return dest


def test_the_setting_reaches_the_generator_in_its_worker_process_and_verify_finds_the_mark(plugins, qtbot, capsys,
                                                                                           tmp_path):
    plugins.settings.watermark = True
    path = made(plugins, qtbot, in_process=False, watermark=None)  # None: as the setting says
    assert metadata_for(path)["output"]["watermark"] == {"method": "dot"}
    copy = stripped(path, tmp_path / "copy.png")
    signed, bare = verify(capsys, path, copy)
    assert signed["state"] == "valid" and bare["state"] == "unsigned"
    assert signed["watermarks"] == [{"generator": "image.dot", "method": "dot", "detected": True, "score": 1.0,
                                     "detail": "had metadata"}]
    by_generator = {found["generator"]: found for found in bare["watermarks"]}  # every image generator that marks
    assert by_generator["image.dot"]["detected"] and by_generator["image.dot"]["detail"] == "no metadata"


def test_without_the_setting_nothing_is_marked_and_verify_says_so(plugins, qtbot, capsys):
    path = made(plugins, qtbot, in_process=True, watermark=None)  # off by default
    assert "watermark" not in metadata_for(path)["output"]
    (report,) = verify(capsys, path)
    assert [(f["generator"], f["detected"]) for f in report["watermarks"]] == [("image.dot", False)]  # the maker only


def test_verify_prints_the_watermark_line_and_can_skip_it(plugins, qtbot, capsys):
    path = made(plugins, qtbot, in_process=True, watermark=True)
    capsys.readouterr()
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "watermark (dot, image.dot): detected, score 1.000" in out
    main(["verify", "--no-watermark", str(path)])
    assert "watermark (" not in capsys.readouterr().out  # the claim (how it was marked) stays; no detector ran


def test_a_marked_output_reproduces_identically_because_the_rerun_is_marked_too(plugins, qtbot):
    from desktop.provenance.reproduce import reproduce

    path = made(plugins, qtbot, in_process=True, watermark=True)  # the setting is off: only this job was marked
    engine = Engine(plugins, plugins.settings, cache=ModelCache(), in_process=True)
    try:
        report = reproduce(path, engine)
    finally:
        assert engine.shutdown(timeout=30)
    assert report.identical, report.summary()  # without the mark the dot would differ
