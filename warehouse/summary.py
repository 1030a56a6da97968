"""The partner's view: one small table over every listed portal (`models/partner/portal_daily.sql`), published
beside the portals' own publications.

It is rebuilt whole from each portal's newest publication and last error after every portal's refresh or
failure, under a lock of its own, and replaced atomically. Portals finishing together share builds: each request
takes a ticket, and a build covers every ticket taken before it began reading, so a request that waited while
such a build ran returns at once instead of building again after it. The files: `data/partner/summary.duckdb`
(table `partner.portal_daily`), `portal_daily.parquet` beside it, and `partner.portal_daily` in the SQL database
(`B24WH_PUBLISH_URL`) in one transaction. A portal never published yet is one row for today with its last error.

A portal's rows are read from its publication once per publication, error and model: they are kept in
`.portal_rows/<name>.parquet`, marked with what they were read from, so a build after one portal's refresh
reads only that portal's publication, not every portal's (ten portals refreshed in one Dagster run used to
open a hundred publications).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from warehouse.catalogue import MODELS_DIR
from warehouse.publish import PUBLISH_URL_ENV, newest_file, sql_type, write_atomically
from warehouse.status import error_file

SQL = MODELS_DIR / "partner" / "portal_daily.sql"
TABLE = "portal_daily"
COLUMNS = ("portal VARCHAR, day DATE, deals_created BIGINT, won_deals BIGINT, won_amount DECIMAL(18, 2), "
           "currency_id VARCHAR, plan_percent DOUBLE, forgotten_deals BIGINT, published_at TIMESTAMPTZ, "
           "last_error VARCHAR")
ROWS_FOLDER = ".portal_rows"    # in the summary's folder: each portal's rows, as last read from its publication
TICKETS = ".summary.tickets"    # how many builds were requested
BUILT = ".summary.built"        # the tickets the newest summary covers
SOURCE_KEY = b"b24wh_source"    # in a kept file's schema: the publication, error and model its rows were read with


@dataclass(frozen=True)
class PortalFiles:
    name: str
    warehouse: Path        # beside it, its last error
    published: Path        # its publication folder


def last_error(warehouse: Path) -> str | None:
    path = error_file(warehouse)
    if not path.is_file():
        return None
    try:
        error = json.loads(path.read_text("utf-8"))
        return f"{error['command']} failed at {error['at']}: {error['error']}"
    except (OSError, ValueError, KeyError):
        return None


def publish_summary(portals: Sequence[PortalFiles], folder: Path, sql_url: str | None = None) -> Path:
    """Rebuilds the summary of `portals` into `folder` (and the SQL database); returns the DuckDB file's path."""
    url = sql_url if sql_url is not None else os.environ.get(PUBLISH_URL_ENV) or None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "summary.duckdb"
    ticket = _take_ticket(folder)
    with _exclusive(folder / ".summary.lock"):
        covers = _tickets(folder)
        if ticket is not None and covers is not None and ticket <= _covered(folder) <= covers and target.exists():
            return target   # a build that began after this request was made covered it
        staged = folder / ".summary.duckdb.next"
        staged.unlink(missing_ok=True)
        with duckdb.connect(str(staged)) as con:
            con.execute("CREATE SCHEMA partner")
            con.execute(f"CREATE TABLE partner.{TABLE} ({COLUMNS})")
            con.execute(f"COMMENT ON TABLE partner.{TABLE} IS 'One row per portal and day: business, plan, "
                        "forgotten deals, freshness and the last error of every client portal'")
            if portals:
                model = SQL.read_text("utf-8")
                every = [_rows(portal, model, folder / ROWS_FOLDER) for portal in portals]
                con.register("portal_rows", pa.concat_tables(every, promote_options="permissive"))
                con.execute(f"INSERT INTO partner.{TABLE} BY NAME SELECT * FROM portal_rows")
                con.unregister("portal_rows")
            con.execute(f"COPY partner.{TABLE} TO '{folder / '.portal_daily.parquet.next'}' (FORMAT parquet)")
            rows = con.execute(f"FROM partner.{TABLE} ORDER BY portal, day").fetchall()
            columns = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'partner' "
                                  "ORDER BY column_index").fetchall()
        os.replace(folder / ".portal_daily.parquet.next", folder / f"{TABLE}.parquet")
        os.replace(staged, target)
        listed = {f"{portal.name}.parquet" for portal in portals}
        for gone in (folder / ROWS_FOLDER).glob("*.parquet"):   # the rows of portals no longer listed
            if gone.name not in listed:
                gone.unlink(missing_ok=True)
        if url:
            _publish_sql(url, columns, rows)
        if covers is not None:
            write_atomically(folder / BUILT, str(covers))
    return target


def _rows(portal: PortalFiles, model: str, kept: Path) -> pa.Table:
    """The portal's rows from its newest publication; never published, one row for today with its last error."""
    error = last_error(portal.warehouse)
    published = newest_file(portal.published)
    if published is None:
        return pa.table({"portal": [portal.name], "day": pa.array([date.today()], pa.date32()),
                         "last_error": [error or "nothing published yet"]})
    return _portal_rows(portal.name, published, error, model, kept / f"{portal.name}.parquet")


def _portal_rows(name: str, published: Path, error: str | None, model: str, kept: Path) -> pa.Table:
    """The portal's rows: as kept, if read from this very publication with this error and this `model` (the SQL);
    else read now and kept."""
    stat = published.stat()
    source = json.dumps({"file": published.name, "modified_ns": stat.st_mtime_ns, "size": stat.st_size,
                         "last_error": error, "model": hashlib.sha256(model.encode()).hexdigest()}).encode()
    try:
        rows = pq.read_table(kept)
        if (rows.schema.metadata or {}).get(SOURCE_KEY) == source:
            return rows
    except (OSError, pa.ArrowInvalid):   # none kept yet, or unreadable: read the publication again
        pass
    with duckdb.connect(str(published), read_only=True) as reader:
        rows = reader.sql(model, params={"portal": name, "last_error": error}).to_arrow_table()
    rows = rows.replace_schema_metadata({**(rows.schema.metadata or {}), SOURCE_KEY: source})
    kept.parent.mkdir(exist_ok=True)
    staged = kept.with_name(f".{kept.name}.next")
    pq.write_table(rows, staged)
    os.replace(staged, kept)
    return rows


def _publish_sql(url: str, columns: list[tuple[str, str]], rows: list[tuple[object, ...]]) -> None:
    """The whole table replaced in one transaction: readers see the previous summary or this one. `columns`:
    names and DuckDB types, typed in the SQL database as the publication types them."""
    engine = sa.create_engine(url)
    names = [name for name, _ in columns]
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("CREATE SCHEMA IF NOT EXISTS partner"))
            table = sa.Table(TABLE, sa.MetaData(), *(sa.Column(n, sql_type(kind)) for n, kind in columns),
                             schema="partner")
            table.create(connection, checkfirst=True)
            connection.execute(table.delete())
            if rows:
                connection.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])
    finally:
        engine.dispose()


@contextmanager
def _exclusive(path: Path) -> Iterator[IO[str] | None]:
    """Waits for, then holds, a lock on the file at `path` (the summary's: one builder at a time); yields the
    file, open for reading and appending (None where there are no locks: Windows)."""
    try:
        import fcntl
    except ImportError:     # Windows: builders may race, every request builds; the last build is right
        yield None
        return
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


def _take_ticket(folder: Path) -> int | None:
    """This request's ticket: the number of builds requested so far, this one included (None: no locks)."""
    with _exclusive(folder / TICKETS) as handle:
        if handle is None:
            return None
        ticket = _number(handle) + 1
        handle.truncate(0)
        handle.write(str(ticket))
        return ticket


def _tickets(folder: Path) -> int | None:
    """The tickets taken so far: what a build that begins now covers."""
    with _exclusive(folder / TICKETS) as handle:
        return None if handle is None else _number(handle)


def _covered(folder: Path) -> int:
    try:
        return int((folder / BUILT).read_text("utf-8"))
    except (OSError, ValueError):
        return 0


def _number(handle: IO[str]) -> int:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else 0
