"""The log of what each build rewrote: conditions that hold for exactly the rows rewritten, merged so that a
publication reads a table once for all the key lists logged since it, and the rows the builds kept."""

from __future__ import annotations

import duckdb
import pytest

from warehouse import changelog
from warehouse.changelog import Rewritten, keys, merged

ROWS = [("contact", 1), ("contact", 2), ("company", 2), ("deal", 3), ("deal", 4), ("lead", 5), ("deal", None),
        ("it's (odd), AND so", 6), ("deal", 1)]
RECORDS = ("entity_type", "entity_id")


def holding(conditions: list[str]) -> set[tuple[str, int | None]]:
    """The rows of ROWS that any of the conditions holds for, as DuckDB evaluates them."""
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (entity_type VARCHAR, entity_id BIGINT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", ROWS)
        return {row for c in conditions for row in con.execute(f"SELECT * FROM t WHERE {c}").fetchall()}


def test_a_condition_holds_for_exactly_the_records_named_not_every_pairing_of_their_values() -> None:
    condition = keys(RECORDS, [("contact", 1), ("deal", 3), ("deal", None)])
    assert condition == "(entity_type, entity_id) IN (('contact', 1), ('deal', 3))"
    assert holding([condition]) == {("contact", 1), ("deal", 3)}, "not deal 1 nor contact 3"
    assert keys(("deal_id",), [(5,), (-1,), (5,)]) == "deal_id IN (-1, 5)"
    assert keys(RECORDS, []) == "false"


def test_conditions_over_the_same_columns_merge_into_one_that_holds_for_exactly_their_rows() -> None:
    first = keys(RECORDS, [("contact", 1), ("deal", 3)])
    second = keys(RECORDS, [("company", 2)])
    odd = keys(RECORDS, [(ROWS[7][0], 6)])
    together = merged([first, second, odd, first])
    assert together == ["(entity_type, entity_id) IN (('company', 2), ('contact', 1), ('deal', 3), "
                        "('it''s (odd), AND so', 6))"]
    assert holding(together) == holding([first, second, odd]) == {("contact", 1), ("deal", 3), ("company", 2),
                                                                 (ROWS[7][0], 6)}


def test_conditions_of_other_kinds_or_other_columns_are_kept_as_they_are() -> None:
    since = "event_at > TIMESTAMP '2026-11-02 19:00:00'"
    owner = "entity_type = 'deal' AND entity_id IS NULL"
    deals = [keys(("deal_id",), [(5,), (6,)]), keys(("deal_id",), [(-1,), (6,)])]
    assert sorted(merged([since, owner, changelog.WHOLE, "false", *deals])) == \
        sorted([since, owner, changelog.WHOLE, "false", "deal_id IN (-1, 5, 6)"])


def test_lists_whose_union_would_pass_the_limit_stay_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changelog, "KEYS_LIMIT", 3)
    apart = [keys(("deal_id",), [(1,), (2,)]), keys(("deal_id",), [(3,), (4,)])]
    assert merged(apart) == apart


def test_key_lists_as_duckdb_reads_them_hold_for_the_same_rows_and_other_conditions_stay_as_they_are() -> None:
    records = keys(RECORDS, [("deal", 3), (ROWS[7][0], 6), ("contact", 1)])
    assert changelog.pushed(records) == (
        "entity_type = ANY(['contact', 'deal', 'it''s (odd), AND so']) AND entity_id = ANY([1, 3, 6]) AND " + records)
    assert holding([changelog.pushed(records)]) == holding([records]) == {("deal", 3), (ROWS[7][0], 6),
                                                                          ("contact", 1)}
    deals = keys(("entity_id",), [(3,), (6,)])
    assert changelog.pushed(deals) == "entity_id = ANY([3, 6])"
    assert holding([changelog.pushed(deals)]) == holding([deals])
    for other in ("event_at > TIMESTAMP '2026-11-02 19:00:00'", "entity_type = 'deal' AND entity_id IS NULL",
                  changelog.WHOLE, "false", f"{keys(('entity_id',), [(1,)])} OR true"):
        assert changelog.pushed(other) == other


def test_the_rows_to_copy_are_each_builds_kept_rows_that_no_later_build_rewrote() -> None:
    """Build 7 wrote contact 1 and deal 3; build 8 rewrote deal 3 and deleted contact 1 (nothing kept for it);
    build 9 added the rows the moment reached. Build 6, older than the target, is left out."""
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA meta")
        con.execute("CREATE TABLE history (entity_type VARCHAR, entity_id BIGINT, event_at INTEGER, what VARCHAR)")
        written = {6: [("deal", 3, 1, "old")], 7: [("contact", 1, 1, "first"), ("deal", 3, 1, "first")],
                   8: [("deal", 3, 1, "second"), ("deal", 3, 2, "second")], 9: [("lead", 5, 9, "since")]}
        for seq, rows in written.items():
            con.execute("CREATE OR REPLACE TEMP TABLE rewritten AS FROM history LIMIT 0")
            con.executemany("INSERT INTO rewritten VALUES (?, ?, ?, ?)", rows)
            changelog.keep(con, "main.history", seq, "rewritten")
        rewritten = Rewritten("main.history", (
            (7, (keys(RECORDS, [("contact", 1), ("deal", 3)]),)),
            (8, (keys(RECORDS, [("contact", 1), ("deal", 3)]),)),
            (9, ("event_at > 8",))))
        assert sorted(con.execute(rewritten.rows('main.history')).fetchall()) == [
            ("deal", 3, 1, "second"), ("deal", 3, 2, "second"), ("lead", 5, 9, "since")]
        assert sorted(rewritten.conditions) == sorted([keys(RECORDS, [("contact", 1), ("deal", 3)]), "event_at > 8"])
        whole = Rewritten("main.history", ((7, (changelog.WHOLE,)), (8, (keys(RECORDS, [("deal", 3)]),))))
        assert (whole.conditions, whole.rows("main.history")) == ([changelog.WHOLE], "SELECT * FROM main.history")


def test_builds_logged_before_builds_kept_their_rows_make_a_full_publication() -> None:
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA meta")
        con.execute("CREATE TABLE meta.publish_builds (seq BIGINT, token VARCHAR, logged_at TIMESTAMPTZ)")
        con.execute("CREATE TABLE meta.publish_log (seq BIGINT, relation VARCHAR, condition VARCHAR)")
        con.execute("INSERT INTO meta.publish_builds VALUES (1, 'old', now()), (2, 'older code', now())")
        assert changelog.since(con, "old") is None, "a log without the column"
        seq = changelog.begin(con)
        changelog.log(con, seq, {"core.fact_deal": [keys(("deal_id",), [(1,)])]})
        assert changelog.since(con, "old") is None, "build 2 kept no rows"
        assert changelog.since(con, "older code") == {
            "core.fact_deal": Rewritten("core.fact_deal", ((3, ("deal_id IN (1)",)),))}


def test_kept_rows_go_with_the_log_after_a_day_and_with_a_table_rebuilt_whole() -> None:
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA meta")
        con.execute("CREATE SCHEMA core")
        con.execute("CREATE TABLE core.fact_deal (deal_id BIGINT)")
        for day_ago in (True, False):
            seq = changelog.begin(con)
            con.execute("CREATE OR REPLACE TEMP TABLE rewritten AS SELECT ? AS deal_id", [seq])
            changelog.keep(con, "core.fact_deal", seq, "rewritten")
            changelog.log(con, seq, {"core.fact_deal": [keys(("deal_id",), [(seq,)])]})
            if day_ago:
                con.execute("UPDATE meta.publish_builds SET logged_at = now() - INTERVAL 2 DAY")
        seq = changelog.begin(con)
        changelog.log(con, seq, {"core.fact_activity": [changelog.WHOLE]})
        assert con.execute(f"SELECT {changelog.SEQ}, deal_id FROM {changelog.kept('core.fact_deal')}").fetchall() \
            == [(2, 2)]
        seq = changelog.begin(con)
        changelog.log(con, seq, {"core.fact_deal": [changelog.WHOLE]})
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'kept_core_fact_deal'"
                           ).fetchone() == (0,)
