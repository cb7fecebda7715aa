"""``studiolo gallery list | show | export | delete | restore | empty-trash``, run in-process (and once in a
subprocess, to check it imports neither Qt nor torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT
from library_items import fill_library

from desktop.cli import main
from desktop.library import Library, NewItem, Query, sidecar_path

WAIT = 30


@pytest.fixture
def items(studiolo_home: Path) -> list[int]:
    """A library of 12 real items (closed again: the CLI opens its own)."""
    with Library() as lib:
        ids = fill_library(lib, 12, root=studiolo_home / "data" / "outputs", seed=1)
    return ids


def all_items(**query: object) -> list:
    with Library() as lib:
        return lib.query(Query(**query), limit=1000)  # type: ignore[arg-type]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["gallery", *args])
    out, err = capsys.readouterr()
    return code, out, err


def list_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    code, out, err = run(capsys, "list", "--json", *args)
    assert code == 0, err
    return json.loads(out)


# -- list ----------------------------------------------------------------------------------------------------------


def test_list_of_an_empty_library_says_how_to_fill_it(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "The library is empty" in out and "studiolo generate" in out
    assert list_json(capsys) == []


def test_list_prints_a_table_newest_first(capsys: pytest.CaptureFixture[str], items: list[int]):
    expected = all_items()
    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "DATE", "KIND", "GENERATOR", "MODEL", "PROMPT"]
    rows = lines[1:13]
    assert [int(row.split()[0]) for row in rows] == [i.id for i in expected]
    for row, item in zip(rows, expected, strict=True):
        assert item.kind in row and item.generator_id in row and (item.model or "-")[:31] in row
        assert " ".join((item.prompt or "").split())[:40] in row
        assert "⚠" not in row
    assert lines[-1] == "12 item(s)"


def test_list_marks_missing_files(capsys: pytest.CaptureFixture[str], items: list[int]):
    victim = all_items(kinds=("image",))[0]
    victim.path.unlink()
    _, out, _ = run(capsys, "list")
    marked = [line for line in out.splitlines() if line.startswith("⚠")]
    assert len(marked) == 1 and int(marked[0].split()[1]) == victim.id
    assert "⚠ = file missing" in out
    data = {entry["id"]: entry for entry in list_json(capsys)}
    assert data[victim.id]["exists"] is False and sum(not e["exists"] for e in data.values()) == 1


def test_list_json_and_filters(capsys: pytest.CaptureFixture[str], items: list[int]):
    data = list_json(capsys)
    assert [entry["id"] for entry in data] == [i.id for i in all_items()]
    first = data[0]
    assert {"id", "created", "kind", "generator_id", "model", "prompt", "path", "exists", "favourite",
            "trashed_at", "text", "seed"} <= set(first)
    assert Path(first["path"]).is_file() and first["exists"] is True

    texts = list_json(capsys, "--kind", "text")
    assert texts and {e["kind"] for e in texts} == {"text"}
    assert len(list_json(capsys, "--kind", "text", "--kind", "audio")) == len(all_items(kinds=("text", "audio")))
    music = list_json(capsys, "--generator", "audio.music")
    assert [e["id"] for e in music] == [i.id for i in all_items(generator_id="audio.music")]

    word = all_items(kinds=("image",))[0].prompt.split()[2]  # type: ignore[union-attr]
    found = list_json(capsys, "--search", word[:-1])
    assert found and [e["id"] for e in found] == [i.id for i in all_items(search=word[:-1])]
    assert list_json(capsys, "--search", '"NEAR( AND *') == []

    assert len(list_json(capsys, "--limit", "3")) == 3
    code, out, _ = run(capsys, "list", "--limit", "3")
    assert code == 0 and out.splitlines()[-1] == "3 of 12 item(s)"
    assert len(list_json(capsys, "--limit", "0")) == 12

    with Library() as lib:
        lib.set_favourite(items[4], True).result(timeout=WAIT)
    assert [e["id"] for e in list_json(capsys, "--favourites")] == [items[4]]
    code, out, _ = run(capsys, "list", "--favourites", "--kind", "nothing")
    assert code == 0 and "No item matches." in out


def test_list_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]):
    for args in (["list", "--limit", "-1"], ["list", "--limit", "many"], ["show", "abc"], ["delete"]):
        with pytest.raises(SystemExit) as info:
            main(["gallery", *args])
        assert info.value.code == 2
    capsys.readouterr()


# -- show ----------------------------------------------------------------------------------------------------------


def test_show_an_item(capsys: pytest.CaptureFixture[str], items: list[int]):
    item = all_items(kinds=("text",))[0]
    with Library() as lib:
        lib.add_tag(item.id, "story").result(timeout=WAIT)
    code, out, _ = run(capsys, "show", str(item.id))
    assert code == 0
    assert out.startswith(f"Item {item.id}\n")
    assert item.generator_id in out and str(item.path) in out and "story" in out and (item.prompt or "") in out
    assert (item.text or "")[:50] in out and '"max_new_tokens"' in out

    code, out, _ = run(capsys, "show", str(item.id), "--json")
    data = json.loads(out)
    assert data["id"] == item.id and data["tags"] == ["story"] and data["exists"] is True
    assert data["size_bytes"] == item.path.stat().st_size and data["metadata"]["params"]["prompt"] == item.prompt

    item.path.unlink()
    code, out, _ = run(capsys, "show", str(item.id))
    assert code == 0 and "missing" in out
    assert json.loads(run(capsys, "show", str(item.id), "--json")[1])["size_bytes"] is None


def test_show_an_unknown_item_is_a_clear_error(capsys: pytest.CaptureFixture[str], items: list[int]):
    code, out, err = run(capsys, "show", "9999")
    assert code == 1 and out == ""
    assert "studiolo: error: There is no item 9999 in the library." in err and "gallery list" in err


def test_a_row_with_corrupt_metadata_still_lists_and_shows(capsys: pytest.CaptureFixture[str], items: list[int]):
    with Library() as lib:
        lib._submit(lambda conn: conn.execute("UPDATE items SET metadata = '{oops' WHERE id = ?",
                                              (items[0],))).result(timeout=WAIT)
    assert items[0] in [e["id"] for e in list_json(capsys)]
    code, out, _ = run(capsys, "show", str(items[0]), "--json")
    assert code == 0 and json.loads(out)["metadata"] == {}


# -- export --------------------------------------------------------------------------------------------------------


def test_export(capsys: pytest.CaptureFixture[str], items: list[int], tmp_path: Path):
    audio = all_items(kinds=("audio",))[0]
    code, out, _ = run(capsys, "export", str(audio.id), str(tmp_path))
    assert code == 0 and out.strip() == str(tmp_path / audio.path.name)
    assert (tmp_path / audio.path.name).read_bytes() == audio.path.read_bytes()
    assert sidecar_path(tmp_path / audio.path.name).is_file()

    code, _, err = run(capsys, "export", str(audio.id), str(tmp_path))
    assert code == 1 and "already exists" in err and "--overwrite" in err
    code, _, _ = run(capsys, "export", str(audio.id), str(tmp_path), "--overwrite")
    assert code == 0

    audio.path.unlink()
    code, _, err = run(capsys, "export", str(audio.id), str(tmp_path / "again.wav"))
    assert code == 1 and "missing" in err and not (tmp_path / "again.wav").exists()


# -- delete, restore, empty-trash ----------------------------------------------------------------------------------


def test_delete_moves_to_the_trash_and_restore_brings_back(capsys: pytest.CaptureFixture[str], items: list[int]):
    code, out, _ = run(capsys, "delete", str(items[0]), str(items[1]), str(items[1]))
    assert code == 0 and "moved 2 item(s) to the trash" in out
    assert len(all_items()) == 10
    assert sorted(e["id"] for e in list_json(capsys, "--trash")) == sorted(items[:2])
    assert all(Path(e["path"]).is_file() for e in list_json(capsys, "--trash"))
    code, out, _ = run(capsys, "list", "--trash")
    assert "2 item(s) in the trash" in out

    code, out, _ = run(capsys, "restore", str(items[0]))
    assert code == 0 and "restored 1 item(s)" in out
    assert [e["id"] for e in list_json(capsys, "--trash")] == [items[1]]

    path = Path(list_json(capsys, "--trash")[0]["path"])
    code, out, _ = run(capsys, "empty-trash")
    assert code == 0 and "deleted 1 item(s)" in out
    assert not path.exists() and list_json(capsys, "--trash") == [] and len(all_items()) == 11
    code, out, _ = run(capsys, "empty-trash")
    assert code == 0 and "The trash is empty." in out
    code, out, _ = run(capsys, "list", "--trash")
    assert "The trash is empty." in out


def test_delete_now_removes_files_and_unknown_ids_change_nothing(capsys: pytest.CaptureFixture[str],
                                                                 items: list[int]):
    code, _, err = run(capsys, "delete", str(items[2]), "424242")
    assert code == 1 and "no item 424242" in err
    assert len(all_items()) == 12 and all_items(trashed=True) == []  # nothing trashed

    victim = all_items(kinds=("text",))[0]
    code, out, _ = run(capsys, "delete", str(victim.id), "--now")
    assert code == 0 and "deleted 1 item(s) and their files" in out
    assert not victim.path.exists() and not sidecar_path(victim.path).exists()
    assert len(all_items()) == 11 and all_items(trashed=True) == []


def test_a_missing_files_row_can_be_forgotten_with_delete_now(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    with Library() as lib:
        ghost = lib.add(NewItem(generator_id="g", kind="image", path=tmp_path / "gone.png")).result(timeout=WAIT)
    _, out, _ = run(capsys, "list")
    assert "⚠" in out and "delete ID --now" in out
    code, _, _ = run(capsys, "delete", str(ghost), "--now")
    assert code == 0 and all_items() == []


# -- no heavy imports ----------------------------------------------------------------------------------------------


def test_the_gallery_command_imports_neither_qt_nor_torch(items: list[int]):
    code = (
        "import sys\n"
        "from desktop.cli import main\n"
        "assert main(['gallery', 'list']) == 0\n"
        "assert main(['gallery', 'show', sys.argv[1], '--json']) == 0\n"
        "roots = ('PySide6', 'torch', 'transformers', 'diffusers')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "print('HEAVY', heavy)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code, str(items[0])], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "12 item(s)" in result.stdout  # it did list the library of this test's STUDIOLO_HOME
