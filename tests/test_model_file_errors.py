"""Model-file errors name the file and the part: a safetensors header with a bad dtype, offsets or shape (the tensor
named), a garbage ``tokenizer.json``, a ``config.json`` that is not an object (once blamed on "the tokenizer"), a
diffusers folder missing a part its ``model_index.json`` lists (once "no file named config.json").

Each test copies a tiny model built once per session, breaks one file, and checks the error's type and that its
message names that file and what is wrong with it."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from helpers import run_cli

from desktop.api import LoadOptions, ModelFormatError, safetensors_header
from plugins.audio.speech import VitsSpeechGenerator
from plugins.image.generator import DiffusersImageGenerator
from plugins.text.generator import TransformersTextGenerator

IMAGE_OPTIONS = {"dtype": "auto", "attention_slicing": False, "vae_tiling": False, "cpu_offload": False}


def write_safetensors(path: Path, header: dict, data_len: int, extra: bytes = b"") -> Path:
    """A safetensors file with this ``header`` and ``data_len`` zero bytes of tensor data (then ``extra``)."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data_len) + extra)
    return path


def rewrite_header(file: Path, change) -> None:
    """Rewrite the header of the safetensors ``file`` with ``change(header)``, keeping its tensor data."""
    data = file.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    change(header)
    raw = json.dumps(header).encode()
    file.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length:])


def tensors_by_offset(header: dict) -> list[str]:
    return sorted((n for n in header if n != "__metadata__"), key=lambda n: header[n]["data_offsets"])


def copy(model: Path, dest: Path) -> Path:
    shutil.copytree(model, dest)
    return dest


def f32(shape, begin, end):
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}


# ------------------------------------------------------------------------------------- safetensors headers


HEADERS = {
    "a bad dtype": ({"w": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, 8, b"",
                    "the tensor 'w' has the dtype 'F33', which is not a safetensors dtype (BOOL, F4"),
    "a shape that does not match the bytes": ({"w": f32([3, 2], 0, 16)}, 16, b"",
                                              "the tensor 'w' of shape [3, 2] and dtype F32 takes 24 bytes, but its "
                                              "data offsets [0, 16] hold 16"),
    "overlapping offsets": ({"a": f32([4], 0, 16), "b": f32([4], 8, 24)}, 24, b"",
                            "the tensor 'b' (bytes 8–24) overlaps the tensor 'a' (which ends at byte 16)"),
    "a gap between tensors": ({"a": f32([2], 0, 8), "b": f32([2], 16, 24)}, 24, b"",
                              "the tensor 'b' starts at byte 16, but the tensor 'a' ends at byte 8: 8 bytes in "
                              "between belong to no tensor"),
    "offsets past the end": ({"a": f32([2], 0, 8), "b": f32([4], 8, 24)}, 16, b"",
                             "it is truncated ({size} bytes, {size_plus_8} expected): the tensor 'b' ends past the "
                             "end of the file"),
    "offsets that end before they begin": ({"w": f32([0], 16, 0)}, 16, b"",
                                           "the tensor 'w' has the data offsets [16, 0], which end before they begin"),
    "offsets that are not two numbers": ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, 8, b"",
                                         "the tensor 'w' has the data offsets [0], which are not two byte positions"),
    "a negative size": ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, 8, b"",
                        "the tensor 'w' has the shape [-2], which is not a list of sizes"),
    "half a byte of F4": ({"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, 2, b"",
                          "the tensor 'w' of shape [3] and dtype F4 does not fill a whole number of bytes"),
    "bytes after the last tensor": ({"w": f32([2], 0, 8)}, 8, b"more",
                                    "it has 4 bytes after the end of its last tensor 'w'"),
    "an entry that is not an object": ({"w": [0, 8]}, 8, b"", "the entry for the tensor 'w' is a list, not an object"),
    "metadata that is not text": ({"__metadata__": {"format": 1}}, 0, b"",
                                  "its __metadata__ is not a table of text values"),
}


@pytest.mark.parametrize("case", HEADERS)
def test_a_broken_safetensors_header_is_named_with_the_tensor_and_the_fault(tmp_path, case):
    header, data_len, extra, why = HEADERS[case]
    file = write_safetensors(tmp_path / "weights.safetensors", header, data_len, extra)
    with pytest.raises(ModelFormatError) as info:
        safetensors_header(file)
    size = file.stat().st_size
    why = why.format(size=size, size_plus_8=size + 8) if "{size}" in why else why
    assert info.value.message.startswith(f"{file} is not a valid safetensors file: {why}")


def test_headers_that_are_not_json_objects_are_named(tmp_path):
    file = tmp_path / "weights.safetensors"
    for raw, why in ((b"[1, 2]", "its header should be a JSON object, but it is a list"),
                     (b"{oops", "its header is not valid JSON (Expecting property name"),
                     (b"{\xff}", "its header is not UTF-8 text")):
        file.write_bytes(struct.pack("<Q", len(raw)) + raw)
        with pytest.raises(ModelFormatError) as info:
            safetensors_header(file)
        assert info.value.message.startswith(f"{file} is not a valid safetensors file: {why}")
    file.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(ModelFormatError, match="its header would be 1099511627776 bytes long, more than the format"):
        safetensors_header(file)


@pytest.mark.parametrize("case", [*HEADERS, "valid", "valid F4", "a scalar", "no tensors", "an empty tensor"])
def test_the_header_checks_agree_with_the_safetensors_library(tmp_path, case):
    """What Studiolo refuses, the library refuses too (and the reverse): the checks promise no more, no less."""
    from safetensors import safe_open

    valid = {"valid": ({"a": f32([2, 2], 0, 16), "b": f32([1], 16, 20)}, 20, b""),
             "valid F4": ({"w": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}, 2, b""),
             "a scalar": ({"w": f32([], 0, 4)}, 4, b""),
             "no tensors": ({}, 0, b""),
             "an empty tensor": ({"a": f32([0], 0, 0), "b": f32([1], 0, 4)}, 4, b"")}
    header, data_len, extra = valid[case] if case in valid else HEADERS[case][:3]
    file = write_safetensors(tmp_path / "weights.safetensors", header, data_len, extra)
    try:
        with safe_open(str(file), "np"):
            library_accepts = True
    except Exception:
        library_accepts = False
    try:
        safetensors_header(file)
        studiolo_accepts = True
    except ModelFormatError:
        studiolo_accepts = False
    assert studiolo_accepts == library_accepts == (case in valid)


# ------------------------------------------------------------------------------------------ image models


def load_image(path: Path):
    return DiffusersImageGenerator().load(path, "cpu", LoadOptions(IMAGE_OPTIONS))


def test_a_bad_dtype_in_a_part_names_the_file_and_the_tensor(tiny_sd, tmp_path):
    model = copy(tiny_sd, tmp_path / "sd")
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    first = []
    rewrite_header(weights, lambda h: (first.append(tensors_by_offset(h)[0]), h[first[0]].update(dtype="F33")))
    with pytest.raises(ModelFormatError) as info:
        load_image(model)
    assert info.value.message.startswith(f"{weights} is not a valid safetensors file: the tensor {first[0]!r} has "
                                         "the dtype 'F33'")


def test_overlapping_offsets_in_a_part_name_both_tensors(tiny_sd, tmp_path):
    model = copy(tiny_sd, tmp_path / "sd")
    weights = model / "vae" / "diffusion_pytorch_model.safetensors"
    names = []

    def overlap(header):
        names.extend(tensors_by_offset(header)[:2])
        begin, end = header[names[1]]["data_offsets"]
        header[names[1]]["data_offsets"] = [begin - 4, end - 4]

    rewrite_header(weights, overlap)
    with pytest.raises(ModelFormatError, match=f"{weights} is not a valid safetensors file: the tensor "
                                               f"'{names[1]}' .* overlaps the tensor '{names[0]}'"):
        load_image(model)


def test_a_missing_part_is_named_with_model_index(tiny_sd, tmp_path):
    model = copy(tiny_sd, tmp_path / "sd")
    shutil.rmtree(model / "unet")
    with pytest.raises(ModelFormatError) as info:
        load_image(model)
    assert info.value.message == (f"{model} has no unet/ folder, a part its model_index.json lists "
                                  "(UNet2DConditionModel).")
    assert "unet/" in info.value.hint
    shutil.copytree(tiny_sd / "unet", model / "unet", ignore=shutil.ignore_patterns("config.json"))
    with pytest.raises(ModelFormatError, match=f"{model / 'unet'} has no config.json, the configuration of its "
                                               "UNet2DConditionModel"):
        load_image(model)


def test_a_part_listed_as_left_out_is_not_required(tiny_sd, tmp_path):
    model = copy(tiny_sd, tmp_path / "sd")
    index = json.loads((model / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None] and not (model / "safety_checker").exists()
    (model / "model_index.json").write_text("[]")
    with pytest.raises(ModelFormatError, match=r"model_index.json should hold a JSON object \(\{…\}\), but it holds "
                                               "a list"):
        load_image(model)


def test_a_part_config_that_is_not_an_object_is_named(tiny_sd, tmp_path):
    model = copy(tiny_sd, tmp_path / "sd")
    (model / "scheduler" / "scheduler_config.json").write_text('"EulerDiscreteScheduler"')
    with pytest.raises(ModelFormatError) as info:
        load_image(model)
    assert info.value.message == (f"{model / 'scheduler' / 'scheduler_config.json'} should hold a JSON object "
                                  "({…}), but it holds a string.")


def test_a_garbage_tokenizer_in_a_diffusers_folder_is_named(tiny_sd, tmp_path):
    model = copy(tiny_sd, tmp_path / "sd")
    tokenizer = model / "tokenizer" / "tokenizer.json"
    tokenizer.write_text("<html>not a tokenizer</html>")
    with pytest.raises(ModelFormatError, match=f"{tokenizer} is not valid JSON: Expecting value at line 1, column 1"):
        load_image(model)


def test_the_command_line_names_the_missing_part(tiny_sd, tmp_path):
    model = copy(tiny_sd, tmp_path / "sd")
    shutil.rmtree(model / "unet")
    result = run_cli("generate", "image.diffusers", "--model", str(model), "-p", "prompt=a fox")
    assert result.returncode == 1, result.stderr
    assert f"studiolo: error: {model} has no unet/ folder, a part its model_index.json lists" in result.stderr
    assert "no file named config.json" not in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------- text models


def load_text(path: Path):
    return TransformersTextGenerator().load(path, "cpu", LoadOptions({"dtype": "auto"}))


def test_a_config_that_is_not_an_object_is_named_not_blamed_on_the_tokenizer(tiny_lm, tmp_path):
    model = copy(tiny_lm, tmp_path / "lm")
    (model / "config.json").write_text('["gpt2"]')
    with pytest.raises(ModelFormatError) as info:
        load_text(model)
    assert info.value.message == f"{model / 'config.json'} should hold a JSON object ({{…}}), but it holds a list."
    (model / "config.json").write_text('{"model_type": "gpt2",')
    with pytest.raises(ModelFormatError, match=f"{model / 'config.json'} is not valid JSON: Expecting property name "
                                               "enclosed in double quotes at line 1, column 23"):
        load_text(model)


@pytest.mark.parametrize("content, why", [
    ("garbage, not JSON", "is not valid JSON: Expecting value at line 1, column 1"),
    ("[1, 2, 3]", r"should hold a JSON object \(\{…\}\), but it holds a list"),
    ('{"model": {"type": "NoSuchModel"}}', "is not a tokenizer the tokenizers library can read: data did not match"),
])
def test_a_garbage_tokenizer_json_is_named(tiny_lm, tmp_path, content, why):
    model = copy(tiny_lm, tmp_path / "lm")
    (model / "tokenizer.json").write_text(content)
    with pytest.raises(ModelFormatError, match=f"{model / 'tokenizer.json'} {why}"):
        load_text(model)


def test_a_shape_that_does_not_match_in_a_language_model_names_the_tensor(tiny_lm, tmp_path):
    model = copy(tiny_lm, tmp_path / "lm")
    weights = model / "model.safetensors"
    name = []
    rewrite_header(weights, lambda h: (name.append(tensors_by_offset(h)[-1]), h[name[0]].update(shape=[3, 3, 3])))
    with pytest.raises(ModelFormatError, match=f"{weights} is not a valid safetensors file: the tensor '{name[0]}' of "
                                               r"shape \[3, 3, 3\] and dtype F32 takes 108 bytes"):
        load_text(model)


# ------------------------------------------------------------------------------------------ audio models


def test_audio_config_and_tokenizer_files_are_named(tiny_vits, tmp_path):
    voice = VitsSpeechGenerator()
    model = copy(tiny_vits, tmp_path / "voice")
    (model / "config.json").write_text("null")
    with pytest.raises(ModelFormatError) as info:
        voice.load(model, "cpu", LoadOptions())
    assert info.value.message == f"{model / 'config.json'} should hold a JSON object ({{…}}), but it holds null."
    shutil.copy(tiny_vits / "config.json", model / "config.json")
    (model / "vocab.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ModelFormatError, match=f"{model / 'vocab.json'} is not UTF-8 text"):
        voice.load(model, "cpu", LoadOptions())
