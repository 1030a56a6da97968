"""Running the source into the warehouse: the dlt pipeline, the deletion-sweep cadence, backfills.

`load()` is what the command line, Dagster and the tests call. The raw tables land in the `raw`
schema of the warehouse DuckDB file; dlt keeps the cursors in that file too (`raw._dlt_pipeline_state`),
so they move only with a committed load.
"""

from __future__ import annotations

import os
import sys
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.pipeline import LoadInfo
from dlt.common.runtime.collector import Collector
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.sql_client import SqlClientBase

from pipelines.bitrix24 import settings
from pipelines.bitrix24.catalogue import BY_NAME
from pipelines.bitrix24.credentials import explicit
from pipelines.bitrix24.paging import count_cost
from pipelines.bitrix24.source import KnownIds, bitrix24_source
from warehouse.files import kept_open
from warehouse.settings import Settings

PIPELINE_NAME = "bitrix24"
DATASET = "raw"
DUCKDB_MEMORY_LIMIT = "512MB"

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")   # no phoning home from locked-down servers
# dlt's intermediate files live for one run beside the warehouse: gzip costs a tenth of a first load's time.
os.environ.setdefault("DATA_WRITER__DISABLE_COMPRESSION", "true")
# Pages of flat entities arrive as Arrow tables (pipelines/bitrix24/convert.py); their rows get the same
# `_dlt_load_id` (what the model's incremental build follows) and `_dlt_id` as rows normalised by dlt.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "true")


def make_pipeline(warehouse: Path, progress: Collector | str | None = None, *,
                  threads: int = Settings.threads) -> dlt.Pipeline:
    """The warehouse's dlt pipeline; its working directory sits beside the warehouse file, one per file (two
    warehouses in one folder must never share pending load packages). The path is made absolute first: dlt
    resolves a relative DuckDB path against the folder of the pipeline's first run and remembers it, so a
    copied or moved project would load into the original folder's warehouse. `progress` is a dlt collector,
    or the name of one of dlt's (`tqdm`, `log`; None: `tqdm` in a terminal, else `log`). DuckDB uses at most
    `threads` threads."""
    warehouse = Path(warehouse).resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = "tqdm" if sys.stderr.isatty() else "log"
    collector: Any = progress
    if progress == "log":   # rows and rate per entity every few seconds, without psutil's memory figures
        collector = dlt.progress.log(log_period=5.0, dump_system_stats=False)
    # DuckDB's defaults (most of the RAM, every core) make small merges slow and the process huge.
    credentials = DuckDbCredentials(str(warehouse),
                                    global_config={"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": threads})
    credentials.resolve()   # complete as given: dlt would look each field up in its providers again 75 times a load
    return dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=dlt.destinations.duckdb(credentials),
                        dataset_name=DATASET, pipelines_dir=str(warehouse.parent / f".{warehouse.name}.dlt"),
                        progress=collector)


class WarehouseIds(KnownIds):
    """The ids the warehouse holds per swept entity of this run, as compact ordered arrays of 64-bit integers
    (8 bytes an id: ten million activities take 80 MB, not two gigabytes of Python integers, and 0.8 s). How
    many are live is counted at once. For a sweep (`every`) every table's ids are read at once too; otherwise
    only those of the tables small enough for a refresh to count their deletions (`paging.count_cost` within
    COUNT_SECONDS_PER_REFRESH), and a bigger table's only if the source asks (a deletion the portal reported):
    at a million deals, the ten million activities' ids are left unread. At once means in one connection, since
    each of dlt's SQL clients costs a configuration resolution. Each table is merged on its id, so an id is
    there once. `tables` lists the raw schema's tables, for the source (`held_tables`)."""

    def __init__(self, pipeline: dlt.Pipeline, entities: Sequence[str] | None, *, every: bool) -> None:
        self.pipeline = pipeline
        swept = [BY_NAME[n] for n in entities or BY_NAME if n in BY_NAME and BY_NAME[n].sweep]
        self.read: dict[str, tuple[array[int], array[int]]] = {}
        with pipeline.sql_client() as client:
            self.tables = raw_tables(client)
            self.deletions = "deletions" in self.tables
            self.counts: dict[str, int] = {}
            for entity in (e.name for e in swept if e.name in self.tables):
                live = f"SELECT count(*) FROM ({self.ids_sql(client, entity, 'NOT IN')})"
                self.counts[entity] = int(client.native_connection.execute(live).fetchall()[0][0])
                if every or count_cost(self.counts[entity]) <= settings.COUNT_SECONDS_PER_REFRESH:
                    self.read[entity] = self._ids(client, entity)

    def ids_sql(self, client: SqlClientBase[Any], entity: str, which: str) -> str:
        """The ids of the entity's table that are (`IN`) or are not (`NOT IN`) marked deleted."""
        deleted = (f"SELECT id FROM {client.make_qualified_table_name('deletions')} WHERE entity = '{entity}' "
                   "AND is_deleted" if self.deletions else "SELECT NULL::BIGINT AS id WHERE false")
        return f"SELECT id FROM {client.make_qualified_table_name(entity)} WHERE id {which} ({deleted})"

    def live_count(self, entity: str) -> int:
        return self.counts.get(entity, 0)

    def __call__(self, entity: str) -> tuple[array[int], array[int]]:
        if entity not in self.counts:
            return array("q"), array("q")
        if entity not in self.read:
            with self.pipeline.sql_client() as client:
                self.read[entity] = self._ids(client, entity)
        return self.read[entity]

    def _ids(self, client: SqlClientBase[Any], entity: str) -> tuple[array[int], array[int]]:
        live, deleted = (_int64s(client.native_connection.sql(f"{self.ids_sql(client, entity, which)} ORDER BY id")
                                 .to_arrow_table()) for which in ("NOT IN", "IN"))
        return live, deleted


def raw_tables(client: SqlClientBase[Any]) -> list[str]:
    """The tables of the pipeline's dataset (the raw schema), by name."""
    return sorted(r[0] for r in client.execute_sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", client.dataset_name))


def _int64s(table: pa.Table) -> array[int]:
    """A one-column Arrow table of non-null integers as an `array` of 64-bit integers."""
    ids = array("q")
    column = table.column(0).cast(pa.int64())
    for chunk in column.chunks:
        ids.frombytes(chunk.buffers()[1].to_pybytes()[chunk.offset * 8:(chunk.offset + len(chunk)) * 8])
    return ids


def remove_replayed_rows(pipeline: dlt.Pipeline) -> None:
    """A load killed between writing a job's rows and marking the job done replays that job when the
    package is finished: the same rows (same `_dlt_id`) land twice. Keep one of each."""
    with pipeline.sql_client() as client:
        for table in (t for t in raw_tables(client) if not t.startswith("_dlt")):
            name = client.make_qualified_table_name(table)
            client.execute_sql(f"DELETE FROM {name} WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() "
                               f"OVER (PARTITION BY _dlt_id ORDER BY rowid) AS copy FROM {name}) WHERE copy > 1)")


def last_sweep(pipeline: dlt.Pipeline) -> float | None:
    """When the warehouse last knew every id: the last sweep, or the first (full) load."""
    value = pipeline.state.get("sources", {}).get("bitrix24", {}).get(settings.SWEEP_STATE_KEY)
    return None if value is None else float(value)


def load(warehouse: Path, *, entities: Sequence[str] | None = None, backfill: dict[str, Any] | None = None,
         sweep: bool | None = None, sweep_every_hours: float = settings.SWEEP_EVERY_HOURS,
         progress: Collector | str | None = None, threads: int = Settings.threads, **source_options: Any) -> LoadInfo:
    """One load: incremental by default; a backfill window; the deletion sweep when due (or forced).

    `sweep=None` sweeps when the last sweep is older than `sweep_every_hours`; True/False force it.
    `source_options` go to the source; `credentials` may be a webhook URL or a dict of OAuth fields.
    The warehouse file is kept open meanwhile: dlt connects to it a dozen times a load.
    """
    pipeline = make_pipeline(warehouse, progress, threads=threads)
    with kept_open(Path(warehouse).resolve()):
        pending = pipeline.has_pending_data
        # Without data, `run` takes the cursors and schema from the warehouse, whatever the local dir holds (once per
        # pipeline object: the run below does not read them again), then finishes what a killed run left behind.
        pipeline.run()
        if pending:
            remove_replayed_rows(pipeline)
        previous = last_sweep(pipeline)
        if backfill is not None:
            do_sweep = False
        elif sweep is not None:
            do_sweep = sweep
        else:   # a first load reads every row, which is as good as a sweep
            do_sweep = previous is not None and time.time() - previous >= sweep_every_hours * 3600
        # The time of this sweep (or first full load) is written by the source during extraction, so it is
        # committed with the load that carries it, and only then.
        every_id = do_sweep or (previous is None and backfill is None)
        if source_options.get("credentials") is not None:
            source_options["credentials"] = explicit(source_options["credentials"])
        # The warehouse's ids: what the sweep compares every id with, and what a plain refresh counts deletions
        # against (not on a first load, which reads every id, nor in a backfill).
        counted = do_sweep or (previous is not None and backfill is None)
        known = WarehouseIds(pipeline, entities, every=do_sweep) if counted else None
        source = bitrix24_source(entities=list(entities) if entities else None, backfill=backfill, sweep=do_sweep,
                                 known_ids=known, held_tables=known.tables if known else None,
                                 sweep_state_key=settings.SWEEP_STATE_KEY if every_id else None,
                                 progress=pipeline.collector, **source_options)
        return pipeline.run(source)
