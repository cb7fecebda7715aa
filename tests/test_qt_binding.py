"""The Qt binding itself: guards against binding bugs that would crash Studiolo."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class Emitter(QObject):
    fired = Signal(str)


def test_emitting_signals_does_not_leak_references_to_true(qapp):
    # PySide6 6.12.0 returns True from Signal.emit() without a reference: each emit takes one away and, with
    # Python 3.11's mortal bools, the process aborts after a few hundred signals (pyproject pins it out).
    emitter = Emitter()
    emitter.fired.connect(lambda _text: None)
    before = sys.getrefcount(True)
    for _ in range(200):  # few enough that a leaking binding fails here rather than aborting
        emitter.fired.emit("x")
    assert sys.getrefcount(True) >= before - 5
