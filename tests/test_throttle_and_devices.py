"""Throttling with a controllable clock, mailbox coalescing, and device choice."""

from __future__ import annotations

import pytest

from desktop.api import StudioloError
from desktop.engine import devices
from desktop.engine.devices import pick_device
from desktop.engine.throttle import Mailbox, RateLimiter


def test_rate_limiter_lets_the_first_through_then_one_per_interval():
    now = [10.0]
    limiter = RateLimiter(interval=1 / 30, clock=lambda: now[0])
    assert limiter.wait_time() == 0
    limiter.mark()
    assert limiter.wait_time() == pytest.approx(1 / 30)
    now[0] += 0.02
    assert limiter.wait_time() == pytest.approx(1 / 30 - 0.02)
    now[0] += 0.02
    assert limiter.wait_time() == 0


def test_mailbox_notifies_once_per_batch_and_coalesces():
    box = Mailbox()
    assert box.put_progress(1, 10, "") is True
    assert box.put_text("a") is False and box.put_text("b") is False
    assert box.put_preview("img1") is False and box.put_preview("img2") is False
    assert box.put_progress(2, 10, "x") is False
    batch = box.take()
    assert (batch.progress, batch.text, batch.preview, batch.dropped_previews) == ((2, 10, "x"), "ab", "img2", 1)
    assert box.put_text("c") is True  # a new batch notifies again
    box.close()
    assert not box.take() and box.put_text("d") is False


def test_cpu_only_generators_never_probe_for_a_gpu(monkeypatch):
    monkeypatch.setattr(devices, "available_devices", lambda: pytest.fail("probed for a GPU"))
    assert pick_device(("cpu",), "auto") == "cpu"
    assert pick_device(("cpu",), "cuda") == "cpu"  # the generator cannot use the chosen GPU


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    for have, expected in ((("cuda", "mps", "cpu"), "cuda"), (("mps", "cpu"), "mps"), (("cpu",), "cpu")):
        monkeypatch.setattr(devices, "available_devices", lambda have=have: have)
        assert pick_device(("cuda", "mps", "cpu"), "auto") == expected


def test_a_chosen_device_that_is_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(devices, "available_devices", lambda: ("cpu",))
    with pytest.raises(StudioloError, match="'cuda:1' chosen in Settings is not available"):
        pick_device(("cuda", "cpu"), "cuda:1")
    monkeypatch.setattr(devices, "available_devices", lambda: ("cuda", "cpu"))
    assert pick_device(("cuda", "cpu"), "cuda:1") == "cuda:1"
    assert pick_device(("cuda", "cpu"), "cpu") == "cpu"
