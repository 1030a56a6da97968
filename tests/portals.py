"""Shared by the many-portal tests: a settings file listing three portals, three simulated portals whose deal
ids overlap, and readers of what each portal's files hold."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from tests.conftest import Rest, portal_options
from warehouse.settings import Settings, load_settings, orchestration, portal_timezone

if TYPE_CHECKING:
    import dagster as dg

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = """
[portals.north]
timezone = "Europe/Moscow"
plans_file = "plans/north.csv"

[portals.south]
timezone = "Europe/Moscow"
credentials = "south_portal"
plan = "enterprise"

[portals.east]
timezone = "Asia/Vladivostok"
publish_directory = "bi/east"
"""


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "b24wh.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refresh_every_portal() -> dg.JobDefinition:
    """The code location's `refresh` job for the settings B24WH_CONFIG names (rebuilt in each step's process)."""
    from dagster_project.definitions import build_definitions  # Dagster, only where a job runs

    return build_definitions(load_settings(), orchestration(), portal_timezone()).resolve_job_def("refresh")


def load_settings_text(text: str) -> Settings:
    with tempfile.TemporaryDirectory() as folder:
        return load_settings(settings_file(Path(folder), text))


@contextmanager
def small_portals(options: dict[str, dict[str, Any]]) -> Iterator[dict[str, SimulatorProcess]]:
    """Simulated portals of 60 deals by name, each with its own options (seeds: their deal ids overlap)."""
    sims = {name: SimulatorProcess(**portal_options(deals=60, **extra)) for name, extra in options.items()}
    try:
        for sim in sims.values():
            sim.start()
        yield sims
    finally:
        for sim in sims.values():
            sim.stop()


@pytest.fixture(scope="module")
def three_portals() -> Iterator[dict[str, SimulatorProcess]]:
    with small_portals({"north": {"seed": 101}, "south": {"seed": 102},
                        "east": {"seed": 103, "timezone": "Asia/Vladivostok"}}) as sims:
        yield sims


def b24wh(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dagster_project", *args], cwd=project,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True,
                          timeout=600)


def portal_deals(sim: SimulatorProcess) -> set[tuple[int, str]]:
    return {(int(r["ID"]), r["TITLE"]) for r in Rest(sim.webhook_url).all_rows("crm.deal.list",
                                                                                 {"select": ["ID", "TITLE"]})}


def warehouse_deals(path: Path) -> set[tuple[int, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return set(con.execute("SELECT deal_id, title FROM core.fact_deal WHERE NOT is_deleted").fetchall())


def partner_days(path: Path) -> dict[str, list[dict[str, Any]]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT portal, day, deals_created, won_deals, plan_percent, forgotten_deals, "
                           "published_at IS NOT NULL, last_error FROM partner.portal_daily ORDER BY portal, day"
                           ).fetchall()
    days: dict[str, list[dict[str, Any]]] = {}
    for portal, day, deals, won, percent, forgotten, published, error in rows:
        days.setdefault(portal, []).append({"day": day, "deals": deals, "won": won, "plan_percent": percent,
                                            "forgotten": forgotten, "published": published, "error": error})
    return days


def published_figures(path: Path) -> dict[str, Any]:
    """From a portal's published core and marts, as a reader would count them."""
    with duckdb.connect(str(path), read_only=True) as con:
        won, october = con.execute(
            "SELECT count(*) FILTER (WHERE status = 'won'), coalesce(sum(amount) FILTER (WHERE status = 'won' AND "
            "closed_at >= DATE '2026-10-01' AND closed_at < DATE '2026-11-01'), 0) FROM core.fact_deal "
            "WHERE NOT is_deleted").fetchone()  # type: ignore[misc]
        today = con.execute("SELECT CAST(as_of AS DATE) FROM meta.publication").fetchone()[0]  # type: ignore[index]
        forgotten = con.execute("SELECT count(*) FROM marts.deals_without_activities").fetchone()[0]  # type: ignore[index]
    return {"won": won, "won_october": float(october), "today": today, "forgotten": forgotten}


def published_version(folder: Path) -> str:
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        return str(con.execute("SELECT version FROM meta.publication").fetchone()[0])  # type: ignore[index]


def wall_answers(folders: dict[str, Path]) -> dict[str, Any]:
    """What one wall server serving every portal answers: each portal's snapshot version with its own link, and
    the status for a link turned to another portal, or naming none."""
    from aiohttp.test_utils import TestClient, TestServer

    from wall.server import WallConfig, build_app, portal_token

    async def ask() -> dict[str, Any]:
        async with TestClient(TestServer(build_app(WallConfig(None, token="s3cret", portals=folders)))) as client:
            answers: dict[str, Any] = {}
            for name in folders:
                response = await client.get("/api/snapshot", params={"portal": name,
                                                                     "token": portal_token("s3cret", name)})
                answers[name] = (await response.json())["version"]
            crossed = await client.get("/api/snapshot", params={"portal": "east",
                                                               "token": portal_token("s3cret", "north")})
            answers["east with north's token"] = crossed.status
            answers["no portal"] = (await client.get("/api/snapshot", params={"token": "s3cret"})).status
            return answers

    return asyncio.run(ask())


def wrong_secret(url: str) -> str:
    head, secret = url.rstrip("/").rsplit("/", 1)
    return f"{head}/{secret[::-1]}x/"


