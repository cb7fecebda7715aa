"""The Gallery page: listing newest first, filters and search, thumbnails (and broken files), the details pane,
every action (trash with undo, empty trash, remove a missing item, reuse, drag out, export, copy), and lazy
loading at 10,000 items."""

from __future__ import annotations

import json
import math
import struct
import threading
import time
import wave
from pathlib import Path

import pytest
from library_items import fill_library
from PySide6.QtCore import QCoreApplication, QDate, QMimeData, QModelIndex, Qt, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtWidgets import QMessageBox

from desktop.library.db import Item, Library, NewItem, Query
from desktop.library.gallery import Gallery, ItemDetails
from desktop.ui.gallery import GalleryView
from desktop.ui.gallery.delegate import FAVOURITE_BADGE, MISSING_BADGE, TileDelegate
from desktop.ui.gallery.details import PREVIEW_SIZE, DetailsPane
from desktop.ui.gallery.model import EXISTS_ROLE, ITEM_ROLE, THUMBNAIL_ROLE
from desktop.ui.gallery.thumbnails import (
    BROKEN,
    MISSING,
    OK,
    ThumbnailDiskCache,
    ThumbnailService,
    default_cache_folder,
    render_thumbnail,
)
from desktop.ui.tasks import TaskGroup

RED = QColor(220, 30, 40)


# -- fixtures and helpers ----------------------------------------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path):
    lib = Library(tmp_path / "library.db")
    yield lib
    lib.close()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def make_view(qtbot, library):
    made: list[GalleryView] = []

    def make(*, wait: bool = True) -> GalleryView:
        view = GalleryView(Gallery(library), thumbnails=ThumbnailService(default_cache_folder()))
        view.filters.search_timer.setInterval(0)
        view.opened = []  # type: ignore[attr-defined]
        view.url_opener = lambda url: view.opened.append(url) or True  # type: ignore[attr-defined]
        qtbot.addWidget(view)
        view.resize(1100, 760)
        view.show()
        made.append(view)
        if wait:
            expected = library.count(Query())
            qtbot.waitUntil(lambda: view.model.total() == expected and view.loader.pending() == 0)
        return view

    yield make
    for view in made:
        view.shutdown()


def add_png(library: Library, folder: Path, name: str, color: QColor = RED, *, prompt: str = "a red square",
            created: float | None = None, generator_id: str = "image.test", metadata: dict | None = None) -> int:
    path = folder / name
    image = QImage(64, 48, QImage.Format.Format_RGB32)
    image.fill(color)
    assert image.save(str(path), "PNG")
    return library.add(NewItem(generator_id=generator_id, kind="image", path=path, prompt=prompt, created=created,
                               model="tiny", metadata=metadata or {"params": {"prompt": prompt, "steps": 3}})).result()


def add_wav(library: Library, folder: Path, name: str, *, seconds: float = 0.5, created: float | None = None) -> int:
    path = folder / name
    rate = 8000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(struct.pack("<h", int(20000 * math.sin(2 * math.pi * 440 * i / rate)
                                                 * (i / (rate * seconds))))
                          for i in range(int(rate * seconds)))
        out.writeframes(frames)
    return library.add(NewItem(generator_id="audio.test", kind="audio", path=path, prompt="a rising tone",
                               created=created)).result()


def add_file(library: Library, folder: Path, name: str, data: bytes, kind: str, *, prompt: str = "",
             text: str | None = None, created: float | None = None) -> int:
    path = folder / name
    path.write_bytes(data)
    return library.add(NewItem(generator_id=f"{kind}.test", kind=kind, path=path, prompt=prompt, text=text,
                               created=created)).result()


def listed(view: GalleryView) -> list[Item]:
    """The items the view lists (loaded rows), in row order."""
    model = view.model
    return [row.item for row in (model.row_at(r) for r in range(model.rowCount())) if row is not None]


def listed_ids(view: GalleryView) -> list[int]:
    return [item.id for item in listed(view)]


def index_of(view: GalleryView, item_id: int) -> QModelIndex:
    row = view.model.row_of(item_id)
    assert row is not None, f"item {item_id} is not listed"
    return view.model.index(row)


def wait_ids(qtbot, view: GalleryView, expected: list[int] | set[int]) -> None:
    want = list(expected) if isinstance(expected, list) else None
    qtbot.waitUntil(lambda: (listed_ids(view) == want) if want is not None else set(listed_ids(view)) == expected)


def expected_ids(library: Library, query: Query = Query()) -> list[int]:
    return [item.id for item in library.query(query, limit=10_000)]


def wait_thumbnail(qtbot, view: GalleryView, item_id: int):
    index = index_of(view, item_id)
    view.list.scrollTo(index)
    qtbot.waitUntil(lambda: view.model.data(index_of(view, item_id), THUMBNAIL_ROLE) is not None)
    return view.model.data(index_of(view, item_id), THUMBNAIL_ROLE)


def tile_pixels(qtbot, view: GalleryView, item_id: int) -> QImage:
    """The tile of the item as painted on screen."""
    index = index_of(view, item_id)
    view.list.scrollTo(index)
    view.list.viewport().repaint()
    rect = view.list.visualRect(index)
    return view.list.viewport().grab(rect).toImage()


def count_color(image: QImage, color: QColor, tolerance: int = 12) -> int:
    n = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            if (abs(c.red() - color.red()) <= tolerance and abs(c.green() - color.green()) <= tolerance
                    and abs(c.blue() - color.blue()) <= tolerance):
                n += 1
    return n


# -- listing and filters -----------------------------------------------------------------------------------------


def test_it_lists_every_item_newest_first(make_view, library, tmp_path):
    ids = fill_library(library, 9, root=tmp_path / "made", seed=1)
    view = make_view()
    assert view.item_count() == 9
    items = listed(view)
    assert sorted(item.id for item in items) == sorted(ids)
    created = [item.created for item in items]
    assert created == sorted(created, reverse=True)
    assert {item.kind for item in items} >= {"image", "text", "audio"}
    assert "9" in view.count_label.text()


def test_kind_generator_and_favourite_filters_change_what_is_listed(make_view, library, tmp_path, qtbot):
    ids = fill_library(library, 12, root=tmp_path / "made", seed=2)
    view = make_view()
    bar = view.filters

    assert bar.kind.itemText(bar.kind.findData("audio")) == "Audio"  # shown translated, filtered by its id
    bar.kind.setCurrentIndex(bar.kind.findData("audio"))
    audio = expected_ids(library, Query(kinds=("audio",)))
    assert audio and len(audio) < len(ids)
    wait_ids(qtbot, view, audio)
    assert view.item_count() == len(audio)

    bar.kind.setCurrentIndex(0)
    wait_ids(qtbot, view, expected_ids(library))
    generator = library.get(ids[0]).generator_id
    qtbot.waitUntil(lambda: bar.generator.findData(generator) > 0)  # the facets arrived
    bar.set_facets({"kind": ["audio", "video"], "generator_id": [generator]})  # a plugin's own kind joins
    assert [bar.kind.itemText(i) for i in range(1, bar.kind.count())] == ["Images", "Texts", "Audio", "video"]
    bar.generator.setCurrentIndex(bar.generator.findData(generator))
    wait_ids(qtbot, view, expected_ids(library, Query(generator_id=generator)))
    assert all(item.generator_id == generator for item in listed(view))

    bar.generator.setCurrentIndex(0)
    library.set_favourite(ids[3], True).result()
    view.refresh()
    wait_ids(qtbot, view, expected_ids(library))
    bar.favourites.setChecked(True)
    wait_ids(qtbot, view, [ids[3]])
    assert FAVOURITE_BADGE in TileDelegate.badges(index_of(view, ids[3]))


def test_the_model_filter_and_the_date_range(make_view, library, files, qtbot):
    day = 24 * 3600
    old = add_png(library, files, "old.png", created=time.time() - 40 * day)
    new = add_png(library, files, "new.png", created=time.time())
    library.add(NewItem(generator_id="image.test", kind="image", path=files / "other.png", model="big",
                        created=time.time() - day)).result()
    view = make_view()
    bar = view.filters
    qtbot.waitUntil(lambda: bar.model.findData("tiny") > 0)
    bar.model.setCurrentIndex(bar.model.findData("tiny"))
    wait_ids(qtbot, view, [new, old])
    bar.set_date_range(QDate.currentDate().addDays(-3), QDate.currentDate())
    wait_ids(qtbot, view, [new])
    bar.set_date_range(None)
    wait_ids(qtbot, view, [new, old])


def test_a_search_that_finds_nothing_shows_no_item_details(make_view, library, files, qtbot):
    zeppelin = add_png(library, files, "l.png", prompt="a zeppelin at dusk")
    view = make_view()
    view.select_item(zeppelin)
    qtbot.waitUntil(lambda: view.details.item_id() == zeppelin)
    view.filters.search.setText("nothing is called this")
    qtbot.waitUntil(lambda: view.loader.pending() == 0 and view.item_count() == 0)
    qtbot.waitUntil(lambda: view.details.item_id() is None)  # not the zeppelin's details any more
    assert not view.actions_by_name["reuse"].isEnabled()


def test_search_finds_prompts_and_generated_text(make_view, library, files, qtbot):
    fill_library(library, 6, root=files / "made", seed=3)
    zeppelin = add_png(library, files, "l.png", prompt="a zeppelin at dusk")
    story = add_file(library, files, "story.txt", "Once upon a time a walrus sang.".encode(), "text",
                     prompt="tell me a story", text="Once upon a time a walrus sang.")
    view = make_view()
    view.filters.search.setText("zeppelin")
    wait_ids(qtbot, view, [zeppelin])
    view.filters.search.setText("walrus")
    wait_ids(qtbot, view, [story])
    view.filters.search.setText('"unbalanced (quote AND')  # never an error, whatever is typed
    qtbot.waitUntil(lambda: view.loader.pending() == 0 and view.item_count() == 0)
    assert "Could not" not in view.status_label.text()
    view.filters.search.clear()
    qtbot.waitUntil(lambda: view.item_count() == library.count(Query()))


# -- thumbnails --------------------------------------------------------------------------------------------------


def test_an_image_thumbnail_arrives_and_is_painted(make_view, library, files, qtbot):
    item_id = add_png(library, files, "red.png")
    view = make_view()
    thumbnail = wait_thumbnail(qtbot, view, item_id)
    assert thumbnail.status == OK
    assert thumbnail.image.pixelColor(thumbnail.image.width() // 2, thumbnail.image.height() // 2) == RED
    tile = tile_pixels(qtbot, view, item_id)
    assert count_color(tile, RED) > 100  # the red picture is on screen, not a placeholder
    assert any(default_cache_folder().rglob("*.png"))  # and cached on disk


def test_an_audio_item_gets_a_waveform_tile(make_view, library, files, qtbot):
    item_id = add_wav(library, files, "tone.wav")
    view = make_view()
    thumbnail = wait_thumbnail(qtbot, view, item_id)
    assert thumbnail.status == OK
    image = thumbnail.image
    wave_color = QColor("#7fc4ff")
    left = sum(count_color(image.copy(x, 0, 1, image.height()), wave_color, 30) for x in range(0, 20))
    right = sum(count_color(image.copy(x, 0, 1, image.height()), wave_color, 30)
                for x in range(image.width() - 20, image.width()))
    assert right > left  # a rising tone: taller on the right
    assert count_color(tile_pixels(qtbot, view, item_id), wave_color, 30) > 10


def test_corrupt_files_give_broken_tiles_without_an_exception(make_view, library, files, qtbot):
    png = add_file(library, files, "bad.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, "image")
    truncated = files / "half.png"
    image = QImage(80, 80, QImage.Format.Format_RGB32)
    image.fill(RED)
    image.save(str(truncated), "PNG")
    half = add_file(library, files, "half2.png", truncated.read_bytes()[:60], "image")
    wav = add_file(library, files, "bad.wav", b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(40), "audio")
    noise = add_file(library, files, "noise.wav", bytes(range(256)) * 4, "audio")
    view = make_view()
    for item_id in (png, half, wav, noise):
        thumbnail = wait_thumbnail(qtbot, view, item_id)
        assert thumbnail.status == BROKEN, item_id
        assert not thumbnail.image.isNull()
    assert count_color(tile_pixels(qtbot, view, png), QColor("#5a2a2a")) > 100  # the broken tile is painted


def test_tiles_render_off_the_gui_thread_and_once_per_file(qtbot, files):
    service = ThumbnailService(files / "cache")
    drawn_on: list[int] = []
    render = service.render

    def recording(*args):  # type: ignore[no-untyped-def]
        drawn_on.append(threading.get_ident())
        return render(*args)

    service.render = recording
    path = files / "x.png"
    image = QImage(300, 100, QImage.Format.Format_RGB32)
    image.fill(RED)
    image.save(str(path))
    assert service.request(path, "image", 64) is None
    assert service.request(path, "image", 64) is None  # asked twice: drawn once
    with qtbot.waitSignal(service.ready, timeout=5000) as ready:
        pass
    assert ready.args == [str(path), 64]
    assert service.requests == 1
    assert len(drawn_on) == 1 and drawn_on[0] != threading.get_ident()  # drawn once, on a pool thread
    tile = service.get(path, 64)
    assert (tile.image.width(), tile.image.height()) == (64, 21)  # scaled while decoding, aspect kept
    cache = ThumbnailDiskCache(files / "cache")
    key = cache.key(path, 64, path.stat())
    assert cache.load(key) is not None
    assert render_thumbnail(files / "gone.png", "image", 64).status == MISSING
    service.shutdown()


def test_the_loader_runs_work_in_order_off_the_gui_thread_and_answers_on_it(qtbot):
    loader = TaskGroup("library")
    gui = threading.get_ident()
    ran: list[tuple[int, int]] = []
    answered: list[tuple[int, int]] = []
    failures: list[tuple[type, int]] = []
    for n in range(5):
        loader.submit(lambda n=n: ran.append((n, threading.get_ident())) or n,
                      lambda result: answered.append((result, threading.get_ident())))
    loader.submit(lambda: 1 / 0, None, lambda exc: failures.append((type(exc), threading.get_ident())))
    qtbot.waitUntil(lambda: loader.pending() == 0)
    assert [n for n, _ in ran] == list(range(5)) and all(thread != gui for _, thread in ran)
    assert answered == [(n, gui) for n in range(5)]
    assert failures == [(ZeroDivisionError, gui)]
    loader.shutdown()
    assert loader.submit(lambda: 1) == -1 and loader.pending() == 0


def release_when_waited_for(tasks: TaskGroup, release: threading.Event) -> None:
    """Let the blocked work go on once ``tasks.wait`` is called (shutdown must wait for it)."""
    real_wait = tasks.wait

    def wait(*args):  # type: ignore[no-untyped-def]
        release.set()
        return real_wait(*args)

    tasks.wait = wait


def test_shutdown_waits_for_the_tile_being_drawn_and_draws_no_more(qtbot, files):
    # A pool destroyed with a drawing under way waits for it holding the GIL, which the drawing needs: a deadlock.
    service = ThumbnailService(files / "cache", settle_ms=0)
    started, release = threading.Event(), threading.Event()
    drawn: list[Path] = []

    def slow(path, kind, size, cache):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(timeout=10)
        drawn.append(path)
        return render_thumbnail(path, kind, size)

    service.render = slow
    service.request(files / "a.png", "image", 64)
    qtbot.waitUntil(started.is_set)
    release_when_waited_for(service.tasks, release)
    assert service.shutdown()
    assert drawn == [files / "a.png"] and service.tasks.running() == 0
    assert service.request(files / "b.png", "image", 64) is None  # nothing more is drawn
    assert not service.settle_timer.isActive() and service.pending() == 0


def test_loader_shutdown_waits_for_the_work_under_way_and_drops_its_answer(qtbot):
    loader = TaskGroup("library")
    started, release = threading.Event(), threading.Event()
    done: list[str] = []
    answered: list[object] = []

    def work() -> str:
        started.set()
        release.wait(timeout=10)
        done.append("work")
        return "result"

    loader.submit(work, answered.append)
    loader.submit(lambda: done.append("queued"), answered.append)  # not started yet: dropped
    qtbot.waitUntil(started.is_set)
    release_when_waited_for(loader, release)
    assert loader.shutdown()
    assert done == ["work"] and loader.running() == 0
    QCoreApplication.processEvents()  # an answer the finished work queued would be delivered now
    assert answered == [] and loader.pending() == 0


# -- details -----------------------------------------------------------------------------------------------------


def test_a_preview_dropped_for_a_newer_batch_of_tiles_is_asked_for_again(qtbot, files):
    service = ThumbnailService(files / "cache", batch=1)  # one tile per batch: the newest request only
    pane = DetailsPane(service)
    qtbot.addWidget(pane)
    paths = [files / "preview.png", files / "tile.png"]
    for path in paths:
        image = QImage(40, 40, QImage.Format.Format_RGB32)
        image.fill(RED)
        assert image.save(str(path))
    item = Item(id=1, job_id=None, generator_id="image.test", generator_version=None, kind="image", model=None,
                prompt="p", path=paths[0], created=0.0, seed=None, partial=False, metadata={})
    pane.show_details(ItemDetails(item=item, tags=[], exists=True, size_bytes=1))
    assert pane.preview_pixmap().isNull()
    service.request(paths[1], "image", 64)  # scrolling on at once: a newer request buries the preview's
    qtbot.waitUntil(lambda: not pane.preview_pixmap().isNull())
    assert service.get(paths[1], 64) is not None and service.requests == 2
    service.shutdown()


def test_the_details_pane_shows_metadata_tags_and_favourite(make_view, library, files, qtbot):
    item_id = add_png(library, files, "d.png", prompt="a detailed prompt",
                      metadata={"params": {"prompt": "a detailed prompt", "steps": 7}, "timings": {"total": 1.5}})
    view = make_view()
    view.select_item(item_id)
    pane = view.details
    qtbot.waitUntil(lambda: pane.item_id() == item_id)
    assert pane.prompt.toPlainText() == "a detailed prompt"
    tree = pane.metadata
    keys = [tree.topLevelItem(1).child(i).text(0) for i in range(tree.topLevelItem(1).childCount())]
    assert keys == ["params", "timings"]
    assert not pane.remove_missing_button.isVisibleTo(pane)
    qtbot.waitUntil(lambda: not pane.preview_pixmap().isNull())
    assert pane.preview_pixmap().width() <= PREVIEW_SIZE

    pane.tag_edit.setText("sunset")
    pane.add_tag()
    qtbot.waitUntil(lambda: library.tags(item_id) == ["sunset"] and pane.tag_names() == ["sunset"])
    pane.tags.setCurrentRow(0)
    pane.remove_selected_tag()
    qtbot.waitUntil(lambda: library.tags(item_id) == [] and pane.tag_names() == [])

    with qtbot.waitSignal(view.model.counted, timeout=5000):
        view.refresh()  # e.g. a job finished: the same item stays selected and shown
    assert view.current_row().item.id == item_id and pane.item_id() == item_id

    pane.favourite.setChecked(True)
    qtbot.waitUntil(lambda: library.get(item_id).favourite)
    qtbot.waitUntil(lambda: FAVOURITE_BADGE in TileDelegate.badges(index_of(view, item_id)))
    view.toggle_favourite_selected()
    qtbot.waitUntil(lambda: not library.get(item_id).favourite)


# -- actions -----------------------------------------------------------------------------------------------------


def test_trash_then_undo_then_empty_trash(make_view, library, files, qtbot):
    keep = add_png(library, files, "keep.png", created=1000.0)
    gone = add_png(library, files, "gone.png", created=2000.0)
    view = make_view()
    view.select_item(gone)
    qtbot.waitUntil(lambda: view.details.item_id() == gone)
    view.trash_selected()
    wait_ids(qtbot, view, [keep])
    assert library.get(gone).trashed_at is not None
    assert view.details.item_id() is None and view.current_row() is None
    assert view.undo_button.isVisible()

    view.undo_button.click()
    wait_ids(qtbot, view, [gone, keep])
    assert library.get(gone).trashed_at is None

    view.select_item(gone)
    view.actions_by_name["trash"].trigger()
    wait_ids(qtbot, view, [keep])
    view.filters.trash.setChecked(True)
    wait_ids(qtbot, view, [gone])
    assert view.actions_by_name["restore"].isVisible() and view.actions_by_name["empty_trash"].isEnabled()

    view.empty_trash(confirm=True)  # asks first, without blocking
    box = view._confirm
    assert isinstance(box, QMessageBox) and box.isVisible()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: view.item_count() == 0 and library.get(gone) is None)
    assert not (files / "gone.png").exists()
    assert (files / "keep.png").exists()
    view.filters.trash.setChecked(False)
    wait_ids(qtbot, view, [keep])


def test_restore_from_the_trash_view(make_view, library, files, qtbot):
    item_id = add_png(library, files, "r.png")
    library.trash([item_id]).result()
    view = make_view()
    assert view.item_count() == 0
    view.filters.trash.setChecked(True)
    wait_ids(qtbot, view, [item_id])
    view.select_item(item_id)
    view.restore_selected()
    qtbot.waitUntil(lambda: view.item_count() == 0)
    assert library.get(item_id).trashed_at is None


def test_keyboard_delete_and_undo(make_view, library, files, qtbot):
    item_id = add_png(library, files, "k.png")
    view = make_view()
    view.activateWindow()
    view.list.setFocus()
    qtbot.waitUntil(view.list.hasFocus)
    view.select_item(item_id)
    qtbot.keyClick(view.list, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: view.item_count() == 0)
    qtbot.keyClick(view.list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    wait_ids(qtbot, view, [item_id])
    view.select_item(item_id)
    qtbot.keyClick(view.list, Qt.Key.Key_Return)
    assert view.opened == [QUrl.fromLocalFile(str(files / "k.png"))]
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    qtbot.keyClick(view.list, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not clipboard.image().isNull())
    assert clipboard.mimeData().urls() == [QUrl.fromLocalFile(str(files / "k.png"))]


def test_a_missing_file_shows_a_warning_and_can_be_forgotten(make_view, library, files, qtbot):
    item_id = add_png(library, files, "m.png")
    other = add_png(library, files, "o.png", created=1.0)
    (files / "m.png").unlink()
    view = make_view()
    index = index_of(view, item_id)
    assert index.data(EXISTS_ROLE) is False
    assert MISSING_BADGE in TileDelegate.badges(index)
    assert MISSING_BADGE not in TileDelegate.badges(index_of(view, other))
    view.select_item(item_id)
    pane = view.details
    qtbot.waitUntil(lambda: pane.item_id() == item_id)
    assert pane.remove_missing_button.isVisibleTo(pane)
    assert "missing" in pane.file_state.text()
    pane.remove_missing_button.click()
    wait_ids(qtbot, view, [other])
    assert library.get(item_id) is None


def test_reuse_emits_the_generator_and_what_made_the_item(make_view, library, files, qtbot):
    from desktop.library import Recipe

    item_id = add_png(library, files, "p.png", prompt="reuse me",
                      metadata={"params": {"prompt": "reuse me", "steps": 5, "size": [64, 48]}, "seed": 77,
                                "model": "acme/model"})
    view = make_view()
    view.select_item(item_id)
    with qtbot.waitSignal(view.reuse_requested, timeout=5000) as signal:
        view.actions_by_name["reuse"].trigger()
    assert signal.args == ["image.test", Recipe("image.test", {"prompt": "reuse me", "steps": 5, "size": [64, 48]},
                                                77, "acme/model")]


def test_drag_out_gives_file_urls(make_view, library, files):
    a = add_png(library, files, "a.png", created=2.0)
    b = add_png(library, files, "b.png", created=1.0)
    view = make_view()
    model = view.model
    indexes = [index_of(view, a), index_of(view, b)]
    assert model.flags(indexes[0]) & Qt.ItemFlag.ItemIsDragEnabled
    mime = model.mimeData(indexes)
    assert isinstance(mime, QMimeData)
    assert mime.urls() == [QUrl.fromLocalFile(str(files / "a.png")), QUrl.fromLocalFile(str(files / "b.png"))]
    assert "text/uri-list" in model.mimeTypes()


def test_export_selected_writes_the_file(make_view, library, files, tmp_path, qtbot):
    item_id = add_png(library, files, "e.png")
    view = make_view()
    view.select_item(item_id)
    dest = tmp_path / "out" / "copy.png"
    dest.parent.mkdir()
    with qtbot.waitSignal(view.exported, timeout=5000) as signal:
        view.export_selected(dest)
    assert signal.args == [[dest]]
    assert dest.read_bytes() == (files / "e.png").read_bytes()
    with qtbot.waitSignal(view.message, timeout=5000) as message:
        view.export_selected(dest)  # refused: it exists; a message, not an exception
    assert message.args[1] is True and "already exists" in message.args[0]
    assert view.status_label.text().startswith("Could not save")


def test_export_as_dataset_writes_the_selection_as_a_dataset_folder(make_view, library, files, tmp_path, qtbot):
    ids = [add_png(library, files, f"d{n}.png", created=float(n)) for n in range(2)]
    view = make_view()
    view.select_rows([0, 1])
    assert view.actions_by_name["export_dataset"].isEnabled()
    out = tmp_path / "dataset"
    with qtbot.waitSignal(view.exported, timeout=5000) as signal:
        view.export_dataset_selected(out)
    assert signal.args == [[out]]
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(f"item-{i}" for i in ids)
    assert sorted((out / row["file_name"]).read_bytes() for row in rows) == sorted(
        (files / f"d{n}.png").read_bytes() for n in range(2))
    assert (out / "SHA256SUMS").is_file() and (out / "README.md").is_file()
    with qtbot.waitSignal(view.message, timeout=5000) as message:
        view.export_dataset_selected(out)  # refused: not empty; a message, not an exception
    assert message.args[1] is True and "not empty" in message.args[0]


def test_copy_puts_the_image_or_the_text_on_the_clipboard(make_view, library, files, qtbot):
    image_id = add_png(library, files, "c.png", created=2.0)
    text_id = add_file(library, files, "c.txt", "copied words".encode(), "text", created=1.0)
    view = make_view()
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    view.select_item(image_id)
    view.copy_selected()
    qtbot.waitUntil(lambda: not clipboard.image().isNull())
    assert clipboard.image().pixelColor(5, 5) == RED
    view.select_item(text_id)
    view.copy_selected()
    qtbot.waitUntil(lambda: clipboard.text() == "copied words")


def test_open_and_reveal_go_to_the_system_and_play_plays_in_the_app(make_view, library, files, qtbot):
    audio = add_wav(library, files, "o.wav", created=2.0)
    view = make_view()
    # PySide6-Addons and libpulse0 are installed here (scripts/system_deps.py): playback must work, in the app
    assert view.player.available(), view.player.unavailable_reason
    view.player._output.setMuted(True)  # the test plays the clip: not out loud on a developer's machine
    view.select_item(audio)
    assert view.open_selected()
    assert view.opened[-1] == QUrl.fromLocalFile(str(files / "o.wav"))
    assert view.reveal_selected()
    assert view.opened[-1] == QUrl.fromLocalFile(str(files))
    opened = len(view.opened)
    assert view.play_selected()
    assert view.player.current == files / "o.wav" and len(view.opened) == opened  # never the system's player
    qtbot.waitUntil(view.player.is_playing, timeout=10_000)
    view.player.stop()


# -- 10,000 items ------------------------------------------------------------------------------------------------


def test_ten_thousand_items_load_lazily(make_view, library, files, qtbot):
    n = 10_000
    fill_library(library, n, root=files, seed=4)
    newest, oldest = library.query(Query(), limit=1)[0], library.query(Query(), limit=1, offset=n - 1)[0]
    view = make_view()
    assert view.item_count() == n
    model = view.model
    assert model.rowCount() == n
    qtbot.waitUntil(lambda: view.thumbnails.requests > 0 and view.thumbnails.pending() == 0)
    assert model.loaded_pages() == [0] and model.pages_requested == 0  # the first page came with the count
    assert view.thumbnails.requests <= 60  # only the tiles on screen
    first = model.index(0)
    assert view.list.viewport().rect().intersects(view.list.visualRect(first))
    assert model.data(first, ITEM_ROLE).id == newest.id

    view.list.scrollToBottom()
    last_page = (n - 1) // model.page_size
    qtbot.waitUntil(lambda: last_page in model.loaded_pages())
    assert model.pages_requested <= 2  # the bottom page (and the one above it), not every page in between
    qtbot.waitUntil(lambda: view.thumbnails.pending() == 0)
    assert view.thumbnails.requests <= 120
    assert model.data(model.index(n - 1), ITEM_ROLE).id == oldest.id


def test_without_the_audio_library_play_says_in_one_line_what_to_install(make_view, library, files, monkeypatch):
    from desktop.api.playback import explain_playback_failure
    from desktop.ui.gallery import player as player_module

    missing = ImportError("libpulse.so.0: cannot open shared object file: No such file or directory")
    monkeypatch.setattr(player_module, "playback_unavailable_reason", lambda: explain_playback_failure(missing))
    audio = add_wav(library, files, "quiet.wav", created=2.0)
    view = make_view()
    view.select_item(audio)
    assert not view.play_selected()
    line = "Playback needs the PulseAudio client library: sudo apt-get install libpulse0"
    assert view.status_label.text() == line and view.status_label.toolTip() == line  # not an ImportError text
    assert view.opened == [] and view.player.current is None
