"""The files ``studiolo plugins new`` writes, as :class:`string.Template` texts (``$name`` placeholders).

Kept as Python strings rather than package data so they install with the ``desktop`` package and need no
``package-data`` settings. :func:`desktop.scaffold.render` fills them in; ``tests/test_scaffold.py`` runs what they
become. The placeholders: ``name`` (entry point), ``kind``, ``dist``, ``module``, ``generator_id``, ``cls`` (class
prefix), ``title``, ``range`` (the Studiolo specifier), ``studiolo_version``, ``description``, ``authors`` (a whole
line or nothing), ``range_policy``, ``extra_dependencies``, ``suffix`` (the output file's), ``example_param``.
"""

from __future__ import annotations

DESCRIPTIONS = {
    "text": "Continues a prompt with words drawn from a vocabulary: a text generator for Studiolo.",
    "image": "Draws seeded stripes and checkers in the colours of a palette: an image generator for Studiolo.",
    "audio": "Plays a seeded melody of sine tones on a musical scale: an audio generator for Studiolo.",
}

EXTRA_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "text": (),
    "image": ("pillow>=10",),
    "audio": ("numpy>=1.26",),
}
"""What each kind's module imports besides Studiolo (Studiolo depends on them too; a plugin declares what it uses)."""

RANGE_POLICIES = {
    "0": "before 1.0 a minor release of Studiolo may change the plugin API",
    "1+": "only a major release of Studiolo may change the plugin API",
}
"""Why the Studiolo range ends where it does, before and from 1.0 (in pyproject.toml's comment and the README)."""

OUTPUT_SUFFIXES = {"text": ".txt", "image": ".png", "audio": ".wav"}
EXAMPLE_PARAMS = {"text": "words=40", "image": "pattern=checkers", "audio": "seconds=5"}

PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "$description"
readme = "README.md"
requires-python = ">=3.11"
${authors}# The Studiolo versions this plugin works with. It was made with Studiolo $studiolo_version, and
# $range_policy: the range ends before the next one.
dependencies = ["studiolo$range"$extra_dependencies]

[project.optional-dependencies]
test = ["pytest>=8"]

# How Studiolo finds the plugin: the name on the left is the plugin's name in `studiolo plugins list`.
[project.entry-points.studiolo]
$name = "$module"

[tool.setuptools]
packages = ["$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""

GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
.pytest_cache/
.venv/
"""

README = """\
# $dist

$description

Made with `studiolo plugins new`; the plugin author's guide is `docs/plugin-tutorial.md` in Studiolo's
repository.

## Install

Into the environment Studiolo runs in (editable: a change to the code takes effect at Studiolo's next start):

    pip install -e '.[test]'
    studiolo plugins list        # $name  0.1.0  loaded  $generator_id

## Run

    studiolo generate $generator_id --model demo --param $example_param --seed 1 --output out$suffix
    studiolo generate $generator_id --param help       # its parameters

Or open Studiolo: the generator is in the sidebar under *$kind*. `--model demo` is the tiny model its
`build_demo_model` writes offline; any other model reference (a file, a folder, an imported model) goes through
its `load`.

## Test

    pytest

The tests use the fixtures Studiolo's pytest plugin provides: `studiolo_project` (this package's plugin, found by
the entry point in `pyproject.toml`, so the tests run before the package is installed too) and `studiolo_run` (one
job through the generator's real `load` and `generate`).

## Publish

Choose a licence (add a `LICENSE` file and `license = "..."` in `pyproject.toml`), raise `version` in
`pyproject.toml` and the generator's `version`, then:

    python -m pip install build twine
    python -m build                  # dist/: the source archive and the wheel
    python -m twine check dist/*
    python -m twine upload dist/*    # to PyPI; add --repository testpypi to try it out first

Anyone can then `pip install $dist` next to Studiolo.

## Compatibility

`dependencies` in `pyproject.toml` says which Studiolo versions this plugin works with: `studiolo$range`,
because $range_policy. pip will not install the plugin next to a Studiolo outside that range, and Studiolo lists
it as failed (with the range it asked for) if one gets there anyway. When a new Studiolo comes out, run the tests
against it and widen the range.
"""

TEXT_MODULE = '''\
"""$title: a text generator plugin for Studiolo.

It continues the prompt with words drawn from its model, a vocabulary file (one word per line). The demo model
is a short vocabulary written offline, so the plugin works, and its tests run, without downloads. To make it
yours, replace the vocabulary with your own model: `load` turns the model's files into a handle, `generate` runs
one job with it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from desktop.api import Generator, ModelFormatError, TextOutput, hookimpl, param

DEMO_VOCABULARY = """\\
lantern harbour morning river window letter garden candle mountain silver quiet bright slowly across under
between remembers carries follows opens listens wanders gathers the a of and with toward beyond
""".split()


@dataclass(frozen=True)
class ${cls}Params:
    prompt: str = param("", prompt=True, multiline=True, help="Text to continue. Empty: start a new sentence.")
    words: int = param(30, min=1, max=5000, help="How many words to add.")
    sentence_length: int = param(8, min=2, max=40, help="Words per sentence, on average.")


class ${cls}Generator(Generator):
    id = "$generator_id"
    name = "$title"
    kind = "text"
    version = "0.1.0"  # recorded with every output; raise it with the package's version
    description = "Continues the prompt with words from a vocabulary."
    Params = ${cls}Params
    default_model = "demo"

    def build_demo_model(self, dest: Path) -> None:
        (dest / "vocabulary.txt").write_text("\\n".join(DEMO_VOCABULARY) + "\\n", encoding="utf-8")

    def load(self, model_path, device, options):
        # A model is a text file with one word per line, or a folder holding vocabulary.txt.
        path = model_path / "vocabulary.txt" if model_path.is_dir() else model_path
        try:
            words = path.read_text(encoding="utf-8").split()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"Cannot read the vocabulary {path}: {exc}",
                                   hint="Choose a UTF-8 text file with one word per line, or a folder with "
                                        "vocabulary.txt.") from exc
        if not words:
            raise ModelFormatError(f"The vocabulary {path} holds no words.", hint="Add words, one per line.")
        return words

    def generate(self, words, params, ctx):
        rng = random.Random(ctx.seed)  # all randomness from the job's seed: the same seed writes the same text
        text = params.prompt.rstrip()
        for step in range(params.words):
            # Check for cancel every step, handing over what was written so far.
            ctx.raise_if_cancelled(partial=[TextOutput(text=text, partial=True)])
            word = rng.choice(words)
            if not text or text.endswith("."):
                word = word.capitalize()
            if step == params.words - 1 or rng.random() < 1 / params.sentence_length:
                word += "."
            chunk = (" " if text else "") + word
            text += chunk
            ctx.preview(chunk)  # streamed into the window as it is written
            ctx.progress(step + 1, params.words)
        return [TextOutput(text=text, metadata={"words_added": params.words})]


@hookimpl
def register_generators(register):
    register(${cls}Generator())
'''

IMAGE_MODULE = '''\
"""$title: an image generator plugin for Studiolo.

It draws a seeded pattern, stripes or checkers, in the colours of its model: a palette file (palette.json, a list
of "#rrggbb" colours). The demo model is a palette written offline, so the plugin works, and its tests run,
without downloads. It needs neither numpy nor torch: each row of pixels is plain bytes, handed to Pillow. To make
it yours, replace the palette with your own model: `load` turns the model's files into a handle, `generate` runs
one job with it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from desktop.api import Generator, ImageOutput, JobCancelled, ModelFormatError, hookimpl, param

DEMO_PALETTE = ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#fefae0"]


@dataclass(frozen=True)
class ${cls}Params:
    prompt: str = param("", prompt=True, help="A title for the image: stored with it, searchable in the gallery.")
    pattern: str = param("stripes", choices=("stripes", "checkers"), help="What to draw.")
    width: int = param(256, min=8, max=2048, multiple_of=8, help="Width in pixels.")
    height: int = param(256, min=8, max=2048, multiple_of=8, help="Height in pixels.")
    cell: int = param(16, min=1, max=512, help="The width of a stripe or a square, in pixels.")


class ${cls}Generator(Generator):
    id = "$generator_id"
    name = "$title"
    kind = "image"
    version = "0.1.0"  # recorded with every output; raise it with the package's version
    description = "Draws seeded stripes and checkers in the colours of a palette."
    Params = ${cls}Params
    default_model = "demo"

    def build_demo_model(self, dest: Path) -> None:
        (dest / "palette.json").write_text(json.dumps({"colours": DEMO_PALETTE}), encoding="utf-8")

    def load(self, model_path, device, options):
        # A model is a palette.json file, or a folder holding one.
        path = model_path / "palette.json" if model_path.is_dir() else model_path
        try:
            palette = [bytes.fromhex(colour.removeprefix("#"))
                       for colour in json.loads(path.read_text(encoding="utf-8"))["colours"]]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelFormatError(f"Cannot read the palette {path}: {exc}",
                                   hint='Choose a palette.json holding {"colours": ["#rrggbb", ...]}, or a folder '
                                        "with one.") from exc
        if len(palette) < 2 or any(len(colour) != 3 for colour in palette):
            raise ModelFormatError(f"The palette {path} needs at least two colours, each written #rrggbb.",
                                   hint="Add colours to it.")
        return palette

    def generate(self, palette, params, ctx):
        from PIL import Image  # imported when a job runs, not when Studiolo starts

        rng = random.Random(ctx.seed)  # all randomness from the job's seed: the same seed draws the same image
        colours = rng.sample(palette, len(palette))
        shift = rng.randrange(params.cell * len(colours))
        width, height, cell = params.width, params.height, params.cell
        pixels = bytearray(width * height * 3)  # black until drawn

        def image():
            return Image.frombytes("RGB", (width, height), bytes(pixels))

        for y in range(height):
            if ctx.cancelled:  # checked every row; the rows drawn so far are handed over
                raise JobCancelled(partial=[ImageOutput(image=image(), partial=True)])
            if params.pattern == "stripes":
                row = [colours[(x + y + shift) // cell % len(colours)] for x in range(width)]
            else:
                row = [colours[((x + shift) // cell + y // cell) % len(colours)] for x in range(width)]
            pixels[y * width * 3:(y + 1) * width * 3] = b"".join(row)
            ctx.progress(y + 1, height)
            if (y + 1) % max(1, height // 8) == 0:
                ctx.preview(image())  # shown in the window while the job runs
        return [ImageOutput(image=image(), metadata={"pattern": params.pattern})]


@hookimpl
def register_generators(register):
    register(${cls}Generator())
'''

AUDIO_MODULE = '''\
"""$title: an audio generator plugin for Studiolo.

It plays a seeded melody of sine tones on the notes of its model: a scale file (scale.json, the notes'
frequencies in hertz). The demo model is a pentatonic scale written offline, so the plugin works, and its tests
run, without downloads. To make it yours, replace the scale with your own model: `load` turns the model's files
into a handle, `generate` runs one job with it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from desktop.api import AudioOutput, Generator, JobCancelled, ModelFormatError, hookimpl, param

DEMO_SCALE = [261.63, 293.66, 329.63, 392.00, 440.00, 523.25]
SAMPLE_RATE = 22050
FADE_SECONDS = 0.01  # each note fades in and out this fast, so notes join without clicks


@dataclass(frozen=True)
class ${cls}Params:
    prompt: str = param("", prompt=True, help="A title for the clip: stored with it, searchable in the gallery.")
    seconds: float = param(3.0, min=0.25, max=120.0, step=0.25, help="Length of the clip.")
    notes_per_second: float = param(4.0, min=0.5, max=16.0, step=0.5, help="How fast the melody moves.")
    volume: float = param(0.5, min=0.0, max=1.0, step=0.05, help="Loudness: 1 is full scale.")


class ${cls}Generator(Generator):
    id = "$generator_id"
    name = "$title"
    kind = "audio"
    version = "0.1.0"  # recorded with every output; raise it with the package's version
    description = "Plays a seeded melody of sine tones on a musical scale."
    Params = ${cls}Params
    default_model = "demo"

    def build_demo_model(self, dest: Path) -> None:
        (dest / "scale.json").write_text(json.dumps({"notes_hz": DEMO_SCALE}), encoding="utf-8")

    def load(self, model_path, device, options):
        # A model is a scale.json file, or a folder holding one.
        path = model_path / "scale.json" if model_path.is_dir() else model_path
        try:
            notes = [float(hz) for hz in json.loads(path.read_text(encoding="utf-8"))["notes_hz"]]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise ModelFormatError(f"Cannot read the scale {path}: {exc}",
                                   hint='Choose a scale.json holding {"notes_hz": [261.63, ...]}, or a folder '
                                        "with one.") from exc
        if not notes or not all(20.0 <= hz <= SAMPLE_RATE / 2 for hz in notes):
            raise ModelFormatError(f"The scale {path} needs at least one note between 20 and "
                                   f"{SAMPLE_RATE // 2} Hz.", hint="Fix the frequencies in it.")
        return notes

    def generate(self, notes, params, ctx):
        import numpy as np  # imported when a job runs, not when Studiolo starts

        rng = random.Random(ctx.seed)  # all randomness from the job's seed: the same seed plays the same melody
        total = round(params.seconds * SAMPLE_RATE)
        count = max(1, round(params.seconds * params.notes_per_second))
        chunks = []
        for i in range(count):
            if ctx.cancelled:  # checked every note; the notes played so far are handed over
                played = [AudioOutput(samples=np.concatenate(chunks), sample_rate=SAMPLE_RATE, partial=True)]
                raise JobCancelled(partial=played if chunks else [])
            n = round((i + 1) * total / count) - round(i * total / count)  # the notes fill the clip exactly
            t = np.arange(n) / SAMPLE_RATE
            fade = np.minimum(1.0, np.minimum(t, t[::-1]) / FADE_SECONDS)
            chunk = (params.volume * fade * np.sin(2 * np.pi * rng.choice(notes) * t)).astype(np.float32)
            chunks.append(chunk)
            ctx.preview(AudioOutput(samples=chunk, sample_rate=SAMPLE_RATE))  # played while the job runs
            ctx.progress(i + 1, count)
        return [AudioOutput(samples=np.concatenate(chunks), sample_rate=SAMPLE_RATE, metadata={"notes": count})]


@hookimpl
def register_generators(register):
    register(${cls}Generator())
'''

TEXT_TESTS = '''\
"""Tests for $dist.

They use the fixtures of the pytest plugin Studiolo ships: `studiolo_project` (this package's plugin, found by the
entry point in pyproject.toml, installed or not) and `studiolo_run` (one job, through the real `load` and `generate`).
"""

from __future__ import annotations

import pytest

from desktop.api import ModelFormatError, ParamError, TextOutput

GENERATOR_ID = "$generator_id"


@pytest.fixture
def generator(studiolo_project):
    return studiolo_project.generator(GENERATOR_ID)


def test_continues_the_prompt_word_by_word(generator, studiolo_run):
    result = studiolo_run(generator, {"prompt": "Once upon a time", "words": 12}, model="demo", seed=1)
    (output,) = result.outputs
    assert isinstance(output, TextOutput) and not output.partial
    assert output.text.startswith("Once upon a time ") and len(output.text.split()) == 4 + 12
    assert "Once upon a time" + "".join(result.previews) == output.text  # every word was streamed
    assert [p[:2] for p in result.progress] == [(i, 12) for i in range(1, 13)]


def test_the_same_seed_writes_the_same_text(generator, studiolo_run):
    texts = [studiolo_run(generator, {"words": 20}, model="demo", seed=s).outputs[0].text for s in (7, 7, 8)]
    assert texts[0] == texts[1] != texts[2]


def test_cancel_stops_at_once_and_keeps_the_words_written(generator, studiolo_run):
    result = studiolo_run(generator, {"words": 500}, model="demo", seed=2, cancel_after=3)
    assert result.cancelled and result.progress_after_cancel == 0
    (partial,) = result.outputs
    assert partial.partial and len(partial.text.split()) == 3


def test_parameters_are_checked(generator, studiolo_run):
    with pytest.raises(ParamError, match="'words'"):
        studiolo_run(generator, {"words": 0}, model="demo")


def test_an_unreadable_model_is_a_clear_error(generator, studiolo_run, tmp_path):
    (tmp_path / "vocabulary.txt").write_bytes(b"\\xff\\xfe not text")
    with pytest.raises(ModelFormatError, match="Cannot read the vocabulary"):
        studiolo_run(generator, {"words": 3}, model=str(tmp_path))
'''

IMAGE_TESTS = '''\
"""Tests for $dist.

They use the fixtures of the pytest plugin Studiolo ships: `studiolo_project` (this package's plugin, found by the
entry point in pyproject.toml, installed or not) and `studiolo_run` (one job, through the real `load` and `generate`).
"""

from __future__ import annotations

import json

import pytest

from desktop.api import ImageOutput, ModelFormatError, ParamError
from $module import DEMO_PALETTE

GENERATOR_ID = "$generator_id"
PALETTE = {tuple(bytes.fromhex(colour[1:])) for colour in DEMO_PALETTE}


@pytest.fixture
def generator(studiolo_project):
    return studiolo_project.generator(GENERATOR_ID)


@pytest.mark.parametrize("pattern", ["stripes", "checkers"])
def test_draws_the_pattern_row_by_row_in_the_palette(generator, studiolo_run, pattern):
    result = studiolo_run(generator, {"pattern": pattern, "width": 64, "height": 32, "cell": 8}, model="demo", seed=1)
    (output,) = result.outputs
    assert isinstance(output, ImageOutput) and not output.partial and output.image.size == (64, 32)
    colours = {colour for _, colour in output.image.getcolors()}
    assert len(colours) > 1 and colours <= PALETTE
    assert [p[:2] for p in result.progress] == [(y, 32) for y in range(1, 33)]
    assert result.previews and result.previews[-1].tobytes() == output.image.tobytes()


def test_the_same_seed_draws_the_same_image(generator, studiolo_run):
    images = [studiolo_run(generator, {"width": 32, "height": 32}, model="demo", seed=s).outputs[0].image.tobytes()
              for s in (3, 3, 4)]
    assert images[0] == images[1] != images[2]


def test_cancel_stops_at_once_and_keeps_the_rows_drawn(generator, studiolo_run):
    result = studiolo_run(generator, {"width": 16, "height": 64}, model="demo", seed=2, cancel_after=5)
    assert result.cancelled and result.progress_after_cancel == 0
    (partial,) = result.outputs
    assert partial.partial and partial.image.size == (16, 64)
    assert partial.image.getpixel((0, 4)) in PALETTE and partial.image.getpixel((0, 5)) == (0, 0, 0)


def test_parameters_are_checked(generator, studiolo_run):
    with pytest.raises(ParamError, match="multiple of 8"):
        studiolo_run(generator, {"width": 100}, model="demo")


def test_a_bad_palette_is_a_clear_error(generator, studiolo_run, tmp_path):
    (tmp_path / "palette.json").write_text(json.dumps({"colours": ["#123456", "not a colour"]}))
    with pytest.raises(ModelFormatError, match="Cannot read the palette"):
        studiolo_run(generator, model=str(tmp_path))
'''

AUDIO_TESTS = '''\
"""Tests for $dist.

They use the fixtures of the pytest plugin Studiolo ships: `studiolo_project` (this package's plugin, found by the
entry point in pyproject.toml, installed or not) and `studiolo_run` (one job, through the real `load` and `generate`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from desktop.api import AudioOutput, ModelFormatError, ParamError
from $module import DEMO_SCALE, SAMPLE_RATE

GENERATOR_ID = "$generator_id"


@pytest.fixture
def generator(studiolo_project):
    return studiolo_project.generator(GENERATOR_ID)


def test_plays_a_clip_of_the_length_asked_note_by_note(generator, studiolo_run):
    result = studiolo_run(generator, {"seconds": 1.0, "notes_per_second": 4.0, "volume": 0.5}, model="demo", seed=1)
    (output,) = result.outputs
    assert isinstance(output, AudioOutput) and not output.partial
    assert output.sample_rate == SAMPLE_RATE and output.duration == 1.0
    assert 0.4 < np.abs(output.samples).max() <= 0.5
    assert [p[:2] for p in result.progress] == [(i, 4) for i in range(1, 5)]
    assert np.array_equal(np.concatenate([chunk.samples for chunk in result.previews]), output.samples)


def test_every_note_is_on_the_scale(generator, studiolo_run):
    (output,) = studiolo_run(generator, {"seconds": 2.0, "notes_per_second": 2.0}, model="demo", seed=5).outputs
    for note in np.split(output.samples, 4):
        peak = np.fft.rfftfreq(len(note), 1 / SAMPLE_RATE)[np.argmax(np.abs(np.fft.rfft(note)))]
        assert min(abs(peak - hz) for hz in DEMO_SCALE) < 3


def test_the_same_seed_plays_the_same_melody(generator, studiolo_run):
    clips = [studiolo_run(generator, {"seconds": 2.0}, model="demo", seed=s).outputs[0].samples for s in (3, 3, 4)]
    assert np.array_equal(clips[0], clips[1]) and not np.array_equal(clips[0], clips[2])


def test_cancel_stops_at_once_and_keeps_the_notes_played(generator, studiolo_run):
    result = studiolo_run(generator, {"seconds": 10.0, "notes_per_second": 4.0}, model="demo", cancel_after=2)
    assert result.cancelled and result.progress_after_cancel == 0
    (partial,) = result.outputs
    assert partial.partial and len(partial.samples) == 2 * SAMPLE_RATE // 4


def test_parameters_are_checked(generator, studiolo_run):
    with pytest.raises(ParamError, match="'volume'"):
        studiolo_run(generator, {"volume": 2.0}, model="demo")


def test_a_bad_scale_is_a_clear_error(generator, studiolo_run, tmp_path):
    (tmp_path / "scale.json").write_text(json.dumps({"notes_hz": []}))
    with pytest.raises(ModelFormatError, match="at least one note"):
        studiolo_run(generator, model=str(tmp_path))
'''

MODULES = {"text": TEXT_MODULE, "image": IMAGE_MODULE, "audio": AUDIO_MODULE}
TESTS = {"text": TEXT_TESTS, "image": IMAGE_TESTS, "audio": AUDIO_TESTS}
