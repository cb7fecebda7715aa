"""Add-on models (``Generator.addon_kinds``, ``RunContext.addon_model``): a third-party plugin installed by entry
point declares a kind and uses it in jobs through the engine; each kind is a model list of its own in the model
manager and ``studiolo models``; the image generator's ControlNets resolve ``demo`` and downloaded hub ids."""

from __future__ import annotations

import textwrap
import threading

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from desktop.api import ModelFormatError, ModelNotFoundError
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.models import hub, inventory
from desktop.models.addons import addon_list, model_lists, resolve_addon
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.testing import run_generator
from desktop.ui.models_view import ModelsView
from plugins.image.demo import build_tiny_controlnet
from plugins.image.generator import DiffusersImageGenerator

WAIT = 60_000

WORDY = textwrap.dedent('''
    """A test plugin: a generator whose jobs read a word list, an add-on model of the kind "wordlist"."""
    from dataclasses import dataclass

    from desktop.api import AddonKind, Generator, RecommendedModel, TextOutput, hookimpl, param


    @dataclass(frozen=True)
    class WordyParams:
        wordlist: str = param("demo", help="The word list: a .txt file, a downloaded one, or demo.")


    class Wordy(Generator):
        id = "text.wordy"
        name = "Wordy"
        kind = "text"
        Params = WordyParams
        runs_in_process = True
        addon_kinds = (AddonKind("wordlist", "Word lists", "Words to say.", model_file_patterns=("*.txt",),
                                 recommended_models=(RecommendedModel("acme/words/big.txt", "Big words"),),
                                 has_demo=True),)

        def build_addon_demo(self, kind, dest):
            (dest / "demo-words.txt").write_text("alpha beta gamma", encoding="utf-8")

        def load(self, model_path, device, options):
            return None

        def generate(self, handle, params, ctx):
            path = ctx.addon_model("wordlist", params.wordlist)
            return [TextOutput(text=path.read_text(encoding="utf-8").upper())]


    @hookimpl
    def register_generators(register):
        register(Wordy())
''')


@pytest.fixture
def wordy(studiolo_site):
    studiolo_site.install("studiolo-wordy", version="1.0.0", modules={"studiolo_wordy": WORDY},
                          entry_points={"wordy": "studiolo_wordy"}, requires=["studiolo>=0.2,<0.3"])
    manager = PluginManager(Settings()).load()
    assert "text.wordy" in manager.generators, str(manager.plugins.get("wordy"))
    return manager


@pytest.fixture
def engine(wordy, qtbot):
    engine = Engine(wordy, Settings(idle_unload_minutes=0), store=None, library=None, cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def run(engine, qtbot, params):
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        engine.submit("text.wordy", params)
    return [o.text for o in finished.args[1]]


def test_a_plugins_add_on_kind_is_resolved_in_its_jobs_and_listed_as_used(wordy, engine, qtbot, tmp_path):
    assert run(engine, qtbot, {"wordlist": "demo"}) == ["ALPHA BETA GAMMA"]  # the demo, built on first use
    own = tmp_path / "mine.txt"
    own.write_text("one two", encoding="utf-8")
    assert run(engine, qtbot, {"wordlist": str(own)}) == ["ONE TWO"]
    lists = addon_list(wordy.generator("text.wordy"), "wordlist")
    assert lists.id == "text.wordy+wordlist" and lists.name == "Wordy · Word lists"
    found = inventory.models_for(lists)
    assert [m.ref for m in found.installed if m.source == "demo"] == ["demo:text.wordy+wordlist"]
    assert found.installed[0].last_used is not None  # the job's use was recorded
    assert [s.ref for s in found.recommended] == ["acme/words/big.txt"]
    assert [s.state for s in found.recommended] == [inventory.ABSENT]


def test_an_add_on_not_here_fails_the_job_saying_where_to_get_it(wordy, engine, qtbot, tmp_path):
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        engine.submit("text.wordy", {"wordlist": "acme/words/big.txt"})
    error = failed.args[1]
    assert "not downloaded" in str(error) and "Models page" in str(error)
    assert "studiolo models pull acme/words/big.txt --for text.wordy+wordlist" in str(error)
    wrong = tmp_path / "words.csv"
    wrong.write_text("x", encoding="utf-8")
    with pytest.raises(ModelNotFoundError, match=r"words.csv cannot be one of the Word lists: \*\.txt files can"):
        resolve_addon(wordy.generator("text.wordy"), "wordlist", str(wrong))
    with pytest.raises(ModelNotFoundError, match="no add-on models of the kind 'pose'"):
        resolve_addon(wordy.generator("text.wordy"), "pose", "demo")


def test_the_model_manager_lists_each_add_on_kind_after_its_generator(wordy, engine, qtbot):
    view = ModelsView(engine)
    qtbot.addWidget(view)
    ids = [view.generator_combo.itemData(i) for i in range(view.generator_combo.count())]
    expected = [g.id for g in model_lists(sorted(wordy.generators.values(), key=lambda g: (g.kind, g.name.lower())))]
    assert "text.wordy+wordlist" in ids and "text.wordy" not in ids  # Wordy itself loads no model
    assert ids == [i for i in expected if i in ids]
    assert ids.index("image.diffusers+controlnet") == ids.index("image.diffusers") + 1
    view.set_generator("image.diffusers+controlnet")
    qtbot.waitUntil(lambda: not view.busy() and len(view.recommended_refs()) == 3, timeout=WAIT)
    assert view.recommended_refs()[0] == "lllyasviel/control_v11p_sd15_canny"
    view.set_generator("text.wordy+wordlist")
    qtbot.waitUntil(lambda: not view.busy() and view.recommended_refs() == ["acme/words/big.txt"], timeout=WAIT)
    assert view.shutdown(timeout=30)


def test_the_cli_builds_an_add_on_demo_and_pull_lists_it_for_the_kind(wordy, studiolo_site, hub_server):
    env = studiolo_site.env()
    result = run_cli("models", "demo", "text.wordy+wordlist", env=env)
    assert result.returncode == 0, result.stderr
    assert "text.wordy+wordlist:" in result.stdout
    hub_server.add_repo("acme/words", {"big.txt": b"large words"})
    result = run_cli("models", "pull", "acme/words/big.txt", "--for", "text.wordy+wordlist", env=studiolo_site.env())
    assert result.returncode == 0, result.stderr
    found = inventory.models_for(addon_list(wordy.generator("text.wordy"), "wordlist"))
    assert "acme/words/big.txt" in [m.ref for m in found.installed]
    assert [s.state for s in found.recommended] == [inventory.INSTALLED]
    path = resolve_addon(wordy.generator("text.wordy"), "wordlist", "acme/words/big.txt")
    assert path.read_bytes() == b"large words"


# ------------------------------------------------------------------------------------------------- ControlNets

GEN = DiffusersImageGenerator()



@pytest.fixture(scope="module")
def board(tmp_path_factory):
    yy, xx = np.mgrid[0:64, 0:64]
    path = tmp_path_factory.mktemp("control") / "board.png"
    Image.fromarray(((xx // 8 + yy // 8) % 2 * 255).astype(np.uint8)).convert("RGB").save(path)
    return path


def picture(sd, board, model: str | None) -> np.ndarray:
    params = {"prompt": "a fox", "steps": 2, "width": 64, "height": 64,
              "controlnets": [f"{model}|{board}"] if model else []}
    return np.asarray(run_generator(GEN, params, handle=sd, seed=3).outputs[0].image)


def test_controlnet_demo_and_downloaded_hub_ids_resolve_and_equal_their_folders(sd, board, hub_server, tmp_path):
    plain = picture(sd, board, None)
    assert not np.array_equal(picture(sd, board, "demo"), plain)  # the demo ControlNet, built on first use
    folder = build_tiny_controlnet(tmp_path / "cn", seed=5)
    hub_server.add_repo("acme/tiny-cn", {p.name: p.read_bytes() for p in folder.iterdir()})
    with pytest.raises(ModelNotFoundError, match=r"ControlNet unit 1: The model acme/tiny-cn \(ControlNets\) is not"):
        picture(sd, board, "acme/tiny-cn")
    hub.download("acme/tiny-cn", cancel=threading.Event(), on_progress=lambda *_: None)
    assert np.array_equal(picture(sd, board, "acme/tiny-cn"), picture(sd, board, str(folder)))
    found = inventory.models_for(addon_list(GEN, "controlnet"))
    assert {"demo:image.diffusers+controlnet", "acme/tiny-cn"} <= {m.ref for m in found.installed}


def test_a_pickled_upscaler_add_on_is_refused(tmp_path):
    pickled = tmp_path / "esrgan.pth"
    pickled.write_bytes(b"\x80\x04not really")
    with pytest.raises(ModelFormatError, match="pickle"):
        resolve_addon(GEN, "upscaler", str(pickled))
    assert resolve_addon(GEN, "upscaler", "demo").name == "demo-esrgan-x4.safetensors"
