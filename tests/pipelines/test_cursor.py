"""The modification cursor of an incremental entity: it moves past every row read, keeps the rows within the
overlap before it, and drops those the last load left there unchanged (pipelines/bitrix24/cursor.py)."""

from __future__ import annotations

from typing import Any

from pipelines.bitrix24.catalogue import BY_NAME
from pipelines.bitrix24.cursor import EDGE_STATE_KEY, Cursor, digest

DEALS = BY_NAME["deals"]
OVERLAP = 300


def deal(id_: int, modified: str, title: str = "Supply") -> dict[str, Any]:
    return {"ID": str(id_), "DATE_MODIFY": f"2026-11-02T{modified}+03:00", "TITLE": title}


def test_a_first_read_keeps_the_rows_within_the_overlap_before_the_newest() -> None:
    cursor = Cursor(DEALS, {}, OVERLAP)
    page = [deal(1, "17:00:00"), deal(2, "17:56:00"), deal(3, "18:00:00"), deal(4, "17:55:00")]
    assert cursor.fresh(page) == page
    state = cursor.state()
    assert state["cursor"] == "2026-11-02T18:00:00+03:00"
    assert state[EDGE_STATE_KEY] == {"2": digest(page[1]), "3": digest(page[2]), "4": digest(page[3])}


def test_rows_read_again_unchanged_are_dropped_and_changed_ones_kept() -> None:
    last = [deal(2, "17:56:00"), deal(3, "18:00:00")]
    state = {"cursor": "2026-11-02T18:00:00+03:00", EDGE_STATE_KEY: {"2": digest(last[0]), "3": digest(last[1])}}
    cursor = Cursor(DEALS, state, OVERLAP)
    edited = deal(3, "18:00:00", title="Supply, 2 lots")      # edited within the same second: only content differs
    new = deal(5, "18:03:00")
    assert cursor.fresh([last[0], edited, new]) == [edited, new]
    after = cursor.state()
    assert after["cursor"] == "2026-11-02T18:03:00+03:00"
    assert after[EDGE_STATE_KEY] == {"3": digest(edited), "5": digest(new)}, "17:56 is now outside the overlap"


def test_nothing_read_keeps_the_cursor_where_it_was() -> None:
    state = {"cursor": "2026-11-02T18:00:00+03:00", EDGE_STATE_KEY: {"3": "0" * 16}}
    cursor = Cursor(DEALS, state, OVERLAP)
    assert cursor.fresh([]) == []
    assert cursor.state() == {"cursor": "2026-11-02T18:00:00+03:00", EDGE_STATE_KEY: {}}
    assert Cursor(DEALS, {}, OVERLAP).state() == {}


def test_a_long_read_holds_only_the_overlap_not_every_row() -> None:
    cursor = Cursor(DEALS, {}, OVERLAP)
    for minute in range(60):
        cursor.fresh([deal(minute * 100 + i, f"17:{minute:02d}:{i:02d}") for i in range(60)])
    assert len(cursor.edge) < 1_000 + 2 * 360
    assert len(cursor.state()[EDGE_STATE_KEY]) == 301, "17:54:59 to 17:59:59"
