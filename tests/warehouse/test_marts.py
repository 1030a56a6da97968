"""The report marts on a generated portal, compared with the simulator's ground truth (computed in plain
Python from its own store, see simulator/truth.py)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from pipelines.bitrix24.pipeline import load
from tests.conftest import portal_options
from warehouse.build import build
from warehouse.catalogue import CORE_TABLES, MART_TABLES, MARTS, MODELS
from warehouse.marts import GENERATED_RELATIONS, build_marts

TZ = ZoneInfo("Europe/Moscow")


def rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> Any:
    warehouse = tmp_path_factory.mktemp("marts") / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=700, seed=71)) as portal:
        load(warehouse, credentials=portal.webhook_url, progress="log")
        truth = portal.control.truth()
    build(warehouse)
    as_of = datetime.fromtimestamp(truth["now"], TZ).replace(tzinfo=None)
    build_marts(warehouse, as_of=as_of)
    users = dict(rows(warehouse, "SELECT manager_key, user_id FROM core.dim_manager"))
    return warehouse, truth, users


def test_funnel_reach_matches_the_truth(marts: Any) -> None:
    warehouse, truth, users = marts
    got = {(p, str(c), users[m], s): n for p, c, m, s, n in rows(
        warehouse, "SELECT pipeline_id, cohort_month, manager_key, stage_id, deals_reached FROM marts.funnel "
                   "WHERE deals_reached > 0")}
    expected = {(r["pipeline_id"], r["cohort_month"], r["manager_id"], r["stage_id"]): r["deals_reached"]
                for r in truth["funnel"]}
    assert got == expected and len(got) > 100


def test_the_team_funnel_adds_up_the_managers_and_never_grows_along_the_steps(marts: Any) -> None:
    warehouse, _, _ = marts
    by_manager = Counter({(p, c, s): n for p, c, s, n in rows(
        warehouse, "SELECT pipeline_id, cohort_month, stage_order, sum(deals_reached) FROM marts.funnel "
                   "GROUP BY ALL")})
    team = rows(warehouse, "SELECT pipeline_id, cohort_month, stage_order, deals_reached, conversion_from_previous "
                           "FROM marts.funnel_team ORDER BY ALL")
    assert {(p, c, s): n for p, c, s, n, _ in team} == dict(by_manager)
    for (p, c, s, n, conversion), previous in zip(team[1:], team, strict=False):
        if previous[:2] == (p, c):
            assert n <= previous[3] and s == previous[2] + 1
            assert conversion == (n / previous[3] if previous[3] else None)


def test_lost_reasons_match_the_truth(marts: Any) -> None:
    warehouse, truth, users = marts
    got = {(p, str(c), users[m], r, f): (n, a) for p, c, m, r, f, n, a in rows(
        warehouse, "SELECT pipeline_id, cohort_month, manager_key, reason_stage_id, lost_from_stage_id, "
                   "sum(deals_lost), sum(amount_lost) FROM marts.lost_reasons GROUP BY ALL")}
    expected = {(r["pipeline_id"], r["cohort_month"], r["manager_id"], r["reason_stage_id"],
                 r["lost_from_stage_id"]): (r["deals_lost"], Decimal(str(r["amount_lost"]))) for r in truth["lost"]}
    assert got == expected and len(got) > 50
    shares = rows(warehouse, "SELECT pipeline_id, cohort_month, sum(share_of_lost) FROM marts.lost_reasons "
                             "GROUP BY ALL")
    assert all(abs(total - 1) < 1e-9 for _, _, total in shares)


def test_forgotten_deals_match_the_truth(marts: Any) -> None:
    warehouse, truth, users = marts
    got = {d: (users[m], s, o, a) for d, m, s, o, a in rows(
        warehouse, "SELECT deal_id, manager_key, stage_id, has_overdue_activity, last_activity_at "
                   "FROM marts.deals_without_activities")}
    expected = {r["deal_id"]: (r["manager_id"], r["stage_id"], r["has_overdue_activity"],
                               datetime.fromtimestamp(r["last_activity_at"], TZ).replace(tzinfo=None)
                               if r["last_activity_at"] else None) for r in truth["forgotten_deals"]}
    assert got == expected and len(got) > 10
    per_manager = Counter(user for user, *_ in expected.values())
    summary = {u: n for u, n in rows(warehouse, "SELECT user_id, forgotten_deals FROM "
                                                "marts.deals_without_activities_by_manager WHERE forgotten_deals > 0")}
    assert summary == dict(per_manager)


MEASURES = ("calls_incoming", "calls_outgoing", "calls_missed", "emails_incoming", "emails_outgoing", "meetings",
            "tasks_created", "tasks_closed")


def test_daily_manager_activity_matches_the_truth(marts: Any) -> None:
    warehouse, truth, _ = marts
    got: dict[tuple[int, str], dict[str, float]] = {}
    for user, day, seconds, *counts in rows(
            warehouse, f"SELECT user_id, period_start, round(call_minutes * 60), {', '.join(MEASURES)} "
                       "FROM marts.manager_activity WHERE period_grain = 'day'"):
        values = {m: n for m, n in zip(MEASURES, counts, strict=True) if n}
        if seconds:
            values["call_seconds"] = seconds
        if values:
            got[(user, str(day))] = values
    expected = {(r["user_id"], r["date"]): {k: v for k, v in r.items() if k not in ("user_id", "date") and v}
                for r in truth["activity_daily"]}
    expected = {k: v for k, v in expected.items() if v}
    assert got == expected and len(got) > 500


def test_idle_working_days_get_zero_rows_and_weeks_add_up_their_days(marts: Any) -> None:
    warehouse, _, _ = marts
    missing = rows(warehouse, """
        WITH spans AS (SELECT user_id, min(period_start) AS first_day, max(period_start) AS last_day
                       FROM marts.manager_activity WHERE period_grain = 'day' GROUP BY user_id)
        SELECT count(*) FROM spans JOIN core.dim_date AS d ON d.date BETWEEN first_day AND last_day
        WHERE d.is_working_day AND NOT EXISTS (SELECT 1 FROM marts.manager_activity AS a WHERE a.user_id = spans.user_id
              AND a.period_grain = 'day' AND a.period_start = d.date)""")[0][0]
    assert missing == 0
    zero_days = rows(warehouse, "SELECT count(*) FROM marts.manager_activity WHERE period_grain = 'day' AND "
                                "calls_outgoing + emails_outgoing + meetings + tasks_created + deals_created = 0")
    assert zero_days[0][0] > 0, "the idle manager's working days are there, with zeros"
    sums: dict[tuple[int, date], Counter[str]] = defaultdict(Counter)
    for user, week, calls, deals in rows(warehouse, "SELECT a.user_id, d.week_start, a.calls_outgoing, a.deals_won "
                                                    "FROM marts.manager_activity AS a JOIN core.dim_date AS d "
                                                    "ON d.date = a.period_start WHERE a.period_grain = 'day'"):
        sums[(user, week)].update(calls=calls, deals=deals)
    weeks = {(u, w): Counter(calls=c, deals=d) for u, w, c, d in rows(
        warehouse, "SELECT user_id, period_start, calls_outgoing, deals_won FROM marts.manager_activity "
                   "WHERE period_grain = 'week'")}
    assert {k: +v for k, v in weeks.items()} == {k: +v for k, v in sums.items()}


@pytest.mark.parametrize(("schema", "tables"), [("marts", MART_TABLES), ("core", CORE_TABLES)])
def test_every_table_and_column_is_described_for_bi_tools(marts: Any, schema: str, tables: tuple[str, ...]) -> None:
    warehouse, _, _ = marts
    undocumented = rows(warehouse, f"SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = "
                                   f"'{schema}' AND (comment IS NULL OR comment = '')")
    described = dict(rows(warehouse, f"SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = '{schema}'"))
    assert undocumented == [] and set(described) == set(tables)
    assert all(text and text.startswith("Grain: one row per") for text in described.values()), described
    assert {m.name for m in MARTS if m.layer == "marts"} == set(MART_TABLES)


def test_every_relation_the_builds_make_in_code_declares_what_it_reads(marts: Any) -> None:
    """Lineage (`catalogue.lineage`) reads the models folder and the builds' declarations of what they make in
    code: a view or table made otherwise would be a hole in it."""
    warehouse, _, _ = marts
    relations = rows(warehouse, "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
                                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal")
    made = {f"{s}.{t}" for s, t in relations if s in ("staging", "intermediate")}
    from_files = {m.relation for m in (*MODELS, *MARTS)}
    assert made - from_files == set(GENERATED_RELATIONS)


def test_data_quality_finds_every_planted_defect_and_duplicate_and_nothing_else(marts: Any) -> None:
    warehouse, truth, _ = marts
    known = ("phone_in_comment", "no_phone_no_email", "bad_phone", "lowercase_name", "duplicate")
    got = set(rows(warehouse, "SELECT entity_type, entity_id, rule FROM marts.data_quality WHERE rule IN "
                              f"{known}"))
    expected = {(r["entity_type"], r["entity_id"], r["rule"]) for r in truth["data_quality"]}
    assert got == expected and {rule for _, _, rule in got} == set(known)


def test_the_data_quality_summary_counts_each_managers_records(marts: Any) -> None:
    warehouse, truth, _ = marts
    summary = rows(warehouse, "SELECT entity_type, sum(records_created), sum(records_with_problems) "
                              "FROM marts.data_quality_summary GROUP BY ALL ORDER BY ALL")
    problems = dict(rows(warehouse, "SELECT entity_type, count(DISTINCT entity_id) FROM marts.data_quality "
                                    "WHERE entity_type IN ('contact', 'company') GROUP BY ALL"))
    assert summary == [("company", truth["rows"]["companies"], problems["company"]),
                       ("contact", truth["rows"]["contacts"], problems["contact"])]


def test_each_users_history_holds_every_event_the_truth_counts(marts: Any) -> None:
    warehouse, truth, _ = marts
    got = {(u, k): n for u, k, n in rows(warehouse, "SELECT user_id, event_type, count(*) FROM marts.user_history "
                                                    "GROUP BY ALL")}
    expected = {(r["user_id"], r["event_type"]): r["events"] for r in truth["user_events"]}
    assert got == expected and len({k for _, k in got}) == 16
    described = rows(warehouse, "SELECT count(*) FILTER (WHERE description IS NULL OR description = ''), "
                                "count(*) FILTER (WHERE event_type = 'deal_moved' AND description NOT LIKE "
                                "'moved deal from % to %') FROM marts.user_history")
    assert described == [(0, 0)]


def test_plan_fact_facts_match_the_truths_monthly_kpis(marts: Any) -> None:
    warehouse, truth, _ = marts
    got = {(u, str(m), k): float(f) for u, m, k, f in rows(
        warehouse, "SELECT scope_id, period_month, metric, fact FROM marts.plan_fact WHERE scope = 'manager' "
                   "AND fact <> 0")}
    expected = {(r["user_id"], r["month"], k): float(v) for r in truth["kpi_monthly"] for k, v in r.items()
                if k not in ("user_id", "month") and v}
    assert got == pytest.approx(expected) and len({k for _, _, k in got}) == 9
    # Nobody changed department in this portal: a department's fact is the sum of its managers' facts.
    members = dict(rows(warehouse, "SELECT user_id, department_id FROM core.dim_manager WHERE is_current"))
    sums: Counter[tuple[int, str, str]] = Counter()
    for (user, month, metric), fact in got.items():
        sums[(members[user], month, metric)] += fact
    departments = {(d, str(m), k): float(f) for d, m, k, f in rows(
        warehouse, "SELECT scope_id, period_month, metric, fact FROM marts.plan_fact WHERE scope = 'department' "
                   "AND fact <> 0")}
    assert departments == pytest.approx(dict(sums))


def test_failed_outgoing_calls_are_failed_not_missed(marts: Any) -> None:
    """Telephony as live portals record it: unanswered outgoing calls are 603-S with no duration; only
    incoming calls of zero length are missed."""
    warehouse, truth, _ = marts
    kinds = dict(((code, direction, failed, missed), n) for code, direction, failed, missed, n in rows(
        warehouse, "SELECT result_code, direction, is_failed, is_missed, count(*) FROM core.fact_call "
                   "WHERE duration_seconds = 0 GROUP BY ALL"))
    assert set(kinds) == {("603-S", "outgoing", True, False), ("304", "incoming", True, True)}
    assert kinds[("603-S", "outgoing", True, False)] > 10
    missed = rows(warehouse, "SELECT sum(calls_missed) FROM marts.manager_activity WHERE period_grain = 'day'")[0][0]
    assert missed == sum(r.get("calls_missed", 0) for r in truth["activity_daily"])
