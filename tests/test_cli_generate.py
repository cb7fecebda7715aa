"""`studiolo generate` and `studiolo models`, end to end in subprocesses, as a user runs them."""

from __future__ import annotations

import json

import pytest
import torch_plugin
from helpers import install_markov, run_cli, run_python

from desktop.library import Library, metadata_for, read_png_metadata


@pytest.fixture
def env(studiolo_site):
    install_markov(studiolo_site)
    torch_plugin.install(studiolo_site)
    return studiolo_site.env()


def test_generate_text_prints_it_saves_it_and_copies_it(env, tmp_path, studiolo_home):
    out = tmp_path / "story.txt"
    result = run_cli("generate", "text.markov", "--model", "demo", "--param", "words=8", "--seed", "3",
                     "--output", str(out), env=env)
    assert result.returncode == 0, result.stderr
    text = result.stdout.strip()
    assert len(text.split()) == 9 and out.read_text() == text
    assert "text.markov [" in result.stderr and "8/8" in result.stderr and "seed 3" in result.stderr
    saved = next(line.removeprefix("saved ") for line in result.stderr.splitlines() if line.startswith("saved "))
    metadata = metadata_for(saved)
    assert metadata["generator"] == "text.markov" and metadata["seed"] == 3 and metadata["model"] == "demo"
    assert metadata["params"]["words"] == 8 and metadata["generator_version"] == "1.0.0"
    with Library(studiolo_home / "data" / "library.db") as library:
        (item,) = library.list_items()
    assert str(item.path) == saved and item.seed == 3 and item.kind == "text"

    again = run_cli("generate", "text.markov", "-p", "words=8", "--seed", "3", env=env)
    assert again.stdout.strip() == text  # same seed, same text (demo is the default model)


def test_generate_an_image_with_metadata_in_the_png(env):
    result = run_cli("generate", "test.noise", "-p", "steps=3", "-p", "prompt=grey", "--seed", "11", "--json",
                     env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "done" and summary["seed"] == 11 and summary["device"] == "cpu"
    metadata = read_png_metadata(summary["saved"][0])
    assert metadata["prompt"] == "grey" and metadata["params"]["steps"] == 3 and metadata["seed"] == 11


@pytest.mark.parametrize("argv, code, message", [
    (["generate", "image.nope"], 2, "No generator 'image.nope'.\nAvailable generators: "),
    (["generate", "text.markov", "-p", "words=0"], 2, "Invalid value for 'words': 0 — must be between 1 and 5000."),
    (["generate", "text.markov", "-p", "wrods=3"], 2, "did you mean 'words'?"),
    (["generate", "text.markov", "--seed", "-5"], 2, "Invalid value for 'seed': -5"),
    (["generate", "test.noise", "-p", "fail_at=1", "-p", "steps=3"], 1, "Noise failed: RuntimeError: boom at step 1"),
    (["generate", "text.markov", "--model", "/no/such/model"], 1, "No model found at '/no/such/model'."),
])
def test_generate_failures_are_clear_with_exit_codes(env, argv, code, message):
    result = run_cli(*argv, env=env)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_param_help_lists_the_parameters(env):
    result = run_cli("generate", "text.markov", "--param", "help", env=env)
    assert result.returncode == 0
    assert "words (int, from 1 to 5000; default 40): How many words to write." in result.stdout


def test_generating_text_never_imports_torch(env):
    code = ("import sys\nfrom desktop.cli import main\nrc = main(['generate', 'text.markov', '-p', 'words=3'])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\nsys.exit(rc)\n")
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    assert "NO-TORCH" in result.stderr


def test_models_demo_list_import_use_remove(env, tmp_path):
    result = run_cli("models", "demo", "text.markov", env=env)
    assert result.returncode == 0 and result.stdout.startswith("text.markov: ")
    corpus = tmp_path / "poems"
    corpus.mkdir()
    (corpus / "corpus.txt").write_text("roses are red violets are blue " * 20)
    imported = run_cli("models", "import", str(corpus), "--name", "poems", env=env)
    assert imported.returncode == 0, imported.stderr
    listing = {m["ref"]: m for m in json.loads(run_cli("models", "list", "--json", env=env).stdout)}
    assert listing["demo:text.markov"]["source"] == "demo"
    assert listing["poems"]["source"] == "imported" and listing["poems"]["size_bytes"] > 0
    text = run_cli("generate", "text.markov", "--model", "poems", "-p", "words=6", env=env).stdout.split()
    assert set(text) <= {"roses", "are", "red", "violets", "blue"}
    assert "poems" in run_cli("models", "list", env=env).stdout
    assert run_cli("models", "remove", "poems", env=env).returncode == 0
    assert run_cli("models", "remove", "demo:text.markov", env=env).returncode == 0
    assert json.loads(run_cli("models", "list", "--json", env=env).stdout) == []
    missing = run_cli("models", "remove", "poems", env=env)
    assert missing.returncode == 1 and "No installed model 'poems'." in missing.stderr


def test_importing_a_pickle_or_a_broken_file_is_refused(env, tmp_path):
    pickled = tmp_path / "weights.ckpt"
    pickled.write_bytes(b"\x80\x04K\x01.")
    result = run_cli("models", "import", str(pickled), env=env)
    assert result.returncode == 1 and "weights.ckpt is a pickle-format weights file" in result.stderr
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    result = run_cli("models", "import", str(broken), env=env)
    assert result.returncode == 1 and "broken.safetensors is not a valid safetensors file" in result.stderr
    assert json.loads(run_cli("models", "list", "--json", env=env).stdout) == []


def test_models_pull_list_and_remove_a_hub_model(studiolo_site, hub_server):
    hub_server.add_repo("org/tiny", {"config.json": b"{}", "model.safetensors": b"\x02\x00\x00\x00\x00\x00\x00\x00{}"},
                        lfs=("model.safetensors",))
    env = studiolo_site.env()
    pulled = run_cli("models", "pull", "org/tiny", env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip().endswith(hub_server.repos["org/tiny"].sha)
    listing = {m["ref"]: m for m in json.loads(run_cli("models", "list", "--json", env=env).stdout)}
    assert listing["org/tiny"]["source"] == "hub" and listing["org/tiny"]["size_bytes"] > 0
    assert run_cli("models", "remove", "org/tiny", env=env).returncode == 0
    assert json.loads(run_cli("models", "list", "--json", env=env).stdout) == []
    offline = run_cli("models", "pull", "org/tiny", env={**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 1 and "org/tiny" in offline.stderr and "Traceback" not in offline.stderr
