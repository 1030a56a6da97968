"""A run killed with its processes gives its portals' writer pools back: the sensor `writer_pools` sees that the
run's processes are gone, marks the run failed and gives its slot back, and the next refresh runs. Without it, the
slot stays held by a run Dagster still counts as started, and every later refresh waits for it for ever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from b24wh_simulator.client import SimulatorProcess
from dagster_project.pools import writer_pools_sensor
from tests.conftest import portal_options
from tests.portals import ROOT, portal_deals, settings_file, warehouse_deals

POOL = "duckdb_writer_north"
STEP = "north__warehouse_refresh"
# The `refresh` job of the settings B24WH_CONFIG names, in a process of its own, as a run worker runs it (and with
# a forkserver of its own: one started in the test's process would keep the first settings it was started with).
RUN = ("import dagster as dg\nfrom tests.portals import refresh_every_portal\n"
       "with dg.DagsterInstance.get() as instance:\n"
       "    dg.execute_job(dg.reconstructable(refresh_every_portal), instance=instance)\n")


def started_step(instance: dg.DagsterInstance, timeout: float = 120.0) -> str:
    """The run whose refresh step has started, once it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in instance.get_runs():
            if instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records:
                return run.run_id
        time.sleep(0.2)
    raise AssertionError("the run's step did not start")


def held(instance: dg.DagsterInstance) -> list[str]:
    return [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots]


def test_a_killed_run_gives_its_portals_writer_pool_back_and_the_next_refresh_runs(
        tmp_path: Path, dagster_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    sensor = writer_pools_sensor([POOL])
    with SimulatorProcess(**portal_options(deals=60, seed=111)) as sim:
        monkeypatch.setenv("B24WH_CONFIG", str(settings_file(project, '[portals.north]\ntimezone = "Europe/Moscow"\n')))
        monkeypatch.setenv("B24WH_HOME", str(project))
        monkeypatch.setenv("PORTALS__NORTH__CREDENTIALS", sim.webhook_url)
        monkeypatch.delenv("B24WH_PUBLISH_URL", raising=False)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        sim.control.set_faults(rate_slow=1.0, slow_seconds=60)   # the run is caught in its extract
        worker = subprocess.Popen([sys.executable, "-c", RUN], env=env, cwd=ROOT, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            killed = started_step(dagster_instance)
            # A live run keeps its slot.
            assert "held by a live run" in sensor(dg.build_sensor_context(instance=dagster_instance)).skip_message
            assert held(dagster_instance) == [killed]
        finally:
            os.killpg(worker.pid, signal.SIGKILL)    # the run's process, its forkserver and its step, at once
            worker.wait()
        # What a killed run leaves: its slot held, the run still counted as started.
        assert held(dagster_instance) == [killed]
        assert dagster_instance.get_run_by_id(killed).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]

        deadline = time.monotonic() + 30   # the kernel's SIGKILL lands within a moment (a tick is every 30 s)
        while (answer := sensor(dg.build_sensor_context(instance=dagster_instance)).skip_message).startswith(
                "every slot") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"{POOL}: the slot of run {killed} ({STEP}), since its processes (PID " in answer
        assert held(dagster_instance) == []
        run = dagster_instance.get_run_by_id(killed)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        failure = dagster_instance.get_records_for_run(killed, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert "are gone: killed or crashed with its steps" in str(failure[0].event_log_entry.dagster_event)

        # A run that ended holding a slot (as one whose worker failed while starting its steps does) gives it back.
        dagster_instance.event_log_storage.claim_concurrency_slot(POOL, killed, STEP)
        answer = sensor(dg.build_sensor_context(instance=dagster_instance)).skip_message
        assert answer == f"{POOL}: the slot of run {killed} ({STEP}), since the run had ended"
        assert held(dagster_instance) == []

        sim.control.set_faults(rate_slow=0.0)
        refreshed = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=ROOT, capture_output=True, text=True,
                                   timeout=300)
        assert refreshed.returncode == 0, refreshed.stderr[-3000:]
        runs = dagster_instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
        assert warehouse_deals(project / "data" / "portals" / "north" / "warehouse.duckdb") == portal_deals(sim)
