"""Generators that use no model (``default_model = None``): the guide's example, installed by entry point, through
the CLI, the engine, its page in the window, the welcome page and the Models page."""

from __future__ import annotations

import re

import pytest
from helpers import ROOT, install_markov, run_cli
from PySide6.QtWidgets import QComboBox, QLabel

from desktop.api import ParamError
from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.library import Library, metadata_for
from desktop.models.first_run import generators_by_need
from desktop.models.modelless import uses_model
from desktop.settings import Settings

WAIT = 60_000
GUIDE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
ROLL = re.compile(r"\d+( \+ \d+)* = \d+")


def guide_example() -> tuple[str, str, str]:
    """The module source, module name and entry-point name of the guide's "Generators without a model" example."""
    section = GUIDE.split("### Generators without a model", 1)[1].split("\n## ", 1)[0]
    source = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    name, module = re.search(r'\[project\.entry-points\.studiolo\]\n(\w+) = "(\w+)"', section).groups()
    return source, module, name


@pytest.fixture
def site(studiolo_site):
    """The guide's dice generator (no model) and its Markov generator (a model), installed by entry point."""
    source, module, name = guide_example()
    studiolo_site.install("studiolo-dice", modules={module: source}, entry_points={name: module})
    install_markov(studiolo_site)
    return studiolo_site


@pytest.fixture
def plugins(site, studiolo_plugins):
    manager = studiolo_plugins("dice", "markov")
    assert set(manager.generators) == {"text.dice", "text.markov"}
    return manager


@pytest.fixture
def make_engine(qtbot):
    engines: list[Engine] = []

    def make(plugins, **kwargs) -> Engine:
        engines.append(Engine(plugins, Settings(idle_unload_minutes=0), cache=ModelCache(), **kwargs))
        return engines[-1]

    yield make
    for engine in engines:
        assert engine.shutdown(timeout=30)


def test_the_guides_example_uses_no_model_and_runs_without_one(plugins, studiolo_run):
    dice, markov = plugins.generator("text.dice"), plugins.generator("text.markov")
    assert not uses_model(dice) and uses_model(markov)
    result = studiolo_run(dice, {"dice": 4, "sides": 6}, seed=7)
    (output,) = result.outputs
    assert ROLL.fullmatch(output.text) and len(result.progress) == 4
    assert studiolo_run(dice, {"dice": 4}, seed=7).outputs[0].text == output.text  # the seed decides
    with pytest.raises(ParamError, match="uses no model, so it takes none"):  # the test runner refuses as the engine
        studiolo_run(dice, {"dice": 4}, model="demo")


def test_the_cli_runs_it_without_a_model_and_refuses_one(site, studiolo_home, tmp_path):
    env = site.env()
    done = run_cli("generate", "text.dice", "--param", "dice=4", "--seed", "7", env=env)
    assert done.returncode == 0, done.stderr
    assert ROLL.fullmatch(done.stdout.strip()) and "seed 7" in done.stderr
    assert f"$ studiolo generate text.dice --param dice=4 --seed 7\n{done.stdout}" in GUIDE  # as the guide shows
    saved = next(line.removeprefix("saved ") for line in done.stderr.splitlines() if line.startswith("saved "))
    assert metadata_for(saved)["model"] is None

    folder = tmp_path / "some-folder"
    folder.mkdir()
    for ref in ("demo", str(folder)):
        refused = run_cli("generate", "text.dice", "--model", ref, "-p", "dice=2", env=env)
        assert refused.returncode == 2, refused.stderr
        assert f"Invalid value for 'model': {ref!r} — Dice (text.dice) uses no model" in refused.stderr
        assert "leave out --model" in refused.stderr
        assert "demo model" not in refused.stderr and "Traceback" not in refused.stderr
        assert ref != "demo" or f"$ studiolo generate text.dice --model demo\n{refused.stderr}" in GUIDE
    with Library(studiolo_home / "data" / "library.db") as library:
        assert [item.model for item in library.list_items()] == [None]  # the refused runs saved nothing


def test_the_engine_refuses_a_model_for_it_before_queueing(plugins, make_engine):
    engine = make_engine(plugins, store=None, library=None, in_process=True)
    for ref in ("demo", "acme/some-model", "/tmp"):
        with pytest.raises(ParamError, match=r"Dice \(text\.dice\) uses no model"):
            engine.submit("text.dice", {"dice": 2}, model=ref)
    assert engine.jobs() == []
    assert engine.submit("text.dice", {"dice": 2}).model is None
    assert engine.submit("text.markov", {"words": 2}, model="demo").model == "demo"  # one that uses a model


def test_its_page_has_no_model_chooser_and_runs_a_job(plugins, make_engine, qtbot):
    from desktop.ui.main_window import MainWindow

    settings = Settings.load()
    settings.first_run_done = True
    settings.save()
    engine = make_engine(plugins)  # worker processes, as in the app
    window = MainWindow(plugins, engine)
    qtbot.addWidget(window)
    window.show()
    page = window.show_page("text.dice")
    assert page.model_chooser is None and page.findChildren(QComboBox, "model_chooser") == []
    assert "Model" not in [label.text() for label in page.findChildren(QLabel)]
    assert "model" not in page.state()
    page.restore({"model": "demo", "seed": "3"})  # a model saved for it earlier is dropped, not refused
    window._on_models_changed()  # models imported or removed elsewhere: its page has nothing to list again
    page.form.field_widget("dice").setValue(5)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        page.generate_button.click()
    job = engine.job(finished.args[0])
    assert job.model is None and job.seed == 3 and job.params.dice == 5
    assert ROLL.fullmatch(page.output.text.toPlainText()) and "Done (seed 3)" in page.status.text()
    markov = window.show_page("text.markov")
    assert markov.model_chooser is not None  # a generator that uses a model keeps its chooser
    assert "Model" in [label.text() for label in markov.findChildren(QLabel)]
    window.close()


def test_the_welcome_page_does_not_count_it_among_the_generators_that_need_a_model(plugins, qtbot):
    from desktop.ui.welcome import WelcomePage

    needing, without = generators_by_need(plugins)
    assert [g.id for g in needing] == ["text.markov"] and [g.id for g in without] == ["text.dice"]
    page = WelcomePage(plugins, Settings())
    qtbot.addWidget(page)
    intro = page.findChild(QLabel, "welcome_intro").text()
    need, _, ready = intro.partition("Ready without a model:")
    assert "need a model: Markov chain." in need and "Dice" not in need
    assert ready.strip() == "Dice."
    assert page.shutdown()


def test_the_models_page_leaves_it_out_and_lists_its_handle_as_no_model(plugins, make_engine, qtbot):
    from desktop.ui.models_view import ModelsView

    engine = make_engine(plugins, store=None, library=None, in_process=True)
    view = ModelsView(engine)
    qtbot.addWidget(view)
    combo = view.generator_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["text.markov"]
    assert not view.set_generator("text.dice")
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
        engine.submit("text.dice", {"dice": 2})
    view.refresh_loaded()
    assert [view.loaded_table.item(0, column).text() for column in (0, 1)] == ["Dice", "(no model)"]
    assert view.shutdown(timeout=30)
