"""Many portals from Dagster: each portal's own assets and writer pool, one run over every portal in parallel under
the multiprocess executor, and a failing portal stopping only its own steps."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.refresh import shared_threads
from b24wh_simulator.client import SimulatorProcess
from dagster_project.definitions import FORKED_JOBS, STEP_PROCESS_IMPORTS, build_definitions
from dagster_project.steps import STEP_MODULES, STEPS
from tests.portals import (
    ROOT,
    SETTINGS,
    load_settings_text,
    partner_days,
    portal_deals,
    refresh_every_portal,
    settings_file,
    three_portals,
    warehouse_deals,
    wrong_secret,
)
from warehouse.settings import Settings, orchestration, portal_timezone

__all__ = ["three_portals"]   # the module's fixture


def test_each_portal_has_its_own_assets_pool_and_backfill() -> None:
    defs = build_definitions(load_settings_text(SETTINGS), orchestration(), portal_timezone())
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert {"north/bitrix24/raw/deals", "south/warehouse/core/fact_deal", "east/warehouse/published"} <= keys
    assert not any(k.startswith(("bitrix24/", "warehouse/")) for k in keys)
    pools = {a.op.name: a.op.pool for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)}
    assert pools == {f"{name}__warehouse_refresh": f"duckdb_writer_{name}" for name in ("north", "south", "east")}
    jobs = {job.name for job in defs.jobs}
    assert {"refresh", "reconcile", "backfill_north", "backfill_south", "backfill_east"} <= jobs
    backfill = defs.resolve_job_def("backfill_east")
    assert {n.name for n in backfill.graph.node_defs} == {"east__warehouse_refresh"}


def test_the_forkserver_preloads_the_resolved_code_location_and_what_step_processes_import() -> None:
    defs = build_definitions(load_settings_text(SETTINGS), orchestration(), portal_timezone())
    config = defs.resolve_job_def("refresh").run_config or {}
    preloaded = config["execution"]["config"]["multiprocess"]["start_method"]["forkserver"]["preload_modules"]
    assert preloaded == ["dagster_project.forkserver"]
    for module in STEP_PROCESS_IMPORTS:   # a module Dagster renames would be skipped silently by the forkserver
        importlib.import_module(module)
    # It resolves exactly the jobs whose steps it forks (the backfills run under Dagster's default executor): its
    # JOBS are FORKED_JOBS (loaded in a process of its own, since loading it freezes the loading process's objects:
    # test_what_the_forkserver_loaded_is_frozen_...).
    forked = {name for name in (job.name for job in defs.jobs)
              if "forkserver" in str((defs.resolve_job_def(name).run_config or {}).get("execution", ""))}
    assert forked == set(FORKED_JOBS) == {"refresh", "reconcile"}


def test_the_code_location_loads_without_what_only_the_steps_run_and_the_forkserver_with_it(tmp_path: Path) -> None:
    """Every Dagster process loads the code location, the run's too: dlt and pyarrow are left to the processes that
    run steps, and the forkserver those are forked from has them loaded already, with the Dagster modules a step
    process imports."""
    probe = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
             "print(' '.join(m for m in (*sys.argv[2:], 'dlt', 'pyarrow') if m in sys.modules))")
    env = {**os.environ, "B24WH_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    loaded = {module: subprocess.run([sys.executable, "-c", probe, module, *STEP_MODULES, *STEP_PROCESS_IMPORTS],
                                     env=env, check=True, capture_output=True, text=True).stdout.split()
              for module in ("dagster_project.definitions", "dagster_project.forkserver")}
    assert loaded["dagster_project.definitions"] == []
    assert loaded["dagster_project.forkserver"] == [*STEP_MODULES, *STEP_PROCESS_IMPORTS, "dlt", "pyarrow"]


# Loads what the forkserver loads, as the forkserver does (`no-temp`: where no temporary file can be made); prints
# whether the collector is on, the objects frozen, those left for a collection, whether the builds share the cores'
# slots, and the jobs resolved.
FORKSERVER_PROBE = """
import gc, sys
if sys.argv[1:] == ["no-temp"]:
    import tempfile
    def refuse(*args, **kwargs):
        raise FileNotFoundError("No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp']")
    tempfile.mkstemp = refuse
import dagster_project.forkserver as f
from dagster_project import cores
jobs = [job.name for job in f.JOBS]
print(gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects()), cores._shared is not None, *jobs)
"""


def test_what_the_forkserver_loaded_is_frozen_for_its_step_processes_and_the_collector_left_on(
        tmp_path: Path) -> None:
    """Its step processes' collections skip everything it loaded. It resolves the jobs whose steps it forks, and
    makes the cores' slots their builds share."""
    env = {**os.environ, "B24WH_CONFIG": str(settings_file(tmp_path, SETTINGS)), "B24WH_HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    loaded = subprocess.run([sys.executable, "-c", FORKSERVER_PROBE], env=env, check=True, capture_output=True,
                            text=True)
    enabled, frozen, unfrozen, shared, *jobs = loaded.stdout.split()
    # Dagster, dlt, pyarrow, DuckDB and the code location frozen; what a collection would still go through, the
    # probe's own few objects.
    assert enabled == "True" and int(frozen) > 300_000 and int(unfrozen) < 1_000
    assert shared == "True" and set(jobs) == set(FORKED_JOBS)
    assert loaded.stderr == ""


def test_a_forkserver_that_cannot_load_everything_still_forks_the_step_processes(tmp_path: Path) -> None:
    """Python's forkserver ends on any exception but an ImportError, and every step process then fails with
    "unexpected EOF": what it cannot load is said on the run's standard error and left to the step processes."""
    env = {**os.environ, "B24WH_CONFIG": str(settings_file(tmp_path, "[portals.north\n")),
           "B24WH_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    malformed = subprocess.run([sys.executable, "-c", FORKSERVER_PROBE], env=env, check=True, capture_output=True,
                               text=True)
    enabled, _, _, shared, *jobs = malformed.stdout.split()
    assert enabled == "True" and shared == "False" and jobs == []
    assert "could not load the code location (SettingsError: " in malformed.stderr
    assert "each step process loads it itself" in malformed.stderr
    server = ("import multiprocessing\ncontext = multiprocessing.get_context('forkserver')\n"
              "context.set_forkserver_preload(['dagster_project.forkserver'])\n"
              "step = context.Process(target=print, args=('the step process ran',))\n"
              "step.start(); step.join(); print('exit code', step.exitcode)")
    forked = subprocess.run([sys.executable, "-c", server], env=env, check=True, capture_output=True, text=True,
                            timeout=120)
    assert forked.stdout.splitlines() == ["the step process ran", "exit code 0"]
    assert "SettingsError" in forked.stderr

    env["B24WH_CONFIG"] = str(settings_file(tmp_path, SETTINGS))
    no_temp = subprocess.run([sys.executable, "-c", FORKSERVER_PROBE, "no-temp"], env=env, check=True,
                             capture_output=True, text=True)
    assert no_temp.stdout.split()[3:] == ["False", *FORKED_JOBS]
    assert "builds do not take turns on the cores" in no_temp.stderr and "set TMPDIR" in no_temp.stderr


# A run worker's part (its main module Dagster's own, harmless to import again): the code location loaded with good
# settings, then the settings file broken before the run's forkserver starts; prints the run's failure.
BROKEN_AFTER_LOADING = """
import sys
from pathlib import Path

if __name__ == "__main__":
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    import dagster_project.definitions
    Path(sys.argv[1]).write_text("[portals.north\\n")
    with dg.DagsterInstance.get() as instance:
        job = ReconstructableRepository.for_module("dagster_project.definitions", "defs", sys.argv[2])
        result = dg.execute_job(job.get_reconstructable_job("refresh"), instance=instance, raise_on_error=False)
        print(*(str(event.event_specific_data.error.message) for event in result.all_events
                if event.event_type == dg.DagsterEventType.RUN_FAILURE))
"""


def test_a_settings_file_broken_as_a_run_starts_fails_the_run_with_its_own_error(
        tmp_path: Path, dagster_instance: dg.DagsterInstance) -> None:
    """The forkserver cannot load the code location; the step processes forked from it load it themselves, and the
    run's failure says why (before, it said only "unexpected EOF")."""
    (tmp_path / "worker_like.py").write_text(BROKEN_AFTER_LOADING, encoding="utf-8")
    settings = settings_file(tmp_path, SETTINGS)
    env = {**os.environ, "B24WH_CONFIG": str(settings), "B24WH_HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join((str(ROOT), str(tmp_path))),
           **{f"PORTALS__{name}__CREDENTIALS": "http://127.0.0.1:9/rest/1/unused/"
              for name in ("NORTH", "SOUTH_PORTAL", "EAST")}}
    ran = subprocess.run([sys.executable, "-m", "worker_like", str(settings), str(ROOT)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "SettingsError" in ran.stdout and "not valid TOML" in ran.stdout, ran.stdout[-2000:]
    assert "unexpected EOF" not in ran.stdout


@pytest.mark.parametrize(("cores", "together", "setting", "threads"), [
    (2, 10, 2, 1),     # ten portals on two cores: one thread each
    (2, 1, 2, 2),      # a backfill, one portal: the setting
    (8, 3, 2, 2),      # cores to spare: never more than the setting
    (16, 3, 8, 5),
    (1, 1, 4, 1),
])
def test_each_portal_of_a_run_gets_its_share_of_the_cores_for_duckdb(cores: int, together: int, setting: int,
                                                                      threads: int) -> None:
    assert shared_threads(Settings(threads=setting), together, cores).threads == threads


def test_dagster_refreshes_every_portal_in_one_run_and_a_failing_one_stops_only_itself(
        three_portals: dict[str, SimulatorProcess], dagster_instance: dg.DagsterInstance, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "partner"
    (project / "plans").mkdir(parents=True)
    (project / "plans" / "north.csv").write_text("scope,id,month,metric,plan\n", encoding="utf-8")
    one_build_at_once = SETTINGS + "\n[warehouse]\nbuilds_at_once = 1\n"
    monkeypatch.setenv("B24WH_CONFIG", str(settings_file(project, one_build_at_once)))
    monkeypatch.setenv("B24WH_HOME", str(project))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("B24WH_PUBLISH_URL", raising=False)
    monkeypatch.setenv("PORTALS__NORTH__CREDENTIALS", three_portals["north"].webhook_url)
    monkeypatch.setenv("PORTALS__SOUTH_PORTAL__CREDENTIALS", wrong_secret(three_portals["south"].webhook_url))
    monkeypatch.setenv("PORTALS__EAST__CREDENTIALS", three_portals["east"].webhook_url)
    instance = dagster_instance    # the project's own: one slot per writer pool, its event log storage
    result = dg.execute_job(dg.reconstructable(refresh_every_portal), instance=instance, raise_on_error=False)
    assert not result.success
    failed = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE}
    assert failed == {"south__warehouse_refresh"}
    published = {name: instance.get_latest_materialization_event(dg.AssetKey([name, "warehouse", "published"]))
                 for name in three_portals}
    assert published["north"] and published["east"] and not published["south"]
    days = partner_days(project / "data" / "partner" / "summary.duckdb")
    assert "extract (Dagster) failed" in days["south"][-1]["error"] and "INVALID_CREDENTIALS" in days["south"][-1][
        "error"]
    assert "where they are set: PORTALS__SOUTH_PORTAL__CREDENTIALS or" in days["south"][-1]["error"]
    assert days["north"][-1]["published"] and days["east"][-1]["error"] is None
    shared = max(1, min(Settings.threads, (os.cpu_count() or 1) // 3))
    told = sorted(r.step_key for r in instance.all_logs(result.run_id)
                  if r.user_message == f"DuckDB threads: {shared} (3 refreshes in the run)")
    assert told == ["east__warehouse_refresh", "north__warehouse_refresh", "south__warehouse_refresh"]
    logs = [r for r in instance.all_logs(result.run_id) if r.dagster_event and r.dagster_event.step_key]
    started = {r.dagster_event.step_key: r.timestamp for r in logs  # type: ignore[union-attr]
               if r.dagster_event.event_type == dg.DagsterEventType.STEP_START}  # type: ignore[union-attr]
    ended = {r.dagster_event.step_key: r.timestamp for r in logs  # type: ignore[union-attr]
             if r.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS}  # type: ignore[union-attr]
    evaluations = [r.dagster_event.asset_check_evaluation_data for r in logs  # type: ignore[union-attr]
                   if r.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]  # type: ignore[union-attr]
    checks = sum(len(step.checks) for step in STEPS)
    assert sorted(e.asset_key.path[0] for e in evaluations if e.passed) == ["east"] * checks + ["north"] * checks
    for name in ("north", "east"):
        warehouse = project / "data" / "portals" / name / "warehouse.duckdb"
        assert warehouse_deals(warehouse) == portal_deals(three_portals[name]), name
    refreshes = ("north__warehouse_refresh", "east__warehouse_refresh")
    assert min(ended[s] for s in refreshes) > max(started[s] for s in refreshes), "the portals ran one after another"
    # Their extracts ran side by side, their builds one at a time (`builds_at_once = 1`): the second took the core
    # once the first had published. South failed in its extract, before any build.
    took = {r.step_key: r.timestamp for r in instance.all_logs(result.run_id)
            if r.user_message.startswith("Took one of the 1 cores the run's builds share")}
    assert set(took) == set(refreshes)
    published_at = {r.step_key: r.timestamp for r in logs
                    if r.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION  # type: ignore[union-attr]
                    and r.dagster_event.asset_key.path[1:] == ["warehouse", "published"]}  # type: ignore[union-attr]
    first, second = sorted(refreshes, key=took.__getitem__)
    assert took[second] > published_at[first]


