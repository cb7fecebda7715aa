"""The plugin manager: every entry point and hook on its own, failures recorded, the rest keeps working."""

from __future__ import annotations

import json

import pytest
from helpers import install_markov
from plugin_sources import BROKEN, echo, install_broken

from desktop import paths
from desktop.api.errors import PluginError
from desktop.plugins import PluginManager, Status
from desktop.settings import Settings


@pytest.fixture
def site(studiolo_site):
    install_markov(studiolo_site)
    return studiolo_site


def only_test_plugins(manager: PluginManager) -> dict:
    return {name: r for name, r in manager.plugins.items() if not r.builtin}


def third_party_generators(manager: PluginManager) -> set[str]:
    """The generator ids of the plugins the tests installed (the built-in ones come with Studiolo)."""
    return {gid for gid in manager.generators if not manager.plugin_of(gid).builtin}


def test_a_good_plugin_loads_with_its_metadata_and_generators(site):
    manager = PluginManager().load()
    record = manager.plugins["markov"]
    assert record.status == Status.LOADED and record.error is None
    assert (record.version, record.distribution, record.summary, record.author) == (
        "1.0.0", "studiolo-markov", "A Markov-chain text generator", "Example Author")
    assert record.generators == ["text.markov"] and record.hooks == ["register_generators"]
    assert not record.builtin
    assert manager.generator("text.markov").name == "Markov chain"
    assert manager.plugin_of("text.markov") is record


def test_a_plugin_made_for_api_0_1_is_flagged_at_load_with_the_reason(site):
    site.install("studiolo-old", modules={"studiolo_old": echo("test.old")}, entry_points={"old": "studiolo_old"},
                 requires=["studiolo>=0.1,<0.2"])  # installed with --no-deps, or left behind by an upgrade
    manager = PluginManager().load()
    record = manager.plugins["old"]
    assert record.status == Status.FAILED and "test.old" not in manager.generators
    assert record.error.startswith("incompatible: it requires studiolo<0.2,>=0.1, but this is Studiolo 0.2.")
    assert manager.plugins["markov"].status == Status.LOADED  # made for 0.2: loads


def test_hooks_are_called_through_pluggy_one_plugin_at_a_time(site):
    install_broken(site, ["raising_hook"])
    manager = PluginManager()
    calls: list[tuple[str, list[str]]] = []  # pluggy's own monitoring sees every call it makes, and whose impls
    manager.pm.add_hookcall_monitoring(
        lambda name, impls, _kwargs: calls.append((name, [i.plugin_name for i in impls])), lambda *_args: None)
    manager.load()
    registered = [plugins for name, plugins in calls if name == "register_generators"]
    assert ["markov"] in registered and ["raising_hook"] in registered  # each plugin's hook alone
    assert all(len(plugins) == 1 for plugins in registered)
    assert manager.plugins["raising_hook"].status == Status.FAILED  # its failure is its own, with a traceback
    assert "Traceback (most recent call last)" in manager.plugins["raising_hook"].traceback
    assert manager.plugins["markov"].status == Status.LOADED


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_failure_is_recorded_with_a_traceback_and_the_rest_works(site, name):
    install_broken(site, [name])
    manager = PluginManager().load()
    record = manager.plugins[name]
    expected = BROKEN[name][2]
    assert record.status == Status.FAILED
    assert expected in record.error
    assert record.generators == []
    if "import failed" in expected or "failed:" in expected or "could not" in expected or "Error" in expected:
        assert record.traceback and "Traceback (most recent call last)" in record.traceback
    assert manager.plugins["markov"].status == Status.LOADED
    assert third_party_generators(manager) == {"text.markov"}


def test_all_failures_at_once_leave_the_good_plugins_working(site):
    install_broken(site)
    site.install("studiolo-echo", modules={"good_echo": echo("test.echo")}, entry_points={"echo": "good_echo"})
    manager = PluginManager().load()
    statuses = {name: r.status for name, r in only_test_plugins(manager).items()}
    assert statuses.pop("markov") == Status.LOADED and statuses.pop("echo") == Status.LOADED
    assert set(statuses.values()) == {Status.FAILED} and len(statuses) == len(BROKEN)
    assert third_party_generators(manager) == {"text.markov", "test.echo"}
    # a failed plugin's hook implementation is not called again by later hook calls
    assert all(impl.plugin_name in ("markov", "echo") or manager.plugins[impl.plugin_name].builtin
               for impl in manager.pm.hook.register_generators.get_hookimpls())


def test_a_plugin_that_imports_a_heavy_library_at_import_is_flagged(site, monkeypatch):
    monkeypatch.setattr("desktop.plugins.HEAVY_MODULES", ("studiolo_fake_heavy",))
    site.install("studiolo-heavy-lib", modules={"studiolo_fake_heavy": "X = 1\n"}, entry_points={})
    site.install("studiolo-eager", modules={"eager": "import studiolo_fake_heavy\n" + echo("test.eager")},
                 entry_points={"eager": "eager"})
    record = PluginManager().load().plugins["eager"]
    assert record.status == Status.LOADED
    assert record.warnings == ["imports studiolo_fake_heavy when it is loaded, which slows Studiolo's start; "
                               "import them inside load()/generate()"]


def test_two_distributions_with_one_plugin_name(site):
    site.install("studiolo-markov-fork", modules={"markov_fork": echo("test.fork")},
                 entry_points={"markov": "markov_fork"})
    manager = PluginManager().load()
    names = {r.name: r for r in only_test_plugins(manager).values()}
    loaded = [r for r in names.values() if r.status == Status.LOADED]
    failed = [r for r in names.values() if r.status == Status.FAILED]
    assert len(loaded) == 1 and len(failed) == 1
    assert "another plugin is already named 'markov'" in failed[0].error


def test_disable_and_enable_persist_in_the_config_dir(site, studiolo_home):
    manager = PluginManager()
    assert manager.set_enabled("markov", False) is True
    assert manager.set_enabled("markov", False) is False
    settings_file = studiolo_home / "config" / "settings.json"
    assert paths.config_dir() == studiolo_home / "config"
    assert json.loads(settings_file.read_text())["disabled_plugins"] == ["markov"]

    reloaded = PluginManager().load()
    assert reloaded.plugins["markov"].status == Status.DISABLED
    assert "text.markov" not in reloaded.generators

    PluginManager().set_enabled("markov", True)
    assert PluginManager().load().plugins["markov"].status == Status.LOADED


def test_enable_and_disable_apply_to_a_running_manager(site):
    manager = PluginManager().load()
    markov = manager.generator("text.markov")
    manager.set_enabled("markov", False)
    assert manager.apply_enabled("markov") == ([], ["text.markov"])
    assert "text.markov" not in manager.generators and not manager.pm.has_plugin("markov")
    assert manager.plugins["markov"].status == Status.DISABLED and manager.plugins["markov"].generators == []
    assert manager.apply_enabled("markov") == ([], [])  # already as saved
    with pytest.raises(PluginError, match="No generator 'text.markov'"):
        manager.generator("text.markov")

    manager.set_enabled("markov", True)
    assert manager.apply_enabled("markov") == (["text.markov"], [])
    assert manager.plugins["markov"].status == Status.LOADED and manager.pm.has_plugin("markov")
    again = manager.generator("text.markov")
    assert type(again) is type(markov)  # the same module, imported once, registered again
    assert manager.apply_enabled("markov") == ([], [])


def test_enabling_a_plugin_that_fails_records_the_failure(site):
    install_broken(site, ["raising_hook"])
    manager = PluginManager()
    manager.set_enabled("raising_hook", False)
    manager.load()
    assert manager.plugins["raising_hook"].status == Status.DISABLED
    manager.set_enabled("raising_hook", True)
    assert manager.apply_enabled("raising_hook") == ([], [])
    assert manager.plugins["raising_hook"].status == Status.FAILED
    assert "register_generators failed" in manager.plugins["raising_hook"].error
    assert "text.markov" in manager.generators  # the others are untouched


def test_unknown_plugin_name_lists_the_known_ones(site):
    with pytest.raises(PluginError) as info:
        PluginManager().set_enabled("markvo", False)
    assert info.value.message == "No plugin named 'markvo'."
    assert "markov" in info.value.hint


def test_allow_list_restricts_third_party_plugins(site, monkeypatch):
    site.install("studiolo-echo", modules={"good_echo": echo("test.echo")}, entry_points={"echo": "good_echo"})
    monkeypatch.setenv("STUDIOLO_LOAD_PLUGINS", " echo , other")
    manager = PluginManager().load()
    assert manager.plugins["echo"].status == Status.LOADED
    assert manager.plugins["markov"].status == Status.SKIPPED
    assert "STUDIOLO_LOAD_PLUGINS" in manager.plugins["markov"].error

    monkeypatch.setenv("STUDIOLO_LOAD_PLUGINS", "")
    manager = PluginManager().load()
    assert all(r.status == Status.SKIPPED for r in only_test_plugins(manager).values())


def test_unknown_generator_lists_the_available_ids(site):
    manager = PluginManager().load()
    with pytest.raises(PluginError) as info:
        manager.generator("image.nope")
    assert "text.markov" in info.value.hint


def test_studiolo_home_relocates_config_data_and_cache(studiolo_home):
    assert paths.config_dir() == studiolo_home / "config"
    assert paths.data_dir() == studiolo_home / "data"
    assert paths.cache_dir() == studiolo_home / "cache"


def test_a_corrupt_settings_file_is_set_aside_not_fatal(site, studiolo_home):
    settings_file = studiolo_home / "config" / "settings.json"
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text("{not json")
    settings = Settings.load()
    assert settings.disabled_plugins == [] and "could not be read" in settings.warnings[0]
    assert (studiolo_home / "config" / "settings.json.corrupt").read_text() == "{not json"
    assert PluginManager(settings).load().plugins["markov"].status == Status.LOADED


def test_settings_keep_unknown_keys(studiolo_home):
    path = Settings.path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"from_the_future": {"a": 1}, "disabled_plugins": ["x"]}))
    settings = Settings.load()
    settings.disabled_plugins.append("y")
    settings.save()
    saved = json.loads(path.read_text())
    assert saved["from_the_future"] == {"a": 1} and saved["disabled_plugins"] == ["x", "y"]
    assert Settings.load().extra == {"from_the_future": {"a": 1}}


def test_invalid_setting_values_fall_back_to_defaults_with_a_warning(studiolo_home):
    path = Settings.path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"device": "cuda", "memory_budget_mb": -5, "allow_pickle": "yes"}))
    settings = Settings.load()
    assert settings.device == "cuda" and settings.memory_budget_mb is None and settings.allow_pickle is False
    assert len(settings.warnings) == 2 and "memory_budget_mb" in settings.warnings[0]


def test_builtin_plugins_come_from_the_studiolo_distribution_and_ignore_the_allow_list(site, monkeypatch):
    # A stand-in for Studiolo's own distribution, earlier on sys.path than the real one for this test only.
    site.install("studiolo", version="0.1.0", modules={"builtin_echo": echo("builtin.echo")},
                 entry_points={"zz_builtin": "builtin_echo"})
    monkeypatch.setenv("STUDIOLO_LOAD_PLUGINS", "")
    manager = PluginManager().load()
    assert list(manager.plugins)[0] == "zz_builtin"  # built-ins first, whatever their name
    assert manager.plugins["zz_builtin"].builtin and manager.plugins["zz_builtin"].status == Status.LOADED
    assert manager.plugins["markov"].status == Status.SKIPPED


def test_each_builtin_plugin_has_its_own_summary_not_the_apps(site):
    from importlib import metadata

    manager = PluginManager().load()
    app_summary = metadata.distribution("studiolo").metadata["Summary"]
    summaries = {name: manager.plugins[name].summary for name in ("audio", "image", "text")}
    assert summaries["image"].startswith("Studiolo's built-in image generator (diffusers)")
    assert summaries["audio"].startswith("Studiolo's built-in audio generators")
    assert app_summary not in summaries.values() and len(set(summaries.values())) == 3
    assert manager.plugins["markov"].summary == "A Markov-chain text generator"  # a third party's: its package's
