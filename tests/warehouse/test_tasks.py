"""Tasks of the portal's Tasks module (tasks.task.list) reach the warehouse and the reports; a webhook
without the task scope keeps working, with one warning, and the reports count the CRM task activities."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from pipelines.bitrix24.pipeline import load
from tests.conftest import portal_options
from tests.warehouse.test_marts import marts  # noqa: F401  (the shared fixture)
from warehouse.build import build
from warehouse.marts import build_marts


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_task_reaches_the_warehouse_with_its_deal(marts: Any) -> None:  # noqa: F811
    warehouse, truth, _ = marts
    total, bound, own, completed = rows(warehouse, "SELECT count(*), count(deal_id), count(*) FILTER (WHERE NOT "
                                                   "EXISTS (SELECT 1 FROM core.fact_activity a WHERE a.task_id = "
                                                   "t.task_id)), count(*) FILTER (WHERE completed) "
                                                   "FROM core.fact_task AS t")[0]
    assert total == truth["rows"]["tasks"]
    assert 0 < bound < total and own > total / 3, "CRM-bound tasks and the team's own ones"
    assert 0 < completed < total
    crm_tasks = rows(warehouse, "SELECT count(*), count(task_id) FROM core.fact_activity WHERE activity_type = 'task'")
    assert crm_tasks[0][0] == crm_tasks[0][1] > 0, "every CRM task activity knows its task"


def test_a_webhook_without_the_task_scope_warns_once_and_counts_task_activities(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=150, seed=43, scopes="crm,user,department,telephony")) as portal, \
            caplog.at_level(logging.WARNING):
        load(warehouse, credentials=portal.webhook_url, progress="log")
        truth = portal.control.truth()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "scope" in r.getMessage()]
    assert warnings == ["Bitrix24 webhook lacks the scope task, so tasks are not loaded and the reports count no "
                        "tasks: tick it on the inbound webhook in Bitrix24"]
    assert rows(warehouse, "SELECT count(*) FROM raw.tasks") == [(0,)]
    assert rows(warehouse, "SELECT count(*) FROM raw.deals")[0][0] == truth["rows"]["deals"]
    build(warehouse)
    build_marts(warehouse)
    expected = rows(warehouse, "SELECT count(*) FROM core.fact_activity WHERE activity_type IN ('task', 'todo') "
                               "AND created_at <= (SELECT as_of FROM intermediate.settings)")[0][0]
    created = rows(warehouse, "SELECT sum(tasks_created) FROM marts.manager_activity WHERE period_grain = 'day'")
    assert created[0][0] == expected > 0
