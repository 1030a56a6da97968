"""How the simulator reads its store for a list: the plan may change, the rows may not.

A recent modification window (an incremental refresh's filter) is read through its date column's index, an older
bound walks the table in id order, and a chained page after the last (`>ID` of an empty reference) reads nothing.
Expected rows come from the store's columns filtered in Python, never from the query code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from b24wh_simulator import query
from b24wh_simulator.catalogue import ACTIVITY_ENTITY
from b24wh_simulator.config import DataConfig
from b24wh_simulator.store import pristine_store

TZ = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{pristine_store(DataConfig(deals=300, seed=8))}?mode=ro", uri=True)
    yield conn
    conn.close()


def live_activities(db: sqlite3.Connection) -> list[tuple[int, int]]:
    return db.execute("SELECT id, last_updated FROM activities WHERE is_deleted = 0 ORDER BY id").fetchall()


def every_page(db: sqlite3.Connection, filt: dict[str, Any]) -> list[int]:
    """Every row's id by ID keyset paging, as the extractor reads a window."""
    ids: list[int] = []
    while True:
        page = query.run_list(db, ACTIVITY_ENTITY, filt={**filt, ">ID": ids[-1] if ids else 0}, select=["ID"],
                              order={"ID": "ASC"}, start=-1, tz=TZ)
        ids += [int(row["ID"]) for row in page.rows]
        if len(page.rows) < query.PAGE_SIZE:
            return ids


def bound_before(rows: list[tuple[int, int]], how_many: int) -> int:
    """A last_updated bound that the newest `how_many` activities meet."""
    return sorted(updated for _, updated in rows)[-how_many]


@pytest.mark.parametrize("newest", [120, query.RECENT_ROWS + 500])
def test_a_modification_window_gives_the_same_rows_through_either_plan(db: sqlite3.Connection, newest: int) -> None:
    rows = live_activities(db)
    assert len(rows) > query.RECENT_ROWS + 500
    bound = bound_before(rows, newest)
    expected = [i for i, updated in rows if updated >= bound]
    since = datetime.fromtimestamp(bound, UTC).isoformat()
    index = query.recent_range_index(db, ACTIVITY_ENTITY, [("last_updated", bound)])
    assert index == ("activities_updated" if newest < query.RECENT_ROWS else None)
    assert every_page(db, {">=LAST_UPDATED": since}) == expected


def test_a_bound_inside_an_or_group_leaves_the_plan_to_sqlite(db: sqlite3.Connection) -> None:
    builder = query.FilterBuilder(ACTIVITY_ENTITY, TZ, strict=False)
    builder.build({"0": {"LOGIC": "OR", ">=LAST_UPDATED": "2026-11-01", "<ID": 10}})
    assert builder.since == []


@pytest.mark.parametrize(("filt", "matches_all"), [({">ID": ""}, False), ({"ID": ""}, False), ({"!ID": ""}, True)])
def test_an_empty_id_matches_no_row(db: sqlite3.Connection, filt: dict[str, str], matches_all: bool) -> None:
    page = query.run_list(db, ACTIVITY_ENTITY, filt=filt, select=["ID"], order={"ID": "ASC"}, start=0, tz=TZ)
    assert page.total == (len(live_activities(db)) if matches_all else 0)
