"""The gallery service: items with their files — details, export, trash, delete, missing files, reuse."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from library_items import fill_library, png_bytes

from desktop.api import StudioloError
from desktop.api.errors import DiskFullError
from desktop.library import (
    Gallery,
    Library,
    LibraryError,
    NewItem,
    Query,
    Recipe,
    metadata_for,
    read_png_metadata,
    sidecar_path,
)
from desktop.library import gallery as gallery_module

WAIT = 30


@pytest.fixture
def library() -> Iterator[Library]:
    lib = Library()
    yield lib
    assert lib.close(timeout=WAIT)


@pytest.fixture
def gallery(library: Library) -> Gallery:
    return Gallery(library)


@pytest.fixture
def outputs(studiolo_home: Path) -> Path:
    return studiolo_home / "data" / "outputs"


def first_of(gallery: Gallery, kind: str) -> int:
    return gallery.items(Query(kinds=(kind,)), limit=1)[0].id


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# -- the synthetic library itself ----------------------------------------------------------------------------------


def test_fill_library_writes_real_varied_items(library: Library, gallery: Gallery, outputs: Path):
    ids = fill_library(library, 300, root=outputs, seed=3)
    assert len(ids) == len(set(ids)) == 300 == gallery.count()
    facets = library.facets()
    assert facets["kind"] == ["audio", "image", "text"]
    assert facets["generator_id"] == ["audio.music", "audio.speech", "image.diffusers", "text.transformers"]
    assert len(facets["model"]) >= 5
    items = gallery.items(limit=300)
    assert len({i.created for i in items}) > 250 and len({i.prompt for i in items}) > 100
    for item in items:
        assert item.path.is_file() and item.path.is_relative_to(outputs)
        if item.kind == "image":
            assert item.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (read_png_metadata(item.path) or {}).get("prompt") == item.prompt
        else:
            assert (metadata_for(item.path) or {}).get("job_id") == item.job_id
        if item.kind == "text":
            assert item.text and item.path.read_text(encoding="utf-8") == item.text
        if item.kind == "audio":
            import wave

            with wave.open(str(item.path)) as w:
                assert w.getnframes() > 0 and w.getsampwidth() == 2
    again = fill_library(library, 5, root=outputs / "again", seed=3)
    prompts = {i.id: i.prompt for i in gallery.items(limit=1000)}
    assert [prompts[i] for i in again] == [prompts[i] for i in ids[:5]]  # the same seed, the same items


# -- browsing ------------------------------------------------------------------------------------------------------


def test_items_count_and_details(library: Library, gallery: Gallery, outputs: Path):
    fill_library(library, 40, root=outputs)
    image_id = first_of(gallery, "image")
    library.add_tag(image_id, "keep").result(timeout=WAIT)
    assert gallery.count(Query(kinds=("image",))) == len(gallery.items(Query(kinds=("image",)), limit=100))
    details = gallery.details(image_id)
    assert details.item.id == image_id and details.tags == ["keep"]
    assert details.exists and details.size_bytes == details.item.path.stat().st_size

    with pytest.raises(LibraryError, match="no item 4242"):
        gallery.details(4242)


def test_a_missing_file_is_listed_as_missing_and_can_be_forgotten(library: Library, gallery: Gallery, outputs: Path):
    fill_library(library, 20, root=outputs)
    text_id = first_of(gallery, "text")
    path = gallery.details(text_id).item.path
    path.unlink()  # behind the library's back

    assert text_id in [i.id for i in gallery.items(limit=100)]
    details = gallery.details(text_id)
    assert not details.exists and details.size_bytes is None

    other = first_of(gallery, "image")
    with pytest.raises(StudioloError, match="still there"):
        gallery.remove_missing(other)
    assert library.get(other) is not None

    gallery.remove_missing(text_id)
    assert library.get(text_id) is None and gallery.count() == 19
    assert sidecar_path(path).is_file()  # forgetting deletes nothing


def test_reuse_gives_the_generator_its_params_seed_and_model(library: Library, gallery: Gallery, outputs: Path):
    fill_library(library, 10, root=outputs)
    item = gallery.items(Query(kinds=("image",)), limit=1)[0]
    recipe = gallery.reuse(item.id)
    assert recipe.generator_id == "image.diffusers" and recipe.params["prompt"] == item.prompt
    assert "steps" in recipe.params
    assert recipe.seed == item.metadata["seed"] and recipe.model == item.metadata["model"]  # to reproduce it
    assert recipe.seed is not None and recipe.model is not None
    bare = library.add(NewItem(generator_id="x.y", kind="image", path="/nowhere.png")).result(timeout=WAIT)
    assert gallery.reuse(bare) == Recipe("x.y", {}, None, None)
    with pytest.raises(LibraryError):
        gallery.reuse(999)


# -- export --------------------------------------------------------------------------------------------------------


def test_export_into_a_folder_or_to_a_path_with_the_sidecar(library: Library, gallery: Gallery, outputs: Path,
                                                            tmp_path: Path):
    fill_library(library, 20, root=outputs)
    audio = gallery.details(first_of(gallery, "audio")).item
    dest = tmp_path / "exports"
    dest.mkdir()

    copied = gallery.export(audio.id, dest)
    assert copied == dest / audio.path.name
    assert copied.read_bytes() == audio.path.read_bytes()
    assert sidecar_path(copied).read_bytes() == sidecar_path(audio.path).read_bytes()

    renamed = gallery.export(audio.id, dest / "voice.wav")
    assert renamed.read_bytes() == audio.path.read_bytes() and sidecar_path(renamed).is_file()

    image = gallery.details(first_of(gallery, "image")).item  # PNGs carry their metadata: no sidecar
    picture = gallery.export(image.id, dest / "picture.png")
    assert picture.read_bytes() == image.path.read_bytes() and not sidecar_path(picture).exists()
    assert not [p for p in dest.iterdir() if p.name.endswith(".tmp")]


def test_export_refuses_to_overwrite_unless_asked(library: Library, gallery: Gallery, outputs: Path, tmp_path: Path):
    fill_library(library, 10, root=outputs)
    image = gallery.details(first_of(gallery, "image")).item
    target = tmp_path / "mine.png"
    target.write_bytes(b"precious")
    with pytest.raises(StudioloError, match="already exists") as info:
        gallery.export(image.id, target)
    assert "overwrit" in (info.value.hint or "")
    assert target.read_bytes() == b"precious"
    assert gallery.export(image.id, target, overwrite=True) == target
    assert target.read_bytes() == image.path.read_bytes()
    with pytest.raises(StudioloError, match="own file"):
        gallery.export(image.id, image.path.parent, overwrite=True)


def test_export_errors_are_clear(library: Library, gallery: Gallery, outputs: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch):
    fill_library(library, 10, root=outputs)
    text = gallery.details(first_of(gallery, "text")).item
    with pytest.raises(StudioloError, match="does not exist"):
        gallery.export(text.id, tmp_path / "no" / "such" / "folder" / "x.txt")

    real_copy = gallery_module.shutil.copyfileobj

    def full(src: object, dst: object, length: int = 0) -> None:
        if str(getattr(src, "name", "")).endswith(".json"):
            return real_copy(src, dst, length)  # the sidecar fits; the file itself does not
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gallery_module.shutil, "copyfileobj", full)
    with pytest.raises(DiskFullError, match="disk space"):
        gallery.export(text.id, tmp_path / "story.txt")
    assert list(tmp_path.iterdir()) == []  # no half file, no temporary file, no orphan sidecar

    monkeypatch.setattr(gallery_module.shutil, "copyfileobj", real_copy)
    text.path.unlink()
    with pytest.raises(LibraryError, match="missing") as info:
        gallery.export(text.id, tmp_path)
    assert "remove" in (info.value.hint or "")
    assert list(tmp_path.iterdir()) == []


def test_export_to_a_read_only_destination_is_a_clear_error(library: Library, gallery: Gallery, outputs: Path,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fill_library(library, 5, root=outputs)
    item_id = first_of(gallery, "image")

    def refused(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(gallery_module.tempfile, "mkstemp", refused)  # as a read-only folder answers (even root)
    with pytest.raises(StudioloError, match="Permission denied") as info:
        gallery.export(item_id, tmp_path)
    assert not isinstance(info.value, DiskFullError) and "write to" in (info.value.hint or "")


# -- trash and deletion --------------------------------------------------------------------------------------------


def test_trash_restore_and_empty_trash_delete_files_and_sidecars(library: Library, gallery: Gallery, outputs: Path):
    ids = fill_library(library, 30, root=outputs)
    before = files_under(outputs)
    victims = [first_of(gallery, "text"), first_of(gallery, "image"), first_of(gallery, "audio")]
    paths = [gallery.details(i).item.path for i in victims]

    gallery.trash(victims)
    assert gallery.count() == 27 and gallery.count(Query(trashed=True)) == 3
    assert files_under(outputs) == before  # the trash deletes nothing yet
    gallery.restore(victims[:1])
    assert gallery.count() == 28
    gallery.trash(victims[:1])

    assert gallery.empty_trash() == 3
    assert gallery.count(Query(trashed=True)) == 0 and gallery.count() == 27
    for path in paths:
        assert not path.exists() and not sidecar_path(path).exists()
    gone = {str(p.relative_to(outputs)) for p in paths} | {str(sidecar_path(p).relative_to(outputs)) for p in paths}
    assert files_under(outputs) == before - gone
    assert {i.id for i in gallery.items(limit=100)} == set(ids) - set(victims)
    assert gallery.empty_trash() == 0


def test_empty_trash_with_many_items_and_missing_files(library: Library, gallery: Gallery, outputs: Path):
    ids = fill_library(library, 1200, root=outputs)
    gallery.trash(ids[:1100])
    gallery.details(ids[0]).item.path.unlink()  # a file already gone is no reason to stop
    assert gallery.empty_trash() == 1100
    assert gallery.count() == 100 and gallery.count(Query(trashed=True)) == 0
    assert all(not library.get(i) for i in ids[:3])


def test_delete_now_skips_the_trash(library: Library, gallery: Gallery, outputs: Path):
    ids = fill_library(library, 10, root=outputs)
    audio = gallery.details(first_of(gallery, "audio")).item
    assert gallery.delete_now([audio.id, 777_777]) == 1
    assert library.get(audio.id) is None
    assert not audio.path.exists() and not sidecar_path(audio.path).exists()
    assert gallery.count() == 9 and gallery.count(Query(trashed=True)) == 0
    assert all(library.get(i) is not None for i in ids if i != audio.id)


def test_delete_of_a_file_that_cannot_be_removed_still_forgets_the_row(library: Library, gallery: Gallery,
                                                                      tmp_path: Path, caplog: pytest.LogCaptureFixture):
    folder = tmp_path / "stuck.png"  # a folder where a file should be: unlink fails, the row goes anyway
    folder.mkdir()
    item_id = library.add(NewItem(generator_id="g", kind="image", path=folder)).result(timeout=WAIT)
    assert gallery.delete_now([item_id]) == 1
    assert library.get(item_id) is None and folder.is_dir()
    assert "could not delete" in caplog.text


def test_a_png_written_by_fill_library_is_a_valid_png(tmp_path: Path):
    import zlib

    data = png_bytes(3, json.dumps({"prompt": "x"}))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):  # every chunk's CRC checks out
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == int.from_bytes(data[pos + 8 + length:pos + 12 + length], "big")
        kinds.append(kind)
        pos += 12 + length
    assert kinds == [b"IHDR", b"iTXt", b"IDAT", b"IEND"]
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert read_png_metadata(path) == {"prompt": "x"}
    assert os.path.getsize(path) < 1000
