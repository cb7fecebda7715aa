"""The gallery's Content Credentials section (a badge, the summary, the claims, checked off the GUI thread, a stale
result dropped) and "Reproduce" (the item's job run again through the window's engine, without an event loop of its
own, then compared off the GUI thread)."""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import pytest
from helpers import install_markov
from PIL import Image

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.library.db import Library, NewItem, Query
from desktop.library.gallery import Gallery
from desktop.plugins import PluginManager
from desktop.provenance.c2pa_sign import sign_file
from desktop.provenance.c2pa_verify import verify_file
from desktop.provenance.keys import create_signing_keys, key_dir
from desktop.settings import Settings
from desktop.ui.gallery import GalleryView
from desktop.ui.gallery.thumbnails import ThumbnailService, default_cache_folder

WAIT = 60_000
CLAIMS = {"generator": "image.diffusers", "model": "tiny-sd", "weights_sha256": "ab" * 32, "prompt": "a red fox"}
CORPUS = ("the boat went out in the morning and the boat came back at night and the sea was grey in the morning "
          "and the sea was blue at noon and the lamp was warm at night")


@pytest.fixture
def library(tmp_path: Path):
    lib = Library(tmp_path / "library.db")
    yield lib
    lib.close()


@pytest.fixture
def views(qtbot):
    made: list[GalleryView] = []

    def make(library: Library, engine: Engine | None = None) -> GalleryView:
        view = GalleryView(Gallery(library), thumbnails=ThumbnailService(default_cache_folder()), engine=engine)
        qtbot.addWidget(view)
        view.resize(1100, 760)
        view.show()
        made.append(view)
        expected = library.count(Query())
        qtbot.waitUntil(lambda: view.model.total() == expected and view.loader.pending() == 0)
        return view

    yield make
    for view in made:
        view.shutdown()


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (16, 16), colour).save(path)
    return path


def _flip_a_pixel_byte(path: Path) -> None:
    """Change one byte of the compressed pixels (the chunk's CRC fixed, so the PNG still parses)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT")
    (size,) = struct.unpack(">I", data[at - 4:at])
    data[at + 4 + size // 2] ^= 0x01
    data[at + 4 + size:at + 8 + size] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 4 + size])))
    path.write_bytes(bytes(data))


def _add(library: Library, path: Path, prompt: str) -> int:
    return library.add(NewItem(generator_id="image.test", kind="image", path=path, prompt=prompt,
                               metadata={"params": {"prompt": prompt}})).result()


def _show(view: GalleryView, qtbot, item_id: int) -> None:
    assert view.select_item(item_id)
    panel = view.details.credentials
    qtbot.waitUntil(lambda: panel.item_id == item_id and panel.state is not None, timeout=WAIT)


def test_the_details_pane_shows_valid_tampered_and_unsigned_with_the_claims(library, views, qtbot, tmp_path):
    keys = create_signing_keys(key_dir())  # this installation's keys: what the pane checks against
    signed = sign_file_at(_png(tmp_path / "signed.png", (200, 30, 10)), keys)
    tampered = sign_file_at(_png(tmp_path / "tampered.png", (10, 200, 30)), keys)
    _flip_a_pixel_byte(tampered)
    plain = _png(tmp_path / "plain.png", (10, 30, 200))
    ids = {name: _add(library, path, name) for name, path in
           (("signed", signed), ("tampered", tampered), ("plain", plain))}
    view = views(library)
    panel = view.details.credentials

    _show(view, qtbot, ids["signed"])
    assert panel.state == "valid" and panel.badge.text() == "✓ Valid"
    assert "signed by this Studiolo and unchanged" in panel.summary.text()
    assert panel.claim("generator") == "image.diffusers" and panel.claim("model") == "tiny-sd"
    assert panel.claim("weights_sha256") == "abababababab…"  # shortened; the whole hash in its tooltip
    assert panel.claim_labels["weights_sha256"].toolTip() == "ab" * 32
    assert panel.claim("prompt") == "a red fox"
    assert panel.claim("digital_source_type") == "trainedAlgorithmicMedia"
    assert "Studiolo Content Credentials" in panel.claim("signer")

    _show(view, qtbot, ids["tampered"])
    assert panel.state == "tampered" and panel.badge.text() == "⚠ Tampered"
    assert "changed after signing" in panel.summary.text()

    _show(view, qtbot, ids["plain"])
    assert panel.state == "unsigned" and panel.badge.text() == "Unsigned"
    assert panel.claim("generator") == "" and not panel.claim_labels["generator"].isVisibleTo(panel)
    # the tiles of the items checked are marked (✓ valid, ⚠ tampered; none for unsigned), no other tile is checked
    assert view.delegate.credentials == {ids["signed"]: "valid", ids["tampered"]: "tampered", ids["plain"]: "unsigned"}
    assert not view.list.viewport().grab().isNull()  # the marked tiles paint (an error there fails the test)


def sign_file_at(path: Path, keys) -> Path:
    sign_file(path, claims=CLAIMS, include_prompt=True, keys=keys)
    return path


def test_a_verification_that_lands_after_the_selection_moved_on_is_dropped(library, views, qtbot, tmp_path):
    keys = create_signing_keys(key_dir())
    first = sign_file_at(_png(tmp_path / "a.png", (1, 2, 3)), keys)
    second = _png(tmp_path / "b.png", (4, 5, 6))
    a, b = _add(library, first, "a"), _add(library, second, "b")
    view = views(library)
    panel = view.details.credentials
    release, a_started, a_returned = threading.Event(), threading.Event(), threading.Event()

    def slow_for_a(path: Path):
        if path == first:
            a_started.set()
            release.wait(WAIT / 1000)
            a_returned.set()
        return verify_file(path)

    panel.verify = slow_for_a
    try:
        assert view.select_item(a)
        qtbot.waitUntil(a_started.is_set, timeout=WAIT)  # A's check is under way, held
        _show(view, qtbot, b)
        assert panel.state == "unsigned"
    finally:
        release.set()
    qtbot.waitUntil(lambda: a_returned.is_set() and panel.tasks.pending() == 0, timeout=WAIT)
    assert panel.item_id == b and panel.state == "unsigned"  # A's "valid" never replaced B's verdict
    assert view.delegate.credentials == {a: "valid", b: "unsigned"}  # though it still marks A's own tile


@pytest.fixture
def engine(studiolo_site, tmp_path):
    install_markov(studiolo_site)
    plugins = PluginManager(Settings(idle_unload_minutes=0, output_dir=str(tmp_path / "out"))).load()
    engine = Engine(plugins, plugins.settings, cache=ModelCache(), in_process=True)
    yield engine
    assert engine.shutdown(timeout=30)


def test_reproduce_reruns_the_job_through_the_engine_and_says_identical(engine, views, qtbot, tmp_path):
    corpus = tmp_path / "model" / "corpus.txt"
    corpus.parent.mkdir()
    corpus.write_text(CORPUS, encoding="utf-8")
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        job = engine.submit("text.markov", {"words": 25, "temperature": 1.5}, model=str(corpus), seed=11)
    (item_id,) = job.item_ids
    view = views(engine.library, engine)
    panel = view.details.credentials
    _show(view, qtbot, item_id)
    assert panel.state == "unsigned"  # a text file carries no Content Credentials
    view._update_actions()
    assert view.actions_by_name["reproduce"].isEnabled()

    with qtbot.waitSignal(panel.reproduced, timeout=WAIT) as ended:
        view.actions_by_name["reproduce"].trigger()  # the context menu's action
        assert panel.is_reproducing() and not view.actions_by_name["reproduce"].isEnabled()
    _id, text, identical, failed = ended.args
    assert _id == item_id and identical is True and not failed
    assert f"item {item_id}: identical" in panel.result_text()
    assert not panel.is_reproducing() and panel.cancel_button.isHidden()
    assert engine.library.count() == 1 and len(list((tmp_path / "out").rglob("*.txt"))) == 1  # compared, not saved


def test_reproduce_can_be_cancelled_while_its_job_runs(engine, views, qtbot, tmp_path):
    corpus = tmp_path / "model" / "corpus.txt"
    corpus.parent.mkdir()
    corpus.write_text(CORPUS, encoding="utf-8")
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        job = engine.submit("text.markov", {"words": 25}, model=str(corpus), seed=3)
    (item_id,) = job.item_ids
    view = views(engine.library, engine)
    panel = view.details.credentials
    _show(view, qtbot, item_id)
    engine.set_paused("text.markov", True)  # the re-run stays queued until it is cancelled: no race with its end
    with qtbot.waitSignal(engine.job_queued, timeout=WAIT):  # prepared off the GUI thread, then submitted
        assert panel.reproduce(item_id)
    assert panel.cancel_button.isVisibleTo(panel)
    with qtbot.waitSignal(panel.reproduced, timeout=WAIT) as ended:
        panel.cancel_button.click()
    assert ended.args[2] is None and not ended.args[3]
    assert panel.result_text() == "Cancelled." and not panel.is_reproducing()
