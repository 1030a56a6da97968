"""The Dagster instance's event log (`dagster_project/event_log.py`): Dagster's SQLite storage, the same rows in the
same files, with each process keeping one connection per database file instead of a new engine per connection."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.storage.event_log import SqliteEventLogStorage

from dagster_project.event_log import KEPT_FILES, KeptConnectionsSqliteEventLogStorage


def event_files(instance: dg.DagsterInstance) -> Path:
    return Path(instance.root_directory) / "history" / "runs"


@pytest.fixture
def connections() -> Iterator[list[str]]:
    """Every SQLite connection opened meanwhile, by the file it opened."""
    opened: list[str] = []

    def on_connect(dbapi_connection: object, record: object) -> None:
        opened.append(dbapi_connection.execute("PRAGMA database_list").fetchone()[2])  # type: ignore[attr-defined]

    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", on_connect)
    yield opened
    sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", on_connect)


def message(run_id: str, text: str) -> dg.EventLogEntry:
    return dg.EventLogEntry(error_info=None, level="INFO", user_message=text, run_id=run_id, timestamp=time.time())


def materialise(instance: dg.DagsterInstance, asset: str, n: int) -> None:
    for i in range(n):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset, metadata={"i": i}))


def open_files(folder: Path) -> set[str]:
    """The database files under `folder` this process has open."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)) and target.endswith(".db"):
            found.add(Path(target).name)
    return found


def test_the_projects_instance_keeps_dagsters_events_where_dagsters_default_does(
        dagster_instance: dg.DagsterInstance) -> None:
    assert isinstance(dagster_instance.event_log_storage, KeptConnectionsSqliteEventLogStorage)
    materialise(dagster_instance, "deals", 3)
    dagsters_own = SqliteEventLogStorage(str(event_files(dagster_instance)))
    latest = dagsters_own.get_latest_materialization_events([dg.AssetKey("deals")])[dg.AssetKey("deals")]
    assert latest is not None and latest.asset_materialization.metadata["i"].value == 2  # type: ignore[union-attr]
    dagsters_own.store_event(message("r1", "written by Dagster's own storage"))
    assert [e.user_message for e in dagster_instance.all_logs("r1")] == ["written by Dagster's own storage"]


def test_a_hundred_events_take_a_handful_of_connections_not_two_each(dagster_instance: dg.DagsterInstance,
                                                                    connections: list[str]) -> None:
    materialise(dagster_instance, "deals", 50)          # each in the runless run's file and in the index
    for i in range(50):
        dagster_instance.event_log_storage.store_event(message("r1", f"line {i}"))
    assert len(dagster_instance.all_logs("r1")) == 50
    assert len(dagster_instance.fetch_materializations(dg.AssetKey("deals"), limit=100).records) == 50
    # A file's first use also checks its schema on a second connection for a moment, and the index's tables are
    # looked up once each on connections of their own: a handful, against two or three per event before.
    assert len(connections) <= 12, connections


def test_a_process_keeps_only_the_files_it_used_last_open(dagster_instance: dg.DagsterInstance) -> None:
    runs = [f"run{i:02d}" for i in range(KEPT_FILES + 5)]
    for run_id in runs:
        dagster_instance.event_log_storage.store_event(message(run_id, "started"))
    kept = open_files(event_files(dagster_instance))
    assert len(kept) <= KEPT_FILES and f"{runs[-1]}.db" in kept and f"{runs[0]}.db" not in kept
    assert [e.user_message for e in dagster_instance.all_logs(runs[0])] == ["started"]   # reopened when read again
    dagster_instance.event_log_storage.dispose()
    assert open_files(event_files(dagster_instance)) == set()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_forked_processes_store_through_connections_of_their_own(dagster_instance: dg.DagsterInstance) -> None:
    materialise(dagster_instance, "deals", 1)          # the parent's connections are open when it forks
    children = []
    for child in range(2):
        pid = os.fork()
        if pid == 0:   # the child: the parent's storage object, then an instance of its own (as a step process)
            try:
                materialise(dagster_instance, "deals", 20)
                with dg.DagsterInstance.get() as own:
                    materialise(own, f"child{child}", 20)
                os._exit(0)
            except BaseException:
                os._exit(1)
        children.append(pid)
    materialise(dagster_instance, "deals", 5)
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children] == [0, 0]
    counts = {a: len(dagster_instance.fetch_materializations(dg.AssetKey(a), limit=1000).records)
              for a in ("deals", "child0", "child1")}
    assert counts == {"deals": 1 + 2 * 20 + 5, "child0": 20, "child1": 20}


def test_wiping_the_instance_closes_the_files_before_deleting_them(dagster_instance: dg.DagsterInstance) -> None:
    materialise(dagster_instance, "deals", 2)
    dagster_instance.event_log_storage.store_event(message("r1", "before"))
    dagster_instance.wipe()
    assert dagster_instance.all_logs("r1") == []
    assert dagster_instance.fetch_materializations(dg.AssetKey("deals"), limit=10).records == []
    dagster_instance.event_log_storage.store_event(message("r1", "after"))
    assert [e.user_message for e in dagster_instance.all_logs("r1")] == ["after"]
