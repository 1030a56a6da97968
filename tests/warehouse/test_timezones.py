"""Portals west and east of UTC: dates as the portal means them, day boundaries in the portal's zone, and a
configured time zone that disagrees with the portal refused before anything is written."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import refresh
from pipelines.bitrix24.errors import ConfigurationError
from tests.conftest import portal_options
from tests.warehouse.test_marts import MEASURES
from warehouse.settings import Settings

ZONES = {"America/Bogota": 17, "Asia/Vladivostok": 23, "Europe/Moscow": 29}   # zone -> seed


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module", params=sorted(ZONES))
def zoned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    zone = request.param
    warehouse = tmp_path_factory.mktemp("zone") / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=160, seed=ZONES[zone], timezone=zone)) as portal:
        truth = portal.control.truth()
        as_of = datetime.fromtimestamp(truth["now"], ZoneInfo(zone)).replace(tzinfo=None)
        refresh(warehouse, credentials=portal.webhook_url, timezone=zone, settings=Settings(), as_of=as_of)
    return zone, warehouse, truth


def test_begin_and_close_dates_are_the_portals_dates(zoned: Any) -> None:
    _, warehouse, truth = zoned
    got = {deal: (str(begin), str(close)) for deal, begin, close in rows(
        warehouse, "SELECT deal_id, begin_date, close_date FROM core.dim_deal WHERE NOT is_deleted")}
    expected = {r["deal_id"]: (r["begin_date"], r["close_date"]) for r in truth["deal_dates"]}
    assert got == expected and len(got) > 100


def test_every_date_key_is_the_portals_local_day(zoned: Any) -> None:
    _, warehouse, truth = zoned
    created = dict(rows(warehouse, "SELECT deal_id, strptime(created_date_key::VARCHAR, '%Y%m%d')::DATE::VARCHAR "
                                   "FROM core.fact_deal WHERE NOT is_deleted"))
    assert created == {r["deal_id"]: r["created_date"] for r in truth["deal_dates"]}
    unknown = rows(warehouse, """
        SELECT (SELECT count(*) FROM core.fact_activity WHERE date_key NOT IN (SELECT date_key FROM core.dim_date))
             + (SELECT count(*) FROM core.fact_deal_stage WHERE date_key NOT IN (SELECT date_key FROM core.dim_date))
             + (SELECT count(*) FROM core.fact_call WHERE date_key NOT IN (SELECT date_key FROM core.dim_date))""")
    assert unknown == [(0,)]


def test_per_day_activity_counts_follow_the_portals_day_boundaries(zoned: Any) -> None:
    _, warehouse, truth = zoned
    got: dict[tuple[int, str], dict[str, int]] = {}
    for user, day, *counts in rows(warehouse, f"SELECT user_id, period_start, {', '.join(MEASURES)} "
                                              "FROM marts.manager_activity WHERE period_grain = 'day'"):
        values = {m: n for m, n in zip(MEASURES, counts, strict=True) if n}
        if values:
            got[(user, str(day))] = values
    expected = {(r["user_id"], r["date"]): {m: r[m] for m in MEASURES if r.get(m)} for r in truth["activity_daily"]}
    assert got == {k: v for k, v in expected.items() if v} and len(got) > 100


def test_a_time_zone_that_disagrees_with_the_portal_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=60, seed=3, timezone="America/New_York")) as portal, \
            pytest.raises(ConfigurationError) as refused:
        refresh(warehouse, credentials=portal.webhook_url, timezone="Europe/Moscow", settings=Settings())
    message = str(refused.value)
    assert "UTC-05:00" in message and "Europe/Moscow is UTC+03:00" in message and "America/New_York" in message
    assert "\n" not in message
    assert not warehouse.exists() or rows(warehouse, "SELECT count(*) FROM information_schema.tables "
                                                     "WHERE table_schema = 'raw'") == [(0,)]
