"""The machine's cores shared among a run's step processes (`dagster_project.cores`): at most one build per slot, a
slot freed when its process dies however it dies, and a refresh holding its core only for the steps that do not
wait on the portal."""

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.queues import SimpleQueue
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from dagster_project.cores import CoreSlots
from dagster_project.steps import Step, each_step, prepare
from warehouse.settings import Settings

FORK = multiprocessing.get_context("fork")
SETTLE = 0.5        # long enough for a free slot to be taken (a waiting process looks every 0.02 s)
DEADLINE = 20.0     # the most a test waits for something that must happen


def build(slots: CoreSlots, taken: SimpleQueue, release: Event) -> None:
    """A step process's build: takes a slot, says so, holds it until told to let go."""
    with slots.held():
        taken.put(os.getpid())
        release.wait(DEADLINE)


def taken_within(taken: SimpleQueue, seconds: float, expected: int | None = None) -> list[int]:
    """The processes that took a slot within `seconds` (sooner once `expected` have)."""
    pids: list[int] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until and len(pids) != expected:
        while not taken.empty():
            pids.append(taken.get())
        time.sleep(0.01)
    return pids


@pytest.fixture
def processes() -> Iterator[list[multiprocessing.Process]]:
    started: list[multiprocessing.Process] = []
    yield started
    for process in started:
        process.kill()
        process.join()


def test_two_slots_hold_two_builds_and_the_third_waits(processes: list[multiprocessing.Process]) -> None:
    slots, taken, release = CoreSlots(2), FORK.SimpleQueue(), FORK.Event()
    processes += [FORK.Process(target=build, args=(slots, taken, release)) for _ in range(3)]
    for process in processes:
        process.start()
    first = taken_within(taken, DEADLINE, expected=2)
    assert len(first) == 2
    assert taken_within(taken, SETTLE) == []          # both slots held: the third build waits
    release.set()
    last = taken_within(taken, DEADLINE, expected=1)
    assert len(last) == 1 and last[0] not in first     # it runs once a slot is let go


def test_a_killed_build_frees_its_slot(processes: list[multiprocessing.Process]) -> None:
    slots, taken, release = CoreSlots(1), FORK.SimpleQueue(), FORK.Event()
    holder = FORK.Process(target=build, args=(slots, taken, release))
    processes.append(holder)
    holder.start()
    assert taken_within(taken, DEADLINE, expected=1) == [holder.pid]
    waiting = FORK.Process(target=build, args=(slots, taken, release))
    processes.append(waiting)
    waiting.start()
    assert taken_within(taken, SETTLE) == []
    os.kill(holder.pid, signal.SIGKILL)               # never lets go itself
    assert taken_within(taken, DEADLINE, expected=1) == [waiting.pid]


class Core:
    """A stand-in for a core of the machine that tells whether it is held."""

    def __init__(self) -> None:
        self.held = False

    @contextmanager
    def taken(self) -> Iterator[None]:
        self.held = True
        try:
            yield
        finally:
            self.held = False


def test_a_refresh_holds_its_core_from_the_first_build_step_to_the_end(tmp_path: Path) -> None:
    core, seen = Core(), {}

    def step(name: str, waits_on_portal: bool = False) -> Step:
        return Step(name, lambda request: seen.update({name: core.held}), waits_on_portal=waits_on_portal)

    request = prepare(tmp_path / "warehouse.duckdb", settings=Settings(), timezone="UTC")
    steps = [step("extract", waits_on_portal=True), step("core"), step("marts")]
    for done in each_step(request, steps, core.taken()):
        assert core.held is (done.step.name != "extract")
    assert seen == {"extract": False, "core": True, "marts": True}
    assert core.held is False                          # let go after the last step


def test_a_refresh_that_stops_early_lets_its_core_go(tmp_path: Path) -> None:
    core = Core()

    def fails(request: object) -> None:
        raise RuntimeError("the model failed")

    request = prepare(tmp_path / "warehouse.duckdb", settings=Settings(), timezone="UTC")
    with pytest.raises(RuntimeError, match="the model failed"):
        list(each_step(request, [Step("core", fails)], core.taken()))
    assert core.held is False
