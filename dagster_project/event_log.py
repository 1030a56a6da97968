"""Dagster's SQLite event log, with each process keeping its connections open (`dagster_home/dagster.yaml`).

Dagster's own `SqliteEventLogStorage`, the default of an instance without storage settings, makes a new SQLAlchemy
engine for every connection. So every statement is compiled again, and every close of a database file's last
connection checkpoints its write-ahead log. Each event it stores takes two or three connections (the run's file,
the index, and for a check the index again), and a ten-portal refresh stores about 2,600 events: 880 planned
before its first op starts, two per result in the ops. On two cores that cost about a third of a ten-portal
incremental cycle (docs/portals.md).

This storage is Dagster's with these differences:
- Each process keeps an engine per database file it uses (the index and the run files it used last) with one
  connection in it, and remembers which tables it has seen.
- A batch of events (Dagster sends a run's planned events as one: 880 for ten portals, before the first op can
  start) is stored in one transaction per database file instead of two or three per event: 0.7 s instead of
  1.5-2.0 s for ten portals. A run's planned events are written with one statement per table (`_store_planned`).
  Dagster hands batches to the storage only where DAGSTER_EVENT_BATCH_SIZE is set, so the storage sets it in
  every process that opens the instance, unless it is set already.
- A file Dagster has already made and stamped is used without Dagster's check, which reads every migration
  script (0.25 s in each step process) for a head revision it then ignores.

It stores the same rows in the same files, so an instance can switch between the two. Every other write still
commits on its own, and processes still share the files through SQLite's locks.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from alembic.runtime.migration import MigrationContext
from dagster import DagsterEventType, EventLogEntry, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

KEPT_FILES = 8   # engines a process keeps open: the index and the runs it used last (a webserver reads many)
# Dagster buffers events sent as a batch (a run's planned events) up to this many, then stores them together.
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000

# The events Dagster stores as a batch when it makes a run: one per asset and per check the run plans.
PLANNED = frozenset({DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED})

# Engines a forked child inherited from its parent (`_own_engines`).
_PARENTS_ENGINES: list[OrderedDict[str, Engine]] = []


class KeptConnectionsSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` keeping an engine per database file in each process.

    In `dagster.yaml` its `base_dir` is the instance's folder (as in `storage: sqlite: base_dir`), and the events
    are where Dagster's default puts them, `<base_dir>/history/runs/`. The constructor takes that events folder, as
    Dagster's does.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._tables: set[str] = set()
        self._batch: dict[str, Connection] | None = None     # the connections of the batch being stored
        self._batch_thread: int | None = None
        os.environ.setdefault(EVENT_BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData,
                          config_value: Mapping[str, Any]) -> KeptConnectionsSqliteEventLogStorage:
        return cls(os.path.join(config_value["base_dir"], "history", "runs"), inst_data=inst_data)

    def _own_engines(self) -> OrderedDict[str, Engine]:
        """This process's engines. After a fork, the parent's are set aside: SQLite's connections are never used
        or closed across a fork, and kept referenced, collecting them would close them."""
        if self._engines_pid != os.getpid():
            _PARENTS_ENGINES.append(self._engines)
            self._engines, self._engines_pid = OrderedDict(), os.getpid()
        return self._engines

    def _engine(self, shard: str) -> Engine:
        """The process's engine for the shard's file (made on first use); the least recently used beyond
        KEPT_FILES are closed. Called holding the storage's lock."""
        engines = self._own_engines()
        engine = engines.pop(shard, None)
        if engine is None:
            # One connection kept; Dagster's schema check when a file is first used takes a second one for a moment.
            engine = create_engine(self.conn_string_for_shard(shard), pool_size=1, max_overflow=2,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
        engines[shard] = engine
        while len(engines) > KEPT_FILES:
            engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """As Dagster's (a connection in a transaction, one thread at a time), from the kept engine; while this
        thread stores a batch, the batch's connection to the file, in the batch's transaction."""
        if self._batch is not None and self._batch_thread == threading.get_ident():
            conn = self._batch.get(shard)
            if conn is None:
                conn = self._batch[shard] = self._ready(shard).connect()
                conn.begin()
            yield conn
            return
        with self._db_lock, self._ready(shard).connect() as conn, conn.begin():
            yield conn

    def _ready(self, shard: str) -> Engine:
        """The shard's engine, its tables made on first use. Called holding the storage's lock."""
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        return engine

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Stores the events as `store_event` does, in one transaction per database file. If anything fails,
        nothing of the batch is kept and the error goes to Dagster, which then stores the events one by one
        (a failure in committing the index, the last file, leaves the batch's rows in the run's file, and those
        are stored twice)."""
        batch: dict[str, Connection] = {}
        with self._db_lock:
            self._batch, self._batch_thread = batch, threading.get_ident()
            try:
                if all(event.dagster_event_type in PLANNED for event in events):
                    self._store_planned(events)
                else:
                    for event in events:
                        self.store_event(event)
                for shard in sorted(batch, key=lambda name: name == INDEX_SHARD_NAME):
                    batch[shard].commit()
            finally:
                self._batch = self._batch_thread = None
                for conn in batch.values():
                    conn.close()   # an uncommitted transaction is rolled back

    def _store_planned(self, events: Sequence[EventLogEntry]) -> None:
        """The rows `store_event` writes for each of a run's planned events (the rows by Dagster's own helpers, a
        check's as Dagster's `_store_asset_check_evaluation_planned` makes them), with one statement per table:
        Dagster builds and compiles statements for each event, serialises a check's event twice, and learns that
        an asset's entry exists (as it does after its first run) by failing to insert it. Making the ten-portal
        refresh's run takes 0.5 s of CPU instead of 1.1 s (docs/portals.md)."""
        rows = [self._event_to_row(event) for event in events]
        insert = SqlEventLogStorageTable.insert()
        for run_id in dict.fromkeys(row["run_id"] for row in rows):
            with self.run_connection(run_id) as conn:
                conn.execute(insert, [row for row in rows if row["run_id"] == run_id])
        with self.index_connection() as conn:    # mirrored for the queries across runs; one by one for their ids
            ids = [conn.execute(insert, row).inserted_primary_key[0] for row in rows]
            assets = [(event, event_id) for event, event_id in zip(events, ids, strict=True)
                      if event.dagster_event_type in ASSET_EVENTS and event.get_dagster_event().asset_key]
            self._store_asset_event_tags(conn, [event for event, _ in assets], [event_id for _, event_id in assets])
            index_columns = self._has_asset_key_index_cols_on_connection(conn)
            entries: dict[tuple[str, ...], list[dict[str, Any]]] = {}    # by the columns an entry sets
            for event, event_id in assets:
                if values := self._get_asset_entry_values(event, event_id, index_columns):
                    key = event.get_dagster_event().asset_key.to_string()  # type: ignore[union-attr]
                    entries.setdefault(tuple(values), []).append({"asset_key": key, **values})
            for columns, same in entries.items():   # inserted, or updated where the asset has its entry already
                upsert = sqlite_insert(AssetKeyTable)
                conn.execute(upsert.on_conflict_do_update(index_elements=[AssetKeyTable.c.asset_key],
                                                          set_={c: upsert.excluded[c] for c in columns}), same)
            checks = [{"asset_key": planned.asset_key.to_string(), "check_name": planned.check_name,
                       "partition": partition, "run_id": event.run_id,
                       "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                       "evaluation_event": row["event"], "evaluation_event_timestamp": row["timestamp"],
                       "evaluation_event_storage_id": event_id}
                      for event, row, event_id in zip(events, rows, ids, strict=True)
                      if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
                      for planned in [event.get_dagster_event().asset_check_planned_data]
                      for partition in (planned.partitions_subset.get_partition_keys() if planned.partitions_subset
                                        else [None])]
            if checks:
                conn.execute(AssetCheckExecutionsTable.insert(), checks)

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """Dagster's, for a file it has not made yet. Dagster's own reads its migration scripts (0.25 s) only to
        learn a head revision it then ignores: a file stamped with any revision is made."""
        with engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() is not None:
                return
        super()._initdb(engine, for_index_shard)

    def has_table(self, table_name: str) -> bool:
        """Whether the index has the table; once seen, not asked again (a table Dagster adds is never dropped)."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def _close_engines(self) -> None:
        with self._db_lock:
            engines = self._own_engines()
            for engine in engines.values():
                engine.dispose()
            engines.clear()

    def wipe(self) -> None:
        self._close_engines()    # before Dagster deletes the files
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_engines()
