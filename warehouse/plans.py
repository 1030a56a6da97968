"""The sales plans users keep in a CSV file, checked line by line and loaded whole or not at all.

    scope,id,month,metric,plan
    manager,7,2026-11,calls,400
    department,3,2026-11,won_amount,5000000

`scope` is `manager` (`id` is the Bitrix24 user ID) or `department` (the Bitrix24 department ID);
`month` is YYYY-MM, within the warehouse's calendar; `metric` one of METRICS; `plan` a number of at
least 0. A header row is required; blank lines and lines starting with # are skipped. An unknown
manager, department, metric or month, a duplicate (same scope, id, month and metric) or a negative or
non-numeric plan refuses the whole file with an error naming the line.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb

from warehouse.build import WarehouseError

# Plan-versus-fact metrics (docs/marts.md says how each fact is counted).
METRICS = ("calls", "emails", "new_deals", "won_deals", "won_amount", "invoices_issued", "invoices_issued_amount",
           "invoices_paid", "invoices_paid_amount")
COLUMNS = ("scope", "id", "month", "metric", "plan")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PlansError(WarehouseError):
    """The plans file is malformed; the message names the file and the line. Nothing is loaded."""


@dataclass(frozen=True)
class Plan:
    scope: str
    scope_id: int
    month: str          # YYYY-MM-01
    metric: str
    plan: Decimal


PLAN_LIMIT = Decimal("1e16")   # plans are DECIMAL(18, 2)


def read_plans(path: Path, managers: set[int] | None = None, departments: set[int] | None = None,
               months: tuple[str, str] | None = None) -> list[Plan]:
    """Every plan in the file, or PlansError for the first bad line. `managers`, `departments`: the IDs the
    warehouse knows (None: not checked, as before the first load); `months`: the first and last month
    (YYYY-MM) the warehouse's calendar covers, when known."""
    if not path.exists():
        raise PlansError(f"plans file {path} does not exist")
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlansError(f"plans file {path} is not UTF-8 text") from exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not lines:
        return []
    header_line, header = lines[0]
    names = [c.strip().lower() for c in next(csv.reader([header]))]
    if names != list(COLUMNS):
        raise PlansError(f"{path} line {header_line}: the header must be {','.join(COLUMNS)}, not {header.strip()}")
    plans: list[Plan] = []
    seen: dict[tuple[str, int, str, str], int] = {}
    for number, line in lines[1:]:
        where = f"{path} line {number}"
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(COLUMNS):
            raise PlansError(f"{where}: expected {len(COLUMNS)} values ({','.join(COLUMNS)}), found {len(cells)}")
        scope, ident, month, metric, amount = cells
        if scope not in ("manager", "department"):
            raise PlansError(f"{where}: scope {scope!r} is neither manager nor department")
        if not ident.isdigit():
            raise PlansError(f"{where}: id {ident!r} is not a Bitrix24 {scope} ID")
        known = managers if scope == "manager" else departments
        if known is not None and int(ident) not in known:
            raise PlansError(f"{where}: no {scope} with ID {ident} in the warehouse")
        if not _MONTH.match(month):
            raise PlansError(f"{where}: month {month!r} is not YYYY-MM")
        if months and not months[0] <= month <= months[1]:
            raise PlansError(f"{where}: month {month} is outside the warehouse's calendar ({months[0]} to "
                             f"{months[1]})")
        if metric not in METRICS:
            raise PlansError(f"{where}: unknown metric {metric!r}; known: {', '.join(METRICS)}")
        try:
            value = Decimal(amount.replace(" ", "").replace(",", "."))
        except InvalidOperation:
            raise PlansError(f"{where}: plan {amount!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise PlansError(f"{where}: plan {amount!r} must be a number of at least 0")
        if value >= PLAN_LIMIT:
            raise PlansError(f"{where}: plan {amount!r} is too large (at most 9999999999999999.99)")
        key = (scope, int(ident), month, metric)
        if key in seen:
            raise PlansError(f"{where}: duplicates line {seen[key]} ({scope} {ident}, {month}, {metric})")
        seen[key] = number
        plans.append(Plan(scope, int(ident), f"{month}-01", metric, value))
    return plans


def load_plans(con: duckdb.DuckDBPyConnection, path: Path | None) -> int:
    """Replaces `intermediate.plans` with the file's plans (checked against the warehouse's managers and
    departments); an empty table when no file is configured. Returns the number of plans."""
    plans: list[Plan] = []
    if path is not None:
        managers = {r[0] for r in con.execute("SELECT DISTINCT user_id FROM core.dim_manager "
                                              "WHERE user_id IS NOT NULL").fetchall()}
        departments = {r[0] for r in con.execute("SELECT department_id FROM staging.departments").fetchall()}
        first, last = con.execute("SELECT strftime(min(date), '%Y-%m'), strftime(max(date), '%Y-%m') "
                                  "FROM core.dim_date").fetchone()  # type: ignore[misc]
        plans = read_plans(path, managers, departments, (first, last))
    con.execute("CREATE OR REPLACE TABLE intermediate.plans (scope VARCHAR, scope_id BIGINT, period_month DATE, "
                "metric VARCHAR, plan DECIMAL(18, 2))")
    if plans:
        con.executemany("INSERT INTO intermediate.plans VALUES (?, ?, ?, ?, ?)",
                        [(p.scope, p.scope_id, p.month, p.metric, p.plan) for p in plans])
    return len(plans)


def suggest_plans(con: duckdb.DuckDBPyConnection, uplift: Decimal = Decimal("1.1"), months: int = 3) -> list[Plan]:
    """Plans a sales team could start from: for each manager, metric and month of the marts' history (from
    the `months`-th month on, up to the marts' current month), `uplift` times the manager's mean fact over the
    `months` months before it (a month without a fact counts as 0). Counts are rounded to whole numbers and
    amounts to thousands; a mean of 0 gets no plan. Reads `marts.plan_fact`, so the marts must be built."""
    rows = con.execute(f"""
        WITH facts AS (   -- grain: manager × month × metric
            SELECT scope_id AS manager_id, period_month, metric, fact
            FROM marts.plan_fact WHERE scope = 'manager'
        ),
        months AS (       -- grain: month, from the {months}th of the history up to now
            SELECT DISTINCT period_month FROM facts
            WHERE period_month >= (SELECT min(period_month) FROM facts) + INTERVAL {months} MONTH
              AND period_month <= (SELECT date_trunc('month', as_of) FROM intermediate.settings)
        )
        SELECT f.manager_id, m.period_month, f.metric, sum(f.fact) / {months} AS recent
        FROM months AS m
        JOIN facts AS f
            ON f.period_month >= m.period_month - INTERVAL {months} MONTH AND f.period_month < m.period_month
        GROUP BY ALL
        HAVING sum(f.fact) > 0
        ORDER BY ALL""").fetchall()
    plans = []
    for manager_id, month, metric, recent in rows:
        step = Decimal(1000) if metric.endswith("_amount") else Decimal(1)
        plan = (Decimal(recent) * uplift / step).quantize(Decimal(1)) * step
        if plan > 0:
            plans.append(Plan("manager", manager_id, month.isoformat(), metric, plan))
    return plans


def write_plans(path: Path, plans: list[Plan], comment: str) -> None:
    """A plans file in the format `read_plans` reads, with `comment` on top, written whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as out:
        out.write(f"# {comment}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows((p.scope, p.scope_id, p.month[:7], p.metric, p.plan) for p in plans)
    partial.replace(path)
