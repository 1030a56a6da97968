"""What each build rewrote in the published tables, so that a publication redoes only that.

Every build (the core tables', the marts') logs, per published table it changed, conditions on the table's
own columns that hold for exactly the rows it rewrote (`deal_id IN (...)`, `(entity_type, entity_id) IN
((...), ...)`, `event_at > TIMESTAMP ...`), or `true` for a table it rebuilt whole, under its sequence number
(`begin`) and a token drawn at random for that build.

A build that patches a published table also keeps a copy of the rows it wrote there (`keep`: a few thousand
rows, in `meta.kept_<schema>_<table>` under the build's sequence number). A publication deletes the rows the
conditions logged since its version hold for, and copies in each build's kept rows that no later build
rewrote (`Rewritten.rows`), instead of finding them again in a table of millions of rows (0.9-1.3 s for
`marts.user_history` at a million deals, 0.1 s from the kept rows). So the conditions must be exact: a
condition holding for more rows would delete rows that nothing copies back. A table rebuilt whole keeps none;
its copies from before are dropped, and a publication copies it whole.

A publication target records the token of the build it reflects; the next publication applies what was logged
after that build (`since`). The log and the kept rows keep a day. A token the log does not hold (a target
published from another warehouse, from a copy of this one that went its own way, from a backup, or longer
ago than the log keeps), or builds logged before builds kept their rows, mean the target is published in full.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

# A change of more keys than this is logged as the whole table: its condition would be longer than it is worth.
KEYS_LIMIT = 20_000
WHOLE = "true"
KEEP = "INTERVAL 1 DAY"
SEQ = "build_seq"        # the kept rows' column naming the build that wrote them


def begin(con: duckdb.DuckDBPyConnection) -> int:
    """The sequence number the build that has begun will be logged under (inside the build's transaction)."""
    con.execute("CREATE TABLE IF NOT EXISTS meta.publish_builds (seq BIGINT, token VARCHAR, logged_at TIMESTAMPTZ)")
    # Builds logged before builds kept the rows they wrote have NULL here: a target older than them is
    # published in full.
    con.execute("ALTER TABLE meta.publish_builds ADD COLUMN IF NOT EXISTS keeps_rows BOOLEAN")
    con.execute("CREATE TABLE IF NOT EXISTS meta.publish_log (seq BIGINT, relation VARCHAR, condition VARCHAR)")
    return int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM meta.publish_builds").fetchone()[0])  # type: ignore[index]


def kept(relation: str) -> str:
    """The table holding the rows builds wrote into `relation` (`core.fact_deal`) when they patched it."""
    return "meta.kept_" + relation.replace(".", "_")


def keep(con: duckdb.DuckDBPyConnection, relation: str, seq: int, rows: str) -> None:
    """Keeps a copy of the rows build `seq` wrote into `relation` (the table or view `rows`) for publication."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {kept(relation)} AS "
                f"SELECT CAST(0 AS BIGINT) AS {SEQ}, * FROM {relation} LIMIT 0")
    con.execute(f"INSERT INTO {kept(relation)} SELECT {seq}, * FROM {rows}")


def log(con: duckdb.DuckDBPyConnection, seq: int, changed: Mapping[str, Iterable[str]]) -> None:
    """Logs build `seq` (`begin`): a token and the conditions per relation (`core.fact_deal`) its rewritten rows
    meet; drops the rows kept for a relation it rebuilt whole, and what is older than a day, the last build
    excepted (inside the build's transaction)."""
    con.execute("INSERT INTO meta.publish_builds (seq, token, logged_at, keeps_rows) VALUES (?, ?, now(), true)",
                [seq, uuid.uuid4().hex])
    rows = [(seq, relation, condition) for relation, conditions in changed.items() for condition in set(conditions)]
    if rows:
        con.executemany("INSERT INTO meta.publish_log (seq, relation, condition) VALUES (?, ?, ?)", rows)
    for relation, conditions in changed.items():
        if WHOLE in conditions:
            con.execute(f"DROP TABLE IF EXISTS {kept(relation)}")
    old = con.execute(f"SELECT max(seq) FROM meta.publish_builds WHERE logged_at < now() - {KEEP} "
                      "AND seq < ?", [seq]).fetchone()[0]  # type: ignore[index]
    if old is not None:
        con.execute("DELETE FROM meta.publish_builds WHERE seq <= ?", [old])
        con.execute("DELETE FROM meta.publish_log WHERE seq <= ?", [old])
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                                    "AND schema_name = 'meta' AND table_name LIKE 'kept\\_%' ESCAPE '\\'"
                                    ).fetchall():
            con.execute(f"DELETE FROM meta.{table} WHERE {SEQ} <= ?", [old])


def keys(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> str:
    """The condition that holds for exactly the rows whose `columns` are one of `rows` (`deal_id IN (1, 2)`,
    `(entity_type, entity_id) IN (('deal', 1), ('contact', 1))`; rows with a NULL left out), or WHOLE when there
    are too many of them."""
    unique = sorted({tuple(row) for row in rows if None not in row})
    if len(unique) > KEYS_LIMIT:
        return WHOLE
    if not unique:
        return "false"
    if len(columns) == 1:
        return f"{columns[0]} IN ({', '.join(literal(row[0]) for row in unique)})"
    tuples = ", ".join("(" + ", ".join(map(literal, row)) + ")" for row in unique)
    return f"({', '.join(columns)}) IN ({tuples})"


_LITERAL = r"-?\d+|'(?:[^']|'')*'"
_TUPLE = rf"\((?:{_LITERAL})(?:, (?:{_LITERAL}))*\)"
_KEYS = re.compile(rf"(?:(\w+)|\((\w+(?:, \w+)+)\)) IN \(((?:{_LITERAL}|{_TUPLE})(?:, (?:{_LITERAL}|{_TUPLE}))*)\)")


def _parsed(condition: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]] | None:
    """A `keys` condition's columns and rows; None for any other condition."""
    found = _KEYS.fullmatch(condition)
    if found is None:
        return None
    columns = (found.group(1),) if found.group(1) else tuple(found.group(2).split(", "))
    if len(columns) == 1:
        return columns, [(_value(v),) for v in re.findall(_LITERAL, found.group(3))]
    return columns, [tuple(_value(v) for v in re.findall(_LITERAL, row)) for row in re.findall(_TUPLE, found.group(3))]


def merged(conditions: Iterable[str]) -> list[str]:
    """The conditions of one relation with the `keys` conditions over the same columns merged into one, their
    rows united: it holds for exactly the rows any of them holds for (a publication deletes those and copies in
    the rows the builds kept), and a publication reads the table once for it instead of once each. The others
    are kept as they are, as are all of them where the united rows would pass KEYS_LIMIT."""
    groups: dict[tuple[str, ...], list[list[tuple[Any, ...]]]] = {}
    others = []
    for condition in dict.fromkeys(conditions):
        parsed = _parsed(condition)
        if parsed is None:
            others.append(condition)
        else:
            groups.setdefault(parsed[0], []).append(parsed[1])
    for columns, group in groups.items():
        united = set().union(*group)
        if len(group) == 1 or len(united) > KEYS_LIMIT:
            others += [keys(columns, rows) for rows in group]
        else:
            others.append(keys(columns, united))
    return others


def pushed(condition: str) -> str:
    """The condition as DuckDB reads it fastest: a `keys` condition as `column = ANY([...])` per column, which
    DuckDB applies to the rows as it reads them (an IN list it turns into a join after reading every row whole:
    a patch of `marts.user_history` or `intermediate.manager_events` at a million deals takes 40-60 % of the time
    it took with IN lists), then, over several columns, the exact rows; any other condition as it is. The log
    keeps the `keys` form, which PostgreSQL reads too."""
    parsed = _parsed(condition)
    if parsed is None:
        return condition
    each = any_of(*parsed)
    return each if len(parsed[0]) == 1 else f"{each} AND {condition}"


def any_of(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> str:
    """`column = ANY([...])` for each column's values among `rows`: over several columns, a condition holding for
    every pairing of their values (more rows than `rows`), which DuckDB applies to the rows as it reads them."""
    rows = list(rows)
    if not rows:
        return "false"
    return " AND ".join(f"{column} = ANY([{', '.join(literal(v) for v in sorted({row[i] for row in rows}))}])"
                        for i, column in enumerate(columns))


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


@dataclass(frozen=True)
class Rewritten:
    """What the builds since a target's version rewrote in one relation: per build, in order, its sequence
    number and the conditions its rewritten rows meet."""
    relation: str
    builds: tuple[tuple[int, tuple[str, ...]], ...]

    @property
    def whole(self) -> bool:
        return any(WHOLE in conditions for _, conditions in self.builds)

    @property
    def conditions(self) -> list[str]:
        """Conditions that together hold for exactly the rows rewritten since, each a publication deletes from its
        copy of the table: [WHOLE] for a table rebuilt whole since."""
        return [WHOLE] if self.whole else merged(c for _, conditions in self.builds for c in conditions)

    def rows(self, source: str) -> str:
        """The SELECT of the rows to copy in once those are deleted: the whole relation (read from `source`), or
        each build's kept rows that no later build rewrote (the last build whose conditions hold for a row is its
        own). Which build last rewrote a record is looked up in a table of the logged keys, not by testing each
        kept row against each list: 1.7 s for `marts.user_history` at a million deals, where the whole SELECT
        takes 0.1 s."""
        if self.whole:
            return f"SELECT * FROM {source}"
        cases, keyed = [], {}
        for seq, conditions in reversed(self.builds):
            for condition in conditions:
                parsed = _parsed(condition)
                if parsed is None:
                    cases.append(f"WHEN {condition} THEN {seq}")
                else:
                    keyed.setdefault(parsed[0], []).extend((seq, *row) for row in parsed[1])
        latest = [f"CASE {' '.join(cases)} END"] if cases else []
        for columns, rows in keyed.items():
            values = ", ".join("(" + ", ".join(map(literal, row)) + ")" for row in rows)
            match = " AND ".join(f"r.{c} = k.{c}" for c in columns)
            latest.append(f"(SELECT max(r.seq) FROM (VALUES {values}) AS r(seq, {', '.join(columns)}) WHERE {match})")
        first, final = self.builds[0][0], self.builds[-1][0]
        return (f"SELECT * EXCLUDE ({SEQ}, rewritten_by) FROM (SELECT k.*, greatest({', '.join(latest)}) AS "
                f"rewritten_by FROM {kept(self.relation)} AS k WHERE k.{SEQ} BETWEEN {first} AND {final}) "
                f"WHERE rewritten_by IS NULL OR rewritten_by <= {SEQ}")


def since(con: duckdb.DuckDBPyConnection, token: str) -> dict[str, Rewritten] | None:
    """What was logged after the build `token` names, per relation; None when the log does not hold that build,
    or holds a build since that kept no rows."""
    found = con.execute("SELECT seq FROM meta.publish_builds WHERE token = ?", [token]).fetchone()
    if found is None:
        return None
    keeps = con.execute("SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() AND "
                        "schema_name = 'meta' AND table_name = 'publish_builds' AND column_name = 'keeps_rows'"
                        ).fetchone()
    if not (keeps and keeps[0]):     # a log written before builds kept rows
        return None
    unkept = con.execute("SELECT count(*) FROM meta.publish_builds WHERE seq > ? AND keeps_rows IS NOT TRUE",
                         [found[0]]).fetchone()
    if unkept and unkept[0]:
        return None
    logged: dict[str, dict[int, list[str]]] = {}
    for relation, seq, condition in con.execute("SELECT DISTINCT relation, seq, condition FROM meta.publish_log "
                                                "WHERE seq > ? ORDER BY ALL", [found[0]]).fetchall():
        logged.setdefault(relation, {}).setdefault(seq, []).append(condition)
    return {relation: Rewritten(relation, tuple((seq, tuple(conditions)) for seq, conditions in builds.items()))
            for relation, builds in logged.items()}
