"""The iterative refinement loop (issue 18, point 4): "Use as input" from a gallery item or a result of the image
panel into image-to-image or inpaint, the chain (parent → child) recorded in each output's PNG metadata and in the
library, and browsable from the gallery ("Derived from", "Derivatives"), through the real engine and the tiny demo
Stable Diffusion model."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from windows import open_window

from desktop.api import ImageOutput
from desktop.library import Gallery, Library, NewItem, Query, read_png_metadata
from desktop.library import db as library_db
from desktop.testing.panel_host import RecordingPanelHost
from desktop.ui.main_window import GALLERY_PAGE
from plugins.image.panel import ImagePanel

WAIT = 120_000  # ms: a safety net; every wait ends on a signal or a condition


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- the real window, engine and demo model ----------------------------------------------------------------------


@pytest.fixture
def window(qtbot):
    window = open_window(qtbot, in_process=True)  # torch is here already: no worker process to start
    yield window
    window.close()


@pytest.fixture
def image_page(window):
    page = window.show_page("image.diffusers")
    page.model_chooser.set_ref("demo")
    page.seed_box.setText("7")
    panel = page.custom_panel
    panel.prompt.setPlainText("a lighthouse")
    panel.width_spin.setValue(64)
    panel.height_spin.setValue(64)
    panel.steps.setValue(2)
    panel.strength.setValue(0.5)
    return page


def generate(window, qtbot, page):
    """Press Generate on the image page; the finished job (one output, saved and indexed)."""
    with qtbot.waitSignal(window.engine.job_finished, timeout=WAIT) as finished:
        job_id = page.generate()
    assert job_id is not None and finished.args[0] == job_id
    job = window.engine.job(job_id)
    assert len(job.item_ids) == 1
    return job


def open_gallery(window, qtbot, *item_ids: int):
    view = window.show_page(GALLERY_PAGE)
    view.refresh()
    qtbot.waitUntil(lambda: all(view.model.row_of(i) is not None for i in item_ids), timeout=WAIT)
    return view


def select(view, qtbot, item_id: int) -> None:
    """Select a listed item and wait for its details."""
    assert view.select_item(item_id)
    qtbot.waitUntil(lambda: view.details.item_id() == item_id, timeout=WAIT)


def use_from_gallery(window, view, qtbot, item_id: int, mode: str):
    """The gallery's "Use as input → <mode>" on an item, as a person picks it in the menu; the image panel."""
    select(view, qtbot, item_id)
    assert view.actions_by_name["use_as_input"].isEnabled()
    view.input_menu.aboutToShow.emit()  # the menu is filled when it opens
    labels = {action.objectName(): action.text() for action in view.input_menu.actions()}
    assert labels == {"gallery_use_as_input_image.diffusers_img2img": "Image-to-image",
                      "gallery_use_as_input_image.diffusers_inpaint": "Inpaint",
                      "gallery_use_as_input_image.diffusers_upscale": "Upscale"}
    panel = window.page("image.diffusers").custom_panel
    path = window.engine.library.get(item_id).path
    next(a for a in view.input_menu.actions() if a.objectName().endswith(mode)).trigger()
    qtbot.waitUntil(lambda: window.current_page() is window.page("image.diffusers") and panel.init_image() == path,
                    timeout=WAIT)
    return panel


def test_use_as_input_from_the_gallery_then_the_panel_records_a_three_generation_chain(window, image_page, qtbot):
    first = generate(window, qtbot, image_page)
    a = first.item_ids[0]
    view = open_gallery(window, qtbot, a)
    image_page.custom_panel.prompt.setPlainText("something else")  # the page moved on
    image_page.custom_panel.steps.setValue(3)

    panel = use_from_gallery(window, view, qtbot, a, "img2img")
    assert panel.mode() == "img2img"
    assert panel.prompt.toPlainText() == "a lighthouse" and panel.steps.value() == 2  # the item's params kept
    second = generate(window, qtbot, image_page)
    b = second.item_ids[0]
    library = window.engine.library
    parent_a = {"item_id": a, "sha256": sha256(first.saved[0]), "path": str(first.saved[0])}
    assert read_png_metadata(second.saved[0])["parent"] == parent_a  # in the PNG's Studiolo metadata
    row_b = library.get(b)
    assert (row_b.parent_id, row_b.parent_sha256, row_b.sha256) == (a, sha256(first.saved[0]), sha256(second.saved[0]))

    # the third generation from the panel's own results strip: the result's library file is the input
    assert panel.results()[-1].saved_path == second.saved[0]
    assert panel.use_as_input("img2img") and panel.init_image() == second.saved[0]
    third = generate(window, qtbot, image_page)
    c = third.item_ids[0]
    assert read_png_metadata(third.saved[0])["parent"]["item_id"] == b
    assert library.get(c).parent_id == b and library.get(a).parent_id is None

    view = open_gallery(window, qtbot, a, b, c)
    select(view, qtbot, c)
    assert view.details.parent_text() == f"#{b} · a lighthouse"
    assert not view.details.derivatives.isVisibleTo(view.details)  # nothing was made from c
    assert view.details.activate_parent_link()  # "Derived from" → b is selected, its details shown
    qtbot.waitUntil(lambda: view.details.item_id() == b and view.current_row().item.id == b, timeout=WAIT)
    assert view.details.parent_text() == f"#{a} · a lighthouse"
    assert view.details.derivatives.isVisibleTo(view.details) and view.details.details.derivatives == 1

    assert view.details.activate_derivatives_link()  # "Derivatives: 1" → only c is listed
    qtbot.waitUntil(lambda: view.item_count() == 1 and view.model.row_of(c) == 0, timeout=WAIT)
    assert view.filters.query() == Query(derived_from=b) and view.filters.derived_chip.isVisibleTo(view)

    # the parent filtered away (only c is listed): the link clears the filters and finds it
    select(view, qtbot, c)
    assert view.model.row_of(b) is None
    assert view.details.activate_parent_link()
    qtbot.waitUntil(lambda: view.details.item_id() == b and view.current_row() is not None
                    and view.current_row().item.id == b, timeout=WAIT)
    assert view.filters.query() == Query() and view.item_count() == 3


def test_a_byte_identical_copy_links_and_a_trashed_or_deleted_parent_is_said(window, image_page, qtbot, tmp_path):
    first = generate(window, qtbot, image_page)
    a = first.item_ids[0]
    copy = tmp_path / "elsewhere" / "copied.png"
    copy.parent.mkdir()
    shutil.copyfile(first.saved[0], copy)  # the library file copied elsewhere, byte for byte
    panel = image_page.custom_panel
    assert panel.load_init_image(copy)
    child_job = generate(window, qtbot, image_page)
    child = child_job.item_ids[0]
    assert read_png_metadata(child_job.saved[0])["parent"] == {"item_id": a, "sha256": sha256(copy),
                                                               "path": str(copy)}
    assert window.engine.library.get(child).parent_id == a

    view = open_gallery(window, qtbot, a, child)
    select(view, qtbot, a)
    view.trash_selected()
    qtbot.waitUntil(lambda: view.model.row_of(a) is None and view.model.row_of(child) is not None, timeout=WAIT)
    select(view, qtbot, child)
    assert view.details.parent_text() == f"#{a} · a lighthouse (in the trash)"
    assert view.details.activate_parent_link()  # shows the trash, with the parent selected
    qtbot.waitUntil(lambda: view.details.item_id() == a and view.filters.trash.isChecked(), timeout=WAIT)
    assert view.current_row().item.id == a and f"Item {a} is in the trash." in view.status_label.text()

    with qtbot.waitSignal(view.model.counted, timeout=WAIT):
        view.empty_trash(confirm=False)  # the parent is deleted for good, with its file
    assert window.engine.library.get(a) is None and not first.saved[0].exists()
    view.filters.trash.setChecked(False)
    qtbot.waitUntil(lambda: view.model.row_of(child) is not None, timeout=WAIT)
    select(view, qtbot, child)
    details = view.details.details
    assert details.exists and details.parent.gone  # the child still opens; its link says the parent is gone
    assert view.details.parent_text() == f"item {a}, which was deleted from the library"
    assert not view.details.activate_parent_link()
    assert read_png_metadata(child_job.saved[0])["parent"]["item_id"] == a  # what its file records stays
    view.show_item(a)
    qtbot.waitUntil(lambda: "no longer in the library" in view.status_label.text(), timeout=WAIT)


# -- the image panel's "Use as input" (a recording host: no engine needed) ---------------------------------------


def test_the_panels_use_as_input_takes_the_saved_file_into_inpaint_or_a_copy_when_unsaved(qtbot, tmp_path):
    host = RecordingPanelHost(tmp_path / "panels", generator_id="image", model="demo")
    panel = ImagePanel(host)
    qtbot.addWidget(panel)
    job = panel.generate()
    saved = tmp_path / "library" / "result.png"
    saved.parent.mkdir()
    Image.new("RGB", (40, 24), (10, 200, 30)).save(saved)
    host.job_finished.emit(job, [ImageOutput(image=Image.new("RGB", (40, 24), (10, 200, 30)), saved_path=saved)])
    assert panel.inpaint_action.isEnabled()
    panel.inpaint_action.trigger()  # the button's menu: Inpaint
    assert panel.mode() == "inpaint" and panel.init_image() == saved  # the library file itself: the chain links

    panel.set_mode("txt2img")
    job = panel.generate()
    host.job_finished.emit(job, [ImageOutput(image=Image.new("RGB", (40, 24), (1, 2, 3)))])  # not saved
    panel.img2img_action.trigger()
    assert panel.mode() == "img2img"
    assert panel.init_image() != saved and panel.init_image().parent == host.storage.directory


# -- the library: the schema, finding a file, the derived-from filter --------------------------------------------


def make_schema_2(path: Path) -> None:
    """A library as Studiolo's schema 2 wrote it (no hash, no parent columns), holding one item."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for version in (0, 1):
        conn.execute("BEGIN")
        for statement in library_db.MIGRATIONS[version]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    conn.execute("INSERT INTO items (job_id, generator_id, kind, prompt, path, created, partial, metadata, favourite) "
                 "VALUES ('old-job', 'image.diffusers', 'image', 'an old picture', '/out/old.png', 1.6e9, 0, '{}', 1)")
    conn.close()


def test_a_schema_2_library_is_backed_up_and_upgraded_with_the_chain_columns(studiolo_home: Path):
    path = library_db.default_library_path()
    make_schema_2(path)
    with Library() as library:
        old = library.find_file("/out/old.png")  # found by its path: it has no hash
        assert old is not None and old.prompt == "an old picture" and old.favourite
        assert (old.sha256, old.parent_id, old.parent_sha256) == (None, None, None)
        child = library.add(NewItem("image.diffusers", "image", "/out/new.png", sha256="ab" * 32,
                                    parent_id=old.id, parent_sha256="cd" * 32)).result(timeout=30)
        assert [i.id for i in library.query(Query(derived_from=old.id))] == [child]
        assert Gallery(library).details(old.id).derivatives == 1
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == library_db.SCHEMA_VERSION == 3
        columns = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    finally:
        conn.close()
    assert {"sha256", "parent_id", "parent_sha256"} <= columns
    backups = library_db.backup_paths(path)
    assert len(backups) == 1 and backups[0].name.endswith("-schema2")


def test_find_file_by_path_then_by_bytes_outside_the_trash_first(studiolo_home: Path, tmp_path: Path):
    with Library() as library:
        first = library.add(NewItem("g.x", "image", tmp_path / "a.png", sha256="11" * 32)).result(timeout=30)
        second = library.add(NewItem("g.x", "image", tmp_path / "b.png", sha256="11" * 32)).result(timeout=30)
        assert library.find_file(tmp_path / "b.png", "11" * 32).id == second  # the path wins
        assert library.find_file(tmp_path / "elsewhere.png", "11" * 32).id == first  # then the oldest same bytes
        library.trash([first]).result(timeout=30)
        assert library.find_file(None, "11" * 32).id == second  # one outside the trash first
        assert library.find_file(tmp_path / "none.png", "22" * 32) is None
        assert library.position(Query(), first) is None and library.position(Query(trashed=True), first) == 0
        assert library.position(Query(), second) == 0


def test_gallery_show_names_the_parent_and_the_children(studiolo_home: Path, capsys: pytest.CaptureFixture[str]):
    from desktop.cli import main

    with Library() as library:
        parent = library.add(NewItem("image.diffusers", "image", "/out/a.png", sha256="aa" * 32)).result(timeout=30)
        child = library.add(NewItem("image.diffusers", "image", "/out/b.png", parent_id=parent,
                                    parent_sha256="aa" * 32)).result(timeout=30)
    assert main(["gallery", "show", str(child)]) == 0
    assert f"  parent     item {parent}\n" in capsys.readouterr().out
    assert main(["gallery", "show", str(parent), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["parent"], shown["derivatives"], shown["sha256"]) == (None, 1, "aa" * 32)
    assert main(["gallery", "delete", str(parent), "--now"]) == 0
    capsys.readouterr()
    assert main(["gallery", "show", str(child), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parent"] == {"item_id": parent, "sha256": "aa" * 32,
                                                              "deleted": True, "trashed": False}
    assert main(["gallery", "show", str(child)]) == 0
    assert f"  parent     item {parent} (deleted)\n" in capsys.readouterr().out
