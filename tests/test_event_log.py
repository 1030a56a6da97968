"""The Dagster instance's event log (`dagster_project/event_log.py`): Dagster's SQLite storage, the same rows in the
same files, with each process keeping one connection per database file instead of a new engine per connection, and
a batch of events (a run's planned events) stored in one transaction per file."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.events import StepMaterializationData
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite import sqlite_event_log

from dagster_project.event_log import (
    EVENT_BATCH_SIZE,
    EVENT_BATCH_SIZE_ENV,
    KEPT_FILES,
    PLANNED,
    KeptConnectionsSqliteEventLogStorage,
)


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


@pytest.fixture
def commits() -> Iterator[list[object]]:
    """Every transaction committed meanwhile."""
    done: list[object] = []

    def on_commit(connection: object) -> None:
        done.append(connection)

    sqlalchemy.event.listen(sqlalchemy.Engine, "commit", on_commit)
    yield done
    sqlalchemy.event.remove(sqlalchemy.Engine, "commit", on_commit)


def checked_tables(n: int) -> dg.JobDefinition:
    """A job materialising `n` tables, each with a check: 2n planned events when a run of it is made."""
    specs = [dg.AssetSpec(f"table{i}") for i in range(n)]

    @dg.multi_asset(specs=specs, check_specs=[dg.AssetCheckSpec("complete", asset=spec.key) for spec in specs])
    def tables() -> Iterator[object]:
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key)
            yield dg.AssetCheckResult(asset_key=spec.key, check_name="complete", passed=True)

    return dg.Definitions(assets=[tables]).resolve_implicit_global_asset_job_def()


def planned(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    events = [e.get_dagster_event() for e in instance.all_logs(run_id) if e.dagster_event_type in PLANNED]
    return sorted((e.event_type_value, repr(e.asset_key or e.asset_check_planned_data.asset_check_key))
                  for e in events)


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


def test_a_runs_planned_events_are_stored_in_one_transaction_per_file(
        dagster_instance: dg.DagsterInstance, commits: list[object], monkeypatch: pytest.MonkeyPatch) -> None:
    """Before a run's first op starts, Dagster stores an event for every asset and check it plans (880 for ten
    portals), as a batch where DAGSTER_EVENT_BATCH_SIZE is set, which the storage sets. Stored together they are
    the same rows, for about two commits instead of two or three per event."""
    assert os.environ[EVENT_BATCH_SIZE_ENV] == str(EVENT_BATCH_SIZE), "set by the storage"
    job = checked_tables(20)
    monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, "0")           # Dagster's default: one event at a time
    one_by_one = job.execute_in_process(instance=dagster_instance)
    separately = len(commits)
    commits.clear()
    monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))
    together = job.execute_in_process(instance=dagster_instance)
    assert len(planned(dagster_instance, together.run_id)) == 40
    assert planned(dagster_instance, together.run_id) == planned(dagster_instance, one_by_one.run_id)
    assert separately - len(commits) >= 2 * 40 - 2, (separately, len(commits))


def file_rows(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table in the event files under `folder`, but when each was made (an asset's entry, a
    file's migrations)."""
    rows: dict[str, list[tuple[object, ...]]] = {}
    for path in sorted(folder.glob("*.db")):
        engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            for table in sqlalchemy.inspect(conn).get_table_names():
                columns = ", ".join(f'"{c["name"]}"' for c in sqlalchemy.inspect(conn).get_columns(table)
                                    if c["name"] not in ("create_timestamp", "migration_completed"))
                rows[f"{path.name}:{table}"] = list(conn.execute(sqlalchemy.text(
                    f"SELECT {columns} FROM {table} ORDER BY 1")))
        engine.dispose()
    return rows


def test_planned_events_stored_together_are_the_rows_dagster_stores_one_by_one(
        dagster_instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """A run's planned events go in with one statement per table: the same rows in the same files as Dagster's
    own storage writes for them, for a first run (new asset entries) and a later one (entries updated)."""
    run = checked_tables(4).execute_in_process(instance=dagster_instance)
    events = [e for e in dagster_instance.all_logs(run.run_id) if e.dagster_event_type in PLANNED]
    assert len(events) == 8
    dagsters_own = SqliteEventLogStorage(str(tmp_path / "dagsters"))
    ours = KeptConnectionsSqliteEventLogStorage(str(tmp_path / "ours"))
    for run_id, offset in (("first", 0.0), ("later", 60.0)):
        batch = [e._replace(run_id=run_id, timestamp=e.timestamp + offset) for e in events]
        for event in batch:
            dagsters_own.store_event(event)
        ours.store_event_batch(batch)
    dagsters_own.dispose()
    ours.dispose()
    theirs, mine = file_rows(tmp_path / "dagsters"), file_rows(tmp_path / "ours")
    assert len(mine["index.db:asset_keys"]) == 4 and len(mine["index.db:asset_check_executions"]) == 8
    assert len(mine["later.db:event_logs"]) == 8
    assert mine == theirs


def test_a_batch_that_fails_keeps_nothing(dagster_instance: dg.DagsterInstance,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is all or nothing: Dagster then stores its events one by one, so none may be kept twice."""
    run = checked_tables(3).execute_in_process(instance=dagster_instance)
    events = [e._replace(run_id="again") for e in dagster_instance.all_logs(run.run_id)]
    storage = dagster_instance.event_log_storage
    storing = storage.store_event
    stored: list[dg.EventLogEntry] = []

    def failing_at_the_fourth(event: dg.EventLogEntry) -> None:
        if len(stored) == 3:
            raise OSError("disk full")
        stored.append(event)
        storing(event)

    monkeypatch.setattr(storage, "store_event", failing_at_the_fourth)
    with pytest.raises(OSError, match="disk full"):
        storage.store_event_batch(events)
    assert dagster_instance.all_logs("again") == []
    monkeypatch.undo()
    storage.store_event_batch(events)
    assert len(dagster_instance.all_logs("again")) == len(events)


def test_a_batch_of_planned_events_that_fails_keeps_nothing(dagster_instance: dg.DagsterInstance,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run = checked_tables(3).execute_in_process(instance=dagster_instance)
    events = [e._replace(run_id="again") for e in dagster_instance.all_logs(run.run_id)
              if e.dagster_event_type in PLANNED]
    storage = dagster_instance.event_log_storage

    def disk_full(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage, "_get_asset_entry_values", disk_full)   # after the events' rows in both files
    with pytest.raises(OSError, match="disk full"):
        storage.store_event_batch(events)
    assert dagster_instance.all_logs("again") == []
    with sqlalchemy.create_engine(f"sqlite:///{event_files(dagster_instance) / 'index.db'}").connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM event_logs WHERE run_id = 'again'")).scalar() == 0
    monkeypatch.undo()
    storage.store_event_batch(events)
    assert len(dagster_instance.all_logs("again")) == len(events) == 6


def test_a_file_is_made_once_and_a_made_one_is_used_without_reading_the_migration_scripts(
        dagster_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster's check of a file reads every migration script (0.25 s in each step process) for a head revision
    it ignores: a file already stamped by Dagster is used as it is, a new one is made by Dagster's code."""
    reads: list[object] = []
    checking = sqlite_event_log.check_alembic_revision

    def check(*args: object) -> object:
        reads.append(args)
        return checking(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_event_log, "check_alembic_revision", check)
    dagster_instance.event_log_storage.store_event(message("new", "made here"))
    assert len(reads) == 1, "a new run's file is made by Dagster's code"
    reads.clear()
    another_process = KeptConnectionsSqliteEventLogStorage(str(event_files(dagster_instance)))
    another_process.store_event(message("new", "stored by another process"))
    materialise_with(another_process, "deals")
    assert reads == []
    assert [e.user_message for e in dagster_instance.all_logs("new")] == ["made here", "stored by another process", ""]
    dagsters_own = SqliteEventLogStorage(str(event_files(dagster_instance)))
    assert dagsters_own.get_latest_materialization_events([dg.AssetKey("deals")])[dg.AssetKey("deals")] is not None
    another_process.dispose()


def materialise_with(storage: KeptConnectionsSqliteEventLogStorage, asset: str) -> None:
    event = dg.DagsterEvent(dg.DagsterEventType.ASSET_MATERIALIZATION.value, "new",
                            event_specific_data=StepMaterializationData(dg.AssetMaterialization(asset)))
    storage.store_event(dg.EventLogEntry(error_info=None, level="INFO", user_message="", run_id="new",
                                         timestamp=time.time(), dagster_event=event))
