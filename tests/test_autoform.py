"""The automatic parameter form (desktop.api.widgets.ParamsForm): editors by kind, live validation,
set_params/params round trips."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QTextCursor, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolButton,
)

from desktop.api import ParamError, param, schema
from desktop.api.params_form import INVALID_COLOUR
from desktop.api.widgets import ParamsForm

INT32 = (-(2**31), 2**31 - 1)
RED = QColor(INVALID_COLOUR)


@dataclass(frozen=True)
class Kinds:
    """Every kind of field, with and without bounds, choices and None (the shape of test_params.Sample)."""

    prompt: str = param("", prompt=True, help="What to make.")
    negative: str = param("", multiline=True, label="Negative prompt", help="What to avoid.")
    steps: int = param(20, min=1, max=150, help="Denoising steps.")
    width: int = param(512, min=64, max=2048, multiple_of=8, help="Image width in pixels.")
    seed: int = param(0, min=0, max=2**32 - 1, help="Too wide for a spin box.")
    count: int = param(1)
    guidance: float = param(7.5, min=0.0, max=30.0, step=0.5, help="How closely to follow the prompt.")
    strength: float | None = param(None, min=0.0, max=1.0)
    scale: float = param(1.0)
    sampler: str = param("euler", choices=("euler", "ddim", "unipc"), help="The sampler.")
    frames: int = param(16, choices=(8, 16, 24))
    scheduler: str | None = param(None, choices=("karras", "linear"))
    hires: bool = param(False)
    upscale: bool | None = param(None)
    stop: list[str] = param(default_factory=list, max_items=4)
    sizes: list[int] = param(default_factory=lambda: [1, 2], help="numbers")
    weights: list[float] | None = param(None)
    init_image: Path | None = param(None, help="Start from this picture.")
    note: str | None = param(None)
    tiling: bool = param(False, load_option=True, help="Decode in tiles (saves memory).")
    dtype: str = param("float16", choices=("float16", "bfloat16", "float32"), load_option=True)
    lora: Path = param(Path("lora.safetensors"), load_option=True)


@dataclass(frozen=True)
class PromptOnly:
    prompt: str = param("", prompt=True, help="Say something.")


@dataclass(frozen=True)
class NoPrompt:
    text: str = param("x", multiline=True)


@pytest.fixture
def form(qtbot):
    form = ParamsForm(Kinds)
    qtbot.addWidget(form)
    form.resize(600, 900)
    form.show()
    return form


def retype(qtbot, widget, text):
    """Select everything in the editor and type ``text`` over it, as a person would."""
    widget.selectAll()
    if text:
        qtbot.keyClicks(widget, text)
    else:
        qtbot.keyClick(widget, Qt.Key.Key_Backspace)


def top(form, name):
    return form.field_widget(name).mapTo(form, QPoint(0, 0)).y()


def is_red_bordered(widget):
    image = widget.grab().toImage()
    return image.pixelColor(0, image.height() // 2) == RED


# -- building -------------------------------------------------------------------------------------------------


def test_each_field_gets_the_editor_its_kind_calls_for(form):
    w = form.field_widget
    assert isinstance(w("prompt"), QPlainTextEdit) and form.prompt_editor() is w("prompt")
    assert isinstance(w("negative"), QPlainTextEdit)
    assert w("prompt").height() > w("steps").height() * 3  # large
    assert top(form, "prompt") < min(top(form, name) for name in ("negative", "steps", "sampler", "note"))

    steps = w("steps")
    assert isinstance(steps, QSpinBox) and (steps.minimum(), steps.maximum(), steps.singleStep()) == (1, 150, 1)
    width = w("width")
    assert isinstance(width, QSpinBox) and (width.minimum(), width.maximum(), width.singleStep()) == (64, 2048, 8)
    assert isinstance(w("seed"), QLineEdit) and w("seed").text() == "0"  # 2**32 - 1 does not fit a QSpinBox
    count = w("count")
    assert isinstance(count, QSpinBox) and (count.minimum(), count.maximum()) == INT32 and form.slider("count") is None

    guidance = w("guidance")
    assert isinstance(guidance, QDoubleSpinBox)
    assert (guidance.minimum(), guidance.maximum(), guidance.singleStep(), guidance.decimals()) == (0.0, 30.0, 0.5, 2)
    assert guidance.value() == 7.5 and guidance.text() == "7.50"
    strength = w("strength")
    assert isinstance(strength, QDoubleSpinBox) and strength.maximum() == 1.0
    assert strength.text() == "(none)" and strength.minimum() < 0.0  # the (none) place below the range
    assert isinstance(w("scale"), QDoubleSpinBox) and form.slider("scale") is None

    for name in ("steps", "width", "guidance", "strength"):
        slider = form.slider(name)
        assert isinstance(slider, QSlider) and slider.orientation() == Qt.Orientation.Horizontal
        assert slider.objectName() == f"{name}_slider" and slider.isVisibleTo(form)
    assert form.slider("steps").maximum() - form.slider("steps").minimum() == 149
    assert form.slider("width").maximum() - form.slider("width").minimum() == (2048 - 64) // 8

    def items(combo):
        return [combo.itemText(i) for i in range(combo.count())]

    assert isinstance(w("sampler"), QComboBox) and items(w("sampler")) == ["euler", "ddim", "unipc"]
    assert items(w("frames")) == ["8", "16", "24"] and w("frames").currentText() == "16"
    assert items(w("scheduler")) == ["(none)", "karras", "linear"] and w("scheduler").currentIndex() == 0
    assert isinstance(w("hires"), QCheckBox) and not w("hires").isTristate()
    assert w("upscale").isTristate() and w("upscale").checkState() == Qt.CheckState.PartiallyChecked

    for name in ("stop", "sizes", "weights", "init_image", "note", "lora"):
        assert isinstance(w(name), QLineEdit), name
    assert w("sizes").text() == "1, 2" and w("stop").text() == "" and w("lora").text() == "lora.safetensors"
    browse = form.findChild(QToolButton, "init_image_browse")
    assert browse.text() == "Browse…" and browse.isVisibleTo(form)
    assert form.findChild(QToolButton, "lora_browse") is not None
    assert form.findChild(QToolButton, "note_browse") is None

    for name in Kinds.__dataclass_fields__:
        assert w(name).objectName() == name
        assert w(name).accessibleName()
    assert w("negative").accessibleName() == "Negative prompt" and w("init_image").accessibleName() == "Init image"
    assert w("steps").toolTip() == "Denoising steps." and w("steps").accessibleDescription() == "Denoising steps."
    assert w("sampler").toolTip() == "The sampler." and w("tiling").toolTip() == "Decode in tiles (saves memory)."
    assert form.is_valid() and form.errors() == {} and form.params() == Kinds()


def test_load_options_go_in_the_model_options_group_below_the_others(form):
    group = form.options_group()
    assert group.title() == "Model options" and group.isVisibleTo(form)
    for name in ("tiling", "dtype", "lora"):
        assert group.isAncestorOf(form.field_widget(name)), name
    for name in ("prompt", "steps", "hires", "note"):
        assert not group.isAncestorOf(form.field_widget(name)), name
    assert group.mapTo(form, QPoint(0, 0)).y() > top(form, "note")


def test_a_form_with_only_a_prompt(qtbot):
    form = ParamsForm(PromptOnly)
    qtbot.addWidget(form)
    editor = form.prompt_editor()
    assert isinstance(editor, QPlainTextEdit) and editor is form.field_widget("prompt")
    assert editor.placeholderText() == "Say something." and form.options_group() is None
    qtbot.keyClicks(editor, "a lighthouse at dusk")
    assert form.params() == PromptOnly(prompt="a lighthouse at dusk")
    no_prompt = ParamsForm(NoPrompt)
    qtbot.addWidget(no_prompt)
    assert no_prompt.prompt_editor() is None and isinstance(no_prompt.field_widget("text"), QPlainTextEdit)


# -- editing --------------------------------------------------------------------------------------------------


def test_slider_and_spin_box_stay_in_sync(form, qtbot):
    steps, slider = form.field_widget("steps"), form.slider("steps")
    assert slider.value() - slider.minimum() == 19  # the default, 20
    slider.setValue(slider.minimum() + 49)
    assert steps.value() == 50
    steps.setValue(100)
    assert slider.value() - slider.minimum() == 99
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert steps.value() == 101

    width, wslider = form.field_widget("width"), form.slider("width")
    wslider.setValue(wslider.minimum() + 10)
    assert width.value() == 64 + 80
    retype(qtbot, width, "520")
    assert wslider.value() - wslider.minimum() == (520 - 64) // 8

    guidance, gslider = form.field_widget("guidance"), form.slider("guidance")
    gslider.setValue(gslider.maximum())
    assert guidance.value() == 30.0
    guidance.setValue(15.0)
    assert gslider.value() == (gslider.minimum() + gslider.maximum()) // 2

    strength, sslider = form.field_widget("strength"), form.slider("strength")
    sslider.setValue(sslider.maximum())
    assert strength.value() == 1.0
    assert form.params() == Kinds(steps=101, width=520, guidance=15.0, strength=1.0)


def test_typed_values_come_back_typed_and_validated(form, qtbot):
    w = form.field_widget
    qtbot.keyClicks(w("prompt"), "a red fox, in snow")
    qtbot.keyClicks(w("negative"), "blurry")
    retype(qtbot, w("steps"), "42")
    w("width").setValue(768)
    retype(qtbot, w("seed"), "4294967295")
    retype(qtbot, w("count"), "-3")
    w("guidance").setValue(3.5)
    retype(qtbot, w("strength"), "0.25")
    retype(qtbot, w("scale"), "2.75")
    w("sampler").setCurrentIndex(1)
    w("frames").setCurrentIndex(2)
    w("scheduler").setCurrentIndex(2)
    qtbot.keyClick(w("hires"), Qt.Key.Key_Space)
    w("upscale").setCheckState(Qt.CheckState.Unchecked)
    qtbot.keyClicks(w("stop"), "###, END")
    retype(qtbot, w("sizes"), "[3, 4]")
    qtbot.keyClicks(w("weights"), "0.5,1.5")
    qtbot.keyClicks(w("init_image"), "pic.png")
    qtbot.keyClicks(w("note"), "keep")
    qtbot.keyClick(w("tiling"), Qt.Key.Key_Space)
    w("dtype").setCurrentIndex(1)
    retype(qtbot, w("lora"), "style.safetensors")

    params = form.params()
    assert params == Kinds(
        prompt="a red fox, in snow", negative="blurry", steps=42, width=768, seed=2**32 - 1, count=-3,
        guidance=3.5, strength=0.25, scale=2.75, sampler="ddim", frames=24, scheduler="linear", hires=True,
        upscale=False, stop=["###", "END"], sizes=[3, 4], weights=[0.5, 1.5], init_image=Path("pic.png"),
        note="keep", tiling=True, dtype="bfloat16", lora=Path("style.safetensors"))
    assert type(params.frames) is int and type(params.guidance) is float and type(params.seed) is int
    assert isinstance(params.init_image, Path) and form.is_valid()


def test_every_edit_emits_changed(form, qtbot):
    edits = [
        lambda: qtbot.keyClicks(form.field_widget("prompt"), "x"),
        lambda: form.field_widget("steps").setValue(3),
        lambda: form.slider("guidance").setValue(3),
        lambda: form.field_widget("sampler").setCurrentIndex(2),
        lambda: qtbot.keyClick(form.field_widget("hires"), Qt.Key.Key_Space),
        lambda: qtbot.keyClicks(form.field_widget("sizes"), "0"),
        lambda: qtbot.keyClicks(form.field_widget("note"), "n"),
    ]
    for edit in edits:
        with qtbot.waitSignal(form.changed, timeout=1000):
            edit()


def test_empty_optional_editors_mean_none(form, qtbot):
    full = Kinds(strength=0.5, scheduler="karras", upscale=True, weights=[1.0], init_image=Path("a.png"), note="n")
    form.set_params(full)
    assert form.params() == full
    w = form.field_widget
    retype(qtbot, w("strength"), "")
    retype(qtbot, w("init_image"), "")
    retype(qtbot, w("note"), "")
    retype(qtbot, w("weights"), "")
    w("scheduler").setCurrentIndex(0)
    w("upscale").setCheckState(Qt.CheckState.PartiallyChecked)
    assert form.params() == Kinds()
    w("strength").setValue(0.5)
    w("strength").setValue(w("strength").minimum())  # stepping below the range: "(none)"
    assert w("strength").text() == "(none)" and form.params().strength is None
    retype(qtbot, w("weights"), "[]")
    assert form.params().weights == []


def test_browse_fills_the_path_from_a_window_modal_dialog(form, qtbot, monkeypatch):
    opened = []
    monkeypatch.setattr(QFileDialog, "open", lambda self: opened.append(self))
    monkeypatch.setattr(QFileDialog, "exec", lambda self: pytest.fail("a blocking dialog was opened"))
    qtbot.mouseClick(form.findChild(QToolButton, "init_image_browse"), Qt.MouseButton.LeftButton)
    assert len(opened) == 1
    dialog = opened[0]
    assert "Init image" in dialog.windowTitle() and dialog.fileMode() == QFileDialog.FileMode.ExistingFile
    dialog.fileSelected.emit("/pictures/cat.png")
    assert form.field_widget("init_image").text() == "/pictures/cat.png"
    assert form.params().init_image == Path("/pictures/cat.png")
    dialog.deleteLater()


# -- live validation ------------------------------------------------------------------------------------------

INVALID = [
    # field, what a person types, the reason, a correction, the value it gives
    ("sizes", "[1,", "not a valid JSON list", "[1, 2, 3]", [1, 2, 3]),
    ("sizes", "1, x", "expected a whole number", "1, 5", [1, 5]),
    ("width", "513", "must be a multiple of 8", "520", 520),
    ("width", "5", "must be between 64 and 2048", "64", 64),
    ("steps", "500", "must be between 1 and 150", "150", 150),  # typed past the maximum: kept, and the range said
    ("guidance", "45", "must be between 0 and 30", "12.5", 12.5),
    ("init_image", "a\x00b", "must be a non-empty file path", "ab.png", Path("ab.png")),
    ("lora", "", "must be a non-empty file path", "x.safetensors", Path("x.safetensors")),
    ("stop", "a,b,c,d,e", "allows at most 4 item(s)", "a,b,c,d", ["a", "b", "c", "d"]),
    ("seed", "4294967296", "must be between 0 and 4294967295", "12", 12),
    ("weights", "[1, \"nan\"]", "must be a finite number", "[1, 2.5]", [1.0, 2.5]),
    ("prompt", "a\x00", "must not contain NUL characters", "a", "a"),
]


def enter(qtbot, widget, text):
    if isinstance(widget, QPlainTextEdit):
        widget.setPlainText(text)
    elif "\x00" in text:
        widget.setText(text)  # pasted: a key press cannot carry a NUL
    else:
        retype(qtbot, widget, text)


@pytest.mark.parametrize("name, typed, reason, fixed, value", INVALID, ids=[f"{c[0]}-{c[2]}" for c in INVALID])
def test_invalid_input_is_marked_at_once_and_cleared_when_fixed(form, qtbot, name, typed, reason, fixed, value):
    editor, label = form.field_widget(name), form.error_label(name)
    help_text = editor.toolTip()
    assert not is_red_bordered(editor) and not label.isVisibleTo(form)

    with qtbot.waitSignal(form.validity_changed, timeout=1000) as went:
        enter(qtbot, editor, typed)
    assert went.args == [False]
    assert form.errors() == {name: reason} and not form.is_valid()
    assert editor.property("invalid") is True and is_red_bordered(editor)
    assert label.isVisibleTo(form) and label.text() == reason[0].upper() + reason[1:] + "."
    assert reason[0].upper() + reason[1:] in editor.toolTip() and help_text in editor.toolTip()
    assert reason[0].upper() + reason[1:] in editor.accessibleDescription()
    with pytest.raises(ParamError, match=reason.replace("(", r"\(").replace(")", r"\)")) as info:
        form.params()
    assert info.value.field == name

    with qtbot.waitSignal(form.validity_changed, timeout=1000) as went:
        enter(qtbot, editor, fixed)
    assert went.args == [True]
    assert form.errors() == {} and form.is_valid()
    assert editor.property("invalid") is False and not is_red_bordered(editor)
    assert not label.isVisibleTo(form) and editor.toolTip() == help_text
    assert getattr(form.params(), name) == value


def test_validity_changes_only_when_the_whole_form_does(form, qtbot):
    seen = []
    form.validity_changed.connect(seen.append)
    retype(qtbot, form.field_widget("sizes"), "[1,")
    retype(qtbot, form.field_widget("seed"), "x")
    assert seen == [False] and set(form.errors()) == {"sizes", "seed"}
    retype(qtbot, form.field_widget("sizes"), "1")
    assert seen == [False] and set(form.errors()) == {"seed"}
    with pytest.raises(ParamError) as info:
        form.params()
    assert info.value.field == "seed" and "expected a whole number" in str(info.value)
    retype(qtbot, form.field_widget("seed"), "7")
    assert seen == [False, True] and form.params() == Kinds(sizes=[1], seed=7)


# -- set_params / reset ---------------------------------------------------------------------------------------

FULL = Kinds(
    prompt="line one\r\nline two\u2028", negative="", steps=150, width=2048, seed=2**32 - 1, count=INT32[0],
    guidance=7.123456, strength=0.0, scale=-123.456789, sampler="unipc", frames=8, scheduler="linear",
    hires=True, upscale=False, stop=["a, b", " c", "none"], sizes=[], weights=[], init_image=Path("/x/y.png"),
    note="", tiling=True, dtype="float32", lora=Path("l.safetensors"))
EMPTY = Kinds(strength=None, scheduler=None, upscale=None, weights=None, init_image=None, note=None,
              stop=[], sizes=[-1, 0, 10**40])


@pytest.mark.parametrize("params", [FULL, EMPTY, Kinds()], ids=["full", "nones", "defaults"])
def test_set_params_round_trips(form, params):
    form.set_params(params)
    assert form.params() == params and form.is_valid()


def test_set_params_shows_the_values(form, qtbot):
    form.set_params(FULL)
    w = form.field_widget
    assert w("guidance").text() == "7.12" and form.params().guidance == 7.123456  # shown rounded, kept exact
    assert w("stop").text() == '["a, b", " c", "none"]' and w("sizes").text() == "" and w("weights").text() == "[]"
    assert w("seed").text() == "4294967295" and w("count").value() == INT32[0]
    assert w("strength").text() == "0.00" and w("upscale").checkState() == Qt.CheckState.Unchecked
    assert w("scheduler").currentText() == "linear" and w("init_image").text() == str(Path("/x/y.png"))
    assert form.slider("steps").value() == form.slider("steps").maximum()
    w("guidance").setValue(8.25)  # once edited, the field holds what it shows
    w("prompt").moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(w("prompt"), "!")
    assert form.params() == replace(FULL, guidance=8.25, prompt="line one\nline two\n!")
    form.set_params(EMPTY)
    assert w("sizes").text() == "[-1, 0, 1" + "0" * 40 + "]"  # more digits than comma-separated text allows
    assert w("weights").text() == "" and w("strength").text() == "(none)" and w("note").text() == ""


def test_set_params_signals_once_and_not_validity_when_nothing_changes_it(form, qtbot):
    changed = []
    form.changed.connect(lambda: changed.append(1))
    with qtbot.assertNotEmitted(form.validity_changed):
        form.set_params(FULL)
        form.set_params(EMPTY)
    assert len(changed) == 2
    seen = []
    form.validity_changed.connect(seen.append)
    retype(qtbot, form.field_widget("sizes"), "[1,")
    form.set_params(FULL)
    assert seen == [False, True] and form.errors() == {} and form.params() == FULL


def test_set_params_refuses_what_it_cannot_hold_and_keeps_the_form(form):
    form.set_params(FULL)
    with pytest.raises(ParamError) as info:
        form.set_params(Kinds(steps=0))
    assert info.value.field == "steps"
    with pytest.raises(ParamError, match="outside what this form can show") as info:
        form.set_params(Kinds(count=2**40))
    assert info.value.field == "count"
    with pytest.raises(ParamError, match="expected Kinds"):
        form.set_params(PromptOnly())
    assert form.params() == FULL and form.is_valid()


def test_reset_restores_the_defaults(form, qtbot):
    form.set_params(FULL)
    retype(qtbot, form.field_widget("sizes"), "[1,")
    seen = []
    form.validity_changed.connect(seen.append)
    form.reset()
    assert form.params() == Kinds() and seen == [True]
    assert form.field_widget("sizes").text() == "1, 2" and form.field_widget("guidance").value() == 7.5
    assert form.slider("steps").value() - form.slider("steps").minimum() == 19


# -- properties -----------------------------------------------------------------------------------------------

NO_NUL = st.characters(blacklist_characters="\x00")
SHOWN = st.characters(codec="utf-8", blacklist_characters="\x00\r\xa0\u2028\u2029\ufeff")  # what the editors keep as is
CHOICES = {f.name: f.spec.choices for f in schema(Kinds) if f.spec.choices}


def kinds(chars, guidance, strength, scale, weights, optional_text):
    text = st.text(chars, max_size=30)
    path = st.text(chars, min_size=1, max_size=30).map(Path)
    return st.builds(
        Kinds, prompt=text, negative=text, steps=st.integers(1, 150), width=st.integers(8, 256).map(lambda k: 8 * k),
        seed=st.integers(0, 2**32 - 1), count=st.integers(*INT32), guidance=guidance, strength=st.none() | strength,
        scale=scale, sampler=st.sampled_from(CHOICES["sampler"]), frames=st.sampled_from(CHOICES["frames"]),
        scheduler=st.none() | st.sampled_from(CHOICES["scheduler"]), hires=st.booleans(),
        upscale=st.none() | st.booleans(), stop=st.lists(text, max_size=4), sizes=st.lists(st.integers()),
        weights=st.none() | st.lists(weights, max_size=5), init_image=st.none() | path,
        note=st.none() | optional_text, tiling=st.booleans(), dtype=st.sampled_from(CHOICES["dtype"]), lora=path)


ANY_KINDS = kinds(NO_NUL, st.floats(0, 30), st.floats(0, 1), st.floats(-1e15, 1e15),
                  st.floats(allow_nan=False, allow_infinity=False), st.text(NO_NUL, max_size=30))
SHOWN_KINDS = kinds(SHOWN, st.integers(0, 60).map(lambda k: k / 2), st.integers(0, 100).map(lambda k: k / 100),
                    st.integers(-10**9, 10**9).map(lambda k: k / 100),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(SHOWN, min_size=1, max_size=30))  # an empty optional editor means None
PROPERTY = settings(max_examples=100, deadline=None)


def test_any_valid_params_come_back_from_set_params(qtbot):
    form = ParamsForm(Kinds)
    qtbot.addWidget(form)

    @seed(20261129)
    @PROPERTY
    @given(params=ANY_KINDS)
    def check(params):
        form.set_params(params)
        assert form.params() == params and form.is_valid()

    check()


def copy_what_is_shown(source, target):
    """Enter into ``target`` what ``source``'s editors show, as a person copying it by hand would."""
    for name in Kinds.__dataclass_fields__:
        shown, editor = source.field_widget(name), target.field_widget(name)
        if isinstance(shown, QAbstractSpinBox):
            if shown.text() == shown.specialValueText():
                editor.setValue(editor.minimum())
            else:
                editor.selectAll()
                QTest.keyClicks(editor, shown.text())
        elif isinstance(shown, QComboBox):
            editor.setCurrentIndex(shown.currentIndex())
        elif isinstance(shown, QCheckBox):
            editor.setCheckState(shown.checkState())
        elif isinstance(shown, QPlainTextEdit):
            editor.setPlainText(shown.toPlainText())
        else:
            editor.setText(shown.text())


def test_what_the_editors_show_reads_back_as_the_same_values(qtbot):
    """set_params must show each value so that it means the same value again (not only remember it)."""
    form, copy = ParamsForm(Kinds), ParamsForm(Kinds)
    qtbot.addWidget(form)
    qtbot.addWidget(copy)

    @seed(20261129)
    @PROPERTY
    @given(params=SHOWN_KINDS)
    def check(params):
        form.set_params(params)
        copy_what_is_shown(form, copy)
        assert copy.errors() == {} and copy.params() == params

    check()


# -- a form for some of the fields, inside a custom panel ----------------------------------------------------


def shown_form(qtbot, **kwargs) -> ParamsForm:
    form = ParamsForm(Kinds, **kwargs)
    qtbot.addWidget(form)
    form.resize(600, 700)
    form.show()
    return form


def test_a_form_shows_the_fields_it_is_given_in_that_order(qtbot):
    form = shown_form(qtbot, fields=("guidance", "dtype", "steps", "prompt", "tiling"))
    assert form.field_names() == ["prompt", "guidance", "steps", "dtype", "tiling"]  # prompt first, options last
    assert top(form, "prompt") < top(form, "guidance") < top(form, "steps")
    assert form.options_group().isAncestorOf(form.field_widget("dtype"))
    with pytest.raises(KeyError):
        form.field_widget("width")
    assert ParamsForm(Kinds, fields=("tiling", "dtype")).options_group() is None  # nothing to set apart from
    with pytest.raises(ValueError, match="Kinds has no field 'colour'"):
        ParamsForm(Kinds, fields=("steps", "colour"))
    with pytest.raises(ValueError, match="named twice"):
        ParamsForm(Kinds, fields=("steps", "steps"))


def test_values_are_the_shown_fields_and_params_keep_the_others_from_set_params(qtbot):
    form = shown_form(qtbot, fields=("steps", "sampler"))
    assert form.values() == {"steps": 20, "sampler": "euler"}
    reused = replace(Kinds(), steps=33, sampler="ddim", width=1024, note="kept")
    form.set_params(reused)
    assert form.values() == {"steps": 33, "sampler": "ddim"} and form.params() == reused
    form.field_widget("steps").setValue(40)
    assert form.params() == replace(reused, steps=40)
    form.set_params({"steps": 5, "guidance": 2.5})  # the JSON form (params_applied may carry it)
    assert form.params() == Kinds(steps=5, guidance=2.5)
    form.field_widget("steps").lineEdit().setText("")  # a half-typed number
    with pytest.raises(ParamError) as raised:
        form.values()
    assert raised.value.field == "steps" and form.errors().keys() == {"steps"}


def test_set_values_fills_only_the_named_fields_or_nothing(qtbot):
    form = shown_form(qtbot)
    changes = []
    form.changed.connect(lambda: changes.append(1))
    form.set_values({"guidance": 2.123456789, "sampler": "unipc"})
    assert len(changes) == 1
    values = form.values()
    assert values["guidance"] == 2.123456789 and values["sampler"] == "unipc"  # exactly, though shown rounded
    assert values["steps"] == 20 and form.params() == Kinds(guidance=2.123456789, sampler="unipc")
    with pytest.raises(ParamError):
        form.set_values({"steps": 50, "guidance": 99.0})  # guidance is beyond its maximum: neither is set
    with pytest.raises(KeyError, match="not a field of this form: colour"):
        form.set_values({"steps": 50, "colour": "red"})
    assert form.values() == values and len(changes) == 1
    assert ParamsForm(Kinds, fields=("steps",)).values() == {"steps": 20}


def test_a_field_row_can_be_hidden_and_shown(form):
    parts = [form.field_widget("guidance"), form.slider("guidance"), form.findChild(QLabel, "guidance_label")]
    assert all(part.isVisibleTo(form) for part in parts)
    form.set_field_visible("guidance", False)
    assert not any(part.isVisibleTo(form) for part in parts)
    assert form.findChild(QLabel, "steps_label").isVisibleTo(form) and form.params() == Kinds()
    form.set_field_visible("guidance", True)
    assert all(part.isVisibleTo(form) for part in parts)
    form.set_field_visible("prompt", False)  # a prompt's label sits on a row of its own
    assert not form.findChild(QLabel, "prompt_label").isVisibleTo(form)
    assert not form.field_widget("prompt").isVisibleTo(form)


def test_combo_items_carry_their_choices_so_a_panel_can_relabel_them(form):
    sampler, frames, scheduler = (form.field_widget(n) for n in ("sampler", "frames", "scheduler"))
    assert [sampler.itemData(i) for i in range(sampler.count())] == ["euler", "ddim", "unipc"]
    assert frames.itemData(frames.findData(24)) == 24 and scheduler.itemData(0) is None  # "(none)"
    sampler.setItemText(sampler.findData("ddim"), "DDIM (fast)")
    sampler.setCurrentIndex(sampler.findData("ddim"))
    assert form.params().sampler == "ddim"


def test_a_form_without_its_scroll_area(qtbot):
    assert shown_form(qtbot).findChild(QScrollArea) is not None
    form = shown_form(qtbot, fields=("steps",), scrollable=False)
    assert form.findChild(QScrollArea) is None and form.field_widget("steps").isVisibleTo(form)


# -- typing out of range, and the mouse wheel -------------------------------------------------------------------


def test_a_number_typed_past_the_maximum_says_the_range_then_takes_the_bound(form, qtbot):
    steps, label = form.field_widget("steps"), form.error_label("steps")
    retype(qtbot, steps, "500")
    assert steps.text() == "500" and label.isVisibleTo(form) and label.text() == "Must be between 1 and 150."
    with pytest.raises(ParamError, match="between 1 and 150"):
        form.params()
    steps.interpretText()  # what leaving the field does
    assert steps.value() == 150 and form.is_valid() and not label.isVisibleTo(form)


def wheel(widget, delta: int) -> QWheelEvent:
    """Turn the mouse wheel over the middle of ``widget`` (one notch is 120)."""
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre)), QPoint(), QPoint(0, delta),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event


def test_the_wheel_changes_a_field_only_when_it_has_focus(form, qtbot):
    with qtbot.waitActive(form):
        form.activateWindow()
    steps, sampler, slider = form.field_widget("steps"), form.field_widget("sampler"), form.slider("steps")
    form.field_widget("prompt").setFocus()
    qtbot.waitUntil(form.field_widget("prompt").hasFocus)
    for widget in (steps, sampler, slider):
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel cannot give it focus either
        event = wheel(widget, -120)
        assert not event.isAccepted()  # left to the scroll area around the form
    assert (steps.value(), sampler.currentText(), slider.value() - slider.minimum()) == (20, "euler", 19)
    assert form.params() == Kinds()

    steps.setFocus()
    qtbot.waitUntil(steps.hasFocus)
    wheel(steps, 120)
    assert steps.value() == 21
    sampler.setFocus()
    qtbot.waitUntil(sampler.hasFocus)
    wheel(sampler, -120)
    assert sampler.currentText() == "ddim"
    assert form.params() == Kinds(steps=21, sampler="ddim")
