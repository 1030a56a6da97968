"""The partner's summary (`warehouse.summary`) over hand-made publications: what each portal's rows say, and that a
portal's rows are read from its publication once per publication, error and model, never stale."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from warehouse import summary as summary_module
from warehouse.status import record_error
from warehouse.summary import ROWS_FOLDER, PortalFiles, publish_summary


def publish(folder: Path, version: str, today: str, deals: list[tuple[str, str | None, str, int]],
            forgotten: int = 0) -> Path:
    """A publication as `warehouse.publish` names it, holding only what the summary reads: deals as
    (created, closed, status, amount), a plan of 1000 a month, and `forgotten` deals without activities."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"warehouse.{version}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA meta; CREATE SCHEMA core; CREATE SCHEMA marts")
        con.execute("CREATE TABLE meta.publication AS SELECT CAST(? AS TIMESTAMP) AS as_of, "
                    "CAST(? AS TIMESTAMPTZ) AS published_at", [f"{today} 18:00", f"{today} 18:01+00"])
        con.execute("CREATE TABLE core.fact_deal (created_at TIMESTAMP, closed_at TIMESTAMP, status VARCHAR, "
                    "amount DECIMAL(18, 2), currency_id VARCHAR, is_deleted BOOLEAN)")
        con.executemany("INSERT INTO core.fact_deal VALUES (?, ?, ?, ?, 'RUB', false)", deals)
        con.execute("CREATE TABLE marts.plan_fact AS SELECT DATE '2026-03-01' AS period_month, 'manager' AS scope, "
                    "'won_amount' AS metric, 1000.0 AS plan")
        con.execute("CREATE TABLE marts.plan_fact_daily AS SELECT CAST(d.day AS DATE) AS day, 'manager' AS scope, "
                    "'won_amount' AS metric, coalesce(sum(f.amount), 0) AS fact "
                    "FROM generate_series(DATE '2026-03-01', CAST(? AS DATE), INTERVAL 1 DAY) AS d(day) "
                    "LEFT JOIN core.fact_deal AS f ON f.status = 'won' AND CAST(f.closed_at AS DATE) = d.day "
                    "GROUP BY d.day", [today])
        con.execute("CREATE TABLE marts.deals_without_activities AS SELECT range AS deal_id FROM range(?)", [forgotten])
    (folder / "LATEST").write_text(json.dumps({"version": version, "file": path.name}), encoding="utf-8")
    return path


def summary(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT portal, CAST(day AS VARCHAR), deals_created, won_deals, CAST(won_amount AS INT), "
                           "plan_percent, forgotten_deals, last_error FROM partner.portal_daily "
                           "ORDER BY portal, day").fetchall()
    by_portal: dict[str, list[tuple[object, ...]]] = {}
    for portal, *row in rows:
        by_portal.setdefault(portal, []).append(tuple(row))
    return by_portal


@pytest.fixture
def portals(tmp_path: Path) -> list[PortalFiles]:
    north = PortalFiles("north", tmp_path / "north" / "warehouse.duckdb", tmp_path / "north" / "published")
    south = PortalFiles("south", tmp_path / "south" / "warehouse.duckdb", tmp_path / "south" / "published")
    publish(north.published, "1", "2026-03-03", [("2026-03-01 10:00", "2026-03-02 12:00", "won", 300),
                                                  ("2026-03-01 11:00", None, "open", 50)], forgotten=1)
    publish(south.published, "1", "2026-03-02", [("2026-03-02 09:00", "2026-03-02 15:00", "won", 500)])
    return [north, south]


def test_each_portal_has_a_row_per_day_of_its_own_publication(portals: list[PortalFiles], tmp_path: Path) -> None:
    assert summary(publish_summary(portals, tmp_path / "partner", sql_url="")) == {
        "north": [("2026-03-01", 2, 0, 0, 0.0, None, None),
                  ("2026-03-02", 0, 1, 300, 30.0, None, None),
                  ("2026-03-03", 0, 0, 0, 30.0, 1, None)],
        "south": [("2026-03-02", 1, 1, 500, 50.0, 0, None)],
    }


def test_a_rebuild_reads_again_only_the_portal_whose_publication_changed(portals: list[PortalFiles],
                                                                         tmp_path: Path) -> None:
    partner = tmp_path / "partner"
    publish_summary(portals, partner, sql_url="")
    kept = {p.name: (partner / ROWS_FOLDER / f"{p.name}.parquet").stat().st_mtime_ns for p in portals}

    publish(portals[1].published, "2", "2026-03-03", [("2026-03-02 09:00", "2026-03-02 15:00", "won", 500),
                                                      ("2026-03-03 09:00", "2026-03-03 10:00", "won", 250)])
    rows = summary(publish_summary(portals, partner, sql_url=""))

    assert rows["south"] == [("2026-03-02", 1, 1, 500, 50.0, None, None), ("2026-03-03", 1, 1, 250, 75.0, 0, None)]
    assert rows["north"][-1] == ("2026-03-03", 0, 0, 0, 30.0, 1, None)
    assert (partner / ROWS_FOLDER / "north.parquet").stat().st_mtime_ns == kept["north"], "north read once"
    assert (partner / ROWS_FOLDER / "south.parquet").stat().st_mtime_ns != kept["south"], "south read again"


def test_a_new_last_error_reaches_the_newest_day(portals: list[PortalFiles], tmp_path: Path) -> None:
    partner = tmp_path / "partner"
    publish_summary(portals, partner, sql_url="")
    record_error(portals[0].warehouse, "refresh", "the portal answered 503")
    rows = summary(publish_summary(portals, partner, sql_url=""))
    assert rows["north"][-1][-1].startswith("refresh failed at ")
    assert rows["north"][-1][-1].endswith(": the portal answered 503")
    assert rows["north"][0][-1] is None


def test_damaged_kept_rows_are_read_again_from_the_publication(portals: list[PortalFiles], tmp_path: Path) -> None:
    partner = tmp_path / "partner"
    first = summary(publish_summary(portals, partner, sql_url=""))
    (partner / ROWS_FOLDER / "north.parquet").write_bytes(b"not parquet")
    assert summary(publish_summary(portals, partner, sql_url="")) == first


def test_a_changed_model_reads_every_portal_again(portals: list[PortalFiles], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    partner = tmp_path / "partner"
    publish_summary(portals, partner, sql_url="")
    changed = tmp_path / "portal_daily.sql"    # as an upgrade might change it: deals counted twice
    changed.write_text(summary_module.SQL.read_text("utf-8").replace(
        "coalesce(c.deals_created, 0) AS deals_created", "2 * coalesce(c.deals_created, 0) AS deals_created"),
        encoding="utf-8")
    monkeypatch.setattr(summary_module, "SQL", changed)
    rows = summary(publish_summary(portals, partner, sql_url=""))
    assert rows["north"][0][1] == 4 and rows["south"][0][1] == 2


def test_a_portal_no_longer_listed_leaves_neither_rows_nor_kept_rows(portals: list[PortalFiles],
                                                                    tmp_path: Path) -> None:
    partner = tmp_path / "partner"
    publish_summary(portals, partner, sql_url="")
    rows = summary(publish_summary(portals[:1], partner, sql_url=""))
    assert list(rows) == ["north"]
    assert sorted(p.name for p in (partner / ROWS_FOLDER).iterdir()) == ["north.parquet"]


def test_a_portal_never_published_is_one_row_with_its_error(portals: list[PortalFiles], tmp_path: Path) -> None:
    east = PortalFiles("east", tmp_path / "east" / "warehouse.duckdb", tmp_path / "east" / "published")
    rows = summary(publish_summary([*portals, east], tmp_path / "partner", sql_url=""))
    assert [row[1:] for row in rows["east"]] == [(None, None, None, None, None, "nothing published yet")]
    assert rows["east"][0][0] == date.today().isoformat()


def test_requests_made_while_a_build_runs_share_the_next_build(portals: list[PortalFiles], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten portals finishing at once used to build the summary ten times, one after another. Requests that wait
    while a build runs are all covered by the next build, which begins after they were made; a request made
    after a build began still gets a build of its own."""
    partner = tmp_path / "partner"
    publish_summary(portals, partner, sql_url="")
    reads: list[str] = []
    reading = summary_module._rows
    monkeypatch.setattr(summary_module, "_rows", lambda portal, *args: reads.append(portal.name) or reading(
        portal, *args))
    publish(portals[1].published, "2", "2026-03-03", [("2026-03-03 09:00", "2026-03-03 10:00", "won", 250)])

    with summary_module._exclusive(partner / ".summary.lock"):     # a build under way
        waiting = [threading.Thread(target=publish_summary, args=(portals, partner, "")) for _ in range(3)]
        for thread in waiting:
            thread.start()
        while summary_module._tickets(partner) != 1 + len(waiting):
            time.sleep(0.01)                                          # every request has its ticket
    for thread in waiting:
        thread.join()
    assert reads == ["north", "south"], "one build for the three requests"
    assert summary(partner / "summary.duckdb")["south"][-1] == ("2026-03-03", 1, 1, 250, 25.0, 0, None)

    publish_summary(portals, partner, sql_url="")
    assert reads == ["north", "south"] * 2, "a request after the build: a build of its own"
