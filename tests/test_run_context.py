"""The run context every job gets, the global-RNG hold, and demo models built atomically."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import numpy as np
import pytest

from desktop.api import Generator, JobCancelled, StudioloError, TextOutput, param
from desktop.engine.context import CallbackRunContext
from desktop.models.demo import demo_model_dir, ensure_demo_model


def draws(seed: int, n: int = 200) -> list[float]:
    ctx = CallbackRunContext(job_id="j", seed=seed)
    with ctx.hold_global_rng():
        return [random.random() + float(np.random.rand()) for _ in range(n)]


def test_global_rng_hold_gives_each_job_its_own_sequence_while_others_run():
    alone = draws(1)
    a_inside, b_inside = threading.Event(), threading.Event()
    seen: list[float] = []
    b_got_in_while_a_held: list[bool] = []

    def job_a() -> None:
        with CallbackRunContext(job_id="a", seed=1).hold_global_rng():
            seen.extend(random.random() + float(np.random.rand()) for _ in range(100))
            a_inside.set()
            # Job B now tries to take the RNG; held, it must not get in (so this wait runs out).
            b_got_in_while_a_held.append(b_inside.wait(timeout=0.5))
            seen.extend(random.random() + float(np.random.rand()) for _ in range(100))

    def job_b() -> None:
        a_inside.wait(timeout=30)
        with CallbackRunContext(job_id="b", seed=2).hold_global_rng():
            b_inside.set()
            random.random()

    threads = [threading.Thread(target=job_a), threading.Thread(target=job_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert b_got_in_while_a_held == [False] and b_inside.is_set()  # B ran, after A
    assert seen == alone  # A's draws are what it draws alone


def test_nothing_is_forwarded_after_cancel_and_late_reports_are_counted():
    seen = []
    ctx = CallbackRunContext(job_id="j", seed=0, on_progress=lambda *a: seen.append(a),
                             on_preview=seen.append)
    ctx.progress(1, 3)
    ctx.preview("a")
    ctx.raise_if_cancelled()
    ctx.cancel_event.set()
    ctx.progress(2, 3)
    ctx.preview("b")
    assert seen == [(1, 3, ""), "a"] and ctx.progress_after_cancel == 1
    with pytest.raises(JobCancelled) as info:
        ctx.raise_if_cancelled(partial=[TextOutput(text="so far")])
    assert info.value.partial[0].text == "so far"


@dataclass(frozen=True)
class NoParams:
    text: str = param("")


class Demo(Generator):
    id, name, kind, Params = "test.demo", "Demo", "text", NoParams
    fail = False

    def build_demo_model(self, dest):
        (dest / "weights.txt").write_text("w")
        if self.fail:
            raise RuntimeError("disk on fire")

    def load(self, model_path, device, options):
        return model_path

    def generate(self, handle, params, ctx):
        return []


def test_demo_model_is_built_once_into_the_data_folder(studiolo_home):
    generator = Demo()
    path = ensure_demo_model(generator)
    assert path == demo_model_dir(generator) and path.is_relative_to(studiolo_home / "data")
    (path / "weights.txt").write_text("kept")
    assert ensure_demo_model(generator) == path and (path / "weights.txt").read_text() == "kept"


def test_a_failed_demo_build_leaves_nothing_behind():
    generator = Demo()
    generator.fail = True
    with pytest.raises(StudioloError, match="Building the demo model of Demo failed: disk on fire"):
        ensure_demo_model(generator)
    folder = demo_model_dir(generator)
    assert not folder.exists() and list(folder.parent.iterdir()) == []


def test_a_generator_without_demo_model_says_so():
    class NoDemo(Demo):
        build_demo_model = Generator.build_demo_model

    with pytest.raises(StudioloError, match="has no demo model"):
        ensure_demo_model(NoDemo())
