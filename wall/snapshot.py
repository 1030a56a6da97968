"""What the wall shows, read from the newest published warehouse file (never the file the pipeline writes).

One snapshot per published version: plan versus fact for today and this month per manager and for the
team, a leaderboard, the current month's funnel with its gaps, forgotten deals per manager, and the
publication's time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

# The KPIs on the wall, in order: the operational ones of plan versus fact.
KPIS = ("calls", "emails", "invoices_issued", "invoices_paid", "new_deals", "won_deals", "won_amount")


def _number(value: Any) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, Decimal | int | float) else value


def read_snapshot(path: Path) -> dict[str, Any]:
    """Everything the page shows, from one published file (read-only, closed before returning)."""
    with duckdb.connect(str(path), read_only=True) as con:
        version, published_at, as_of = con.execute(
            "SELECT version, published_at, as_of FROM meta.publication").fetchone()  # type: ignore[misc]
        today: date = as_of.date()
        month = today.replace(day=1)
        currency = con.execute("SELECT mode(currency_id) FROM core.fact_deal WHERE NOT is_deleted").fetchone()[0]  # type: ignore[index]
        people = con.execute("SELECT user_id, full_name, department_id, department_name FROM core.dim_manager "
                             "WHERE is_current AND is_active AND user_id IS NOT NULL").fetchall()
        monthly = con.execute("SELECT scope, scope_id, metric, plan, fact, expected_by_today FROM marts.plan_fact "
                              "WHERE period_month = ?", [month]).fetchall()
        daily = con.execute("SELECT scope, scope_id, metric, plan, fact FROM marts.plan_fact_daily WHERE day = ?",
                            [today]).fetchall()
        funnel = con.execute(
            "SELECT pipeline_id, pipeline_name, stage_name, stage_order, deals_reached, conversion_from_previous, "
            "is_gap, gap_lost_reasons FROM marts.funnel_team WHERE cohort_month = ? ORDER BY pipeline_id, "
            "stage_order", [month]).fetchall()
        forgotten = con.execute("SELECT user_id, open_deals, forgotten_deals FROM "
                                "marts.deals_without_activities_by_manager WHERE user_id IS NOT NULL").fetchall()
    # Every KPI and period has the same keys, None where the mart has no row (a manager without a plan or a fact).
    figures: dict[tuple[str, int], dict[str, dict[str, dict[str, float | None]]]] = defaultdict(
        lambda: {k: {"month": {"plan": None, "fact": None, "expected": None}, "today": {"plan": None, "fact": None}}
                 for k in KPIS})
    for scope, scope_id, metric, plan, fact, expected in monthly:
        if metric in KPIS:
            figures[(scope, scope_id)][metric]["month"] = {"plan": _number(plan), "fact": _number(fact),
                                                           "expected": _number(expected)}
    for scope, scope_id, metric, plan, fact in daily:
        if metric in KPIS:
            figures[(scope, scope_id)][metric]["today"] = {"plan": _number(plan), "fact": _number(fact)}
    managers = [{"user_id": user_id, "name": name, "department": department,
                 "kpis": figures[("manager", user_id)]} for user_id, name, _, department in people]
    managers.sort(key=lambda m: (-(m["kpis"]["won_amount"]["month"]["fact"] or 0), m["name"]))
    team = _team(figures, {d for _, _, d, _ in people})
    pipelines: dict[int, dict[str, Any]] = {}
    for pipeline_id, pipeline_name, stage, order, reached, conversion, is_gap, reasons in funnel:
        entry = pipelines.setdefault(pipeline_id, {"pipeline_id": pipeline_id, "name": pipeline_name, "stages": []})
        entry["stages"].append({"name": stage, "order": order, "reached": reached, "conversion": conversion,
                                "is_gap": is_gap, "reasons": reasons})
    names = {user_id: name for user_id, name, _, _ in people}
    return {
        "status": "ok", "version": version, "published_at": published_at.isoformat(),
        "as_of": as_of.isoformat(), "today": today.isoformat(), "month": month.isoformat(), "currency": currency,
        "kpis": list(KPIS), "managers": managers, "team": team,
        "funnel": list(pipelines.values()),
        "forgotten": sorted(({"user_id": u, "name": names[u], "open": o, "forgotten": f}
                             for u, o, f in forgotten if u in names), key=lambda r: (-r["forgotten"], r["name"])),
    }


def _team(figures: dict[tuple[str, int], Any], departments: set[int]) -> dict[str, Any]:
    """The team's facts are its managers' facts; its plans are the departments' plans for a KPI where any
    department has one, else the sum of the managers' plans."""
    team: dict[str, dict[str, dict[str, float | None]]] = {}
    for kpi in KPIS:
        team[kpi] = {}
        for period in ("month", "today"):
            managers = [v[kpi][period] for (scope, _), v in figures.items() if scope == "manager"]
            units = [v[kpi][period] for (scope, i), v in figures.items() if scope == "department" and i in departments]
            planned = [u for u in units if u["plan"] is not None] or \
                [m for m in managers if m["plan"] is not None]
            entry: dict[str, float | None] = {"fact": sum(m["fact"] or 0 for m in managers),
                                              "plan": sum(p["plan"] for p in planned) if planned else None}
            if period == "month":
                entry["expected"] = sum(p["expected"] or 0 for p in planned) if planned else None
            team[kpi][period] = entry
    return {"kpis": team}


def waiting(reason: str) -> dict[str, Any]:
    return {"status": "waiting", "reason": reason, "published_at": None, "version": None,
            "checked_at": datetime.now().isoformat()}
