"""The `b24wh` commands as an operator runs them: exit codes, one-line errors, the demo's figures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import headline, main, refresh
from tests.conftest import portal_options
from wall.snapshot import read_snapshot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def portal() -> Any:
    with SimulatorProcess(**portal_options(deals=300, seed=53)) as sim:
        yield sim


def core_count(warehouse: Path, table: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM core.{table}").fetchone()[0])


def test_refresh_builds_the_warehouse_and_says_so(portal: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    warehouse = tmp_path / "warehouse.duckdb"
    assert main(["refresh", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert f"Warehouse {warehouse.resolve()} refreshed" in out
    assert core_count(warehouse, "fact_deal") == portal.control.truth()["rows"]["deals"]
    # One line per phase; a first load reads each row once, so the rows counted are the rows loaded.
    extract = next(line for line in out.splitlines() if line.startswith("extract  "))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = sum(con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' AND table_name NOT LIKE "
            "'%\\_\\_%' ESCAPE '\\' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' "
            "AND table_name NOT IN ('userfields', 'deletions')").fetchall())
    assert extract.startswith(f"extract  {loaded:,} rows from the portal in "), (extract, loaded)
    assert [line.split()[0] for line in out.splitlines()[:5]] == ["extract", "load", "model", "marts", "publish"]


def test_a_warehouse_another_process_holds_open_fails_in_one_line_and_is_left_as_it_was(
        portal: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """DuckDB's own file lock (a BI tool or a stray script with the file open for writing), not the writer lock;
    the other bad inputs are the matrix of tests/test_failures.py."""
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    assert main(["refresh", "--warehouse", str(warehouse)]) == 0
    before = core_count(warehouse, "fact_deal")
    capsys.readouterr()
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(warehouse)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["refresh", "--warehouse", str(warehouse)]) == 1
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("b24wh refresh: ") and "lock" in err[0].lower()
    assert core_count(warehouse, "fact_deal") == before


def test_the_headline_figures_match_the_portals_truth(portal: Any, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    truth = portal.control.truth()
    now = datetime.fromtimestamp(truth["now"], ZoneInfo("Europe/Moscow")).replace(tzinfo=None)
    refresh(warehouse, credentials=portal.webhook_url, as_of=now)
    text = headline(warehouse)
    assert f"Deals: {truth['rows']['deals']:,} " in text
    assert f"Forgotten deals (open, nothing planned): {len(truth['forgotten_deals']):,}" in text
    reached: Counter[str] = Counter()
    for row in truth["funnel"]:
        reached[row["stage_id"]] += row["deals_reached"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = dict(con.execute("SELECT stage_id, stage_name FROM core.dim_stage").fetchall())
    printed = Counter((line.strip().rsplit(" ", 1)[0].strip(), int(line.rsplit(" ", 1)[1].replace(",", "")))
                      for line in text.splitlines() if line.startswith("    "))
    assert printed == Counter((names[s], n) for s, n in reached.items())


def test_a_malformed_settings_file_fails_in_one_line_before_any_work(
        portal: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "b24wh.toml"
    settings.write_text("[funnel]\ngap_absolute = 1.5\n", encoding="utf-8")
    monkeypatch.setenv("B24WH_CONFIG", str(settings))
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    warehouse = tmp_path / "warehouse.duckdb"
    assert main(["refresh", "--warehouse", str(warehouse)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"b24wh refresh: {settings}: funnel.gap_absolute must be a share between 0 and 1"]
    assert not warehouse.exists()


def test_the_demo_builds_a_warehouse_and_prints_its_figures(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "dagster_project", "demo", "--deals", "300"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = tmp_path / "data" / "demo"
    assert f"Warehouse: {folder / 'warehouse.duckdb'}" in done.stdout
    assert "Deals: " in done.stdout and "Funnel" in done.stdout
    assert "Enterprise plan's limits" in done.stdout and "What next:" in done.stdout
    phases = [line.split()[0] for line in done.stdout.splitlines()
              if line.split() and line.split()[0] in ("extract", "load", "model", "marts", "plans", "publish")]
    assert phases == ["extract", "load", "model", "marts", "plans", "marts", "publish"], done.stdout
    assert len(done.stdout.splitlines()) < 60, "quiet: no per-table progress tables"

    # The team's plans: 110 % of each manager's mean fact over the three months before (a month without a fact
    # counts 0), recomputed here from the published facts, which the plans do not change.
    published = str(folder / "published" / "warehouse.duckdb")
    with duckdb.connect(published, read_only=True) as con:
        facts = {(m, month.strftime("%Y-%m"), metric): fact for m, month, metric, fact in con.execute(
            "SELECT scope_id, period_month, metric, fact FROM marts.plan_fact WHERE scope = 'manager'").fetchall()}
        planned = con.execute("SELECT scope_id, strftime(period_month, '%Y-%m'), metric, plan FROM marts.plan_fact "
                              "WHERE scope = 'manager' AND plan IS NOT NULL").fetchall()
        current = con.execute("SELECT strftime(as_of, '%Y-%m') FROM meta.publication").fetchone()[0]
    lines = (folder / "plans.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and lines[1] == "scope,id,month,metric,plan" and len(lines) > 50
    in_file = {(int(i), month, metric): Decimal(plan) for _, i, month, metric, plan in
               (line.split(",") for line in lines[2:])}
    assert {(m, month, metric): plan for m, month, metric, plan in planned} == in_file, "the marts use the file"
    assert current in {month for _, month, _ in in_file}, "the current month has plans, so the wall shows them"

    def months_before(month: str) -> list[str]:
        year, number = map(int, month.split("-"))
        return [f"{year - (number - k <= 0)}-{(number - k - 1) % 12 + 1:02d}" for k in (1, 2, 3)]

    for (manager, month, metric), plan in in_file.items():
        mean = sum(facts.get((manager, m, metric), 0) for m in months_before(month)) / 3
        unit = 1000 if metric.endswith("_amount") else 1
        assert abs(plan - Decimal("1.1") * mean) <= unit / 2, (manager, month, metric)

    wall = read_snapshot(Path(published))
    month_plans = {kpi: wall["team"]["kpis"][kpi]["month"]["plan"] for kpi in wall["kpis"]}
    assert all(plan for plan in month_plans.values()), f"the wall shows plan against fact: {month_plans}"
    assert any(m["kpis"]["calls"]["month"]["plan"] for m in wall["managers"])


def test_a_full_disk_during_the_load_fails_in_one_line_and_a_rerun_completes(
        portal: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    warehouse = tmp_path / "warehouse.duckdb"
    assert main(["refresh", "--warehouse", str(warehouse)]) == 0
    before = core_count(warehouse, "fact_deal")
    portal.control.apply_changes(advance=600, new_deals=5, stage_moves=5)
    real = DuckDbSqlClient.execute_query
    calls = {"n": 0}

    def full_disk(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 3 and "INSERT" in str(query).upper():
            raise OSError(28, "No space left on device")
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(DuckDbSqlClient, "execute_query", full_disk)
    capsys.readouterr()
    assert main(["refresh", "--warehouse", str(warehouse)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is full" in err[0] and "free at least" in err[0] and str(tmp_path) in err[0]
    assert core_count(warehouse, "fact_deal") == before, "the model was not rebuilt from a half-done load"
    monkeypatch.setattr(DuckDbSqlClient, "execute_query", real)
    assert main(["refresh", "--warehouse", str(warehouse)]) == 0
    truth = portal.control.truth()["rows"]
    assert core_count(warehouse, "fact_deal") == truth["deals"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) - count(DISTINCT id) FROM raw.deals").fetchone()[0] == 0


def test_refresh_every_repeats_until_stopped(portal: Any, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BITRIX24_WEBHOOK_URL": portal.webhook_url}
    loop = subprocess.Popen([sys.executable, "-m", "dagster_project", "refresh", "--warehouse",
                             str(tmp_path / "warehouse.duckdb"), "--every", "1"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert loop.stdout is not None
    while len(lines) < 2:    # dlt's progress lines come in between
        line = loop.stdout.readline()
        assert line, loop.stderr.read() if loop.stderr else ""
        if " refreshed in " in line:
            lines.append(line)
    loop.terminate()
    assert loop.wait(30) == 0
    assert all("published" in line for line in lines)
    versions = {line.rsplit(" ", 1)[1].strip() for line in lines}
    assert len(versions) == 2, "each turn publishes a new version"
