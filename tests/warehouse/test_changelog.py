"""The log of what each build rewrote: a publication reads a table once for all the key lists logged since it."""

from __future__ import annotations

import duckdb
import pytest

from warehouse import changelog
from warehouse.changelog import keys, merged

ROWS = [("contact", 1), ("contact", 2), ("company", 2), ("deal", 3), ("deal", 4), ("lead", 5), ("deal", None),
        ("it's (odd), AND so", 6)]


def holding(conditions: list[str]) -> set[tuple[str, int | None]]:
    """The rows of ROWS that any of the conditions holds for, as DuckDB evaluates them."""
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (entity_type VARCHAR, entity_id BIGINT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", ROWS)
        return {row for c in conditions for row in con.execute(f"SELECT * FROM t WHERE {c}").fetchall()}


def test_key_lists_over_the_same_columns_merge_into_one_that_holds_for_every_row_they_did() -> None:
    first = f"{keys('entity_type', ['contact', 'deal'])} AND {keys('entity_id', [1, 3])}"
    second = f"{keys('entity_type', ['company'])} AND {keys('entity_id', [2])}"
    odd = f"{keys('entity_type', [ROWS[-1][0]])} AND {keys('entity_id', [6])}"
    together = merged([first, second, odd, first])
    assert together == ["entity_type IN ('company', 'contact', 'deal', 'it''s (odd), AND so') "
                        "AND entity_id IN (1, 2, 3, 6)"]
    assert holding([first, second, odd]) <= holding(together)
    assert ("lead", 5) not in holding(together)


def test_conditions_of_other_kinds_or_other_columns_are_kept_as_they_are() -> None:
    since = "event_at > TIMESTAMP '2026-11-02 19:00:00'"
    owner = "entity_type = 'deal' AND entity_id IS NULL"
    deals = [keys("deal_id", [5, 6]), keys("deal_id", [-1, 6])]
    assert sorted(merged([since, owner, changelog.WHOLE, "false", *deals])) == \
        sorted([since, owner, changelog.WHOLE, "false", "deal_id IN (-1, 5, 6)"])


def test_lists_whose_union_would_pass_the_limit_stay_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changelog, "KEYS_LIMIT", 3)
    apart = [keys("deal_id", [1, 2]), keys("deal_id", [3, 4])]
    assert merged(apart) == apart


def test_key_lists_as_duckdb_reads_them_hold_for_the_same_rows_and_other_conditions_stay_as_they_are() -> None:
    lists = f"{keys('entity_type', ['deal', ROWS[-1][0]])} AND {keys('entity_id', [3, 6, 7])}"
    assert changelog.pushed(lists) == ("entity_type = ANY(['deal', 'it''s (odd), AND so']) "
                                       "AND entity_id = ANY([3, 6, 7])")
    assert holding([changelog.pushed(lists)]) == holding([lists]) == {("deal", 3), (ROWS[-1][0], 6)}
    for other in ("event_at > TIMESTAMP '2026-11-02 19:00:00'", "entity_type = 'deal' AND entity_id IS NULL",
                  changelog.WHOLE, "false", f"{keys('entity_id', [1])} OR true"):
        assert changelog.pushed(other) == other
