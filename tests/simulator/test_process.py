"""The simulator as a process: stopping it leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import portal_options


def test_stopping_the_simulator_removes_its_working_copy() -> None:
    with SimulatorProcess(**portal_options(deals=60)) as sim:
        store = Path(sim.ready["store"])
        assert store.exists()
    assert not store.parent.exists()
