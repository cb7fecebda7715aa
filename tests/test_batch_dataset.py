"""Dataset folders (``desktop.batch.dataset``): what the writer makes, the real ``datasets`` library loads with no
code — every metadata column, with its values — and ``sha256sum -c`` checks; the model weights hash; and
``studiolo gallery export ID... --out DIR``. Tiny files made here (PIL, ``wave``, text); the batch run's end-to-end
tests live with the run."""

from __future__ import annotations

import builtins
import hashlib
import json
import struct
import subprocess
import sys
import types
import wave
from pathlib import Path
from typing import Any

import pytest
from library_items import fill_library

from desktop.api import ParamError, StudioloError
from desktop.batch.dataset import COLUMNS, FORMATS, DatasetWriter, default_format, model_weights_hash
from desktop.cli import gallery_cmd, main
from desktop.library import Library, Query

CARD = {"generator": "image.diffusers", "generator_version": "1.2", "kind": "image", "model": "demo",
        "license": "mit", "params": {"steps": 2}, "seed_mode": "sequential", "seed": 7, "total": 3,
        "command": "studiolo batch image.diffusers --prompts p.txt --out ds", "date": "2026-01-02 10:00"}


def load(*args: Any, tmp_path: Path, **kwargs: Any) -> Any:
    import datasets

    return datasets.load_dataset(*args, cache_dir=str(tmp_path / "hf-datasets-cache"), keep_in_memory=True,
                                 **kwargs)["train"]


def row(index: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"{index:06d}-0", "prompt": f"a fox number {index}", "negative_prompt": None if index else "blur",
            "seed": 7 + index, "params": {"prompt": f"a fox number {index}", "steps": 2, "width": 8},
            "model": "demo", "model_sha256": "ab" * 32, "generator": "image.diffusers", "generator_version": "1.2",
            "license": "mit", "source_file": "", "source_sha256": "", "batch_row": index + 1, **extra}


def expected(index: int) -> dict[str, Any]:
    """What the loader must give back for ``row(index)``: None → "", params as sorted JSON text."""
    r = row(index)
    return {**r, "negative_prompt": r["negative_prompt"] or "", "params": json.dumps(r["params"], sort_keys=True)}


def png(tmp_path: Path, name: str, colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    path = tmp_path / "made" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), colour).save(path)
    return path


def wav(tmp_path: Path, name: str, value: int) -> Path:
    path = tmp_path / "made" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<8h", *([value] * 8)))
    return path


def journal_and_litter(out: Path) -> None:
    """What a batch leaves beside the data: its journal in the dot folder, a temporary file of a killed write."""
    (out / ".studiolo-batch").mkdir(exist_ok=True)
    (out / ".studiolo-batch" / "plan.json").write_text('{"items": []}')
    (out / ".studiolo-batch" / "done.jsonl").write_text('{"index": 0, "files": []}\n')
    (out / ".000009-0.png.abcd1234.tmp").write_bytes(b"half a file")


def check_manifest(out: Path) -> None:
    lines = (out / "SHA256SUMS").read_text().splitlines()
    names = {line.split("  ", 1)[1] for line in lines}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts)}
    assert names == on_disk - {"SHA256SUMS"}
    result = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == len(lines)


def front_matter(out: Path) -> str:
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    return text.split("---\n", 2)[1]


# -- image, text, audio, parquet -----------------------------------------------------------------------------------


def test_imagefolder_loads_with_every_column(tmp_path: Path):
    out = tmp_path / "ds"
    writer = DatasetWriter(out, "imagefolder", card=CARD)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    returned = []
    for i, colour in enumerate(colours):
        extra = {"source_file": "/inputs/cat.png", "source_sha256": "cd" * 32} if i == 2 else {}
        returned.append(writer.add({**row(i), **extra}, file=png(tmp_path, f"out{i}.png", colour)))
    assert returned[1] == [{"name": "000001-0.png", "sha256": hashlib.sha256((out / "000001-0.png").read_bytes())
                            .hexdigest(), "size": (out / "000001-0.png").stat().st_size}]
    writer.finish(complete=True)
    journal_and_litter(out)

    data = load("imagefolder", data_dir=str(out), tmp_path=tmp_path)
    assert data.column_names == ["image", *COLUMNS]
    assert data.num_rows == 3  # README.md, SHA256SUMS, the dot folder and the dot file are not rows
    for i, colour in enumerate(colours):
        got = data[i]
        assert got["image"].size == (8, 6) and got["image"].convert("RGB").getpixel((0, 0)) == colour
        want = expected(i) | ({"source_file": "/inputs/cat.png", "source_sha256": "cd" * 32} if i == 2 else {})
        assert {c: got[c] for c in COLUMNS} == want
    # the card's configs make the folder loadable by its path alone, the same rows
    assert load(str(out), tmp_path=tmp_path)["id"] == data["id"]

    yaml = front_matter(out)
    assert "license: mit" in yaml and "- synthetic" in yaml and "- studiolo" in yaml
    assert "- image-to-image" in yaml  # one item has a source file
    card = (out / "README.md").read_text()
    assert "Complete: 3 item(s) of 3" in card and "`image.diffusers` 1.2" in card and "ab" * 32 in card
    assert "sequential: seed 7" in card and CARD["command"] in card and "sha256sum -c SHA256SUMS" in card
    assert "**Date**: 2026-01-02 10:00" in card
    assert 'load_dataset("imagefolder", data_dir=".")' in card
    check_manifest(out)


def test_jsonl_text_loads_and_a_text_file_becomes_its_text(tmp_path: Path):
    out = tmp_path / "texts"
    writer = DatasetWriter(out, default_format("text"), card={"kind": "text", "generator": "text.transformers"})
    assert writer.add(row(0, generator="text.transformers"), text="Once upon a time.\nThe end.") == []
    story = tmp_path / "story.txt"
    story.write_text("Ünïcode ✓ story", encoding="utf-8")
    assert writer.add(row(1, generator="text.transformers"), file=story) == []
    writer.finish(complete=True)
    journal_and_litter(out)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["README.md", "SHA256SUMS",
                                                                                     "data.jsonl"]

    data = load("json", data_files=str(out / "data.jsonl"), tmp_path=tmp_path)
    assert data.column_names == [*COLUMNS, "text"]
    assert data["text"] == ["Once upon a time.\nThe end.", "Ünïcode ✓ story"]
    for i in range(2):
        assert {c: data[i][c] for c in COLUMNS} == expected(i) | {"generator": "text.transformers"}
    assert load(str(out), tmp_path=tmp_path)["text"] == data["text"]
    assert "- text-generation" in front_matter(out)
    check_manifest(out)


@pytest.fixture
def torchcodec_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """``datasets`` 4+ imports torchcodec's encoder to store any audio column, even a file path it never encodes;
    torchcodec is not installed (its wheels want a CUDA torch and FFmpeg), so the import gets a stand-in with
    nothing in it: the real audiofolder loader still reads the folder, and the rows are checked without decoding."""
    package, encoders = types.ModuleType("torchcodec"), types.ModuleType("torchcodec.encoders")
    encoders.AudioEncoder = object  # type: ignore[attr-defined]
    package.encoders = encoders  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchcodec", package)
    monkeypatch.setitem(sys.modules, "torchcodec.encoders", encoders)


def test_audiofolder_loads_with_every_column(tmp_path: Path, torchcodec_import: None):
    import datasets

    out = tmp_path / "sounds"
    writer = DatasetWriter(out, "audiofolder", card={"kind": "audio", "generator": "audio.speech"})
    made = [wav(tmp_path, f"a{i}.wav", 1000 * (i + 1)) for i in range(2)]
    for i, path in enumerate(made):
        writer.add(row(i, generator="audio.speech"), file=path)
    writer.finish(complete=True)
    journal_and_litter(out)

    data = load("audiofolder", data_dir=str(out), tmp_path=tmp_path)
    assert data.column_names == ["audio", *COLUMNS]
    data = data.cast_column("audio", datasets.Audio(decode=False))
    for i, path in enumerate(made):
        got = data[i]
        assert Path(got["audio"]["path"]).name == f"{i:06d}-0.wav"
        assert Path(got["audio"]["path"]).read_bytes() == path.read_bytes()
        assert {c: got[c] for c in COLUMNS} == expected(i) | {"generator": "audio.speech"}
    assert "- text-to-speech" in front_matter(out)
    check_manifest(out)


def test_parquet_embeds_the_images_and_loads(tmp_path: Path):
    out = tmp_path / "pq"
    writer = DatasetWriter(out, "parquet", card=CARD)
    for i, colour in enumerate([(10, 20, 30), (200, 100, 0)]):
        writer.add(row(i), file=png(tmp_path, f"p{i}.png", colour))
    writer.finish(complete=True)
    journal_and_litter(out)

    parquet = out / "dataset.parquet"
    data = load("parquet", data_files=str(parquet), tmp_path=tmp_path)
    assert data.column_names == ["image", *COLUMNS]
    assert data[1]["image"].convert("RGB").getpixel((3, 3)) == (200, 100, 0)
    for i in range(2):
        assert {c: data[i][c] for c in COLUMNS} == expected(i)
    assert load(str(out), tmp_path=tmp_path).num_rows == 2  # the card's configs point at the Parquet file
    assert load("imagefolder", data_dir=str(out), tmp_path=tmp_path).num_rows == 2  # the files are there too
    check_manifest(out)


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    writer = DatasetWriter(tmp_path / "pq", "parquet", card={})
    writer.add(row(0), text="hello")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(StudioloError) as info:
        writer.finish(complete=True)
    assert 'pip install "studiolo[parquet]"' in str(info.value)
    assert not (tmp_path / "pq" / "dataset.parquet").exists()


def test_what_a_format_cannot_hold_is_refused(tmp_path: Path):
    writer = DatasetWriter(tmp_path / "ds", "imagefolder", card={})
    with pytest.raises(ParamError, match="imagefolder holds image files only"):
        writer.add(row(0), text="words")
    with pytest.raises(ParamError, match="audiofolder holds audio"):
        DatasetWriter(tmp_path / "a", "audiofolder", card={}).add(row(0), file=png(tmp_path, "x.png", (0, 0, 0)))
    with pytest.raises(ParamError, match="'id'"):
        writer.add(row(0) | {"id": "../escape"}, file=png(tmp_path, "y.png", (0, 0, 0)))
    with pytest.raises(ParamError, match="format"):
        DatasetWriter(tmp_path / "b", "zip", card={})
    mixed = DatasetWriter(tmp_path / "m", "parquet", card={})
    mixed.add(row(0), text="words")
    with pytest.raises(ParamError, match="one kind of output"):
        mixed.add(row(1), file=png(tmp_path, "z.png", (0, 0, 0)))
    assert [p.name for p in (tmp_path / "ds").iterdir()] == []  # nothing written by a refused row
    assert default_format("image") == "imagefolder" and default_format("audio") == "audiofolder"
    assert gallery_cmd._DATASET_FORMATS == FORMATS


# -- resume and stopping -----------------------------------------------------------------------------------------


def test_resume_keeps_whole_rows_drops_the_rest_and_finishes_as_stopped(tmp_path: Path):
    out = tmp_path / "ds"
    writer = DatasetWriter(out, "imagefolder", card=CARD)
    for i in range(3):
        writer.add(row(i), file=png(tmp_path, f"o{i}.png", (i, i, i)))
    with open(out / "metadata.jsonl", "ab") as f:  # killed while appending item 3's row
        f.write(b'{"file_name": "000003-0.png", "id": "0000')
    (out / "000002-0.png").unlink()  # item 2's file lost: its row must go

    again = DatasetWriter.resume(out, "imagefolder", card=CARD)
    assert [r["id"] for r in again.rows] == ["000000-0", "000001-0"]
    again.keep_only({0})  # the journal says only item 0 is done (by item index)
    assert [r["id"] for r in again.rows] == ["000000-0"] and not (out / "000001-0.png").exists()
    again.add(row(1), file=png(tmp_path, "redo.png", (9, 9, 9)))
    again.add(row(1), file=png(tmp_path, "redo2.png", (8, 8, 8)))  # the same item again replaces its row
    again.finish(complete=False, done=2)
    lines = (out / "metadata.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["000000-0", "000001-0"]
    card = (out / "README.md").read_text()
    assert "**Incomplete**" in card and "after 2 item(s) of 3" in card
    check_manifest(out)
    again.finish(complete=True)  # safe to call again
    assert "Complete: 2 item(s) of 3" in (out / "README.md").read_text()

    third = DatasetWriter.resume(out, "imagefolder", card=CARD, keep_ids=["000001-0"])
    assert [r["id"] for r in third.rows] == ["000001-0"] and not (out / "000000-0.png").exists()


# -- model weights hash --------------------------------------------------------------------------------------------


def test_model_weights_hash_of_files_folders_and_cache_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    single = tmp_path / "model.safetensors"
    single.write_bytes(b"weights")
    assert model_weights_hash(single) == hashlib.sha256(b"weights").hexdigest()

    folder = tmp_path / "pipe"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "w.safetensors").write_bytes(b"unet weights")
    (folder / "vae.bin").write_bytes(b"vae weights")
    (folder / "model_index.json").write_text("{}")
    lines = "".join(f"{rel}\t{hashlib.sha256(data).hexdigest()}\n"
                    for rel, data in sorted([("unet/w.safetensors", b"unet weights"), ("vae.bin", b"vae weights")]))
    first = model_weights_hash(folder)
    assert first == hashlib.sha256(lines.encode()).hexdigest()
    (folder / "model_index.json").write_text('{"changed": true}')  # not a weight file
    assert model_weights_hash(folder) == first
    (folder / "vae.bin").write_bytes(b"other vae weights!")
    assert model_weights_hash(folder) != first

    # a Hugging Face cache snapshot: its files link to blobs named by their LFS SHA-256, which is not re-read
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    lfs_name = "5" * 64  # deliberately not the content's hash: reading the file would give another answer
    (repo / "blobs" / lfs_name).write_bytes(b"big weights")
    (repo / "snapshots" / "abc123" / "model.safetensors").symlink_to(Path("../../blobs") / lfs_name)
    real_open = builtins.open
    opened: list[str] = []

    def watching_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watching_open)
    snapshot = repo / "snapshots" / "abc123"
    assert model_weights_hash(snapshot / "model.safetensors") == lfs_name
    assert model_weights_hash(snapshot) == hashlib.sha256(f"model.safetensors\t{lfs_name}\n".encode()).hexdigest()
    assert not [name for name in opened if "abc123" in name or lfs_name in name]

    # cached per path and mtimes: hashing the unchanged folder again reads nothing
    opened.clear()
    model_weights_hash(folder)
    assert opened == []
    with pytest.raises(StudioloError, match="neither a file nor a folder"):
        model_weights_hash(tmp_path / "missing")


# -- gallery export ------------------------------------------------------------------------------------------------


@pytest.fixture
def library_items(studiolo_home: Path) -> dict[str, list[Any]]:
    with Library() as lib:
        fill_library(lib, 12, root=studiolo_home / "data" / "outputs", seed=3)
        items = lib.query(Query(), limit=100)
    by_kind: dict[str, list[Any]] = {}
    for item in sorted(items, key=lambda i: i.id):
        by_kind.setdefault(item.kind, []).append(item)
    return by_kind


def test_gallery_export_writes_datasets(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        library_items: dict[str, list[Any]]):
    images, texts = library_items["image"][:3], library_items["text"][:2]
    out = tmp_path / "images"
    code = main(["gallery", "export", *(str(i.id) for i in images), "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"exported 3 item(s) to {out} as imagefolder" in printed.out
    data = load("imagefolder", data_dir=str(out), tmp_path=tmp_path)
    assert data.column_names == ["image", *COLUMNS]
    for got, item in zip(data, images, strict=True):
        assert got["id"] == f"item-{item.id}" and got["prompt"] == item.prompt and got["seed"] == item.seed
        assert got["model"] == item.model and got["generator"] == "image.diffusers"
        assert got["generator_version"] == "1.0" and got["negative_prompt"] == "blurry" and got["batch_row"] == 0
        assert json.loads(got["params"]) == item.metadata["params"]
        assert got["image"].size == (16, 16)
    card = (out / "README.md").read_text()
    assert "studiolo gallery export" in card and f"{len(images)} image item(s)" in card
    check_manifest(out)

    out_text = tmp_path / "texts"
    assert main(["gallery", "export", *(str(i.id) for i in texts), "--out", str(out_text), "--format",
                 "parquet"]) == 0
    capsys.readouterr()
    data = load("parquet", data_files=str(out_text / "dataset.parquet"), tmp_path=tmp_path)
    assert data["text"] == [item.path.read_text(encoding="utf-8") for item in texts]
    assert data["prompt"] == [item.prompt for item in texts]

    # refusals: a folder not empty (unless --force), kinds mixed, a missing file, usage errors
    code = main(["gallery", "export", str(images[0].id), "--out", str(out)])
    assert code == 1 and "is not empty" in capsys.readouterr().err
    assert main(["gallery", "export", str(images[0].id), "--out", str(out), "--force"]) == 0
    capsys.readouterr()
    assert load("imagefolder", data_dir=str(out), tmp_path=tmp_path)["id"] == [f"item-{images[0].id}"]
    code = main(["gallery", "export", str(images[0].id), str(texts[0].id), "--out", str(tmp_path / "mixed")])
    assert code == 1 and "several kinds" in capsys.readouterr().err
    images[1].path.unlink()
    code = main(["gallery", "export", str(images[1].id), "--out", str(tmp_path / "gone")])
    assert code == 1 and f"The file of item {images[1].id} is missing" in capsys.readouterr().err
    for args in (["1", "2", "--out", "x", "--overwrite"], ["1", "notanid", "--out", "x"], ["1", "--format", "jsonl"],
                 ["1"], ["1", "a", "b"]):
        with pytest.raises(SystemExit) as info:
            main(["gallery", "export", *args])
        assert info.value.code == 2
    capsys.readouterr()

