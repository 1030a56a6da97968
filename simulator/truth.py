"""Ground truth: the answers a correct warehouse must reproduce for a generated portal.

Computed in plain Python from the simulator's own store, independently of the warehouse SQL. The
rules (the contract the marts implement, see docs/simulator.md "Ground truth"):

- rows: what the REST API lists (deleted rows excluded).
- funnel: for each pipeline a deal's stage history visits, a deal *reached* an in-progress stage if
  its history shows it at that stage or at any later in-progress stage of that pipeline, or in the
  pipeline's success stage; it reached the success stage if its history shows it there. Cohort = the
  month the deal was created (portal time); manager = the deal's current responsible user.
- lost: deals whose current stage has failure semantics, by failure stage and by the last
  in-progress stage their history shows before the final failure (`lost_from_stage_id`).
- forgotten_deals: open deals (in-progress semantics) with no open activity and no open task bound to
  them, where open means not completed with a deadline not yet passed; `has_overdue` marks a
  not-completed activity or task whose deadline passed.
- activity_daily: per responsible user and portal-local day: calls out/in (completed) and missed
  (incoming, zero duration) by start time, call minutes, e-mails out/in (completed) by start time,
  meetings completed by start time, tasks (the portal's tasks, which include each CRM task activity's,
  and to-dos) created by creation time and closed by closing time.
- data_quality: planted defects of existing contacts and companies, plus duplicates (two or more
  existing records of one kind sharing a normalised phone or a lower-cased e-mail).
- user_events: per user and event type, events up to now: activities as in activity_daily (calls out/in
  completed, missed, e-mails out/in and meetings completed, tasks created and closed); deals created,
  and each later stage-history entry of an existing deal (moved to an in-progress stage, won, lost),
  for the deal's responsible; invoices issued (created) and paid (now at a paid stage: the last move
  there), for the invoice's responsible; contacts and companies created.
- kpi_monthly: per responsible user and portal-local month, the plan-versus-fact metrics: calls
  (completed, in and out, missed ones not), emails (sent), new_deals, won_deals and won_amount (deals now won, in the
  month they closed: their last move to a won or failure stage), invoices_issued(_amount), invoices_paid(_amount).
- deal_dates: each live deal's begin, close and creation date on the portal's calendar (west of UTC a
  date-only field arrives as the evening before, in the portal's offset; the warehouse must not shift it).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter, defaultdict
from datetime import datetime, tzinfo
from typing import Any

from b24wh_simulator.catalogue import COMPANY, CONTACT, DEAL, LEAD, SMART_INVOICE

_DIGITS = re.compile(r"\D+")


def normalise_phone(raw: str) -> str | None:
    """E.164 digits for Russian and international numbers, or None if it is not a phone."""
    digits = _DIGITS.sub("", raw)
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    elif len(digits) == 10 and digits[0] == "9":
        digits = "7" + digits
    if len(digits) == 11 and digits[0] == "7":
        return digits
    if 11 <= len(digits) <= 15 and raw.strip().startswith("+"):
        return digits
    return None


def local_day(ts: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).date().isoformat()


def local_month(ts: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-01")


def row_counts(db: sqlite3.Connection) -> dict[str, int]:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    history = "SELECT count(*) FROM stage_history WHERE is_deleted = 0 AND entity_type_id = "
    return {
        "deals": one("SELECT count(*) FROM deals WHERE is_deleted = 0"),
        "tasks": one("SELECT count(*) FROM tasks WHERE is_deleted = 0"),
        "leads": one("SELECT count(*) FROM leads WHERE is_deleted = 0"),
        "contacts": one("SELECT count(*) FROM contacts WHERE is_deleted = 0"),
        "companies": one("SELECT count(*) FROM companies WHERE is_deleted = 0"),
        "activities": one("SELECT count(*) FROM activities WHERE is_deleted = 0"),
        "deal_stage_history": one(history + str(DEAL)),
        "lead_status_history": one(history + str(LEAD)),
        "invoice_stage_history": one(history + str(SMART_INVOICE)),
        "invoices": one("SELECT count(*) FROM invoices WHERE is_deleted = 0"),
        "calls": one("SELECT count(*) FROM calls"),
        "timeline_comments": one("SELECT count(*) FROM timeline_comments t WHERE t.entity_type != 'deal' OR EXISTS "
                                 "(SELECT 1 FROM deals d WHERE d.id = t.entity_id AND d.is_deleted = 0)"),
        "users": one("SELECT count(*) FROM users"),
        "departments": one("SELECT count(*) FROM departments"),
        "deal_stages": one("SELECT count(*) FROM statuses WHERE entity_id LIKE 'DEAL_STAGE%'"),
        "pipelines": one(f"SELECT count(*) FROM categories WHERE entity_type_id = {DEAL}"),
    }


def stage_orders(db: sqlite3.Connection) -> dict[int, dict[str, tuple[int, str]]]:
    """pipeline -> stage id -> (order within the pipeline's in-progress stages, semantics P/S/F)."""
    result: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
    rows = db.execute("SELECT entity_id, status_id, sort, coalesce(semantics, 'P') FROM statuses "
                      "WHERE entity_id LIKE 'DEAL_STAGE%' ORDER BY entity_id, sort").fetchall()
    counters: Counter[int] = Counter()
    for entity_id, status_id, _sort, sem in rows:
        pipeline = 0 if entity_id == "DEAL_STAGE" else int(entity_id.rsplit("_", 1)[1])
        if sem == "P":
            counters[pipeline] += 1
            result[pipeline][status_id] = (counters[pipeline], "P")
        else:
            result[pipeline][status_id] = (0, sem)
    return result


def deal_histories(db: sqlite3.Connection) -> dict[int, list[tuple[int, int, str, str, int]]]:
    """deal -> [(created_time, pipeline, stage id, semantics, type)] in order, for existing deals."""
    histories: dict[int, list[tuple[int, int, str, str, int]]] = defaultdict(list)
    for owner, created, category, stage, sem, type_id in db.execute(
            "SELECT h.owner_id, h.created_time, h.category_id, h.stage_id, h.stage_semantic_id, h.type_id "
            "FROM stage_history h JOIN deals d ON d.id = h.owner_id AND d.is_deleted = 0 "
            f"WHERE h.entity_type_id = {DEAL} AND h.is_deleted = 0 ORDER BY h.owner_id, h.created_time, h.id"):
        histories[owner].append((created, category, stage, sem, type_id))
    return histories


def funnel_and_lost(db: sqlite3.Connection, tz: tzinfo) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orders = stage_orders(db)
    histories = deal_histories(db)
    reach: Counter[tuple[int, str, int, str]] = Counter()
    lost_count: Counter[tuple[int, str, int, str, str | None]] = Counter()
    lost_amount: Counter[tuple[int, str, int, str, str | None]] = Counter()
    deals = db.execute("SELECT id, date_create, assigned_by_id, category_id, stage_id, stage_semantic_id, "
                       "opportunity FROM deals WHERE is_deleted = 0").fetchall()
    for deal_id, created, manager, category, stage, sem, amount in deals:
        cohort = local_month(created, tz)
        history = histories.get(deal_id, [])
        for pipeline in {h[1] for h in history}:
            stages = orders.get(pipeline, {})
            visits = [h for h in history if h[1] == pipeline]
            won = any(h[3] == "S" for h in visits)
            deepest = max((stages[h[2]][0] for h in visits if h[2] in stages and stages[h[2]][1] == "P"), default=0)
            for stage_id, (order, stage_sem) in stages.items():
                if (stage_sem == "P" and (order <= deepest or won)) or (stage_sem == "S" and won):
                    reach[(pipeline, cohort, manager, stage_id)] += 1
        if sem == "F":
            visits = [h for h in history if h[1] == category]
            last_failure = max((i for i, h in enumerate(visits) if h[3] == "F"), default=len(visits))
            lost_from = next((h[2] for h in reversed(visits[:last_failure]) if h[3] == "P"), None)
            key = (category, cohort, manager, stage, lost_from)
            lost_count[key] += 1
            lost_amount[key] += amount or 0
    funnel = [{"pipeline_id": p, "cohort_month": c, "manager_id": m, "stage_id": s, "deals_reached": n}
              for (p, c, m, s), n in sorted(reach.items())]
    lost = [{"pipeline_id": p, "cohort_month": c, "manager_id": m, "reason_stage_id": s, "lost_from_stage_id": f,
             "deals_lost": n, "amount_lost": round(lost_amount[(p, c, m, s, f)], 2)}
            for (p, c, m, s, f), n in sorted(lost_count.items(), key=lambda kv: tuple(map(str, kv[0])))]
    return funnel, lost


def forgotten_deals(db: sqlite3.Connection, now: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT d.id, d.assigned_by_id, d.stage_id, "
        " EXISTS (SELECT 1 FROM activities a WHERE a.owner_type_id = 2 AND a.owner_id = d.id AND a.is_deleted = 0 "
        "         AND a.completed = 'N' AND a.deadline < ?) AS overdue, "
        " (SELECT max(a.start_time) FROM activities a WHERE a.owner_type_id = 2 AND a.owner_id = d.id "
        "         AND a.is_deleted = 0 AND a.start_time <= ?) AS last_activity "
        "FROM deals d WHERE d.is_deleted = 0 AND d.stage_semantic_id = 'P' AND NOT EXISTS ("
        " SELECT 1 FROM activities a WHERE a.owner_type_id = 2 AND a.owner_id = d.id AND a.is_deleted = 0 "
        " AND a.completed = 'N' AND (a.deadline IS NULL OR a.deadline >= ?)) AND NOT EXISTS ("
        " SELECT 1 FROM tasks t WHERE t.crm_owner_type_id = 2 AND t.crm_owner_id = d.id AND t.is_deleted = 0 "
        " AND t.status != 5 AND (t.deadline IS NULL OR t.deadline >= ?)) ORDER BY d.id", (now, now, now, now))
    overdue_tasks = {r[0] for r in db.execute(
        "SELECT crm_owner_id FROM tasks WHERE crm_owner_type_id = 2 AND is_deleted = 0 AND status != 5 "
        "AND deadline < ?", (now,))}
    return [{"deal_id": r[0], "manager_id": r[1], "stage_id": r[2],
             "has_overdue_activity": bool(r[3]) or r[0] in overdue_tasks, "last_activity_at": r[4]} for r in rows]


def tasks(db: sqlite3.Connection, now: int) -> list[tuple[int, int, int | None]]:
    """(responsible, created, closed or None) of each task a user has, up to now: the portal's tasks
    (tasks.task.list; each CRM task activity has one) and the CRM to-dos."""
    found = [(user, created, closed if closed is not None and closed <= now else None)
             for user, created, closed in db.execute(
                 "SELECT responsible_id, created_date, closed_date FROM tasks WHERE is_deleted = 0")]
    found += [(user, created, updated if completed == "Y" and updated <= now else None)
              for user, created, updated, completed in db.execute(
                  "SELECT responsible_id, created, last_updated, completed FROM activities "
                  "WHERE is_deleted = 0 AND type_id = 6")]
    return [(user, created, closed) for user, created, closed in found if created <= now or closed is not None]


def activity_daily(db: sqlite3.Connection, tz: tzinfo, now: int) -> list[dict[str, Any]]:
    counts: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
    for user, type_id, direction, start, end, completed in db.execute(
            "SELECT responsible_id, type_id, direction, start_time, end_time, completed "
            "FROM activities WHERE is_deleted = 0"):
        done = completed == "Y"
        if type_id == 2 and start <= now:
            if direction == 1 and end == start:
                counts[(user, local_day(start, tz))]["calls_missed"] += 1
            elif done:
                bucket = counts[(user, local_day(start, tz))]
                bucket["calls_incoming" if direction == 1 else "calls_outgoing"] += 1
                bucket["call_seconds"] += end - start
        elif type_id == 4 and done and start <= now:
            counts[(user, local_day(start, tz))]["emails_incoming" if direction == 1 else "emails_outgoing"] += 1
        elif type_id == 1 and done and start <= now:
            counts[(user, local_day(start, tz))]["meetings"] += 1
    for user, created, closed in tasks(db, now):
        if created <= now:
            counts[(user, local_day(created, tz))]["tasks_created"] += 1
        if closed is not None:
            counts[(user, local_day(closed, tz))]["tasks_closed"] += 1
    return [{"user_id": u, "date": d, **dict(c)} for (u, d), c in sorted(counts.items())]


def data_quality(db: sqlite3.Connection) -> list[dict[str, Any]]:
    hits: set[tuple[str, int, str]] = set()
    for kind, table in (("contact", "contacts"), ("company", "companies")):
        for entity_id, rule in db.execute(
                f"SELECT p.entity_id, p.rule FROM planted_defects p JOIN {table} t ON t.id = p.entity_id "
                "AND t.is_deleted = 0 WHERE p.entity_type = ?", (kind,)):
            hits.add((kind, entity_id, rule))
    for kind, table, owner in (("contact", "contacts", CONTACT), ("company", "companies", COMPANY)):
        groups: dict[tuple[str, str], set[int]] = defaultdict(set)
        for entity_id, type_id, value in db.execute(
                f"SELECT m.entity_id, m.type_id, m.value FROM multifields m JOIN {table} t ON t.id = m.entity_id "
                f"AND t.is_deleted = 0 WHERE m.entity_type_id = {owner} AND m.type_id IN ('PHONE', 'EMAIL')"):
            key = normalise_phone(value) if type_id == "PHONE" else value.strip().lower()
            if key:
                groups[(type_id, key)].add(entity_id)
        for members in groups.values():
            if len(members) > 1:
                hits.update((kind, m, "duplicate") for m in members)
    return [{"entity_type": k, "entity_id": i, "rule": r} for k, i, r in sorted(hits)]


def _paid_invoices(db: sqlite3.Connection, now: int) -> list[tuple[int, int, int, float]]:
    """(invoice id, responsible, paid at, amount) of existing invoices now at a paid stage, paid by now."""
    paid_stages = {r[0] for r in db.execute("SELECT status_id FROM statuses WHERE entity_id LIKE 'SMART_INVOICE%' "
                                            "AND semantics = 'S'")}
    paid_at: dict[int, int] = {}
    for owner, created in db.execute(f"SELECT owner_id, created_time FROM stage_history WHERE entity_type_id = "
                                     f"{SMART_INVOICE} AND is_deleted = 0 AND stage_semantic_id = 'S'"):
        paid_at[owner] = max(paid_at.get(owner, 0), created)
    return [(i, user, paid_at[i], amount or 0) for i, user, stage, amount in db.execute(
            "SELECT id, assigned_by_id, stage_id, opportunity FROM invoices WHERE is_deleted = 0")
            if stage in paid_stages and i in paid_at and paid_at[i] <= now]


def user_events(db: sqlite3.Connection, now: int) -> list[dict[str, Any]]:
    counts: Counter[tuple[int, str]] = Counter()
    for user, type_id, direction, start, end, completed in db.execute(
            "SELECT responsible_id, type_id, direction, start_time, end_time, completed "
            "FROM activities WHERE is_deleted = 0"):
        done = completed == "Y"
        way = "incoming" if direction == 1 else "outgoing"
        if type_id == 2 and start <= now:
            if direction == 1 and end == start:
                counts[(user, "call_missed")] += 1
            elif done:
                counts[(user, f"call_{way}")] += 1
        elif type_id == 4 and done and start <= now:
            counts[(user, f"email_{way}")] += 1
        elif type_id == 1 and done and start <= now:
            counts[(user, "meeting")] += 1
    for user, created, closed in tasks(db, now):
        if created <= now:
            counts[(user, "task_created")] += 1
        if closed is not None:
            counts[(user, "task_closed")] += 1
    owners = dict(db.execute("SELECT id, assigned_by_id FROM deals WHERE is_deleted = 0").fetchall())
    for user, created in db.execute("SELECT assigned_by_id, date_create FROM deals WHERE is_deleted = 0"):
        if created <= now:
            counts[(user, "deal_created")] += 1
    for deal_id, history in deal_histories(db).items():
        for created, _pipeline, _stage, sem, _type in history[1:]:
            if created <= now and deal_id in owners:
                counts[(owners[deal_id], {"S": "deal_won", "F": "deal_lost"}.get(sem, "deal_moved"))] += 1
    for user, created in db.execute("SELECT assigned_by_id, created_time FROM invoices WHERE is_deleted = 0"):
        if created <= now:
            counts[(user, "invoice_issued")] += 1
    for _, user, _, _ in _paid_invoices(db, now):
        counts[(user, "invoice_paid")] += 1
    for kind, table in (("contact_created", "contacts"), ("company_created", "companies")):
        for user, created in db.execute(f"SELECT assigned_by_id, date_create FROM {table} WHERE is_deleted = 0"):
            if created <= now:
                counts[(user, kind)] += 1
    return [{"user_id": u, "event_type": k, "events": n} for (u, k), n in sorted(counts.items())]


def kpi_monthly(db: sqlite3.Connection, tz: tzinfo, now: int) -> list[dict[str, Any]]:
    facts: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
    for user, type_id, direction, start, end in db.execute(
            "SELECT responsible_id, type_id, direction, start_time, end_time FROM activities "
            "WHERE is_deleted = 0 AND type_id IN (2, 4) AND completed = 'Y'"):
        if start <= now and type_id == 2 and not (direction == 1 and end == start):
            facts[(user, local_month(start, tz))]["calls"] += 1
        elif start <= now and direction == 2:
            facts[(user, local_month(start, tz))]["emails"] += 1
    won_at: dict[int, int] = {}
    for owner, created in db.execute(
            f"SELECT owner_id, created_time FROM stage_history WHERE entity_type_id = {DEAL} "
            "AND is_deleted = 0 AND stage_semantic_id IN ('S', 'F')"):
        won_at[owner] = max(won_at.get(owner, 0), created)
    for deal_id, user, created, sem, amount in db.execute(
            "SELECT id, assigned_by_id, date_create, stage_semantic_id, opportunity FROM deals WHERE is_deleted = 0"):
        if created <= now:
            facts[(user, local_month(created, tz))]["new_deals"] += 1
        if sem == "S" and deal_id in won_at and won_at[deal_id] <= now:
            bucket = facts[(user, local_month(won_at[deal_id], tz))]
            bucket["won_deals"] += 1
            bucket["won_amount"] += amount or 0
    for user, created, amount in db.execute(
            "SELECT assigned_by_id, created_time, opportunity FROM invoices WHERE is_deleted = 0"):
        if created <= now:
            bucket = facts[(user, local_month(created, tz))]
            bucket["invoices_issued"] += 1
            bucket["invoices_issued_amount"] += amount or 0
    for _, user, paid, amount in _paid_invoices(db, now):
        bucket = facts[(user, local_month(paid, tz))]
        bucket["invoices_paid"] += 1
        bucket["invoices_paid_amount"] += amount
    return [{"user_id": u, "month": m, **{k: round(v, 2) for k, v in c.items()}}
            for (u, m), c in sorted(facts.items())]


def deal_dates(db: sqlite3.Connection, tz: tzinfo) -> list[dict[str, Any]]:
    """Each live deal's begin, close and creation date: the portal's local calendar dates."""
    return [{"deal_id": deal_id, "begin_date": local_day(begin, tz) if begin is not None else None,
             "close_date": local_day(close, tz) if close is not None else None, "created_date": local_day(created, tz)}
            for deal_id, begin, close, created in db.execute(
                "SELECT id, begindate, closedate, date_create FROM deals WHERE is_deleted = 0 ORDER BY id")]


def compute(db: sqlite3.Connection, tz: tzinfo, now: int) -> dict[str, Any]:
    funnel, lost = funnel_and_lost(db, tz)
    return {"now": now, "rows": row_counts(db), "funnel": funnel, "lost": lost,
            "forgotten_deals": forgotten_deals(db, now), "activity_daily": activity_daily(db, tz, now),
            "data_quality": data_quality(db), "user_events": user_events(db, now),
            "kpi_monthly": kpi_monthly(db, tz, now), "deal_dates": deal_dates(db, tz)}
