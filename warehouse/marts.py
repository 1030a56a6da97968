"""Builds the report marts (`models/marts`) on the core tables, in one transaction of their own.

The marts run after the core tables pass their checks (a failing blocking check leaves the previous
marts in place). The settings they read (`warehouse.settings`) are given to SQL as `intermediate.settings`
(one row) and a few generated views; every mart and column carries the description from its SQL file's
header as a DuckDB comment, which BI tools show.

Most marts are small next to the facts and depend on the present moment (forgotten deals, pace to plan):
each build recreates them. The big ones, and the intermediate tables small marts summarise, declare a `Scope`
(`models/scopes/<name>.sql`): from what the core build handed over (`meta.mart_changes`, `meta.replaced_*`)
it selects the records whose rows are redone, which are deleted and selected again with the relation's own
SQL; a `Since` column adds the rows the moment reached since the last build. The other intermediates are
views, or tables rebuilt every time where several marts read them (`Table`). A build is full instead when
no marts build is on record, when the marts' SQL, settings or time zone differ from the last one's, when
the core build was full, when the moment is earlier than the last build's, or for a relation whose scope
is too big to be worth patching.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from warehouse import changelog
from warehouse.build import GENERATED as STAGING_GENERATED
from warehouse.build import WarehouseError, comment, execute, exists, handed_over_in_full, replaced, transaction
from warehouse.catalogue import KEYED_CORE, MART_TABLES, MARTS, MODELS_DIR, Model, macros
from warehouse.plans import load_plans
from warehouse.settings import Settings, portal_timezone

# The intermediate relations the marts build makes in code, and the tables they read (lineage,
# `catalogue.lineage`): the settings, the plans file (`warehouse.plans`), lost reasons' field labels, contact
# points, policy gaps.
GENERATED: dict[str, tuple[str, ...]] = {
    "intermediate.settings": (),
    "intermediate.plans": (),
    "intermediate.deal_lost_reasons": ("core.fact_deal", "core.dim_stage", "raw.deals", "raw.userfields"),
    "intermediate.contact_points": ("raw.contacts", "raw.companies"),
    "intermediate.policy_gaps": ("raw.contacts", "raw.companies", "staging.deletions"),
}
# Every relation the two builds make in code, with what it reads: the model build's staging views and these.
GENERATED_RELATIONS = {**STAGING_GENERATED, **GENERATED}
# A scope of more records than this is rebuilt whole: a patch that big saves little and its filter grows long.
PATCH_LIMIT = 20_000


@dataclass(frozen=True)
class MartsBuilt:
    counts: dict[str, int]    # rows per mart
    as_of: datetime           # the portal-local moment the marts describe
    seconds: float
    mode: str                 # full | incremental
    reason: str               # why the build was full, or the records each patched mart redid
    timings: dict[str, float]  # seconds each table took to rebuild or patch, in build order


def build_marts(warehouse: Path | str, *, timezone: str | None = None, settings: Settings | None = None,
                as_of: datetime | None = None, full: bool = False) -> MartsBuilt:
    """Builds every mart as of `as_of` (portal-local wall time; default now), patching those with a scope
    unless `full` or the last build cannot be patched."""
    timezone = portal_timezone(timezone)
    settings = settings or Settings()
    moment = as_of or datetime.now(ZoneInfo(timezone)).replace(tzinfo=None)
    started = time.perf_counter()
    with transaction(warehouse, settings) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        views = {"deal_lost_reasons": _lost_reasons_sql(con, settings), "contact_points": _contact_points_sql(con),
                 "policy_gaps": _policy_gaps_sql(con, settings)}
        con.execute(f"CREATE OR REPLACE VIEW intermediate.settings AS {_settings_sql(settings, moment)}")
        for name, sql in views.items():
            con.execute(f"CREATE OR REPLACE VIEW intermediate.{name} AS {sql}")
        for statement in macros():    # as the model build made them (a warehouse built before a macro existed)
            con.execute(statement)
        load_plans(con, settings.plans_file)
        seq = changelog.begin(con)
        version = _version(timezone, views)
        con.execute("CREATE TABLE IF NOT EXISTS meta.mart_builds (finished_at TIMESTAMPTZ, as_of TIMESTAMP)")
        for column in ("mode", "reason", "version"):
            con.execute(f"ALTER TABLE meta.mart_builds ADD COLUMN IF NOT EXISTS {column} VARCHAR")
        last = con.execute("SELECT as_of, version FROM meta.mart_builds ORDER BY finished_at DESC LIMIT 1").fetchone()
        reason = "asked for a full build" if full else _why_full(con, last, version, moment)
        since = None if reason or last is None else last[0]
        patched: dict[str, int] = {}
        timings: dict[str, float] = {}
        rewritten: dict[str, list[str]] = {}     # per mart, conditions its rewritten rows meet (changelog)
        views = _views(con)
        for model in MARTS:
            began = time.perf_counter()
            if model.relation in views and views[model.relation] != model.view:
                # An intermediate whose file gained or lost `Table` or `Scope`: DuckDB replaces a view with a
                # view and a table with a table only.
                con.execute(f"DROP {'VIEW' if views[model.relation] else 'TABLE'} {model.relation}")
            if model.view:
                execute(con, model, f"CREATE OR REPLACE VIEW {model.relation} AS {model.sql(timezone)}")
                continue
            size = None if reason or not model.scope or not exists(con, model.layer, model.name) else \
                _patch(con, model, timezone, since, rewritten, seq)
            if size is None:
                execute(con, model, f"CREATE OR REPLACE TABLE {model.relation} AS {model.sql(timezone)}")
                comment(con, model)
                rewritten[model.relation] = [changelog.WHOLE]
            else:
                patched[model.name] = size
            timings[model.relation] = time.perf_counter() - began
        counts = {name: int(con.execute(f"SELECT count(*) FROM marts.{name}").fetchone()[0])  # type: ignore[index]
                  for name in MART_TABLES}
        _used_up(con)
        mode = "full" if reason else "incremental"
        reason = reason or ", ".join(f"{n:,} records of {name}" for name, n in patched.items()) or "nothing changed"
        con.execute("INSERT INTO meta.mart_builds (finished_at, as_of, mode, reason, version) VALUES "
                    "(now(), ?, ?, ?, ?)", [moment, mode, reason, version])
        changelog.log(con, seq, {relation: conditions for relation, conditions in rewritten.items()
                                 if relation.startswith("marts.")})
    return MartsBuilt(counts, moment, time.perf_counter() - started, mode, reason, timings)


def _views(con: duckdb.DuckDBPyConnection) -> dict[str, bool]:
    """The marts build's relations the warehouse has now (`layer.name`), and whether each is a view."""
    return {f"{schema}.{name}": is_view for schema, name, is_view in con.execute(
        "SELECT table_schema, table_name, table_type = 'VIEW' FROM information_schema.tables "
        "WHERE table_schema IN ('intermediate', 'marts')").fetchall()}


def _why_full(con: duckdb.DuckDBPyConnection, last: tuple[datetime, str] | None, version: str,
              moment: datetime) -> str:
    """Why the marts cannot be patched ('' when they can), given the last build's moment and version."""
    if last is None:
        return "no marts build on record"
    if last[1] != version:
        return "the marts, their settings or the time zone changed"
    if moment < last[0]:
        return "as of an earlier moment than the last build"
    in_full = handed_over_in_full(con)
    if in_full is None:
        return "the core build handed over no changes"
    if in_full:
        return "the core tables were built in full"
    return ""


def _patch(con: duckdb.DuckDBPyConnection, model: Model, timezone: str, since: datetime | None,
           rewritten: dict[str, list[str]], seq: int) -> int | None:
    """Redoes the rows of the records in the mart's scope, and adds those the moment reached since the last
    build; returns the scope's size, or None when it is too big to patch (the mart is then rebuilt whole). A
    mart keeps a copy of the rows it wrote under the build's sequence number `seq`, for publication."""
    columns = ", ".join(model.scope)
    execute(con, model, f"CREATE OR REPLACE TEMP TABLE scope AS SELECT DISTINCT {columns} "
                        f"FROM ({model.scope_path.read_text('utf-8')})")
    size = int(con.execute("SELECT count(*) FROM scope").fetchone()[0])  # type: ignore[index]
    if size > PATCH_LIMIT:
        return None
    parts = _scope_parts(con, model.scope)

    def write(select: str) -> None:
        if model.layer != "marts":      # not published: nothing to keep
            execute(con, model, f"INSERT INTO {model.relation} {select}")
            return
        execute(con, model, f"CREATE OR REPLACE TEMP TABLE rewritten AS {select}")
        execute(con, model, f"INSERT INTO {model.relation} FROM rewritten")
        changelog.keep(con, model.relation, seq, "rewritten")

    for part in parts:     # one statement each: DuckDB pushes a plain filter down to the tables, not an OR
        execute(con, model, f"DELETE FROM {model.relation} AS m WHERE {part.exact}")
        write(f"SELECT * FROM ({model.sql(timezone, keys=part.pushed)}) AS m WHERE {part.exact}")
    conditions = [part.values for part in parts]
    if model.since and since is not None:
        entered = f"{model.since} > TIMESTAMP '{since.isoformat(sep=' ')}'"
        outside = " AND ".join(f"NOT coalesce({part.exact}, false)" for part in parts) or "true"
        write(f"SELECT * FROM ({model.sql(timezone)}) AS m WHERE {entered} AND {outside}")
        conditions.append(entered)
    rewritten[model.relation] = conditions
    return size


@dataclass(frozen=True)
class _Part:
    values: str     # a condition holding for exactly the part's rows: what the changelog logs
    pushed: str     # a condition holding for them and maybe more, as DuckDB reads it fastest: what `{keys}` is
    exact: str      # `pushed`, then the exact match with the scope's rows (a mart's row is `m`)


def _scope_parts(con: duckdb.DuckDBPyConnection, columns: tuple[str, ...]) -> list[_Part]:
    """Conditions that together say a row's scope columns are one of the scope's rows: one for the scope's
    rows without NULLs, and one for each row with a NULL (records without an owner)."""
    complete = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    rows = con.execute(f"SELECT {', '.join(columns)} FROM scope WHERE {complete}").fetchall()
    parts = []
    if rows:
        pushed = changelog.any_of(columns, rows)
        match = " AND ".join(f"s.{c} = m.{c}" for c in columns)
        parts.append(_Part(changelog.keys(columns, rows), pushed,
                           f"{pushed} AND EXISTS (SELECT 1 FROM scope AS s WHERE {match})"))
    for row in con.execute(f"SELECT * FROM scope WHERE NOT ({complete})").fetchall():
        values = " AND ".join(f"{c} IS NULL" if v is None else f"{c} = {changelog.literal(v)}"
                              for c, v in zip(columns, row, strict=True))
        parts.append(_Part(values, values, values))
    return parts


def _used_up(con: duckdb.DuckDBPyConnection) -> None:
    """What the core build handed over is reflected now: emptied for the next core build to fill."""
    for relation in ("meta.mart_changes", *(replaced(model) for model in KEYED_CORE)):
        if exists(con, *relation.split(".")):
            con.execute(f"DELETE FROM {relation}")


def _version(timezone: str, views: dict[str, str]) -> str:
    """What the patched marts' rows depend on besides the data: the marts' SQL and scopes, the macros, the SQL
    made from the settings (required fields, the loss-reason field) and the time zone. The other marts are
    rebuilt every time, whatever the settings."""
    digest = hashlib.sha256(f"{timezone}|{sorted(views.items())}".encode())
    paths = [m.path for m in MARTS] + [m.scope_path for m in MARTS if m.scope]
    paths += sorted((MODELS_DIR / "macros").glob("*.sql"))
    for path in paths:
        digest.update(path.relative_to(MODELS_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _settings_sql(settings: Settings, as_of: datetime) -> str:
    return (f"SELECT TIMESTAMP '{as_of.isoformat(sep=' ')}' AS as_of, "
            f"{settings.gap_min_deals} AS gap_min_deals, {settings.gap_absolute} AS gap_absolute, "
            f"{settings.gap_below_median} AS gap_below_median, {settings.gap_drop} AS gap_drop, "
            f"{settings.top_reasons} AS top_reasons")


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    return dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = ? AND table_name = ?", [schema, table]).fetchall())


def _lost_reasons_sql(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """Lost deals and their reason: the loss-reason field's value (an enumeration's label) where the portal
    has the field and the deal a value, else the failure stage's name."""
    field = (settings.lost_reason_field or "").lower()
    has_field = bool(field) and field in _columns(con, "raw", "deals")
    has_lists = bool(_columns(con, "raw", "userfields__list"))
    if not has_field:
        value = "CAST(NULL AS VARCHAR)"
    elif has_lists:
        value = (f"coalesce((SELECT any_value(l.value) FROM raw.userfields AS u JOIN raw.userfields__list AS l "
                 f"ON l._dlt_parent_id = u._dlt_id WHERE u.entity_id = 'CRM_DEAL' AND lower(u.field_name) = "
                 f"'{field}' AND l.id = CAST(d.{field} AS VARCHAR)), nullif(CAST(d.{field} AS VARCHAR), ''))")
    else:
        value = f"nullif(CAST(d.{field} AS VARCHAR), '')"
    raw_join = "JOIN raw.deals AS d ON d.id = f.deal_id" if has_field else ""
    return (f"SELECT f.deal_id, {value} AS field_value, coalesce({value}, s.stage_name) AS reason "
            f"FROM core.fact_deal AS f JOIN core.dim_stage AS s USING (stage_key) {raw_join} "
            "WHERE f.status = 'lost' AND NOT f.is_deleted")


def _contact_points_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Phones and e-mails of contacts and companies, from dlt's child tables (absent until one is loaded)."""
    parts = [f"SELECT '{kind}' AS entity_type, r.id AS entity_id, upper(c.type_id) AS kind, c.value "
             f"FROM raw.{table}__{point} AS c JOIN raw.{table} AS r ON c._dlt_parent_id = r._dlt_id"
             for kind, table in (("contact", "contacts"), ("company", "companies")) for point in ("phone", "email")
             if _columns(con, "raw", f"{table}__{point}")]
    return " UNION ALL ".join(parts) or ("SELECT CAST(NULL AS VARCHAR) AS entity_type, CAST(NULL AS BIGINT) AS "
                                         "entity_id, CAST(NULL AS VARCHAR) AS kind, CAST(NULL AS VARCHAR) AS value "
                                         "WHERE false")


def _policy_gaps_sql(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """Existing contacts and companies with fields the settings require left empty, and which fields."""
    parts = []
    for kind, table, required, key in (("contact", "contacts", settings.contact_required, "contact_required"),
                                       ("company", "companies", settings.company_required, "company_required")):
        present = _columns(con, "raw", table)
        for field in required:
            if field not in present:
                raise WarehouseError(f"settings data_quality.{key} names {field!r}, which raw.{table} does not "
                                     f"have; its fields: {', '.join(sorted(c for c in present if c[0] != '_'))}")
        if required:
            empty = ", ".join(f"CASE WHEN nullif(trim(CAST({f} AS VARCHAR)), '') IS NULL THEN '{f}' END"
                              for f in required)
            parts.append(f"SELECT '{kind}' AS entity_type, id AS entity_id, concat_ws(', ', {empty}) AS fields "
                         f"FROM raw.{table} WHERE id NOT IN (SELECT id FROM staging.deletions WHERE entity = "
                         f"'{table}' AND is_deleted)")
    union = " UNION ALL ".join(parts) or ("SELECT CAST(NULL AS VARCHAR) AS entity_type, CAST(NULL AS BIGINT) AS "
                                          "entity_id, '' AS fields")
    return f"SELECT * FROM ({union}) WHERE fields <> ''"
