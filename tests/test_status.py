"""`b24wh status`: what the warehouse holds and how fresh it is, checked against the portal's truth, and the last
failure shown until a success clears it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import main
from tests.conftest import portal_options
from warehouse import status as status_module


@pytest.fixture(scope="module")
def portal() -> Any:
    with SimulatorProcess(**portal_options(deals=300, seed=53)) as sim:
        yield sim


def test_status_reports_rows_cursors_builds_publication_and_the_last_error(
        portal: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    assert main(["status", "--warehouse", str(warehouse)]) == 1
    assert capsys.readouterr().err.strip() == f"b24wh status: no warehouse at {warehouse}: run b24wh refresh " \
                                              "(or point --warehouse at one)"
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    assert main(["refresh", "--warehouse", str(warehouse)]) == 0
    capsys.readouterr()
    assert main(["status", "--warehouse", str(warehouse), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    truth = portal.control.truth()["rows"]
    rows = {e["entity"]: e["rows"] for e in report["entities"]}
    assert rows["deals"] == truth["deals"] and rows["activities"] == truth["activities"]
    assert rows["tasks"] == truth["tasks"]
    cursors = {e["entity"]: e["cursor"] for e in report["entities"]}
    assert cursors["deals"].startswith("20") and int(cursors["calls"]) > 0, "a modification time, a last id"
    assert report["last_sweep_at"] and report["model_build"].startswith("full: ") and report["marts_built_at"]
    assert report["published_version"] and 0 <= report["published_age_seconds"] < 600
    assert report["last_error"] is None and report["warnings"] == []
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url.replace("/rest/1/", "/rest/777/"))
    assert main(["refresh", "--warehouse", str(warehouse)]) == 1
    failure = capsys.readouterr().err.strip().removeprefix("b24wh refresh: ")
    assert main(["status", "--warehouse", str(warehouse)]) == 0
    text = capsys.readouterr().out
    assert "WARNING the last refresh failed at " in text and failure in text
    assert "Last sweep (every id read): 20" in text
    monkeypatch.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    assert main(["refresh", "--warehouse", str(warehouse)]) == 0
    capsys.readouterr()
    assert main(["status", "--warehouse", str(warehouse), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["last_error"] is None, "a success clears the last error"
    assert report["model_timezone"] == report["configured_timezone"] == "Europe/Moscow" and report["warnings"] == []

    # The portal's time zone set to another than the warehouse's dates are in: said before the next refresh.
    monkeypatch.setenv("B24WH_TIMEZONE", "Asia/Vladivostok")
    assert main(["status", "--warehouse", str(warehouse)]) == 0
    text = capsys.readouterr().out
    assert ", dates in Europe/Moscow" in text
    assert ("WARNING the warehouse's dates are in Europe/Moscow but the portal's time zone is set to "
            "Asia/Vladivostok (B24WH_TIMEZONE)") in text

    # Data older than the wall's limit.
    monkeypatch.delenv("B24WH_TIMEZONE")
    settings = tmp_path / "b24wh.toml"
    settings.write_text("[wall]\nstale_after_seconds = 60\n", encoding="utf-8")
    monkeypatch.setenv("B24WH_CONFIG", str(settings))
    monkeypatch.setattr(status_module, "_now", lambda: datetime.now(UTC) + timedelta(minutes=5))
    assert main(["status", "--warehouse", str(warehouse)]) == 0
    assert "min old, older than the wall's limit of 1 min" in capsys.readouterr().out
