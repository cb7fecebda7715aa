"""The Settings dialog: filled from the settings, saved on OK (after checking), nothing on Cancel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import install_markov
from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.paths import default_output_dir
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.settings_dialog import SettingsDialog


@pytest.fixture
def make_dialog(qtbot):
    def make(settings: Settings) -> SettingsDialog:
        dialog = SettingsDialog(settings)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        return dialog

    return make


def test_defaults_fill_every_field(make_dialog):
    dialog = make_dialog(Settings())
    assert dialog.device_combo.currentData() == "auto" and dialog.device_combo.currentText() == "Automatic"
    assert [dialog.device_combo.itemData(i) for i in range(dialog.device_combo.count())] == [
        "auto", "cpu", "cuda", "mps"]
    assert dialog.memory_auto_check.isChecked() and not dialog.memory_spin.isEnabled()
    assert "half of this machine's RAM" in dialog.memory_auto_check.text()
    assert dialog.idle_spin.value() == 15.0
    assert dialog.grace_spin.value() == 5.0 and dialog.grace_spin.text() == "5.0 s"
    assert (dialog.grace_spin.minimum(), dialog.grace_spin.maximum()) == (0, 600)
    assert "worker process is ended" in dialog.grace_spin.toolTip() and "cancelled" in dialog.grace_spin.toolTip()
    assert dialog.output_edit.text() == "" and dialog.output_edit.placeholderText() == str(default_output_dir())
    assert dialog.token_edit.text() == "" and dialog.token_edit.echoMode() == QLineEdit.EchoMode.Password
    assert not dialog.pickle_check.isChecked() and not dialog.pickle_warning.isVisible()
    assert not dialog.error_label.isVisible()


def test_every_field_is_filled_from_the_settings(make_dialog, tmp_path):
    settings = Settings(device="cuda:1", memory_budget_mb=2048, idle_unload_minutes=0, allow_pickle=True,
                        output_dir=str(tmp_path / "out"), hf_token="hf_secret", cancel_grace_seconds=0.5)
    dialog = make_dialog(settings)
    assert dialog.device_combo.currentData() == "cuda:1" and "cuda:1" in dialog.device_combo.currentText()
    assert not dialog.memory_auto_check.isChecked() and dialog.memory_spin.isEnabled()
    assert dialog.memory_spin.value() == 2048
    assert dialog.idle_spin.value() == 0 and dialog.idle_spin.text() == "Never"
    assert dialog.grace_spin.value() == 0.5
    assert dialog.output_edit.text() == str(tmp_path / "out")
    assert dialog.token_edit.text() == "hf_secret"
    assert dialog.pickle_check.isChecked() and dialog.pickle_warning.isVisible()


def test_the_token_can_be_shown_and_hidden(make_dialog):
    dialog = make_dialog(Settings(hf_token="hf_secret"))
    dialog.show_token_button.click()
    assert dialog.token_edit.echoMode() == QLineEdit.EchoMode.Normal
    assert dialog.show_token_button.accessibleName() == "Hide the token"
    dialog.show_token_button.click()
    assert dialog.token_edit.echoMode() == QLineEdit.EchoMode.Password


def test_changing_every_field_and_applying_saves_them(make_dialog, qtbot, tmp_path):
    settings = Settings(disabled_plugins=["markov"], extra={"future_key": 1})
    dialog = make_dialog(settings)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("mps"))
    dialog.memory_auto_check.setChecked(False)
    assert dialog.memory_spin.isEnabled()
    dialog.memory_spin.setValue(4096)
    dialog.idle_spin.setValue(30)
    dialog.grace_spin.setValue(12.5)
    out = tmp_path / "new" / "outputs"
    dialog.output_edit.setText(str(out))
    dialog.token_edit.setText("  hf_token_value ")
    dialog.pickle_check.setChecked(True)
    with qtbot.waitSignal(dialog.settings_changed):
        assert dialog.apply()
    saved = Settings.load()
    expected = ("mps", 4096, 30.0, 12.5, str(out), "hf_token_value", True, ["markov"])
    for s in (saved, settings):
        assert (s.device, s.memory_budget_mb, s.idle_unload_minutes, s.cancel_grace_seconds, s.output_dir,
                s.hf_token, s.allow_pickle, s.disabled_plugins) == expected
    assert saved.extra == {"future_key": 1}
    assert json.loads(Settings.path().read_text())["device"] == "mps"
    assert out.is_dir()


def test_clearing_fields_stores_the_defaults(make_dialog, tmp_path):
    settings = Settings(device="cpu", memory_budget_mb=1024, output_dir=str(tmp_path), hf_token="x")
    dialog = make_dialog(settings)
    dialog.memory_auto_check.setChecked(True)
    dialog.output_edit.clear()
    dialog.token_edit.clear()
    assert dialog.apply()
    saved = Settings.load()
    assert (saved.device, saved.memory_budget_mb, saved.output_dir, saved.hf_token) == ("cpu", None, None, None)


def test_allowing_pickle_shows_a_warning(make_dialog):
    dialog = make_dialog(Settings())
    assert not dialog.pickle_warning.isVisible()
    dialog.pickle_check.setChecked(True)
    assert dialog.pickle_warning.isVisible()
    assert "arbitrary code" in dialog.pickle_warning.text() and "trust" in dialog.pickle_warning.text()
    dialog.pickle_check.setChecked(False)
    assert not dialog.pickle_warning.isVisible()


@pytest.mark.parametrize("kind", ["under_a_file", "relative"])
def test_an_unusable_output_folder_is_refused_in_the_dialog(make_dialog, qtbot, tmp_path, kind):
    settings = Settings()
    dialog = make_dialog(settings)
    if kind == "under_a_file":
        (tmp_path / "a_file").write_text("x")
        dialog.output_edit.setText(str(tmp_path / "a_file" / "outputs"))
    else:
        dialog.output_edit.setText("relative/outputs")
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    with qtbot.assertNotEmitted(dialog.settings_changed):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.isVisible() and dialog.result() == 0
    assert dialog.error_label.isVisible() and "output folder" in dialog.error_label.text()
    assert not Settings.path().exists()
    assert settings.device == "auto" and settings.output_dir is None

    dialog.output_edit.setText(str(tmp_path / "fine"))  # fixed: OK now saves and closes
    with qtbot.waitSignal(dialog.settings_changed):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert not dialog.isVisible() and dialog.result() == SettingsDialog.DialogCode.Accepted
    assert not dialog.error_label.isVisible()
    assert Settings.load().output_dir == str(tmp_path / "fine")


def test_cancel_saves_nothing(make_dialog, qtbot, tmp_path):
    settings = Settings()
    dialog = make_dialog(settings)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cuda"))
    dialog.memory_auto_check.setChecked(False)
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.pickle_check.setChecked(True)
    with qtbot.assertNotEmitted(dialog.settings_changed):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    assert not dialog.isVisible() and dialog.result() == SettingsDialog.DialogCode.Rejected
    assert not Settings.path().exists()
    assert settings == Settings()
    assert not Path(tmp_path / "out").exists()


def test_the_grace_period_of_a_cancel_applies_to_the_running_engine(make_dialog, qtbot, studiolo_site):
    install_markov(studiolo_site)
    plugins = PluginManager().load()
    engine = Engine(plugins, cache=ModelCache(), in_process=False)
    runner = engine.runner("text.markov")  # made now, before the change: it reads the setting at each cancel
    assert not runner.in_process and runner.grace() == 5.0
    dialog = make_dialog(plugins.settings)
    dialog.settings_changed.connect(engine.apply_settings)  # as the window does
    dialog.grace_spin.setValue(42)
    with qtbot.waitSignal(dialog.settings_changed):
        assert dialog.apply()
    assert engine.services.cancel_grace == 42.0 and runner.grace() == 42.0
    assert Settings.load().cancel_grace_seconds == 42.0
    assert engine.shutdown(timeout=10)


def test_the_provenance_section_round_trips_and_refuses_a_certificate_it_cannot_use(make_dialog, tmp_path):
    from desktop.provenance.keys import KEY_FILE, create_signing_keys

    settings = Settings()
    dialog = make_dialog(settings)
    section = dialog.provenance
    assert section.sign_check.isChecked() and section.prompt_check.isChecked()  # on by default
    assert not section.watermark_check.isChecked() and "PSNR" in section.watermark_cost.text()
    section.sign_check.setChecked(False)
    assert not section.prompt_check.isEnabled() and not section.certificate_edit.isEnabled()
    section.sign_check.setChecked(True)
    section.prompt_check.setChecked(False)
    section.watermark_check.setChecked(True)
    section.certificate_edit.setText(str(tmp_path / "missing.pem"))
    section.key_edit.setText(str(tmp_path / "missing-key.pem"))
    assert not dialog.apply()
    assert "missing.pem" in dialog.error_label.text() and not Settings.path().exists()  # nothing saved
    create_signing_keys(tmp_path / "mine")
    section.certificate_edit.setText(str(tmp_path / "mine" / "signing-chain.pem"))
    section.key_edit.setText(str(tmp_path / "mine" / KEY_FILE))
    assert dialog.apply()
    saved = json.loads(Settings.path().read_text())
    assert (saved["sign_outputs"], saved["sign_include_prompt"], saved["watermark"]) == (True, False, True)
    assert saved["signing_certificate"] == str(tmp_path / "mine" / "signing-chain.pem")
    again = make_dialog(Settings.load()).provenance
    assert again.values() == section.values()


def test_turning_signing_off_applies_to_the_running_engine(make_dialog, studiolo_site):
    install_markov(studiolo_site)
    plugins = PluginManager(Settings(idle_unload_minutes=0)).load()
    engine = Engine(plugins, plugins.settings, cache=ModelCache(), in_process=True)
    try:
        assert engine.services.signer is not None and engine.services.signer.include_prompt
        dialog = make_dialog(plugins.settings)
        dialog.settings_changed.connect(engine.apply_settings)
        dialog.provenance.sign_check.setChecked(False)
        assert dialog.apply()
        assert engine.services.signer is None
    finally:
        assert engine.shutdown(timeout=30)
