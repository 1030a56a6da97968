"""What each build rewrote in the published tables, so that a publication redoes only that.

Every build (the core tables', the marts') logs, per published table it changed, a condition on the table's
own columns that holds for every row it rewrote (`deal_id IN (...)`, `entity_type IN (...) AND entity_id IN
(...)`, `event_at > TIMESTAMP ...`), or `true` for a table it rebuilt whole, under the next sequence number
and a token drawn at random for that build. A condition may hold for more rows than changed: a publication
deletes the rows it names and copies them again from the warehouse, which leaves unchanged rows as they were.

A publication target records the token of the build it reflects; the next publication applies the
conditions logged after that build (`since`). The log keeps a day. A token the log does not hold (a target
published from another warehouse, from a copy of this one that went its own way, from a backup, or longer
ago than the log keeps) means the target is published in full.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

# A change of more keys than this is logged as the whole table: its condition would be longer than it is worth.
KEYS_LIMIT = 20_000
WHOLE = "true"
KEEP = "INTERVAL 1 DAY"


def log(con: duckdb.DuckDBPyConnection, changed: Mapping[str, Iterable[str]]) -> None:
    """Logs one build: a token, the next sequence number, and the conditions per relation (`core.fact_deal`)
    its rewritten rows meet; drops what is older than a day, the last build excepted (inside the build's
    transaction)."""
    con.execute("CREATE TABLE IF NOT EXISTS meta.publish_builds (seq BIGINT, token VARCHAR, logged_at TIMESTAMPTZ)")
    con.execute("CREATE TABLE IF NOT EXISTS meta.publish_log (seq BIGINT, relation VARCHAR, condition VARCHAR)")
    seq = int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM meta.publish_builds").fetchone()[0])  # type: ignore[index]
    con.execute("INSERT INTO meta.publish_builds (seq, token, logged_at) VALUES (?, ?, now())",
                [seq, uuid.uuid4().hex])
    rows = [(seq, relation, condition) for relation, conditions in changed.items() for condition in set(conditions)]
    if rows:
        con.executemany("INSERT INTO meta.publish_log (seq, relation, condition) VALUES (?, ?, ?)", rows)
    old = con.execute(f"SELECT max(seq) FROM meta.publish_builds WHERE logged_at < now() - {KEEP} "
                      "AND seq < ?", [seq]).fetchone()[0]  # type: ignore[index]
    if old is not None:
        con.execute("DELETE FROM meta.publish_builds WHERE seq <= ?", [old])
        con.execute("DELETE FROM meta.publish_log WHERE seq <= ?", [old])


def keys(column: str, values: Iterable[Any]) -> str:
    """The condition `column IN (values)`, or WHOLE when there are too many of them."""
    unique = sorted({v for v in values if v is not None})
    if len(unique) > KEYS_LIMIT:
        return WHOLE
    return f"{column} IN ({', '.join(literal(v) for v in unique)})" if unique else "false"


_LITERAL = r"-?\d+|'(?:[^']|'')*'"
_LIST = rf"(\w+) IN \(((?:{_LITERAL})(?:, (?:{_LITERAL}))*)\)"


def merged(conditions: Iterable[str]) -> list[str]:
    """The conditions of one relation with those made of `keys` lists over the same columns (`entity_type IN
    (...) AND entity_id IN (...)`) merged into one, each column's values united: it holds for every row any of
    them holds for (and maybe more), and a publication reads the table once for it instead of once each. The
    others are kept as they are, as are all of them where a united list would pass KEYS_LIMIT."""
    lists: dict[tuple[str, ...], list[dict[str, set[Any]]]] = {}
    kept = []
    for condition in dict.fromkeys(conditions):
        if not re.fullmatch(rf"{_LIST}(?: AND {_LIST})*", condition):
            kept.append(condition)
            continue
        columns = {column: {_value(v) for v in re.findall(_LITERAL, values)}
                   for column, values in re.findall(_LIST, condition)}
        lists.setdefault(tuple(columns), []).append(columns)
    for names, group in lists.items():
        united = {name: set().union(*(columns[name] for columns in group)) for name in names}
        if len(group) == 1 or max(len(values) for values in united.values()) > KEYS_LIMIT:
            kept += [" AND ".join(keys(name, columns[name]) for name in names) for columns in group]
        else:
            kept.append(" AND ".join(keys(name, united[name]) for name in names))
    return kept


def pushed(condition: str) -> str:
    """The condition as DuckDB reads it fastest: a condition of `keys` lists (`entity_type IN (...) AND entity_id
    IN (...)`) with each list as `column = ANY([...])`, which holds for the same rows; any other condition as it is.
    DuckDB turns an IN list into a join after the table's rows are read, every column of every row, while it applies
    `= ANY` to the rows as it reads them: a patch of `marts.user_history` or `intermediate.manager_events` at a
    million deals takes 40-60 % of the time it took with IN lists. The log keeps the IN lists, which
    PostgreSQL reads too."""
    if not re.fullmatch(rf"{_LIST}(?: AND {_LIST})*", condition):
        return condition
    return re.sub(_LIST, lambda found: f"{found.group(1)} = ANY([{found.group(2)}])", condition)


def _value(text: str) -> Any:
    return text[1:-1].replace("''", "'") if text.startswith("'") else int(text)


def literal(value: Any) -> str:
    """A SQL literal of an id or a name, the same in DuckDB and PostgreSQL."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"only ids and names are logged, not {value!r}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


def latest(con: duckdb.DuckDBPyConnection) -> str | None:
    """The token of the warehouse's last build; None before anything was logged."""
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND "
                        "schema_name = 'meta' AND table_name = 'publish_builds'").fetchone()
    row = con.execute("SELECT token FROM meta.publish_builds ORDER BY seq DESC LIMIT 1").fetchone() \
        if found and found[0] else None
    return str(row[0]) if row else None


def since(con: duckdb.DuckDBPyConnection, token: str) -> dict[str, list[str]] | None:
    """The conditions logged after the build `token` names, per relation; None when the log does not hold
    that build."""
    found = con.execute("SELECT seq FROM meta.publish_builds WHERE token = ?", [token]).fetchone()
    if found is None:
        return None
    changed: dict[str, list[str]] = {}
    for relation, condition in con.execute("SELECT DISTINCT relation, condition FROM meta.publish_log WHERE seq > ? "
                                           "ORDER BY ALL", [found[0]]).fetchall():
        changed.setdefault(relation, []).append(condition)
    return {relation: merged(conditions) for relation, conditions in changed.items()}
