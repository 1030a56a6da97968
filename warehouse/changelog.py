"""What each build rewrote in the published tables, so that a publication redoes only that.

Every build (the core tables', the marts') logs, per published table it changed, a condition on the table's
own columns that holds for every row it rewrote (`deal_id IN (...)`, `entity_type IN (...) AND entity_id IN
(...)`, `event_at > TIMESTAMP ...`), or `true` for a table it rebuilt whole, under the next sequence number.
A condition may hold for more rows than changed: a publication deletes the rows it names and copies them
again from the warehouse, which leaves unchanged rows as they were.

A publication target records the warehouse it came from and the sequence number it reflects; the next
publication applies the conditions logged since (`since`). The log keeps a day: a target last published
before what the log still holds, from another warehouse, or in another shape is published in full.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

# A change of more keys than this is logged as the whole table: its condition would be longer than it is worth.
KEYS_LIMIT = 20_000
WHOLE = "true"
KEEP = "INTERVAL 1 DAY"


def log(con: duckdb.DuckDBPyConnection, changed: Mapping[str, Iterable[str]]) -> None:
    """Logs, under the next sequence number, the conditions per relation (`core.fact_deal`) that one build's
    rewritten rows meet; drops what is older than a day (inside the build's transaction)."""
    _create(con)
    seq = current(con) + 1
    rows = [(seq, relation, condition) for relation, conditions in changed.items() for condition in set(conditions)]
    if rows:
        con.executemany("INSERT INTO meta.publish_log VALUES (?, now(), ?, ?)", rows)
    old = con.execute(f"SELECT max(seq) FROM meta.publish_log WHERE logged_at < now() - {KEEP}").fetchone()[0]  # type: ignore[index]
    if old is not None:
        con.execute("DELETE FROM meta.publish_log WHERE seq <= ?", [old])
        con.execute("UPDATE meta.publish_origin SET first_seq = ?", [old + 1])
    con.execute("UPDATE meta.publish_origin SET last_seq = ?", [seq])


def keys(column: str, values: Iterable[Any]) -> str:
    """The condition `column IN (values)`, or WHOLE when there are too many of them."""
    unique = sorted({v for v in values if v is not None})
    if len(unique) > KEYS_LIMIT:
        return WHOLE
    return f"{column} IN ({', '.join(literal(v) for v in unique)})" if unique else "false"


def literal(value: Any) -> str:
    """A SQL literal of an id or a name, the same in DuckDB and PostgreSQL."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"only ids and names are logged, not {value!r}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def origin(con: duckdb.DuckDBPyConnection) -> tuple[str, int] | None:
    """The warehouse's id and the sequence number it is at; None before anything was logged."""
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND "
                        "schema_name = 'meta' AND table_name = 'publish_origin'").fetchone()
    row = con.execute("SELECT warehouse_id, last_seq FROM meta.publish_origin").fetchone() if found and found[0] \
        else None
    return (str(row[0]), int(row[1])) if row else None


def since(con: duckdb.DuckDBPyConnection, seq: int) -> dict[str, list[str]] | None:
    """The conditions logged after `seq`, per relation; None when the log no longer holds all of them."""
    first = con.execute("SELECT first_seq FROM meta.publish_origin").fetchone()[0]  # type: ignore[index]
    if seq + 1 < first:
        return None
    changed: dict[str, list[str]] = {}
    for relation, condition in con.execute("SELECT DISTINCT relation, condition FROM meta.publish_log WHERE seq > ? "
                                           "ORDER BY ALL", [seq]).fetchall():
        changed.setdefault(relation, []).append(condition)
    return changed


def current(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT last_seq FROM meta.publish_origin").fetchone()[0])  # type: ignore[index]


def _create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS meta.publish_log (seq BIGINT, logged_at TIMESTAMPTZ, relation VARCHAR, "
                "condition VARCHAR)")
    con.execute("CREATE TABLE IF NOT EXISTS meta.publish_origin (warehouse_id VARCHAR, first_seq BIGINT, "
                "last_seq BIGINT)")
    if not con.execute("SELECT count(*) FROM meta.publish_origin").fetchone()[0]:  # type: ignore[index]
        con.execute("INSERT INTO meta.publish_origin VALUES (?, 1, 0)", [str(uuid.uuid4())])
