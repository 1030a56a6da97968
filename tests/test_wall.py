"""The sales-floor wall in headless Chromium (Debian's, driven by Playwright) against a warehouse built
from the simulator: the figures on the page are the marts', the page updates itself after a refresh
without reloading, and it never shows an error or goes blank. Screenshots land in test-artifacts/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import refresh
from tests.conftest import free_port, portal_options
from warehouse.publish import newest_file
from warehouse.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "floor-7f3a"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("Chromium is not installed and the test run could not install it: apt-get install -y "
                           "chromium (see tests/system_packages.py)")
    return found


class Wall:
    """`b24wh wall` as its own process."""

    def __init__(self, published: Path, token: str | None = TOKEN, config: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        args = [sys.executable, "-m", "dagster_project", "wall", "--published", str(published), "--port",
                str(self.port)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "B24WH_WALL_TOKEN": token or ""}
        if config is not None:
            env["B24WH_CONFIG"] = str(config)
        self.process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(100):
            try:
                requests.get(self.base, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the wall did not start")

    def url(self, **query: str) -> str:
        return self.base + "?" + "&".join(f"{k}={v}" for k, v in {"token": TOKEN, **query}.items())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def open_page(browser: Browser, url: str, locale: str = "en-GB", size: tuple[int, int] = (1920, 1080)) -> Page:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]}, locale=locale)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(url)
    return page


def wait_rendered(page: Page, renders: int = 1) -> None:
    page.wait_for_function(f"window.wallState && window.wallState.renders >= {renders}", timeout=20000)


PLANS = """scope,id,month,metric,plan
manager,2,{month},calls,900
manager,2,{month},won_amount,9000000
manager,4,{month},calls,800
manager,10,{month},won_deals,30
department,3,{month},calls,4000
"""


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("wall")
    settings = Settings(plans_file=folder / "plans.csv", publish_parquet=False, publish_directory=folder / "published")
    warehouse = folder / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=600, seed=97)) as portal:
        def now() -> datetime:
            return datetime.fromtimestamp(portal.control.truth()["now"], ZoneInfo("Europe/Moscow")).replace(tzinfo=None)

        def refreshed() -> None:
            refresh(warehouse, credentials=portal.webhook_url, settings=settings, as_of=now())
        (folder / "plans.csv").write_text(PLANS.format(month=now().strftime("%Y-%m")), encoding="utf-8")
        refreshed()
        wall = Wall(folder / "published")
        try:
            yield {"portal": portal, "wall": wall, "refresh": refreshed, "published": folder / "published"}
        finally:
            wall.stop()


def published(floor: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    path = newest_file(floor["published"])
    assert path is not None
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def shown(page: Page, selector: str, attribute: str) -> list[str]:
    return page.eval_on_selector_all(selector, f"nodes => nodes.map(n => n.getAttribute('{attribute}'))")


def test_the_page_shows_the_marts_figures(browser: Browser, floor: dict[str, Any]) -> None:
    page = open_page(browser, floor["wall"].url(lang="en"))
    wait_rendered(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "wall-en-dark.png")
    month = "(SELECT date_trunc('month', as_of) FROM meta.publication)"
    calls = dict(published(floor, f"SELECT scope_id, fact FROM marts.plan_fact WHERE scope = 'manager' AND "
                                  f"metric = 'calls' AND period_month = {month}"))
    rows = page.eval_on_selector_all(
        "tr[data-user]", "rows => rows.map(r => [r.dataset.user, r.querySelector('[data-kpi=calls]').dataset.fact])")
    assert rows[0][0] == "team" and float(rows[0][1]) == float(sum(calls.values()))
    for user, fact in rows[1:]:
        assert float(fact or 0) == float(calls.get(int(user), 0)), user
    forgotten = dict(published(floor, "SELECT user_id, forgotten_deals FROM marts.deals_without_activities_by_manager "
                                      "WHERE forgotten_deals > 0"))
    on_page = dict(zip(map(int, shown(page, ".forgotten [data-user]", "data-user")),
                       map(int, shown(page, ".forgotten [data-forgotten]", "data-forgotten")), strict=True))
    assert on_page and all(forgotten[u] == n for u, n in on_page.items())
    first_pipeline = page.get_attribute(".pipeline", "data-pipeline")
    reached = [r for (r,) in published(floor, f"SELECT deals_reached FROM marts.funnel_team WHERE cohort_month = "
                                              f"{month} AND pipeline_id = {first_pipeline} ORDER BY stage_order")]
    assert list(map(int, shown(page, f".pipeline[data-pipeline='{first_pipeline}'] .stage", "data-reached"))) == reached
    plans = {user: page.text_content(f"tr[data-user='{user}'] [data-kpi=calls] small") for user in ("2", "4", "team")}
    assert plans == {"2": "/ 900", "4": "/ 800", "team": "/ 4,000"}, "this month's plans from the plans file"
    assert page.errors == []  # type: ignore[attr-defined]
    russian = open_page(browser, floor["wall"].url(theme="light"), locale="ru-RU")
    wait_rendered(russian)
    assert russian.text_content("#title") == "Отдел продаж" and russian.get_attribute("html", "data-theme") == "light"
    russian.screenshot(path=ARTIFACTS / "wall-ru-light.png")


def test_the_page_updates_after_a_refresh_without_reloading(browser: Browser, floor: dict[str, Any]) -> None:
    page = open_page(browser, floor["wall"].url())
    wait_rendered(page)
    page.evaluate("window.notReloaded = true")
    before = page.get_attribute("body", "data-version")
    floor["portal"].control.apply_changes(advance=120, new_calls=6, wins=2)
    floor["refresh"]()
    version = published(floor, "SELECT version FROM meta.publication")[0][0]
    assert version != before
    page.wait_for_function(f"document.body.dataset.version === '{version}'", timeout=20000)
    team_calls = page.get_attribute("tr.team [data-kpi=calls]", "data-fact")
    month = "(SELECT date_trunc('month', as_of) FROM meta.publication)"
    expected = published(floor, f"SELECT sum(fact) FROM marts.plan_fact WHERE scope = 'manager' AND metric = "
                                f"'calls' AND period_month = {month}")[0][0]
    assert float(team_calls or 0) == float(expected)
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=ARTIFACTS / "wall-after-refresh.png")


def test_a_screen_outside_the_office_needs_the_token(floor: dict[str, Any]) -> None:
    wall = floor["wall"]
    refused = requests.get(wall.base, timeout=5)
    assert refused.status_code == 401 and "access link" in refused.text
    assert requests.get(wall.base + "api/snapshot?token=wrong", timeout=5).status_code == 401
    assert requests.get(wall.url(), timeout=5).status_code == 200
    assert requests.get(wall.base + f"api/snapshot?token={TOKEN}", timeout=5).json()["status"] == "ok"


def test_before_any_publication_the_page_says_it_waits(browser: Browser, tmp_path: Path) -> None:
    wall = Wall(tmp_path / "nothing-yet", token=None)
    try:
        page = open_page(browser, wall.base)
        page.wait_for_function("document.querySelector('#waiting') && "
                               "document.querySelector('#waiting').textContent.includes('Waiting')", timeout=20000)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        wall.stop()


def test_a_publication_that_cannot_be_read_leaves_the_last_good_data(browser: Browser, tmp_path: Path,
                                                                     floor: dict[str, Any]) -> None:
    copy = tmp_path / "published"
    shutil.copytree(floor["published"], copy)
    wall = Wall(copy)
    try:
        page = open_page(browser, wall.url())
        wait_rendered(page)
        good = page.get_attribute("body", "data-version")
        (copy / "warehouse.broken.duckdb").write_bytes(b"not a database")
        (copy / "LATEST").write_text('{"version": "broken", "file": "warehouse.broken.duckdb"}', encoding="utf-8")
        time.sleep(7)       # longer than the page's polling interval
        assert page.get_attribute("body", "data-version") == good
        assert page.locator("tr[data-user]").count() > 1
        assert requests.get(wall.base + f"api/snapshot?token={TOKEN}", timeout=5).json()["version"] == good
    finally:
        wall.stop()


# Long names as a Russian sales floor has them, 30 characters the longest.
LONG_NAMES = ("Александра Константинопольская", "Владислав Преображенский-Орлов", "Екатерина Шереметьева-Голицына",
              "Маргарита Варфоломеева", "Константин Новоархангельский", "Анастасия Всеволодовна Ли")


def widen(source: Path, target: Path, managers: int, pipelines: int) -> None:
    """A published file with `managers` managers (the added ones with long names) and `pipelines` pipelines,
    copied from a real one."""
    shutil.copyfile(source, target)
    with duckdb.connect(str(target)) as con:
        existing = [r[0] for r in con.execute("SELECT user_id FROM core.dim_manager WHERE is_current AND is_active "
                                              "AND user_id IS NOT NULL ORDER BY user_id").fetchall()]
        for n in range(managers - len(existing)):
            model, new = existing[n % len(existing)], 1000 + n
            name = LONG_NAMES[n % len(LONG_NAMES)] if n < 2 * len(LONG_NAMES) else f"Менеджер по продажам {n}"
            con.execute(f"INSERT INTO core.dim_manager SELECT * REPLACE ({new} AS user_id, manager_key + {new} AS "
                        f"manager_key, ? AS full_name) FROM core.dim_manager WHERE user_id = {model} AND is_current",
                        [name])
            for table in ("marts.plan_fact", "marts.plan_fact_daily"):
                con.execute(f"INSERT INTO {table} SELECT * REPLACE ({new} AS scope_id) FROM {table} "
                            f"WHERE scope = 'manager' AND scope_id = {model}")
        ids = [r[0] for r in con.execute(
            "SELECT DISTINCT pipeline_id FROM marts.funnel_team WHERE cohort_month = "
            "(SELECT date_trunc('month', as_of) FROM meta.publication) ORDER BY 1").fetchall()]
        for n in range(pipelines - len(ids)):
            con.execute(f"INSERT INTO marts.funnel_team SELECT * REPLACE ({100 + n} AS pipeline_id, pipeline_name || "
                        f"' {n + 2}' AS pipeline_name) FROM marts.funnel_team WHERE pipeline_id = {ids[n % len(ids)]}")
        con.execute("UPDATE meta.publication SET version = version || '-wide'")


# Elements whose text would be cut, or run into the next column, when it does not fit.
CUT = """() => [...document.querySelectorAll('th, td.name, .figure, .cell small, ol.leaders span, .forgotten span')]
    .filter(n => n.scrollWidth > n.clientWidth + 1).map(n => n.textContent)"""


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)], ids=["1920x1080", "1366x768"])
def test_fifty_managers_and_five_pipelines_all_appear_page_by_page_and_fit(
        browser: Browser, tmp_path: Path, floor: dict[str, Any], size: tuple[int, int]) -> None:
    wide = tmp_path / "published"
    wide.mkdir()
    widen(newest_file(floor["published"]), wide / "warehouse.duckdb", managers=50, pipelines=5)  # type: ignore[arg-type]
    wall = Wall(wide)
    try:
        page = open_page(browser, wall.url(), locale="ru-RU", size=size)
        wait_rendered(page)
        timings = page.evaluate("""() => { const t0 = performance.now(); window.wallRender();
                                           return performance.now() - t0; }""")
        print(f"render of 50 managers and 5 pipelines at {size}: {timings:.0f} ms")
        managers, pipelines, names = set(), set(), set()
        for step in range(12):
            page.evaluate(f"() => {{ window.wallState.page = {step}; window.wallRender(); }}")
            managers |= set(shown(page, "tbody tr[data-user]:not(.team)", "data-user"))
            pipelines |= set(shown(page, ".pipeline", "data-pipeline"))
            names |= set(page.eval_on_selector_all("td.name", "nodes => nodes.map(n => n.textContent)"))
            overflow = page.evaluate("""() => [...document.querySelectorAll('main section, aside section')]
                .some(s => s.scrollHeight > s.clientHeight + 2)""")
            if step == 0:
                page.screenshot(path=ARTIFACTS / f"wall-50-managers-{size[0]}x{size[1]}.png")
            assert not overflow, f"page {step} does not fit the screen"
            assert page.evaluate(CUT) == [], f"page {step}: names or figures cut short"
        assert len(managers) == 50 and len(pipelines) == 5
        assert set(LONG_NAMES) <= names, "every long name was shown whole"
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        wall.stop()


def test_data_older_than_the_limit_is_flagged(browser: Browser, tmp_path: Path, floor: dict[str, Any]) -> None:
    config = tmp_path / "b24wh.toml"
    config.write_text("[wall]\nstale_after_seconds = 1\nwall_language = \"en\"\n", encoding="utf-8")
    wall = Wall(floor["published"], config=config)
    try:
        page = open_page(browser, wall.url())
        wait_rendered(page)
        page.wait_for_selector("#stale:not([hidden])", timeout=10000)
        assert "old" in (page.text_content("#stale") or "")
        assert page.text_content("#updated", timeout=5000).startswith("Updated")  # type: ignore[union-attr]
    finally:
        wall.stop()
