"""Builds the warehouse model: SQL files in dependency order, in one transaction, in full or incrementally.

Each model is one SQL file (`models/<layer>/<name>.sql`) holding a SELECT that states its grain first.
Staging models become views over the raw tables dlt loads; core models become tables. The whole
build is a single DuckDB transaction: a failing model leaves the previous warehouse exactly as it was.

An incremental build redoes only what the loads since the last build touched. `meta.built_loads` lists
the dlt loads the core tables already reflect; a change set (`models/changes/<name>.sql`) turns the raw
rows of any other load into the keys they touch (the deals whose row, stage history or deletion
arrived, ...). Small reference tables (dates, stages, managers, sources, directories) are rebuilt every
time. Big tables are patched: a keyed model deletes the rows of the changed keys (keeping them in
`meta.replaced_<table>`) and selects them again with its own SQL (which may name them as `{keys}`,
`warehouse.catalogue`); the additive daily snapshot takes out the changed deals' old rows, puts in their
new ones and adds the days history grew by. A build is full instead when asked, when no build is on
record, when the model SQL, time zone or working calendar differ from the last build's, or when reference
data changed.

Every build hands the marts build (`warehouse.marts`) what it changed: the change sets' keys in
`meta.mart_changes` and the rows its patches replaced, kept until a marts build has used them; after a full
build, a `*` that stands for everything.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from warehouse import changelog
from warehouse.catalogue import CHANGE_SETS, CORE_TABLES, KEYED_CORE, MODELS, MODELS_DIR, Model, macros
from warehouse.settings import Settings, portal_timezone

# The staging views the build makes in code, and the tables of their own they read (lineage,
# `catalogue.lineage`): none. The deletion sweep's findings arrive with each entity's own load; the calendar is
# the settings'.
GENERATED: dict[str, tuple[str, ...]] = {"staging.deletions": (), "staging.holidays": (), "staging.weekend": ()}


class WarehouseError(RuntimeError):
    """A model could not be built; the warehouse is unchanged."""


@dataclass(frozen=True)
class Built:
    mode: str                   # full | incremental
    reason: str                 # why the build was full, or what an incremental one redid
    counts: dict[str, int]      # rows per core table
    changed: dict[str, int]     # keys per change set an incremental build redid
    seconds: float


def build(warehouse: Path | str, *, timezone: str | None = None, settings: Settings | None = None,
          full: bool = False) -> Built:
    """Builds every model, incrementally when it can (or in full when `full`)."""
    timezone = portal_timezone(timezone)
    settings = settings or Settings()
    started = time.perf_counter()
    with transaction(warehouse, settings) as con:
        built = _Build(con, timezone, settings).run(full)
    return Built(built.mode, built.reason, built.counts, built.changed, time.perf_counter() - started)


@contextmanager
def transaction(warehouse: Path | str, settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse inside one transaction, using at most the settings' memory_limit (DuckDB's
    units) and threads: committed on success, rolled back otherwise."""
    memory_limit = settings.memory_limit
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET threads = {settings.threads}")
        con.execute("BEGIN TRANSACTION")
        yield con
        con.execute("COMMIT")
    except BaseException as exc:
        with suppress(duckdb.Error):   # a rollback short of memory fails too; closing uncommitted discards it
            con.execute("ROLLBACK")
        if isinstance(exc, duckdb.OutOfMemoryException) or isinstance(exc.__cause__, duckdb.OutOfMemoryException):
            what = str(exc) if isinstance(exc, WarehouseError) else "the build"
            raise WarehouseError(f"{what} ran out of memory within memory_limit = {memory_limit!r}: raise it "
                                 "under [warehouse] in b24wh.toml (docs/marts.md), or free memory on the machine; "
                                 "the warehouse is unchanged") from exc
        raise
    finally:
        con.close()


def execute(con: duckdb.DuckDBPyConnection, model: Model, statement: str) -> None:
    """Runs one statement of a model; a failure names the model in one line."""
    try:
        con.execute(statement)
    except duckdb.OutOfMemoryException as exc:
        raise WarehouseError(f"model {model.relation}") from exc   # transaction() says what to do
    except duckdb.Error as exc:
        raise WarehouseError(f"model {model.relation} failed: {exc}".splitlines()[0]) from exc


def comment(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """The model's description and column texts (its SQL file's header) as DuckDB comments, which publication
    carries to the published file and PostgreSQL, and BI tools show."""
    table, columns = model.docs()
    quote = (lambda text: "'" + text.replace("'", "''") + "'")  # noqa: E731
    present = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = ? "
                                         "AND table_name = ?", [model.layer, model.name]).fetchall()}
    statements = [f"COMMENT ON TABLE {model.relation} IS {quote(table)}"] + [
        f"COMMENT ON COLUMN {model.relation}.{column} IS {quote(columns[column])}" for column in present & set(columns)]
    con.execute(";\n".join(statements))     # in one call: half the time of one call each


class _Build:
    """One build inside an open transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, timezone: str, settings: Settings) -> None:
        self.con = con
        self.timezone = timezone
        self.settings = settings
        self.version = _version(timezone, settings)
        self.mode = "incremental"
        self.reason = ""
        self.counts: dict[str, int] = {}
        self.changed: dict[str, int] = {}
        self.before: dict[str, tuple[date | None, date | None]] = {}   # additive models' span before patching
        self.rewritten: dict[str, list[str]] = {}   # per core table, conditions its rewritten rows meet (changelog)

    def run(self, full: bool) -> _Build:
        for schema in ("staging", "core", "meta"):
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self.con.execute("CREATE TABLE IF NOT EXISTS meta.builds (finished_at TIMESTAMPTZ, mode VARCHAR, "
                         "reason VARCHAR, version VARCHAR)")
        # The time zone the build used (for `b24wh status`); warehouses built before it was recorded lack it.
        self.con.execute("ALTER TABLE meta.builds ADD COLUMN IF NOT EXISTS timezone VARCHAR")
        self.con.execute("CREATE TABLE IF NOT EXISTS meta.built_loads (load_id VARCHAR)")
        self.con.execute("CREATE TABLE IF NOT EXISTS meta.fingerprints (relation VARCHAR, fingerprint VARCHAR)")
        self.seq = changelog.begin(self.con)
        self.con.execute(f"CREATE OR REPLACE VIEW staging.deletions AS {_deletions_sql(self.con)}")
        for statement in macros():
            self.con.execute(statement)
        self.con.execute(f"CREATE OR REPLACE VIEW staging.holidays AS {_holidays_sql(self.settings.holidays)}")
        weekend = ", ".join(f"({d})" for d in self.settings.weekend) or "(NULL)"
        self.con.execute(f"CREATE OR REPLACE VIEW staging.weekend AS SELECT CAST(d AS INTEGER) AS iso_day_of_week "
                         f"FROM (VALUES {weekend}) AS t(d) WHERE d IS NOT NULL")
        self.reason = "asked for a full build" if full else self._why_full_before()
        if self.reason:
            self.mode = "full"
        for model in MODELS:
            if model.changes is None:
                self._create(model)
                continue
            if self.mode == "incremental" and not self.changed:
                self.reason = self._why_full_after_reference()
                if self.reason:
                    self.mode = "full"
                else:
                    self._collect_changes()
            if self.mode == "full":
                self._create(model)
            elif model.additive:
                self._patch_additive(model)
            else:
                self._patch_keyed(model)
        if self.mode == "incremental":
            self.reason = ", ".join(f"{n:,} {name}" for name, n in self.changed.items() if n) or "nothing changed"
        self._record()
        self.counts = {name: int(self.con.execute(f"SELECT count(*) FROM core.{name}").fetchone()[0])  # type: ignore[index]
                       for name in CORE_TABLES}
        return self

    # -- deciding

    def _why_full_before(self) -> str:
        last = self.con.execute("SELECT version FROM meta.builds ORDER BY finished_at DESC LIMIT 1").fetchone()
        if last is None:
            return "no build on record"
        if last[0] != self.version:
            return "the models, time zone or working calendar changed"
        missing = [name for name in CORE_TABLES if not exists(self.con, "core", name)]
        return f"core.{missing[0]} is missing" if missing else ""

    def _why_full_after_reference(self) -> str:
        """Reference tables are rebuilt by now; the facts keyed on them stay valid only if they did not change."""
        stored = dict(self.con.execute("SELECT relation, fingerprint FROM meta.fingerprints").fetchall())
        for model in MODELS:
            if model.reference and stored.get(model.relation) != _fingerprint(self.con, model.relation):
                return f"{model.relation} changed"
        return ""

    def _collect_changes(self) -> None:
        for name in CHANGE_SETS:
            sql = (MODELS_DIR / "changes" / f"{name}.sql").read_text("utf-8")
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE changes_{name} AS SELECT DISTINCT key FROM ({sql}) "
                             "WHERE key IS NOT NULL")
            self.changed[name] = int(self.con.execute(f"SELECT count(*) FROM changes_{name}").fetchone()[0])  # type: ignore[index]
        # An additive model's old rows for the changed keys are read before the tables under it are patched.
        for model in KEYED_CORE:
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {replaced(model)} AS FROM {model.relation} LIMIT 0")
        for model in MODELS:
            if model.additive:
                self.before[model.name] = self._span(model)
                self._execute(model, f"CREATE OR REPLACE TEMP TABLE before_{model.name} AS "
                                     f"{self._additive_sql(model, self._in_changes(model), *self.before[model.name])}")

    # -- building

    def _execute(self, model: Model, statement: str) -> None:
        execute(self.con, model, statement)

    def _create(self, model: Model) -> None:
        select = self._additive_sql(model, "true", *self._span(model)) if model.additive else model.sql(self.timezone)
        kind = "VIEW" if model.layer == "staging" else "TABLE"
        self._execute(model, f"CREATE OR REPLACE {kind} {model.relation} AS {select}")
        if kind == "TABLE":
            comment(self.con, model)
            self.rewritten[model.relation] = [changelog.WHOLE]

    def _in_changes(self, model: Model, negate: bool = False) -> str:
        assert model.changes is not None
        return f"{CHANGE_SETS[model.changes]} {'NOT ' if negate else ''}IN (SELECT key FROM changes_{model.changes})"

    def _patch_keyed(self, model: Model) -> None:
        if not self.changed[model.changes or ""]:
            return
        scope = self._in_changes(model)
        changed = self.con.execute(f"SELECT key FROM changes_{model.changes}").fetchall()
        self.rewritten[model.relation] = [changelog.keys((CHANGE_SETS[model.changes or ""],), changed)]
        self._execute(model, f"INSERT INTO {replaced(model)} SELECT * FROM {model.relation} WHERE {scope}")
        self._execute(model, f"DELETE FROM {model.relation} WHERE {scope}")
        self._execute(model, f"CREATE OR REPLACE TEMP TABLE rewritten AS SELECT * FROM "
                             f"({model.sql(self.timezone, keys=scope)}) WHERE {scope}")
        self._execute(model, f"INSERT INTO {model.relation} FROM rewritten")
        changelog.keep(self.con, model.relation, self.seq, "rewritten")

    def _span(self, model: Model) -> tuple[date | None, date | None]:
        assert model.days is not None
        first, last = self.con.execute(model.days).fetchone()  # type: ignore[misc]
        return first, last

    def _additive_sql(self, model: Model, keys: str, first: date | None, last: date | None) -> str:
        def day(value: date | None) -> str:
            return f"DATE '{value.isoformat()}'" if value else "NULL"
        return model.sql(self.timezone, keys=keys, first_day=day(first), last_day=day(last))

    def _patch_additive(self, model: Model) -> None:
        """Old rows of the changed keys out, their new rows in, plus every key's rows on days the span grew by."""
        (first_before, last_before), (first, last) = self.before[model.name], self._span(model)
        if first != first_before or (last_before and (last is None or last < last_before)):
            self._create(model)     # history now starts elsewhere or ends earlier: rare, and simplest redone whole
            return
        grown = (self._additive_sql(model, self._in_changes(model, negate=True), last_before + timedelta(days=1), last)
                 if last_before and last and last > last_before else None)
        if not self.changed[model.changes or ""] and grown is None:
            return
        self.rewritten[model.relation] = [changelog.WHOLE]   # sums over many keys: republished whole
        grain = ", ".join(model.grain)
        measures = [c for c in self._columns(model) if c not in model.grain]
        parts = [f"SELECT {grain}, {', '.join(f'-{m} AS {m}' for m in measures)} FROM before_{model.name}",
                 f"SELECT * FROM ({self._additive_sql(model, self._in_changes(model), first, last)})"]
        if grown:
            parts.append(f"SELECT * FROM ({grown})")
        matches = " AND ".join(f"t.{c} IS NOT DISTINCT FROM d.{c}" for c in model.grain)
        self._execute(model, f"CREATE OR REPLACE TEMP TABLE delta_{model.name} AS SELECT {grain}, "
                             f"{', '.join(f'sum({m}) AS {m}' for m in measures)} FROM ("
                             f"{' UNION ALL '.join(parts)}) GROUP BY ALL")
        self._execute(model, f"CREATE OR REPLACE TEMP TABLE merged_{model.name} AS SELECT "
                             f"{', '.join(f'd.{c}' for c in model.grain)}, "
                             f"{', '.join(f'coalesce(t.{m}, 0) + d.{m} AS {m}' for m in measures)} "
                             f"FROM delta_{model.name} AS d LEFT JOIN {model.relation} AS t ON {matches}")
        self._execute(model, f"DELETE FROM {model.relation} AS t WHERE EXISTS "
                             f"(SELECT 1 FROM delta_{model.name} AS d WHERE {matches})")
        self._execute(model, f"INSERT INTO {model.relation} SELECT * FROM merged_{model.name} "
                             f"WHERE {' OR '.join(f'{m} <> 0' for m in measures)}")

    def _columns(self, model: Model) -> list[str]:
        return [row[0] for row in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [model.layer, model.name]).fetchall()]

    def _record(self) -> None:
        self.con.execute("DELETE FROM meta.fingerprints")
        for model in MODELS:
            if model.reference:
                self.con.execute("INSERT INTO meta.fingerprints VALUES (?, ?)",
                                 [model.relation, _fingerprint(self.con, model.relation)])
        self.con.execute("DELETE FROM meta.built_loads")
        if exists(self.con, "raw", "_dlt_loads"):
            self.con.execute("INSERT INTO meta.built_loads SELECT load_id FROM raw._dlt_loads WHERE status = 0")
        self.con.execute("INSERT INTO meta.builds (finished_at, mode, reason, version, timezone) VALUES "
                         "(now(), ?, ?, ?, ?)", [self.mode, self.reason, self.version, self.timezone])
        self._hand_over()
        changelog.log(self.con, self.seq, self.rewritten)

    def _hand_over(self) -> None:
        """What this build changed, added to what the marts build has not used yet; after a full build,
        everything (`*`), with the replaced rows' tables made anew in the core tables' shapes."""
        self.con.execute("CREATE TABLE IF NOT EXISTS meta.mart_changes (change_set VARCHAR, key BIGINT)")
        if self.mode == "full":
            self.con.execute("DELETE FROM meta.mart_changes")
            self.con.execute("INSERT INTO meta.mart_changes VALUES ('*', NULL)")
            for model in KEYED_CORE:
                self.con.execute(f"CREATE OR REPLACE TABLE {replaced(model)} AS FROM {model.relation} LIMIT 0")
            return
        for name in CHANGE_SETS:
            self.con.execute(f"INSERT INTO meta.mart_changes SELECT '{name}', key FROM changes_{name}")


def handed_over_in_full(con: duckdb.DuckDBPyConnection) -> bool | None:
    """Whether a core build since the last marts build was full (`meta.mart_changes` holds `*`: everything
    changed) rather than only incremental ones (it lists the keys they patched); None when no core build has
    handed anything over."""
    if not exists(con, "meta", "mart_changes"):
        return None
    return bool(con.execute("SELECT count(*) FROM meta.mart_changes WHERE change_set = '*'").fetchone()[0])  # type: ignore[index]


def replaced(model: Model) -> str:
    """Where a keyed core table's replaced rows wait for the marts build."""
    return f"meta.replaced_{model.name}"


def _deletions_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The sweep's `raw.deletions` appears with the first deletion ever found; until then, none."""
    if exists(con, "raw", "deletions"):
        return "SELECT entity, id, is_deleted, _dlt_load_id FROM raw.deletions"
    return ("SELECT CAST(NULL AS VARCHAR) AS entity, CAST(NULL AS BIGINT) AS id, false AS is_deleted, "
            "CAST(NULL AS VARCHAR) AS _dlt_load_id WHERE false")


def _holidays_sql(holidays: Sequence[date]) -> str:
    if not holidays:
        return "SELECT CAST(NULL AS DATE) AS holiday WHERE false"
    values = ", ".join(f"(DATE '{d.isoformat()}')" for d in holidays)
    return f"SELECT holiday FROM (VALUES {values}) AS t(holiday)"


def exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether the warehouse has this table (or view)."""
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                        [schema, table]).fetchone()
    return bool(found and found[0])


def _version(timezone: str, settings: Settings) -> str:
    """What the core tables depend on besides the data: every SQL file, the time zone and the calendar."""
    digest = hashlib.sha256(f"{timezone}|{sorted(settings.holidays)}|{sorted(settings.weekend)}".encode())
    paths = [MODELS_DIR / m.layer / f"{m.name}.sql" for m in MODELS]
    paths += [MODELS_DIR / "changes" / f"{name}.sql" for name in CHANGE_SETS]
    paths += sorted((MODELS_DIR / "macros").glob("*.sql"))
    for path in paths:
        digest.update(path.relative_to(MODELS_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    count, total = con.execute(f"SELECT count(*), sum(hash(t)::HUGEINT) FROM {relation} AS t").fetchone()  # type: ignore[misc]
    return f"{count}:{total}"
