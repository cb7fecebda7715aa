"""What ``--model`` (and the window's model chooser, through the same resolver) accepts: regular files and folders
only, never a named pipe or a device (which the loaders would read forever), never a blank reference, and a folder
that is not a model is never searched through (``/`` took seconds, then blamed an unrelated file).

The hang cases run in real processes bounded by a timeout (and, where a runaway read would eat the machine's
memory, by an address-space limit): a regression fails the test, it never blocks the suite."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, install_markov, run_python

from desktop.api import LoadOptions, ModelFormatError, ModelNotFoundError, check_model_files
from desktop.api import weights as weights_module
from desktop.api.weights import model_folder_files
from desktop.engine.memory import weights_size
from desktop.models.resolver import parse_ref
from desktop.models.store import import_model, list_installed

BOUND_S = 90  # a safety net for the subprocesses: each ends in seconds unless it hangs


def run_bounded(*args: str, env: dict[str, str], max_memory: int | None = None) -> subprocess.CompletedProcess:
    """``studiolo ARGS`` in a subprocess that must end within :data:`BOUND_S` (a hang raises TimeoutExpired: the
    test fails, the suite goes on) and, with ``max_memory``, cannot take more address space than that (a runaway
    read ends in a MemoryError instead of taking the machine's memory)."""

    def limit() -> None:
        if max_memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))

    return subprocess.run([sys.executable, "-m", "desktop", *args], capture_output=True, text=True, env=env,
                          timeout=BOUND_S, cwd=ROOT, preexec_fn=limit)


@pytest.fixture
def env(studiolo_site):
    install_markov(studiolo_site)
    return studiolo_site.env()


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "model.safetensors"
    os.mkfifo(path)
    return path


def junk_folder(root: Path) -> Path:
    """A folder that is no model (nothing at its top says so) with a broken weight file deep inside."""
    deep = root / "junk" / "photos" / "2024"
    deep.mkdir(parents=True)
    (deep / "broken.safetensors").write_bytes(b"\xff" * 16)
    (root / "junk" / "notes.txt").write_text("not a model")
    return root / "junk"


# ------------------------------------------------------------------------------------------ the resolver


@pytest.mark.parametrize("ref", ["", " ", "\t ", "\n"])
def test_a_blank_reference_is_refused(ref):
    with pytest.raises(ModelNotFoundError, match="The model reference is blank") as info:
        parse_ref(ref)
    assert "'demo'" in info.value.hint


def test_pipes_and_devices_are_refused_naming_them_without_opening_them(fifo, tmp_path):
    with pytest.raises(ModelFormatError, match=f"{fifo} is a named pipe, not a model file or folder"):
        parse_ref(str(fifo))  # opening the pipe would block this test forever
    with pytest.raises(ModelFormatError, match="/dev/zero is a character device, not a model file or folder"):
        parse_ref("/dev/zero")
    link = tmp_path / "link.safetensors"
    link.symlink_to(fifo)
    with pytest.raises(ModelFormatError, match="is a named pipe"):
        parse_ref(str(link))
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(ModelFormatError, match="not a model file or folder"):
            check_model_files(path, allow_pickle=True)  # the host's check, which plugins call too


def test_files_and_folders_are_still_files_and_folders(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    assert (parse_ref(str(file)).source, parse_ref(str(tmp_path)).source) == ("file", "folder")
    assert parse_ref("org/name@main").source == "hub"


def test_a_folder_that_is_no_model_is_not_searched(tmp_path, monkeypatch):
    junk = junk_folder(tmp_path)
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(weights_module.os, "scandir", lambda path: listed.append(Path(path)) or scandir(path))
    check_model_files(junk, allow_pickle=False)  # the broken file deep inside is not looked at
    assert set(listed) == {junk}
    assert model_folder_files(junk) == [junk / "notes.txt"]
    listed.clear()
    check_model_files(Path("/"), allow_pickle=False)
    assert weights_size(Path("/")) == 0
    assert set(listed) == {Path("/")}  # the top level only, however much is below


def test_a_model_folder_is_searched_a_few_levels_down_and_bounded(tmp_path, monkeypatch):
    model = tmp_path / "model"
    (model / "unet").mkdir(parents=True)
    (model / "model_index.json").write_text("{}")
    broken = model / "unet" / "diffusion_pytorch_model.safetensors"
    broken.write_bytes(b"\xff" * 16)
    with pytest.raises(ModelFormatError, match=f"{broken} is not a valid safetensors file"):
        check_model_files(model, allow_pickle=False)
    broken.unlink()
    deep = model.joinpath(*"abcdefgh")
    deep.mkdir(parents=True)
    (deep / "x.safetensors").write_bytes(b"\xff" * 16)
    check_model_files(model, allow_pickle=False)  # 8 levels down: not a part of the model
    monkeypatch.setattr(weights_module, "MAX_FOLDER_ENTRIES", 20)
    for i in range(20):
        (model / f"file{i}.txt").write_text("")
    with pytest.raises(ModelFormatError, match=f"{model} holds more than 20 files and folders: it does not look "
                                               "like a model folder"):
        check_model_files(model, allow_pickle=False)


def test_a_pipe_inside_a_model_folder_is_refused_naming_it(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    os.mkfifo(model / "tokenizer.json")
    with pytest.raises(ModelFormatError, match=f"{model / 'tokenizer.json'} is a named pipe, not a file"):
        check_model_files(model, allow_pickle=False)


def test_importing_a_pipe_or_a_huge_folder_is_refused(fifo, tmp_path, monkeypatch):
    with pytest.raises(ModelFormatError, match="is a named pipe, not a model file or folder"):
        import_model(fifo)
    folder = tmp_path / "with-pipe"
    folder.mkdir()
    (folder / "corpus.txt").write_text("words")
    (folder / "sub").mkdir()
    os.mkfifo(folder / "sub" / "pipe")
    with pytest.raises(ModelFormatError, match=f"{folder / 'sub' / 'pipe'} is a named pipe, not a file"):
        import_model(folder)
    monkeypatch.setattr("desktop.models.store.MAX_FOLDER_ENTRIES", 5)
    big = tmp_path / "big"
    for i in range(6):
        (big / f"d{i}").mkdir(parents=True)
    with pytest.raises(ModelFormatError, match="holds more than 5 files and folders"):
        import_model(big)
    assert list_installed(include_hub=False) == []  # nothing half-imported


def test_importing_a_blank_or_missing_path_says_so():
    with pytest.raises(ModelNotFoundError, match="The path to import is blank"):
        import_model(Path(" "))
    with pytest.raises(ModelNotFoundError, match="no such file or folder"):
        import_model(Path("/nonexistent/model"))


# --------------------------------------------------------------------------------- the example's reading


def test_the_markov_example_never_reads_a_pipe_nor_a_huge_corpus(tmp_path):
    folder = tmp_path / "corpus-pipe"
    folder.mkdir()
    os.mkfifo(folder / "corpus.txt")
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'examples' / 'markov')!r})\n"
            "from pathlib import Path\nfrom desktop.api import LoadOptions, ModelFormatError\n"
            "from studiolo_markov import MarkovGenerator\n"
            f"try:\n    MarkovGenerator().load(Path({str(folder)!r}), 'cpu', LoadOptions({{'order': 1}}))\n"
            "except ModelFormatError as exc:\n    print(exc.message)\n")
    result = run_python(code)  # in a process of its own: reading the pipe would block forever
    assert result.returncode == 0, result.stderr
    assert f"Cannot read the corpus: {folder / 'corpus.txt'} is a named pipe, not a file." in result.stdout

    sys.path.insert(0, str(ROOT / "examples" / "markov"))
    try:
        from studiolo_markov import MAX_CORPUS_BYTES, MarkovGenerator
    finally:
        sys.path.remove(str(ROOT / "examples" / "markov"))
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(MAX_CORPUS_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ModelFormatError, match=r"Cannot read the corpus: .*huge.txt is too large: 20.0 MB, where at "
                                               r"most 20.0 MB is expected"):
        MarkovGenerator().load(huge, "cpu", LoadOptions({"order": 1}))


# ------------------------------------------------------------------------------------------ the CLI itself


def test_generate_refuses_a_pipe_as_model_at_once(env, fifo):
    for generator in ("text.markov", "image.diffusers"):  # each used to block forever reading it
        result = run_bounded("generate", generator, "--model", str(fifo), "-p", "prompt=hi", env=env)
        assert result.returncode == 1, result.stderr
        assert f"studiolo: error: {fifo} is a named pipe, not a model file or folder." in result.stderr
        assert "Traceback" not in result.stderr


def test_generate_refuses_a_device_as_model_at_once(env):
    # the Markov example used to read /dev/zero until the machine ran out of memory: bounded here to 4 GB
    result = run_bounded("generate", "text.markov", "--model", "/dev/zero", env=env, max_memory=4 << 30)
    assert result.returncode == 1, result.stderr
    assert "studiolo: error: /dev/zero is a character device, not a model file or folder." in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_refuses_a_blank_model(env):
    result = run_bounded("generate", "text.markov", "--model", " ", "-p", "words=3", env=env)
    assert result.returncode == 1, result.stderr
    assert "studiolo: error: The model reference is blank." in result.stderr
    assert not any(line.startswith("saved ") for line in result.stderr.splitlines())


def test_generate_does_not_search_a_folder_that_is_no_model(env, tmp_path):
    junk = junk_folder(tmp_path)
    result = run_bounded("generate", "image.diffusers", "--model", str(junk), "-p", "prompt=hi", env=env)
    assert result.returncode == 1, result.stderr
    assert f"{junk} is not a diffusers model folder (it has no model_index.json)." in result.stderr
    assert "broken.safetensors" not in result.stderr
    root = run_bounded("generate", "image.diffusers", "--model", "/", "-p", "prompt=hi", env=env)
    assert root.returncode == 1, root.stderr
    assert "studiolo: error: / is not a diffusers model folder (it has no model_index.json)." in root.stderr
