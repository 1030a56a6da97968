"""The `b24wh` commands as an operator runs them: exit codes, one-line errors, the demo's figures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import headline, main, refresh
from tests.conftest import portal_options

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
    assert f"Warehouse {warehouse.resolve()} refreshed" in capsys.readouterr().out
    assert core_count(warehouse, "fact_deal") == portal.control.truth()["rows"]["deals"]


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
    assert f"Warehouse: {tmp_path / 'data' / 'demo' / 'warehouse.duckdb'}" in done.stdout
    assert "Deals: " in done.stdout and "Funnel" in done.stdout


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
