"""Comparing a publication with the warehouse it came from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from warehouse.publish import PUBLISHED


def rows(con: Any, query: str) -> Counter[tuple[Any, ...]]:
    """A query's rows as a multiset (a DuckDB or a psycopg connection)."""
    return Counter(tuple(row) for row in con.execute(query).fetchall())


def unlike_the_warehouse(warehouse: Path, fetch: Callable[[str], Counter[tuple[Any, ...]]],
                         prefix: str = "") -> list[str]:
    """The published tables whose rows (as multisets) differ from the warehouse's; `fetch` reads a published
    table's rows, under schemas named `<prefix>core` and `<prefix>marts`."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [f"{schema}.{table}" for schema, table in PUBLISHED
                if rows(con, f"FROM {schema}.{table}") != fetch(f"SELECT * FROM {prefix}{schema}.{table}")]
