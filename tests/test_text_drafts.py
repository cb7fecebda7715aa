"""Drafts of the text panel (plugins/text/drafts.py): storage, atomic writes, damage, export and reuse — and a
panel killed mid-session that finds its autosaved draft again."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from desktop.api import to_json
from plugins.text import drafts as drafts_module
from plugins.text.drafts import (
    Draft,
    DraftError,
    DraftStore,
    Provenance,
    export_markdown,
    export_text,
    params_from_export,
    sidecar_path,
)
from plugins.text.params import TextParams

ROOT = Path(__file__).resolve().parent.parent


def make_document(title: str = "", text: str = "Once upon a time, a lighthouse keeper") -> Draft:
    draft = Draft.new("document", title=title)
    draft.text = text
    params = to_json(TextParams(prompt="Once upon a time,", temperature=0.3, top_k=7, stop=["\n\n"]))
    draft.provenance = [Provenance(17, len(text), model="gpt2", params=params, seed=1234, job_id="job-1",
                                   created=1_700_000_000.0)]
    return draft


def make_chat() -> Draft:
    draft = Draft.new("chat")
    draft.system_prompt = "Answer like a pirate. \"Arr\"\n— and keep it short"
    draft.messages = [{"role": "user", "content": "Hello? ünïcödé 🦜"},
                      {"role": "assistant", "content": "Ahoy!\n---\nWhat be yer question?"}]
    params = to_json(TextParams(prompt="Hello? ünïcödé 🦜", mode="chat", system_prompt=draft.system_prompt,
                                max_new_tokens=64, temperature=1.1))
    draft.provenance = [Provenance(1, 2, model="org/chat-model", params=params, seed=99, job_id="job-7")]
    return draft


@pytest.fixture
def store(tmp_path: Path) -> DraftStore:
    return DraftStore(tmp_path / "drafts")


# ----------------------------------------------------------------------------------------------- storage


def test_save_load_list_delete_round_trip(store):
    document, chat = make_document(title="The keeper"), make_chat()
    assert store.list() == []
    store.save(document)
    store.save(chat)
    document.updated, chat.updated = 100.0, 200.0  # control the order
    store.save(document, touch=False)
    store.save(chat, touch=False)

    assert store.load(document.id) == document
    assert store.load(chat.id) == chat
    assert store.load(chat.id).provenance[0].seed == 99
    listed = store.list()
    assert [(i.id, i.kind, i.title, i.updated) for i in listed] == [
        (chat.id, "chat", "Hello? ünïcödé 🦜", 200.0), (document.id, "document", "The keeper", 100.0)]
    assert not any(i.damaged for i in listed)

    store.save(document)  # touching makes it the newest
    assert [i.id for i in store.list()] == [document.id, chat.id]
    store.delete(document.id)
    assert [i.id for i in store.list()] == [chat.id]
    store.delete(document.id)  # absent: no error
    with pytest.raises(DraftError):
        store.load(document.id)


def test_ids_that_are_not_plain_names_are_refused(store):
    for bad in ("../escape", "a/b", "", "x" * 65, "with space"):
        with pytest.raises(DraftError):
            store.path(bad)
    draft = make_document()
    draft.id = "../../outside"
    with pytest.raises(DraftError):
        store.save(draft)
    assert not (store.directory.parent.parent / "outside.json").exists()


def test_a_failed_write_leaves_the_previous_file_intact(store, monkeypatch):
    draft = make_document(text="the first version")
    store.save(draft)
    before = store.path(draft.id).read_bytes()

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    draft.text = "the second version, never written"
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        store.save(draft)
    monkeypatch.undo()
    assert store.path(draft.id).read_bytes() == before
    assert store.load(draft.id).text == "the first version"
    assert [p.name for p in store.directory.iterdir()] == [f"{draft.id}.json"]  # no temporary file left


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[]", b'{"id": "x", "kind": "poem"}',
                                     b'{"id": "ID", "kind": "chat", "messages": [{"role": "system"}]}',
                                     b"[" * 100000, b""])
def test_a_corrupt_draft_is_set_aside_and_listed_as_damaged(store, content):
    good = make_document(title="fine")
    store.save(good)
    bad_id = "a1b2c3"
    (store.directory / f"{bad_id}.json").write_bytes(content.replace(b"ID", bad_id.encode()))

    listed = store.list()
    assert [i.id for i in listed if not i.damaged] == [good.id]
    damaged = [i for i in listed if i.damaged]
    assert len(damaged) == 1 and damaged[0].path == store.directory / f"{bad_id}.json.corrupt"
    assert damaged[0].path.read_bytes() == content.replace(b"ID", bad_id.encode())  # kept, for a person to look at
    assert not (store.directory / f"{bad_id}.json").exists()
    assert [i.id for i in store.list() if i.damaged] == [damaged[0].id]  # still listed later
    store.delete(damaged[0].id)
    assert store.list() == [i for i in listed if not i.damaged]


def test_loading_a_damaged_draft_sets_it_aside(store):
    draft = make_document()
    store.save(draft)
    store.path(draft.id).write_text('{"id": "%s", "kind": "document", "text": 5}' % draft.id)
    with pytest.raises(DraftError, match="damaged"):
        store.load(draft.id)
    assert (store.directory / f"{draft.id}.json.corrupt").exists()
    assert store.path(draft.id).exists() is False


def test_an_unreadable_provenance_record_is_dropped_not_the_draft(store):
    draft = make_document()
    store.save(draft)
    data = json.loads(store.path(draft.id).read_text(encoding="utf-8"))
    data["provenance"].append({"start": 9, "end": 2, "seed": "x"})
    store.path(draft.id).write_text(json.dumps(data), encoding="utf-8")
    loaded = store.load(draft.id)
    assert loaded.text == draft.text and loaded.provenance == draft.provenance


# ------------------------------------------------------------------------------------------------ export


def test_markdown_export_holds_the_provenance_in_front_matter(store, tmp_path):
    draft = make_document(title="The keeper")
    path = tmp_path / "keeper.md"
    export_markdown(draft, path)
    text = path.read_text(encoding="utf-8")
    front, body = text.split("\n---\n", 1)
    assert front.startswith("---\n")
    assert body.strip() == draft.text
    assert 'title: "The keeper"' in front and 'model: "gpt2"' in front and "seed: 1234" in front
    assert 'job_id: "job-1"' in front and "start: 17" in front
    assert front.isascii()  # JSON scalars: YAML readers see the same values

    params, seed = params_from_export(path)
    assert seed == 1234
    assert params == draft.provenance[0].params
    assert params["stop"] == ["\n\n"] and params["top_k"] == 7


def test_chat_markdown_export_and_the_newest_generation_wins(tmp_path):
    draft = make_chat()
    later = to_json(TextParams(prompt="again", mode="chat", temperature=0.2))
    draft.provenance.append(Provenance(3, 4, model="m", params=later, seed=5))
    path = tmp_path / "chat.md"
    export_markdown(draft, path)
    text = path.read_text(encoding="utf-8")
    assert "**You:**\n\nHello? ünïcödé 🦜" in text and "**Assistant:**\n\nAhoy!" in text
    assert params_from_export(path) == (later, 5)


def test_text_export_writes_a_json_sidecar(tmp_path):
    draft = make_chat()
    path = tmp_path / "talk.txt"
    sidecar = export_text(draft, path)
    assert sidecar == sidecar_path(path) == tmp_path / "talk.json"
    assert path.read_text(encoding="utf-8").startswith("System: Answer like a pirate.")
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    assert data["generations"][0]["model"] == "org/chat-model" and data["file"] == "talk.txt"
    assert params_from_export(path) == (draft.provenance[0].params, 99)
    assert params_from_export(sidecar) == (draft.provenance[0].params, 99)

    document = make_document()
    export_text(document, tmp_path / "doc.txt")
    assert (tmp_path / "doc.txt").read_text(encoding="utf-8") == document.text


def test_an_export_without_generations_or_with_bad_params_gives_none(tmp_path):
    draft = Draft.new("document")
    draft.text = "all mine"
    export_markdown(draft, tmp_path / "mine.md")
    assert params_from_export(tmp_path / "mine.md") is None
    draft.provenance = [Provenance(0, 3, params={"temperature": 99.0})]  # out of range
    export_markdown(draft, tmp_path / "bad.md")
    assert params_from_export(tmp_path / "bad.md") is None
    assert params_from_export(tmp_path / "missing.txt") is None  # no sidecar


def hostile_corpus(tmp_path: Path) -> list[bytes]:
    good = tmp_path / "good.md"
    export_markdown(make_document(), good)
    side = tmp_path / "good.txt"
    export_text(make_chat(), side)
    return [
        good.read_bytes(),
        sidecar_path(side).read_bytes(),
        b"",
        b"---\n",
        b"---\nstudiolo: \"text-draft\"\ngenerations:\n  - params: " + b"[" * 50000 + b"\n---\n",
        b"---\nstudiolo: \"text-draft\"\ngenerations:\n  - seed: " + b"9" * 10000 + b"\n    params: {}\n---\n",
        b"---\nstudiolo: \"text-draft\"\ngenerations:\n  - seed: true\n    params: {\"top_k\": 1e400}\n---\n",
        b"---\nstudiolo: \"text-draft\"\ngenerations: 5\n---\n",
        b"---\nstudiolo: \"text-draft\"\n    params: {}\n  - seed: \"x\"\n    params: []\n---\n",
        b'{"generations": [{"params": {"stop": "notalist"}}, 3, null]}',
        b'{"generations": {"params": {}}}',
        b"[1, 2, 3]",
        b"\xef\xbb\xbf---\nstudiolo: \"text-draft\"\n" + b"\xff" * 100 + b"\n---\n",
        bytes(range(256)) * 4,
    ]


def test_hostile_export_files_never_raise(tmp_path):
    corpus = hostile_corpus(tmp_path)
    rng = random.Random(20240501)
    target = tmp_path / "hostile"
    checked = 0
    for _ in range(400):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(0, 8)):
            op = rng.randrange(4)
            where = rng.randrange(len(data) + 1)
            if op == 0 and data:
                data[min(where, len(data) - 1)] = rng.randrange(256)
            elif op == 1:
                data[where:where] = rng.choice([b"\n", b"---", b"  - ", b"params: ", b"{", b'"', b"\\u", b"\x00",
                                                b"seed: -1", b"\n---\n"])
            elif op == 2:
                del data[where:where + rng.randint(1, 40)]
            else:
                data = data[:where]
        for suffix in (".md", ".json", ".txt"):
            path = target.with_suffix(suffix)
            path.write_bytes(bytes(data))
            if suffix == ".txt":
                sidecar_path(path).write_bytes(bytes(data))
            result = params_from_export(path)
            assert result is None or (isinstance(result[0], dict) and (result[1] is None or isinstance(result[1], int)))
            checked += 1
    assert checked == 1200
    # not files at all
    (tmp_path / "folder.md").mkdir()
    assert params_from_export(tmp_path / "folder.md") is None
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.md")  # reading it would block for ever
        assert params_from_export(tmp_path / "pipe.md") is None


def test_a_huge_front_matter_is_read_only_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(drafts_module, "_READ_LIMIT", 1000)
    path = tmp_path / "big.md"
    export_markdown(make_document(text="x" * 5000), path)
    assert params_from_export(path) is not None  # the front matter is within the limit
    draft = make_document()
    draft.provenance[0].params["prompt"] = "y" * 5000  # now it is not
    export_markdown(draft, path)
    assert params_from_export(path) is None


# -------------------------------------------------------------------------------------- crash and restore

CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from desktop.api.widgets import QtPanelHost
    from desktop.storage import JsonPanelStorage
    from plugins.text.panel import TextPanel

    class Host(QtPanelHost):  # the host's signals come declared
        def __init__(self, root):
            super().__init__()
            self._storage = JsonPanelStorage("text", root=root)

        @property
        def storage(self):
            return self._storage

        def current_model(self):
            return "tiny"

    app = QApplication([])
    panel = TextPanel(Host(Path(sys.argv[1])), autosave_ms=20)
    panel.show()

    def saved(draft_id):
        path = panel.store.path(draft_id)
        if TEXT in path.read_text(encoding="utf-8"):
            print("autosaved", draft_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no close, no aboutToQuit: only what autosave wrote survives

    TEXT = sys.argv[2]
    panel.draft_saved.connect(saved)
    panel.editor.setFocus()
    QTest.keyClicks(panel.editor, TEXT)
    QTimer.singleShot(30000, app.quit)  # the autosave never came: fail rather than hang
    app.exec()
    print("not killed", flush=True)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_panel_finds_its_autosaved_draft_again(qtbot, tmp_path):
    from test_text_panel import FakeHost  # the panel tests' host, on the same storage

    root = tmp_path / "panels"
    text = "Typed before the crash: the keeper climbed the stairs."
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", CHILD, str(root), text], capture_output=True, text=True,
                            env=env, timeout=120, cwd=ROOT)
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr
    assert result.stdout.startswith("autosaved "), result.stdout + result.stderr
    draft_id = result.stdout.split()[1]

    from plugins.text.panel import TextPanel

    panel = TextPanel(FakeHost(root), autosave_ms=60_000)
    qtbot.addWidget(panel)
    assert panel.mode() == "continue"
    assert panel.editor.text() == text
    assert panel.current_draft().id == draft_id
    assert panel.draft_ids() == [draft_id]
