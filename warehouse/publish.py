"""Publishes the core tables and marts for BI tools, so that a reader sees the previous complete version or
the new one, never a mix, never a lock.

Targets (`docs/publishing.md`):
- DuckDB: a read-only file, `published/warehouse.duckdb`, for the DuckDB ODBC driver and connectors. Each
  publication is a new file, `warehouse.<version>.duckdb`, built aside and renamed into place; the stable
  name is then pointed at it with an atomic rename (a hard link), and `LATEST` names it. A reader holding
  an older file keeps reading it; old versions are removed once nobody holds them (`keep_versions`).
  `duckdb_storage_version` writes a file older DuckDB drivers can open.
- Parquet: `published/parquet/<schema>/<table>.parquet`. Every table is written aside first; only when all
  are written is each moved into place (one atomic rename per table).
- A SQL database named by a SQLAlchemy URL (`B24WH_PUBLISH_URL`), PostgreSQL first: every table is loaded
  into `<table>__next` with its keys and indexes, then one transaction, once it holds every table's lock,
  drops the old tables and renames the new ones in.

Publications are incremental where they can be (`warehouse.changelog`): the DuckDB file and the SQL database
record which build of the warehouse they reflect (`meta.publication`), and the next publication redoes only
the rows the builds since then rewrote: in the oldest kept DuckDB file, which the publication would remove
(else, when a reader holds it, in a copy of the newest), renamed into place as above, and in the SQL database
in one transaction of deletes and inserts, which readers never wait for. A target
whose build the warehouse's log does not hold (another warehouse, a copy gone its own way, older than the
log) or in another shape (columns, types, descriptions, keys) is published in full. Parquet files are always
written whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import sqlalchemy as sa

from warehouse import changelog
from warehouse.build import WarehouseError
from warehouse.catalogue import CORE_TABLES, KEYED_CORE, MART_TABLES, PATCHED_MARTS, PRIMARY_KEYS
from warehouse.settings import Settings

log = logging.getLogger(__name__)

PUBLISHED: tuple[tuple[str, str], ...] = (*(("core", t) for t in CORE_TABLES), *(("marts", t) for t in MART_TABLES))
# The big tables, which builds patch rather than rebuild: the keyed core tables and the marts with a scope.
PATCHED = {m.relation for m in (*KEYED_CORE, *PATCHED_MARTS)}
STABLE_NAME = "warehouse.duckdb"
PUBLISH_URL_ENV = "B24WH_PUBLISH_URL"

# Columns of the published tables worth an index in a SQL database (joins and filters); primary keys
# come from the models' `Key` lines (warehouse.catalogue.PRIMARY_KEYS).
INDEXES: dict[str, tuple[str, ...]] = {
    "dim_date": ("date",),
    "dim_stage": ("pipeline_id",),
    "dim_manager": ("user_id",),
    "dim_contact": ("manager_key",),
    "dim_company": ("manager_key",),
    "fact_deal": ("stage_key", "manager_key", "created_date_key"),
    "fact_deal_stage": ("deal_id", "stage_key", "manager_key", "date_key"),
    "fact_activity": ("deal_id", "manager_key", "date_key"),
    "fact_invoice": ("deal_id", "manager_key", "issued_date_key"),
    "fact_call": ("manager_key", "date_key"),
    "fact_task": ("deal_id", "manager_key", "date_key"),
    "fact_pipeline_daily": ("date_key", "stage_key", "manager_key"),
    "deals_without_activities": ("manager_key",),
    "manager_activity": ("manager_key",),
    "user_history": ("user_id", "event_at", "entity_id"),
    "data_quality": ("user_id", "entity_id"),
}


class PublishError(WarehouseError):
    """A target could not be published; what readers see is still the previous version."""


@dataclass(frozen=True)
class Published:
    version: str
    seconds: dict[str, float] = field(default_factory=dict)     # per target
    locations: dict[str, str] = field(default_factory=dict)     # per target, secrets removed
    modes: dict[str, str] = field(default_factory=dict)         # per target: full | incremental


@dataclass(frozen=True)
class Origin:
    """Which build of the warehouse (its changelog token), in which shape, a publication reflects."""
    token: str
    shape: str


# Per published relation rewritten since a target's origin: what the builds logged (changelog.Rewritten). Its rows
# are deleted condition by condition (a condition alone is pushed down to the table's scan, an OR of them is not:
# 7x slower for user_history's scope, since and ownerless rows at 200,000 deals), then copied in again from the
# rows the builds kept, or from the whole relation where it was rebuilt whole.
Changes = dict[str, changelog.Rewritten]


def check_publish_url(url: str | None = None) -> None:
    """The SQL publication URL (B24WH_PUBLISH_URL) names a database SQLAlchemy can drive; checked before any
    request, without connecting."""
    url = url if url is not None else os.environ.get(PUBLISH_URL_ENV) or None
    if not url:
        return
    scheme = url.split("://", 1)[0] if "://" in url else "(no scheme)"
    try:
        sa.engine.make_url(url).get_dialect()
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError):
        raise PublishError(f"{PUBLISH_URL_ENV} is not a usable database URL (scheme {scheme!r}): use "
                           "postgresql+psycopg://user:password@host:5432/database") from None


def publication_folder(warehouse: Path, settings: Settings) -> Path:
    """Where a warehouse's publication lives: `[publish] publish_directory`, else `published/` beside it."""
    return settings.publish_directory or warehouse.parent / "published"


def publish(warehouse: Path | str, settings: Settings | None = None, sql_url: str | None = None) -> Published:
    """Publishes to every configured target; raises PublishError naming the target that failed."""
    settings = settings or Settings()
    warehouse = Path(warehouse)
    directory = publication_folder(warehouse, settings)
    url = sql_url if sql_url is not None else os.environ.get(PUBLISH_URL_ENV) or None
    if not warehouse.is_file():
        raise PublishError(f"nothing published: warehouse {warehouse} does not exist; build the warehouse first "
                           "(b24wh refresh)")
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    seconds: dict[str, float] = {}
    locations: dict[str, str] = {}
    modes: dict[str, str] = {}
    # The warehouse attached read-only, snapshots attached beside it.
    with duckdb.connect(config={"threads": settings.threads}) as con:
        con.execute(f"ATTACH {_quote(str(warehouse))} AS warehouse (READ_ONLY)")
        con.execute("USE warehouse")
        missing = [f"{s}.{t}" for s, t in PUBLISHED if not _exists(con, s, t)]
        if missing:
            raise PublishError(f"nothing published: {missing[0]} is missing; build the warehouse first")
        origin = _origin(con, settings)
        steps: list[tuple[str, Callable[[], tuple[str, str]]]] = []
        if settings.publish_duckdb:
            steps.append(("duckdb", lambda: publish_duckdb(con, directory, version, settings, origin)))
        if settings.publish_parquet:
            steps.append(("parquet", lambda: (publish_parquet(con, directory / "parquet"), "full")))
        if url:
            steps.append(("sql", lambda: publish_sql(con, url, settings.publish_sql_schema_prefix, version, origin)))
        for name, step in steps:
            started = time.perf_counter()
            try:
                locations[name], modes[name] = step()
            except PublishError:
                raise
            except Exception as exc:
                raise PublishError(f"publishing to {name} failed, readers keep the previous version: "
                                   f"{_redact(str(exc), url).splitlines()[0] if str(exc) else type(exc).__name__}"
                                   ) from None
            seconds[name] = time.perf_counter() - started
    return Published(version, seconds, locations, modes)


def _origin(con: duckdb.DuckDBPyConnection, settings: Settings) -> Origin | None:
    """The warehouse's last build, and the shape of what is published (None: no build logged yet)."""
    token = changelog.latest(con)
    if token is None:
        return None
    shape = con.execute("SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() WHERE "
                        "database_name = 'warehouse' AND schema_name IN ('core', 'marts') ORDER BY ALL").fetchall()
    tables = con.execute("SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = "
                         "'warehouse' AND schema_name IN ('core', 'marts') ORDER BY ALL").fetchall()
    text = repr((shape, tables, sorted(PRIMARY_KEYS.items()), sorted(INDEXES.items()),
                 settings.duckdb_storage_version))
    return Origin(token, hashlib.sha256(text.encode()).hexdigest())


def _changes(con: duckdb.DuckDBPyConnection, now: Origin | None, then: Origin | None) -> Changes | None:
    """What to redo in a target that reflects `then` to make it reflect `now`: per published relation
    rewritten since, its conditions (or [WHOLE]); None when the target is to be published in full."""
    if now is None or then is None or then.shape != now.shape:
        return None
    logged = changelog.since(con, then.token)
    if logged is None:
        return None
    published = {f"{s}.{t}" for s, t in PUBLISHED}
    changes = {relation: rewritten for relation, rewritten in logged.items() if relation in published}
    # A table that is normally patched was rebuilt whole (a full build): a new publication is quicker than
    # deleting and copying most of the rows.
    return None if any(changes[relation].whole for relation in PATCHED if relation in changes) else changes


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'warehouse' AND schema_name = ? "
                        "AND table_name = ?", [schema, table]).fetchone()
    return bool(found and found[0])


def _redact(text: str, url: str | None) -> str:
    """Removes a SQL URL's password (and the URL's userinfo) from a message."""
    if url:
        parsed = sa.engine.make_url(url)
        if parsed.password:
            text = text.replace(str(parsed.password), "***")
    return re.sub(r"://([^:/@\s]+):[^@\s]+@", r"://\1:***@", text)


def _comments(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> tuple[str | None, dict[str, str]]:
    found = con.execute("SELECT comment FROM duckdb_tables() WHERE database_name = 'warehouse' AND schema_name = ? "
                        "AND table_name = ?", [schema, table]).fetchone()
    columns = dict(con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'warehouse' "
                               "AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
                               [schema, table]).fetchall())
    return (found[0] if found else None), columns


def _relation(schema: str, table: str) -> str:
    """What a published table is read from."""
    return f"{schema}.{table}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- DuckDB -------------------------------------------------------------------------------------------


def publish_duckdb(con: duckdb.DuckDBPyConnection, directory: Path, version: str, settings: Settings,
                   origin: Origin | None = None) -> tuple[str, str]:
    """A new version of the published file: the oldest kept version, or else a copy of the newest, patched
    with what changed since it, where it can be; else written whole. Returns the stable name and the mode
    (full | incremental)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(".warehouse.*.duckdb.partial*"):   # a killed publication's staged file and log
        stale.unlink(missing_ok=True)
    final = directory / f"warehouse.{version}.duckdb"
    partial = directory / f".warehouse.{version}.duckdb.partial"
    keep = max(settings.keep_versions, 1)
    storage = f" (STORAGE_VERSION '{settings.duckdb_storage_version}')" if settings.duckdb_storage_version else ""
    try:
        changes = _recycle_oldest(con, directory, partial, keep, origin)
        if changes is None:
            previous = newest_file(directory)
            changes = _changes(con, origin, _file_origin(con, previous)) if previous else None
            if changes is not None and previous is not None:
                shutil.copyfile(previous, partial)
                con.execute(f"ATTACH {_quote(str(partial))} AS snapshot")
            else:
                con.execute(f"ATTACH {_quote(str(partial))} AS snapshot{storage}")
        try:
            if changes is None:
                _write_snapshot(con)
            else:
                _patch_snapshot(con, changes)
            con.execute("DELETE FROM snapshot.meta.publication")
            con.execute("INSERT INTO snapshot.meta.publication SELECT ? AS version, now() AS published_at, "
                        "(SELECT max(finished_at) FROM meta.builds) AS built_at, "
                        "(SELECT as_of FROM intermediate.settings) AS as_of, ?, ?",
                        [version, *((origin.token, origin.shape) if origin else (None, None))])
        finally:
            con.execute("DETACH snapshot")
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, final)      # a new name: never a file a reader holds
    except BaseException:
        _remove_partial(partial)
        raise
    _point_stable_name(directory, final)
    write_atomically(directory / "LATEST", json.dumps({"version": version, "file": final.name}) + "\n")
    _remove_old_versions(directory, keep)
    return str(directory / STABLE_NAME), "full" if changes is None else "incremental"


def _recycle_oldest(con: duckdb.DuckDBPyConnection, directory: Path, partial: Path, keep: int,
                    origin: Origin | None) -> Changes | None:
    """The version this publication would remove, renamed to `partial` and attached as `snapshot`, when all the
    versions kept are there (at least two), nobody holds it and the log reaches back to it; returns what to
    redo in it (None: it stays as it was, and the newest version is copied instead). Copying the newest file
    costs the warehouse's size, patching the oldest only the changes of the builds since it was published.

    A reader holds a file with a shared lock, which the read-write attach would conflict with: a held file is
    left to its reader. The stable name is never recycled (it names the newest version, or, where the system
    refused to move it, a version a reader holds)."""
    versions = sorted(directory.glob("warehouse.*.duckdb"))
    stable = directory / STABLE_NAME
    if len(versions) < max(keep, 2) or origin is None or (stable.exists() and os.path.samefile(versions[0], stable)):
        return None
    oldest = versions[0]
    changes = _changes(con, origin, _file_origin(con, oldest))
    if changes is None:
        return None
    try:
        os.replace(oldest, partial)     # out of sight of readers looking for a version
    except OSError:                     # open in another program (Windows)
        return None
    try:
        con.execute(f"ATTACH {_quote(str(partial))} AS snapshot")
    except duckdb.IOException:          # a reader holds it
        os.replace(partial, oldest)
        return None
    return changes


def _write_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    """Every published table into the empty file attached as `snapshot`, with its descriptions."""
    for schema in ("core", "marts", "meta"):
        con.execute(f"CREATE SCHEMA snapshot.{schema}")
    for schema, table in PUBLISHED:
        con.execute(f"CREATE TABLE snapshot.{schema}.{table} AS FROM {_relation(schema, table)}")
        description, columns = _comments(con, schema, table)
        if description:
            con.execute(f"COMMENT ON TABLE snapshot.{schema}.{table} IS {_quote(description)}")
        for column, text in columns.items():
            con.execute(f"COMMENT ON COLUMN snapshot.{schema}.{table}.{column} IS {_quote(text)}")
    con.execute("CREATE TABLE snapshot.meta.publication (version VARCHAR, published_at TIMESTAMPTZ, "
                "built_at TIMESTAMPTZ, as_of TIMESTAMP, build_token VARCHAR, shape VARCHAR)")


def _patch_snapshot(con: duckdb.DuckDBPyConnection, changes: Changes) -> None:
    """The rows the builds rewrote since the file's version, deleted there condition by condition, then the rows
    the builds kept copied in once (`changelog.Rewritten`)."""
    for schema, table in PUBLISHED:
        rewritten = changes.get(f"{schema}.{table}")
        if rewritten is None:
            continue
        for condition in map(changelog.pushed, rewritten.conditions):
            con.execute(f"DELETE FROM snapshot.{schema}.{table} WHERE {condition}")
        con.execute(f"INSERT INTO snapshot.{schema}.{table} {rewritten.rows(_relation(schema, table))}")


def _file_origin(con: duckdb.DuckDBPyConnection, path: Path) -> Origin | None:
    """What a published file reflects (None for a file written before publications recorded it)."""
    try:
        con.execute(f"ATTACH {_quote(str(path))} AS previous (READ_ONLY)")
    except duckdb.Error:
        return None     # unreadable: written whole instead
    try:
        columns = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = "
                                             "'previous' AND schema_name = 'meta' AND table_name = 'publication'"
                                             ).fetchall()}
        if not {"build_token", "shape"} <= columns:
            return None
        row = con.execute("SELECT build_token, shape FROM previous.meta.publication").fetchone()
        return Origin(*row) if row and row[0] is not None else None
    finally:
        con.execute("DETACH previous")


def _remove_partial(partial: Path) -> None:
    """A failed publication leaves nothing behind: the staged file and DuckDB's write-ahead log beside it."""
    for leftover in (partial, partial.with_name(partial.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _point_stable_name(directory: Path, target: Path) -> None:
    """`warehouse.duckdb` becomes the new version in one rename. Where a reader holds the old one open and the
    system refuses (Windows), the stable name stays on the previous version and `LATEST` names the new one."""
    staged = directory / f".{STABLE_NAME}.next"
    staged.unlink(missing_ok=True)
    try:
        os.link(target, staged)
    except OSError:
        shutil.copyfile(target, staged)
    try:
        os.replace(staged, directory / STABLE_NAME)
    except PermissionError:
        staged.unlink(missing_ok=True)
        log.warning("%s is held open by a reader; it still shows the previous version, %s is the new one",
                    directory / STABLE_NAME, target.name)


def write_atomically(path: Path, text: str) -> None:
    """Replaces a small text file in one rename: a reader sees the old text or the new one."""
    staged = path.with_name(f".{path.name}.next")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def _remove_old_versions(directory: Path, keep: int) -> None:
    versions = sorted(directory.glob("warehouse.*.duckdb"), reverse=True)
    for old in versions[keep:]:
        try:
            old.unlink()
        except OSError:     # still open somewhere (Windows): removed by a later publication
            log.info("keeping %s: a reader holds it", old)


def newest_file(directory: Path) -> Path | None:
    """The newest published version: the file LATEST names, else the stable name."""
    latest = directory / "LATEST"
    if latest.exists():
        try:
            named = directory / json.loads(latest.read_text("utf-8"))["file"]
            if named.exists():
                return named
        except (ValueError, KeyError, OSError):
            pass
    stable = directory / STABLE_NAME
    return stable if stable.exists() else None


def published_versions(directory: Path) -> list[str]:
    return sorted(p.name.split(".")[1] for p in directory.glob("warehouse.*.duckdb"))


# --- Parquet ------------------------------------------------------------------------------------------


# zstd at its fastest level: a quarter less CPU than its default (level 3), files 8 % larger (a 20,000-deal
# portal's 20.9 MB of Parquet became 22.6 MB); every Parquet reader reads any level.
PARQUET_COMPRESSION = "COMPRESSION zstd, COMPRESSION_LEVEL 1"


def publish_parquet(con: duckdb.DuckDBPyConnection, directory: Path) -> str:
    staging = directory / ".next"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for schema, table in PUBLISHED:
            (staging / schema).mkdir(parents=True, exist_ok=True)
            target = staging / schema / f"{table}.parquet"
            con.execute(f"COPY {_relation(schema, table)} TO {_quote(str(target))} "
                        f"(FORMAT parquet, {PARQUET_COMPRESSION})")
        for schema, table in PUBLISHED:
            (directory / schema).mkdir(parents=True, exist_ok=True)
            os.replace(staging / schema / f"{table}.parquet", directory / schema / f"{table}.parquet")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(directory)


# --- SQL databases ------------------------------------------------------------------------------------


def sql_type(duckdb_type: str) -> sa.types.TypeEngine:  # type: ignore[type-arg]
    """The SQL type a published DuckDB column becomes in the SQL database."""
    kind = duckdb_type.upper()
    if match := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", kind):
        return sa.Numeric(int(match[1]), int(match[2]))
    simple: dict[str, sa.types.TypeEngine] = {  # type: ignore[type-arg]
        "BIGINT": sa.BigInteger(), "INTEGER": sa.Integer(), "SMALLINT": sa.SmallInteger(), "BOOLEAN": sa.Boolean(),
        "DOUBLE": sa.Double(), "FLOAT": sa.Float(), "VARCHAR": sa.Text(), "DATE": sa.Date(),
        "TIMESTAMP": sa.DateTime(), "TIMESTAMP WITH TIME ZONE": sa.DateTime(timezone=True),
        "HUGEINT": sa.Numeric(38, 0), "UBIGINT": sa.Numeric(20, 0),
    }
    if kind not in simple:
        raise PublishError(f"no SQL type for DuckDB type {duckdb_type}")
    return simple[kind]


def publish_sql(con: duckdb.DuckDBPyConnection, url: str, schema_prefix: str = "", version: str = "",
                origin: Origin | None = None) -> tuple[str, str]:
    """Every published table into the database at `url`, under the schemas `<prefix>core` and `<prefix>marts`:
    only what changed since the version it holds, where it can be; returns the location and the mode."""
    engine = sa.create_engine(url)
    try:
        record = _publication_table(schema_prefix + "meta")
        changes = _changes(con, origin, _database_origin(engine, record))
        if changes is not None:
            _patch_database(con, engine, schema_prefix, changes, lambda c: _record(c, record, con, version, origin))
        else:
            _replace_database(con, engine, schema_prefix, lambda c: _record(c, record, con, version, origin))
    finally:
        engine.dispose()
    return _redact(engine.url.render_as_string(hide_password=True), url), "full" if changes is None else "incremental"


def _publication_table(schema: str) -> sa.Table:
    """`<prefix>meta.publication`: the version a SQL database holds, as the DuckDB file's `meta.publication`."""
    return sa.Table("publication", sa.MetaData(), sa.Column("version", sa.Text()),
                    sa.Column("published_at", sa.DateTime(timezone=True)),
                    sa.Column("built_at", sa.DateTime(timezone=True)), sa.Column("as_of", sa.DateTime()),
                    sa.Column("build_token", sa.Text()), sa.Column("shape", sa.Text()), schema=schema)


def _database_origin(engine: sa.Engine, record: sa.Table) -> Origin | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(record.name, schema=record.schema):
            return None
        columns = {c["name"] for c in sa.inspect(connection).get_columns(record.name, schema=record.schema)}
        if not {"build_token", "shape"} <= columns:
            return None
        row = connection.execute(sa.select(record.c.build_token, record.c.shape)).first()
    return Origin(*row) if row and row[0] is not None else None


def _record(connection: sa.Connection, record: sa.Table, con: duckdb.DuckDBPyConnection, version: str,
            origin: Origin | None) -> None:
    """Writes what the database now holds, in the transaction that makes it so."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{record.schema}"'))
    if sa.inspect(connection).has_table(record.name, schema=record.schema) and \
            not {"build_token", "shape"} <= {c["name"] for c in sa.inspect(connection).get_columns(
                record.name, schema=record.schema)}:
        record.drop(connection)     # written before publications recorded their origin
    record.create(connection, checkfirst=True)
    built_at, as_of = con.execute("SELECT (SELECT max(finished_at) FROM meta.builds), "
                                  "(SELECT as_of FROM intermediate.settings)").fetchone()  # type: ignore[misc]
    connection.execute(record.delete())
    connection.execute(record.insert().values(
        version=version, published_at=datetime.now(UTC), built_at=built_at, as_of=as_of,
        build_token=origin.token if origin else None, shape=origin.shape if origin else None))


def _replace_database(con: duckdb.DuckDBPyConnection, engine: sa.Engine, schema_prefix: str,
                      record: Callable[[sa.Connection], None]) -> None:
    """Every table loaded aside, then swapped in, in one transaction with the publication's record."""
    tables = {(schema, table): _staged_table(con, sa.MetaData(), schema, table, schema_prefix + schema)
              for schema, table in PUBLISHED}
    try:
        for (schema, table), staged in tables.items():
            _load(con, engine, schema, table, staged)
        _swap(engine, [(str(staged.table.schema), table) for (_, table), staged in tables.items()], record)
    except BaseException:
        with engine.begin() as connection:      # what was staged goes; the published tables stay as they were
            for staged in tables.values():
                staged.table.drop(connection, checkfirst=True)
        raise


def _patch_database(con: duckdb.DuckDBPyConnection, engine: sa.Engine, schema_prefix: str, changes: Changes,
                    record: Callable[[sa.Connection], None]) -> None:
    """In one transaction: the rows the builds rewrote since the database's version, deleted and inserted
    again, and the publication's record. Readers keep reading the previous version until it commits."""
    with engine.begin() as connection:
        for schema, table in PUBLISHED:
            rewritten = changes.get(f"{schema}.{table}")
            if rewritten is None:
                continue
            target = sa.Table(table, sa.MetaData(), autoload_with=connection, schema=schema_prefix + schema)
            for condition in rewritten.conditions:    # as in the DuckDB file, one by one
                connection.execute(sa.text(f'DELETE FROM "{target.schema}"."{table}" WHERE {condition}'))
            _insert(con, connection, rewritten.rows(_relation(schema, table)), target)
        record(connection)


@dataclass(frozen=True)
class _Staged:
    table: sa.Table                  # `<table>__next`, columns only: keys and indexes come after the load
    primary: tuple[str, ...]
    indexed: tuple[str, ...]


def _staged_table(con: duckdb.DuckDBPyConnection, metadata: sa.MetaData, schema: str, table: str,
                  target_schema: str) -> _Staged:
    columns = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'warehouse' "
                          "AND schema_name = ? AND table_name = ? ORDER BY column_index", [schema, table]).fetchall()
    description, comments = _comments(con, schema, table)
    primary, indexed = PRIMARY_KEYS.get(f"{schema}.{table}", ()), INDEXES.get(table, ())
    # While loaded, autovacuum would only compete with the load (ANALYZE runs once, after it); once swapped in,
    # the table is patched in place by incremental publications, and autovacuum is turned back on (`_swap`).
    staged = sa.Table(f"{table}__next", metadata,
                      *(sa.Column(name, sql_type(kind), nullable=name not in primary, comment=comments.get(name))
                        for name, kind in columns),
                      schema=target_schema, comment=description, postgresql_with={"autovacuum_enabled": "false"})
    return _Staged(staged, primary, indexed)


def _load(con: duckdb.DuckDBPyConnection, engine: sa.Engine, schema: str, table: str, staged: _Staged) -> None:
    """Creates `<table>__next`, fills it (COPY on PostgreSQL, batched inserts elsewhere), then adds its primary
    key and indexes (faster than keeping them up to date row by row); committed, unseen by readers."""
    target = staged.table
    name = f'"{target.schema}"."{target.name}"'
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"'))
        target.drop(connection, checkfirst=True)
        target.create(connection)
        _insert(con, connection, f"FROM {_relation(schema, table)}", target)
        if staged.primary:
            connection.execute(sa.text(f'ALTER TABLE {name} ADD CONSTRAINT "{target.name}_pkey" PRIMARY KEY '
                                       f'({", ".join(staged.primary)})'))
        for column in staged.indexed:
            connection.execute(sa.text(f'CREATE INDEX "{target.name}_{column}_idx" ON {name} ("{column}")'))
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"ANALYZE {name}"))


def _insert(con: duckdb.DuckDBPyConnection, connection: sa.Connection, query: str, target: sa.Table) -> None:
    """The rows of a DuckDB query into a table of the SQL database: COPY on PostgreSQL, batched inserts
    elsewhere."""
    if connection.dialect.name == "postgresql":
        columns = ", ".join(f'"{c.name}"' for c in target.columns)
        with _csv_rows(con, query) as chunks:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f'COPY "{target.schema}"."{target.name}" ({columns}) FROM STDIN (FORMAT csv)') as copy:
                for chunk in chunks:
                    copy.write(chunk)
        return
    result = con.execute(query)
    while batch := result.fetchmany(10_000):
        connection.execute(target.insert(), [dict(zip(target.columns.keys(), row, strict=True)) for row in batch])


@contextmanager
def _csv_rows(con: duckdb.DuckDBPyConnection, query: str) -> Iterator[Iterator[bytes]]:
    """A query's rows as CSV (NULL unquoted and empty, empty text quoted), read back in 1 MiB chunks."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"b24wh-publish-{os.getpid()}-{time.monotonic_ns()}.csv"
    try:
        con.execute(f"COPY ({query}) TO {_quote(str(path))} (FORMAT csv, HEADER false)")

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
        yield chunks()
    finally:
        path.unlink(missing_ok=True)


def _swap(engine: sa.Engine, tables: list[tuple[str, str]], record: Callable[[sa.Connection], None],
          attempts: int = 50) -> None:
    """In one transaction: lock every published table, drop it and rename `<table>__next` in its place, and
    write the publication's record. The locks are taken first and all at once (within a short timeout,
    retried), so a reader never waits long holding one table while the swap holds another."""
    postgres = engine.dialect.name == "postgresql"
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                inspector = sa.inspect(connection)
                existing = [(s, t) for s, t in tables if inspector.has_table(t, schema=s)]
                if postgres and existing:
                    # Autovacuum gives way to a lock request that waited deadlock_timeout (1 s by default): after
                    # ten short tries, one waits that long.
                    connection.execute(sa.text(f"SET LOCAL lock_timeout = '{200 if attempt < 10 else 1500}ms'"))
                    connection.execute(sa.text("LOCK TABLE " + ", ".join(f'"{s}"."{t}"' for s, t in existing)
                                               + " IN ACCESS EXCLUSIVE MODE"))
                for schema, table in tables:
                    indexes = [i["name"] for i in inspector.get_indexes(f"{table}__next", schema=schema)]
                    primary = inspector.get_pk_constraint(f"{table}__next", schema=schema).get("name")
                    if (schema, table) in existing:
                        connection.execute(sa.text(f'DROP TABLE "{schema}"."{table}"'))
                    connection.execute(sa.text(f'ALTER TABLE "{schema}"."{table}__next" RENAME TO "{table}"'))
                    if postgres:
                        connection.execute(sa.text(f'ALTER TABLE "{schema}"."{table}" RESET (autovacuum_enabled)'))
                        for index in [*indexes, primary]:
                            if index and "__next" in index:
                                connection.execute(sa.text(f'ALTER INDEX "{schema}"."{index}" RENAME TO '
                                                           f'"{index.replace("__next", "")}"'))
                record(connection)
            return
        except sa.exc.OperationalError as exc:
            if not postgres or "lock timeout" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
