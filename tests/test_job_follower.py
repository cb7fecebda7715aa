"""desktop.api.widgets.JobFollower on the test host: submits, passes on the host's signals for its own jobs only,
forgets ended jobs, says when jobs run, cancels the newest first. (Through a real plugin panel in the real window:
tests/test_panel_api.py.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Slot

from desktop.api import ParamError, param
from desktop.api.widgets import JobFollower
from desktop.testing.panel_host import RecordingPanelHost


@dataclass(frozen=True)
class Params:
    text: str = param("hi", prompt=True)
    steps: int = param(1, min=1, max=10)


class Recorder(QObject):
    """Records every signal of a follower as (event, args…), and whether the follower ran at the time."""

    def __init__(self, follower: JobFollower) -> None:
        super().__init__()
        self.follower = follower
        self.events: list[tuple] = []
        for event in ("queued", "started", "progressed", "previewed", "finished", "failed", "cancelled",
                      "running_changed"):
            getattr(follower, event).connect(getattr(self, f"on_{event}"))

    def record(self, *event: object) -> None:
        self.events.append(event)

    @Slot(str)
    def on_queued(self, job_id: str) -> None:
        self.record("queued", job_id, self.follower.jobs())

    @Slot(str)
    def on_started(self, job_id: str) -> None:
        self.record("started", job_id)

    @Slot(str, int, int, str)
    def on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        self.record("progressed", job_id, done, total, message)

    @Slot(str, object)
    def on_previewed(self, job_id: str, preview: object) -> None:
        self.record("previewed", job_id, preview)

    @Slot(str, object)
    def on_finished(self, job_id: str, outputs: object) -> None:
        self.record("finished", job_id, outputs, self.follower.is_running())

    @Slot(str, str)
    def on_failed(self, job_id: str, message: str) -> None:
        self.record("failed", job_id, message, self.follower.is_running())

    @Slot(str, object)
    def on_cancelled(self, job_id: str, partial: object) -> None:
        self.record("cancelled", job_id, partial, self.follower.is_running())

    @Slot(bool)
    def on_running_changed(self, running: bool) -> None:
        self.record("running", running)


@pytest.fixture
def host(tmp_path: Path) -> RecordingPanelHost:
    return RecordingPanelHost(tmp_path / "panels")


def test_it_follows_the_jobs_it_submits_and_no_others(host):
    follower = JobFollower(host)
    seen = Recorder(follower)
    first = follower.submit(Params(text="one"))
    # the host emitted job_queued inside submit; the follower passes it on once it knows the job is its own
    assert host.submitted == [Params(text="one")] and first == "job-1"
    assert seen.events == [("running", True), ("queued", "job-1", ["job-1"])]
    second = follower.submit(Params(text="two"))
    assert follower.jobs() == [first, second] and follower.follows(second) and follower.is_running()
    seen.events.clear()

    host.job_queued.emit("someone-else")  # a job of this generator submitted elsewhere
    for job in ("someone-else", first):
        host.job_started.emit(job)
        host.job_progressed.emit(job, 1, 4, "step 1")
        host.job_previewed.emit(job, "chunk")
    host.job_finished.emit("someone-else", ["theirs"])
    assert seen.events == [("started", first), ("progressed", first, 1, 4, "step 1"),
                           ("previewed", first, "chunk")]
    assert not follower.follows("someone-else")

    host.job_finished.emit(first, ["out"])
    host.job_finished.emit(first, ["again"])  # reported twice: the job was forgotten at the first
    host.job_failed.emit(second, "it broke")
    # each ended job is forgotten before its signal; running_changed(False) comes after the last one's
    assert seen.events[3:] == [("finished", first, ["out"], True), ("failed", second, "it broke", False),
                               ("running", False)]
    assert follower.jobs() == [] and not follower.is_running()


def test_cancel_asks_the_host_for_the_newest_first_and_the_host_decides_when_they_end(host):
    follower = JobFollower(host)
    seen = Recorder(follower)
    follower.cancel()
    assert host.cancelled == []  # nothing to cancel
    jobs = [follower.submit(Params()) for _ in range(3)]
    follower.cancel(jobs[0])
    assert host.cancelled == [jobs[0]] and follower.jobs() == jobs  # still followed until the host says so
    follower.cancel("someone-else")
    assert host.cancelled == [jobs[0]]
    follower.cancel()
    assert host.cancelled == [jobs[0], jobs[2], jobs[1], jobs[0]]
    for job in jobs:
        host.job_cancelled.emit(job, [f"partial {job}"])
    assert seen.events[-4:] == [("cancelled", jobs[0], ["partial job-1"], True),
                                ("cancelled", jobs[1], ["partial job-2"], True),
                                ("cancelled", jobs[2], ["partial job-3"], False), ("running", False)]


def test_a_refused_submit_follows_nothing(host):
    follower = JobFollower(host)
    seen = Recorder(follower)
    with pytest.raises(ParamError):
        follower.submit(Params(steps=99))
    assert follower.jobs() == [] and seen.events == [] and host.submitted == []
    host.job_queued.emit("later")  # not taken for the refused submit's job
    assert follower.jobs() == [] and seen.events == []


def test_all_jobs_follows_every_job_the_host_reports(host):
    follower = JobFollower(host, all_jobs=True)
    seen = Recorder(follower)
    host.job_queued.emit("from-activity")  # run again from the Activity view: not submitted here
    mine = follower.submit(Params())
    assert follower.jobs() == ["from-activity", mine]
    assert seen.events == [("running", True), ("queued", "from-activity", ["from-activity"]),
                           ("queued", mine, ["from-activity", mine])]
    host.job_finished.emit("from-activity", [])
    assert seen.events[-1] == ("finished", "from-activity", [], True)


def test_follow_takes_a_job_submitted_straight_through_the_host(host):
    follower = JobFollower(host)
    seen = Recorder(follower)
    job = host.submit(Params())
    assert follower.jobs() == []  # its job_queued came before the follower knew it
    follower.follow(job)
    follower.follow(job)
    assert follower.jobs() == [job] and seen.events == [("running", True)]
    host.job_progressed.emit(job, 2, 0, "")
    assert seen.events[-1] == ("progressed", job, 2, 0, "")
