"""Generates a portal: a sales team and a year of its CRM, streamed day by day into SQLite.

Nothing is held for the whole portal in Python: deals are created in time order, each deal's story
(stage walk, activities, invoices, comments) is written in buffered batches, and only small arrays
(contact -> company) stay in memory. The same `DataConfig` always produces the same portal.

What a sales director should recognise:
- departments of unequal managers: a star, a nearly idle one, a sloppy one, one who left;
- three pipelines whose step conversions each carry one visible gap, several failure reasons,
  skipped stages, backward moves, reopened deals, deals moved between pipelines;
- leads converted to deals, activities on working days and hours (calls in/out/missed, e-mails,
  meetings, tasks, to-dos; some overdue; some open deals with nothing planned);
- contacts and companies with dirty data (phones in comments, lower-case names, neither phone nor
  e-mail, unparseable phones, duplicates), smart invoices issued and paid, telephony statistics.
"""

from __future__ import annotations

import bisect
import json
import math
import sqlite3
from array import array
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from random import Random
from typing import Any

from b24wh_simulator import reference as ref
from b24wh_simulator.catalogue import (
    COMPANY,
    CONTACT,
    DEAL,
    LEAD,
    SMART_INVOICE,
    USERFIELD_ENUMS,
    USERFIELDS,
)
from b24wh_simulator.config import DataConfig

DAY = 86_400
HOUR = 3_600

COLUMNS: dict[str, tuple[str, ...]] = {
    "deals": ("id", "title", "type_id", "category_id", "stage_id", "stage_semantic_id", "is_return_customer",
              "probability", "currency_id", "opportunity", "company_id", "contact_id", "begindate",
              "closedate", "closed", "comments", "assigned_by_id", "created_by_id", "modify_by_id",
              "moved_by_id", "date_create", "date_modify", "moved_time", "source_id", "source_description",
              "lead_id", "last_activity_time", "last_activity_by", "uf_crm_loss_reason",
              "uf_crm_deal_channel", "uf_crm_contract_date", "uf_crm_priority_client",
              "uf_crm_expected_margin", "is_deleted"),
    "leads": ("id", "title", "name", "second_name", "last_name", "company_title", "company_id", "contact_id",
              "birthdate", "source_id", "status_id", "post", "comments", "currency_id", "opportunity",
              "assigned_by_id", "created_by_id", "modify_by_id", "date_create", "date_modify", "date_closed",
              "status_semantic_id", "moved_by_id", "moved_time", "address", "address_city",
              "address_country", "last_activity_time", "last_activity_by", "uf_crm_landing"),
    "contacts": ("id", "post", "comments", "name", "second_name", "last_name", "lead_id", "type_id",
                 "source_id", "company_id", "birthdate", "date_create", "date_modify", "assigned_by_id",
                 "created_by_id", "modify_by_id", "last_activity_time", "last_activity_by", "address",
                 "address_city", "address_country", "uf_crm_client_segment"),
    "companies": ("id", "title", "company_type", "industry", "employees", "revenue", "currency_id", "comments",
                  "assigned_by_id", "created_by_id", "modify_by_id", "date_create", "date_modify", "lead_id",
                  "last_activity_time", "last_activity_by", "address", "address_city", "address_country",
                  "uf_crm_inn"),
    "multifields": ("id", "entity_type_id", "entity_id", "type_id", "value_type", "value"),
    "activities": ("id", "owner_id", "owner_type_id", "type_id", "provider_id", "provider_type_id", "subject",
                   "created", "last_updated", "start_time", "end_time", "deadline", "completed",
                   "responsible_id", "priority", "description", "direction", "author_id", "editor_id",
                   "is_deleted"),
    "stage_history": ("id", "entity_type_id", "type_id", "owner_id", "created_time", "category_id",
                      "stage_semantic_id", "stage_id", "is_deleted"),
    "invoices": ("id", "title", "account_number", "stage_id", "previous_stage_id", "category_id", "begindate",
                 "closedate", "opportunity", "currency_id", "company_id", "contact_id", "comments", "moved_by",
                 "moved_time", "parent_id2", "created_time", "updated_time", "created_by", "updated_by",
                 "assigned_by_id"),
    "timeline_comments": ("id", "entity_type", "entity_id", "created", "comment", "author_id", "files"),
    "planted_defects": ("entity_type", "entity_id", "rule"),
}

# Activity kinds: (type_id, provider_id, provider_type_id, direction, share)
ACTIVITY_MIX = (
    ("call_out", 2, "VOXIMPLANT_CALL", "CALL", 2, 0.27),
    ("call_in", 2, "VOXIMPLANT_CALL", "CALL", 1, 0.13),
    ("call_missed", 2, "VOXIMPLANT_CALL", "CALL", 1, 0.04),
    ("email_out", 4, "CRM_EMAIL", "EMAIL", 2, 0.15),
    ("email_in", 4, "CRM_EMAIL", "EMAIL", 1, 0.09),
    ("meeting", 1, "CRM_MEETING", "MEETING", 0, 0.08),
    ("task", 3, "TASKS_TASK", "TASK", 0, 0.10),
    ("todo", 6, "CRM_TODO", "TODO", 0, 0.14),
)
# Kinds someone plans ahead, which can therefore run overdue.
PLANNED_KINDS = ("call_out", "email_out", "meeting", "task", "todo")
SUBJECTS = {
    "call_out": "Исходящий звонок", "call_in": "Входящий звонок", "call_missed": "Пропущенный звонок",
    "email_out": "Коммерческое предложение", "email_in": "Re: Коммерческое предложение",
    "meeting": "Встреча с клиентом", "task": "Подготовить договор", "todo": "Перезвонить клиенту",
}

# Data-quality defects planted on contacts and companies, base chance per record (x manager sloppiness).
DEFECT_RATES = {"phone_in_comment": 0.035, "no_phone_no_email": 0.05, "bad_phone": 0.015,
                "lowercase_name": 0.04, "duplicate": 0.03}
PHONE_IN_COMMENT_TEMPLATES = ("Звонить на мобильный +7 ({a}) {b}-{c}-{d}", "тел. 8 {a} {b}{c}{d}",
                              "Просил перезвонить: 8{a}{b}{c}{d}", "моб. 8-{a}-{b}-{c}-{d}",
                              "WhatsApp +44 20 7946 {c}{d}")
BAD_PHONES = ("12-34", "тел", "+7 (912) 34", "нет", "000")
COMMENTS = ("Клиент просит скидку", "Отправил КП повторно", "Ждём согласования бюджета", "Созвонились, всё в силе",
            "Нужен пересчёт")
CLEAN_COMMENTS = ("Интересуется оптовыми ценами", "Пришёл с выставки", "Постоянный клиент",
                  "Нужна презентация продукта", "Работает через тендеры", "")


@dataclass
class Manager:
    id: int
    department: int
    skill: float
    activity_level: float
    sloppiness: float
    weight: float
    left_at: int | None     # dismissed: no new work after this moment


class Calendar:
    """Working days and hours of the portal's team, in the portal's time zone."""

    def __init__(self, cfg: DataConfig, start: int, end: int) -> None:
        self.tz = cfg.tz
        first = datetime.fromtimestamp(start, self.tz).date()
        last = datetime.fromtimestamp(end, self.tz).date() + timedelta(days=30)
        self.days: list[date] = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        self.starts: list[int] = [int(datetime.combine(d, datetime.min.time(), self.tz).timestamp())
                                  for d in self.days]
        self.working: list[bool] = [self.is_working_day(d) for d in self.days]

    @staticmethod
    def is_working_day(d: date) -> bool:
        return d.weekday() < 5 and (d.month, d.day) not in ref.HOLIDAYS

    def index(self, ts: int) -> int:
        return max(0, min(len(self.starts) - 1, bisect.bisect_right(self.starts, ts) - 1))

    def working_moment(self, rng: Random, lo: int, hi: int) -> int | None:
        """A moment on a working day between 9:00 and 19:00 in [lo, hi], or None if there is none."""
        if hi <= lo:
            return None
        for _ in range(4):
            ts = lo + int(rng.random() * (hi - lo))
            i = self.index(ts)
            while i < len(self.days) - 1 and not self.working[i]:
                i += 1
            moment = self.starts[i] + 9 * HOUR + int(rng.random() * 10 * HOUR)
            if lo <= moment <= hi:
                return moment
        return None


def poisson(rng: Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def weighted(rng: Random, items: Iterable[Any], weights: Iterable[float]) -> Any:
    return rng.choices(list(items), weights=list(weights), k=1)[0]


class Generator:
    """Writes a portal into a SQLite store; also used by the live-changes engine to add rows."""

    FLUSH_ROWS = 20_000

    def __init__(self, db: sqlite3.Connection, cfg: DataConfig, rng: Random | None = None) -> None:
        self.db = db
        self.cfg = cfg
        self.tz = cfg.tz
        self.ru = cfg.language == "ru"
        self.rng = rng or Random(f"{cfg.seed}:portal")
        self.anchor = cfg.anchor_ts
        self.start = self.anchor - cfg.history_days * DAY
        self.calendar = Calendar(cfg, self.start, self.anchor)
        self.buffers: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}
        self.next_id: dict[str, int] = {t: 1 for t in COLUMNS}
        self.contact_company = array("i", [0])    # index: contact id -> company id (0: none)
        self.recent_phones: list[tuple[str, str]] = []   # (entity kind, phone) for planting duplicates
        self.managers: list[Manager] = []
        self.enum_ids: dict[str, dict[str, int]] = {}
        self.pipelines = {p.id: p for p in ref.PIPELINES}
        # Live changes happen now: nothing they write may claim to have been created or modified earlier
        # (a server stamps DATE_MODIFY and LAST_UPDATED itself). 0 while generating history.
        self.floor = 0

    # --- buffered writes ------------------------------------------------------------------------

    def new_id(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def put(self, table: str, row: tuple[Any, ...]) -> None:
        buf = self.buffers[table]
        buf.append(row)
        if len(buf) >= self.FLUSH_ROWS:
            self.flush_table(table)

    def flush_table(self, table: str) -> None:
        buf = self.buffers[table]
        if not buf:
            return
        cols = COLUMNS[table]
        verb = "INSERT OR IGNORE" if table == "planted_defects" else "INSERT"
        self.db.executemany(f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            buf)
        buf.clear()

    def flush(self) -> None:
        for table in self.buffers:
            self.flush_table(table)

    # --- the whole portal -------------------------------------------------------------------------

    def generate(self) -> dict[str, int]:
        schema = resources.files("b24wh_simulator").joinpath("schema.sql").read_text(encoding="utf-8")
        self.db.executescript(schema)
        self.write_reference()
        self.write_team()
        self.stream_history()
        self.flush()
        self.write_tasks()
        self.db.execute("INSERT INTO meta (key, value) VALUES ('data_config', ?)", (json.dumps(asdict(self.cfg)),))
        self.db.commit()
        return {t: self.next_id[t] - 1 for t in COLUMNS if t != "planted_defects"}

    def label(self, ru: str, en: str) -> str:
        return ru if self.ru else en

    def write_tasks(self) -> None:
        """Portal tasks: the one behind each CRM task activity (same dates, same state), and each manager's own
        tasks on about a third of working days, a quarter of them bound to one of the manager's open deals.
        Own tasks come from a random stream of their own, so the rest of the portal is as without them."""
        tasks = [(title, 5 if completed == "Y" else 2, user, user, created, updated, updated if completed == "Y"
                  else None, deadline, owner_type, owner_id, act_id, 0)
                 for act_id, owner_type, owner_id, user, created, updated, deadline, completed, title
                 in self.db.execute("SELECT id, owner_type_id, owner_id, responsible_id, created, last_updated, "
                                    "deadline, completed, subject FROM activities WHERE type_id = 3 "
                                    "ORDER BY id")]
        r = Random(self.cfg.seed * 7919 + 17)
        cal = self.calendar
        titles = (self.label("Подготовить отчёт", "Prepare the report"),
                  self.label("Обновить прайс-лист", "Update the price list"),
                  self.label("Согласовать скидку", "Agree the discount"),
                  self.label("Проверить оплату", "Check the payment"))
        for manager in self.managers:
            deals = [row[0] for row in self.db.execute(
                "SELECT id FROM deals WHERE assigned_by_id = ? AND stage_semantic_id = 'P' AND is_deleted = 0 "
                "ORDER BY id", (manager.id,))]
            for i in range(cal.index(self.start), cal.index(self.anchor) + 1):
                if not cal.working[i] or r.random() > 0.35:
                    continue
                created = cal.starts[i] + 9 * HOUR + int(r.random() * 9 * HOUR)
                if created > self.anchor or (manager.left_at is not None and created > manager.left_at):
                    continue
                deadline = created + int(r.uniform(0.5, 6) * DAY)
                closed = created + int(r.uniform(0.1, 8) * DAY)
                done = closed <= self.anchor and r.random() < 0.85
                owner = r.choice(deals) if deals and r.random() < 0.25 else None
                tasks.append((r.choice(titles), 5 if done else r.choice((2, 3)), manager.id, manager.id, created,
                              closed if done else created, closed if done else None, deadline,
                              2 if owner else None, owner, None, 0))
        self.db.executemany("INSERT INTO tasks (title, status, responsible_id, created_by, created_date, "
                            "changed_date, closed_date, deadline, crm_owner_type_id, crm_owner_id, activity_id, "
                            "is_deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            sorted(tasks, key=lambda t: (t[4], t[10] or 0)))

    def write_reference(self) -> None:
        rows: list[tuple[Any, ...]] = []
        status_id = 101

        def add(entity: str, code: str, name: str, sort: int, system: str, category: int | None,
                semantics: str | None, extra_semantics: str | None, color: str) -> None:
            nonlocal status_id
            extra = json.dumps({"SEMANTICS": extra_semantics, "COLOR": color}) if extra_semantics else "[]"
            rows.append((status_id, entity, code, name, name, sort, system, category, color, semantics, extra))
            status_id += 2

        colors = ("#39A8EF", "#2FC6F6", "#55D0E0", "#47E4C2", "#FFA900", "#FFD200")
        for p in ref.PIPELINES:
            cat = None if p.id == 0 else p.id
            for i, st in enumerate(p.stages):
                add(p.entity_id, p.sid(st.status_id), self.label(st.name_ru, st.name_en), 10 * (i + 1),
                    "Y" if i == 0 else "N", cat, None, "process", colors[i % len(colors)])
            add(p.entity_id, p.sid(p.won.status_id), self.label(p.won.name_ru, p.won.name_en),
                10 * (len(p.stages) + 1), "Y", cat, "S", "success", "#7BD500")
            for j, f in enumerate(p.failures):
                add(p.entity_id, p.sid(f.status_id), self.label(f.name_ru, f.name_en),
                    10 * (len(p.stages) + 2 + j), "Y" if j == 0 else "N", cat, "F",
                    "apology" if f.apology else "failure", "#FF5752")
        inv_entity = f"SMART_INVOICE_STAGE_{ref.INVOICE_CATEGORY_ID}"
        for i, (code, ru, en, sem) in enumerate(ref.INVOICE_STAGES):
            extra = {"S": "success", "F": "failure"}.get(sem or "", "process")
            add(inv_entity, ref.invoice_stage(code), self.label(ru, en), 10 * (i + 1), "Y",
                ref.INVOICE_CATEGORY_ID, sem, extra, "#39A8EF")
        for i, (code, ru, en, sem) in enumerate(ref.LEAD_STATUSES):
            extra = {"S": "success", "F": "failure"}.get(sem or "", "process")
            add("STATUS", code, self.label(ru, en), 10 * (i + 1), "Y", None, sem, extra, "#39A8EF")
        for entity, items in (("SOURCE", [(c, r, e) for c, r, e, _ in ref.SOURCES]),
                              ("DEAL_TYPE", ref.DEAL_TYPES), ("CONTACT_TYPE", ref.CONTACT_TYPES),
                              ("COMPANY_TYPE", ref.COMPANY_TYPES), ("INDUSTRY", ref.INDUSTRIES),
                              ("EMPLOYEES", ref.EMPLOYEES)):
            for i, (code, ru, en) in enumerate(items):
                add(entity, code, self.label(ru, en), 10 * (i + 1), "N", None, None, None, "")
        self.db.executemany("INSERT INTO statuses VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)

        cats = [(p.id, self.label(p.name_ru, p.name_en), 100 * (i + 1) if p.id else 500, DEAL,
                 "Y" if p.id == 0 else "N") for i, p in enumerate(ref.PIPELINES)]
        cats.append((ref.INVOICE_CATEGORY_ID, self.label("Счета", "Invoices"), 500, SMART_INVOICE, "Y"))
        self.db.executemany("INSERT INTO categories VALUES (?,?,?,?,?)", cats)

        enum_id = 3157
        for i, (entity_id, name, user_type, en, ru) in enumerate(USERFIELDS):
            field_id = 5815 + 2 * i
            settings: dict[str, Any] = {"DEFAULT_VALUE": ""}
            if user_type == "enumeration":
                settings = {"DISPLAY": "LIST", "LIST_HEIGHT": 1, "CAPTION_NO_VALUE": "", "SHOW_NO_VALUE": "Y"}
            elif user_type == "boolean":
                settings = {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX", "LABEL": ["", ""], "LABEL_CHECKBOX": ""}
            self.db.execute("INSERT INTO userfields VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (field_id, entity_id, name, user_type, 100 + 10 * i, "N", "N",
                             json.dumps(settings), en, ru))
            options = USERFIELD_ENUMS.get(name, ())
            self.enum_ids[name] = {}
            for j, (xml_id, value_en, value_ru) in enumerate(options):
                self.db.execute("INSERT INTO userfield_enums VALUES (?,?,?,?,?,?)",
                                (enum_id, field_id, 10 * (j + 1), self.label(value_ru, value_en), "N", xml_id))
                self.enum_ids[name][xml_id] = enum_id
                enum_id += 2

    def write_team(self) -> None:
        rng = Random(f"{self.cfg.seed}:team")
        depts = [(i, self.label(ru, en), 500, parent, None) for i, parent, ru, en in ref.DEPARTMENTS]
        self.db.executemany("INSERT INTO departments VALUES (?,?,?,?,?)", depts)
        users: list[tuple[Any, ...]] = []
        used_names: set[tuple[str, str]] = set()

        def person(female: bool) -> tuple[str, str, str]:
            while True:
                first = rng.choice(ref.FEMALE_FIRST if female else ref.MALE_FIRST)
                last = rng.choice(ref.SURNAMES) + ("а" if female else "")
                if (first, last) not in used_names:
                    used_names.add((first, last))
                    patronymic = rng.choice(ref.FEMALE_PATRONYMICS if female else ref.MALE_PATRONYMICS)
                    return first, last, patronymic

        def add_user(uid: int, dept: int, position: str, active: bool, skill: float, level: float,
                     sloppy: float, registered: int) -> None:
            female = rng.random() < 0.45
            first, last, patronymic = person(female)
            login = "".join(ref.TRANSLIT.get(ch, ch) for ch in (first[0] + "." + last).lower())
            users.append((uid, int(active), first, last, patronymic, f"{login}@example-sales.ru",
                          self.anchor - rng.randint(0, 3 * DAY) if active else registered + 200 * DAY,
                          registered, "Y" if active and rng.random() < 0.5 else "N", "F" if female else "M",
                          None, f"+7 916 {uid:03d}-{rng.randint(10, 99)}-{rng.randint(10, 99)}", "",
                          position, json.dumps([dept]), "employee", skill, level, sloppy))

        registered = self.start - 400 * DAY
        add_user(1, 2, self.label("Коммерческий директор", "Sales director"), True, 1.0, 0.3, 1.0, registered)
        count = self.cfg.manager_count
        sales = ref.SALES_DEPARTMENTS
        for k in range(count):
            uid = k + 2
            dept = sales[k % len(sales)] if k < 3 else weighted(rng, sales, (0.45, 0.35, 0.2))
            skill, level, sloppy, weight = rng.uniform(0.85, 1.1), rng.uniform(0.8, 1.2), 1.0, rng.uniform(0.8, 1.2)
            left_at = None
            if k == 0:    # the star
                skill, level, weight = 1.18, 1.35, 1.5
            elif k == 1:  # nearly idle
                skill, level, weight = 0.75, 0.06, 0.35
            elif k == 2:  # sloppy with the CRM
                sloppy = 4.0
            elif k == 3:  # left the company 75 days ago
                left_at = self.anchor - 75 * DAY
            position = ref.POSITIONS_MANAGER[k % len(ref.POSITIONS_MANAGER)]
            add_user(uid, dept, position, left_at is None, skill, level, sloppy, registered + k * 3 * DAY)
            self.managers.append(Manager(uid, dept, skill, level, sloppy, weight, left_at))
        marketing_id = count + 2
        add_user(marketing_id, 6, self.label("Маркетолог", "Marketing manager"), True, 1, 0, 1, registered)
        self.db.executemany(f"INSERT INTO users VALUES ({', '.join('?' * 19)})", users)
        heads = {}
        for m in self.managers:
            if m.left_at is None:
                heads.setdefault(m.department, m.id)
        heads[2] = 1
        for dept, head in heads.items():
            self.db.execute("UPDATE departments SET uf_head = ? WHERE id = ?", (head, dept))
        head_title = self.label("Руководитель отдела продаж", "Head of sales")
        self.db.executemany("UPDATE users SET work_position = ? WHERE id = ?",
                            [(head_title, h) for d, h in heads.items() if d != 2])

    def load_team(self) -> None:
        """Reads managers back from the store (for live changes on an existing portal)."""
        rows = self.db.execute(
            "SELECT id, uf_department, skill, activity_level, sloppiness, active FROM users "
            "WHERE id > 1 AND user_type = 'employee' AND EXISTS (SELECT 1 FROM json_each(uf_department) j "
            "WHERE j.value IN (3, 4, 5))").fetchall()
        self.managers = [Manager(r[0], json.loads(r[1])[0], r[2], r[3], r[4], 1.0,
                                 None if r[5] else self.anchor) for r in rows]
        for table in COLUMNS:
            if table != "planted_defects":
                self.next_id[table] = (self.db.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1
        for name in USERFIELD_ENUMS:
            self.enum_ids[name] = dict(self.db.execute(
                "SELECT e.xml_id, e.id FROM userfield_enums e JOIN userfields f ON f.id = e.field_id "
                "WHERE f.field_name = ?", (name,)).fetchall())
        companies = self.db.execute("SELECT id, company_id FROM contacts ORDER BY id").fetchall()
        top = companies[-1][0] if companies else 0
        self.contact_company = array("i", [0] * (top + 1))
        for cid, comp in companies:
            self.contact_company[cid] = comp or 0

    # --- the stream of days -----------------------------------------------------------------------

    def stream_history(self) -> None:
        cal = self.calendar
        first, last = cal.index(self.start), cal.index(self.anchor)
        weights = []
        for i in range(first, last + 1):
            base = 1.0 if cal.working[i] else 0.08
            trend = 0.8 + 0.4 * (i - first) / max(1, last - first)
            weights.append(base * trend * self.rng.uniform(0.75, 1.25))
        total = sum(weights)
        deals_target = self.cfg.deals
        cumulative, made = 0.0, 0
        for offset, w in enumerate(weights):
            cumulative += w
            due = round(cumulative / total * deals_target) - made
            day_start = cal.starts[first + offset]
            lo = max(day_start, self.start)
            hi = min(day_start + DAY - 1, self.anchor - HOUR)
            if hi <= lo:
                continue
            moments = sorted(self.day_moment(lo, hi, cal.working[first + offset]) for _ in range(due))
            for t in moments:
                self.make_deal(t, self.anchor)
            made += due
            for _ in range(poisson(self.rng, deals_target / len(weights) * 0.55 * w / (total / len(weights)))):
                self.make_lead(self.day_moment(lo, hi, cal.working[first + offset]), converted=False)
            for _ in range(poisson(self.rng, deals_target / len(weights) * 0.12 * w / (total / len(weights)))):
                t = self.day_moment(lo, hi, cal.working[first + offset])
                self.make_contact(t, self.pick_manager(t, None), lead_id=None)

    def day_moment(self, lo: int, hi: int, working: bool) -> int:
        if working and self.rng.random() < 0.9:
            day_start = self.calendar.starts[self.calendar.index(lo)]
            t = day_start + 9 * HOUR + int(self.rng.random() * 10 * HOUR)
            if lo <= t <= hi:
                return t
        return lo + int(self.rng.random() * (hi - lo))

    def pick_manager(self, t: int, pipeline: int | None) -> Manager:
        active = [m for m in self.managers if m.left_at is None or m.left_at > t]
        weights = [m.weight * (3.0 if pipeline == 1 and m.department == 5 else 1.0) *
                   (0.4 if pipeline == 1 and m.department != 5 else 1.0) for m in active]
        return weighted(self.rng, active, weights)

    # --- people and organisations -------------------------------------------------------------------

    def person_name(self, female: bool, latin: bool) -> tuple[str, str, str | None]:
        if latin:
            return self.rng.choice(ref.LATIN_FIRST), self.rng.choice(ref.LATIN_LAST), None
        first = self.rng.choice(ref.FEMALE_FIRST if female else ref.MALE_FIRST)
        last = self.rng.choice(ref.SURNAMES) + ("а" if female else "")
        patr = self.rng.choice(ref.FEMALE_PATRONYMICS if female else ref.MALE_PATRONYMICS)
        return first, last, patr

    def phone_for(self, kind: str, entity_id: int) -> tuple[str, str]:
        """A valid phone unique to the record, written in one of the formats people use."""
        if kind == "contact":
            digits = f"9{(entity_id * 7_654_321 + 12_345) % 1_000_000_000:09d}"
        else:
            digits = f"495{(entity_id * 7_919 + 1_234) % 10_000_000:07d}"
        a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
        style = entity_id % 4
        formatted = (f"+7{digits}", f"+7 ({a}) {b}-{c}-{d}", f"8{digits}", f"8 {a} {b}{c}{d}")[style]
        return digits, formatted

    def plant(self, entity_type: str, entity_id: int, rule: str) -> None:
        self.put("planted_defects", (entity_type, entity_id, rule))

    def contact_points(self, kind: str, owner_type: int, entity_id: int, email_local: str,
                       sloppiness: float) -> str:
        """Writes phone/e-mail multifields with planted defects; returns the record's comment."""
        r = self.rng
        roll = r.random()
        rates = DEFECT_RATES
        comment = r.choice(CLEAN_COMMENTS)
        phone: str | None = None
        email: str | None = f"{email_local}.{entity_id}@mail-{entity_id % 7}.example.ru"
        digits, formatted = self.phone_for(kind, entity_id)
        edge = 0.0
        if roll < (edge := edge + rates["phone_in_comment"] * sloppiness):
            a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
            comment = r.choice(PHONE_IN_COMMENT_TEMPLATES).format(a=a, b=b, c=c, d=d)
            self.plant(kind, entity_id, "phone_in_comment")
        elif roll < (edge := edge + rates["no_phone_no_email"] * sloppiness):
            email = None
            self.plant(kind, entity_id, "no_phone_no_email")
        elif roll < (edge := edge + rates["bad_phone"] * sloppiness):
            phone = r.choice(BAD_PHONES)
            self.plant(kind, entity_id, "bad_phone")
        else:
            phone = formatted
            if r.random() < 0.25:
                email = None   # phone only: clean
            elif r.random() < 0.1:
                phone = None   # e-mail only: clean
            duplicates = [p for p in self.recent_phones if p[0] == kind]
            if duplicates and r.random() < rates["duplicate"] * sloppiness:
                phone = self.reformat(r.choice(duplicates)[1])
        if phone is not None:
            self.put("multifields", (self.new_id("multifields"), owner_type, entity_id, "PHONE",
                                     r.choice(("WORK", "MOBILE", "WORK", "HOME")), phone))
            if phone == formatted:
                self.recent_phones.append((kind, digits))
                if len(self.recent_phones) > 400:
                    del self.recent_phones[: len(self.recent_phones) - 400]
        if email is not None:
            self.put("multifields", (self.new_id("multifields"), owner_type, entity_id, "EMAIL", "WORK", email))
        return comment

    def reformat(self, digits: str) -> str:
        """The same number written differently, as a second manager would type it."""
        a, b, c, d = digits[:3], digits[3:6], digits[6:8], digits[8:]
        return self.rng.choice((f"8 ({a}) {b}-{c}-{d}", f"+7 {a} {b} {c} {d}", f"8{digits}"))

    def make_company(self, t: int, manager: Manager) -> int:
        cid = self.new_id("companies")
        r = self.rng
        suffix = "" if r.random() < 0.6 else f" {cid}"
        title = f"{r.choice(ref.COMPANY_FORMS)} «{r.choice(ref.COMPANY_WORDS)}{suffix}»"
        comment = self.contact_points("company", COMPANY, cid, "info", manager.sloppiness)
        city = r.choice(ref.CITIES)
        self.put("companies", (cid, title, weighted(r, [c[0] for c in ref.COMPANY_TYPES], (8, 1, 0.3, 1, 0.5)),
                               r.choice(ref.INDUSTRIES)[0], r.choice(ref.EMPLOYEES)[0],
                               round(r.lognormvariate(17, 1.2), -3), self.cfg.currency, comment, manager.id,
                               manager.id, manager.id, t, t, None, None, None, f"ул. Ленина, {cid % 120 + 1}",
                               city, "Россия", f"77{cid % 100_000_000:08d}"))
        return cid

    def make_contact(self, t: int, manager: Manager, lead_id: int | None, company_id: int | None = None) -> int:
        r = self.rng
        cid = self.new_id("contacts")
        latin = r.random() < 0.12
        female = r.random() < 0.45
        first, last, patr = self.person_name(female, latin)
        if r.random() < DEFECT_RATES["lowercase_name"] * manager.sloppiness:
            if r.random() < 0.5:
                first = first.lower()
            else:
                last = last.lower()
            self.plant("contact", cid, "lowercase_name")
        if company_id is None and r.random() < 0.45:
            company_id = self.make_company(t, manager) if r.random() < 0.6 or self.next_id["companies"] == 1 \
                else r.randint(1, self.next_id["companies"] - 1)
        local = "".join(ref.TRANSLIT.get(ch, ch) for ch in (first[:1] + last).lower() if ch.isalnum())
        comment = self.contact_points("contact", CONTACT, cid, local or "client", manager.sloppiness)
        while len(self.contact_company) <= cid:
            self.contact_company.append(0)
        self.contact_company[cid] = company_id or 0
        segment = self.enum_ids["UF_CRM_CLIENT_SEGMENT"][r.choice(("RETAIL", "SMB", "ENTERPRISE"))]
        birthdate = None
        if r.random() < 0.3:
            birthdate = self.calendar.starts[0] - r.randint(20 * 365, 60 * 365) * DAY
        self.put("contacts", (cid, r.choice(ref.POSITIONS_CONTACT) if r.random() < 0.7 else None, comment,
                              first, None if latin else patr, last, lead_id,
                              weighted(r, [c[0] for c in ref.CONTACT_TYPES], (10, 1, 1, 0.5)),
                              weighted(r, [s[0] for s in ref.SOURCES], [s[3] for s in ref.SOURCES]),
                              company_id or 0, birthdate, t, t, manager.id, manager.id, manager.id, None, None,
                              None, r.choice(ref.CITIES), "Россия", str(segment)))
        return cid

    # --- leads --------------------------------------------------------------------------------------

    def make_lead(self, t: int, converted: bool, converted_at: int | None = None,
                  manager: Manager | None = None, contact_id: int | None = None) -> int:
        r = self.rng
        manager = manager or self.pick_manager(t, None)
        lid = self.new_id("leads")
        first, last, patr = self.person_name(r.random() < 0.45, r.random() < 0.1)
        source = weighted(r, [s[0] for s in ref.SOURCES], [s[3] for s in ref.SOURCES])
        history = [(1, t, "NEW", "P")]
        if converted:
            assert converted_at is not None
            mid = t + (converted_at - t) // 2
            history += [(2, mid, "IN_PROCESS", "P"), (3, converted_at, "CONVERTED", "S")]
        else:
            age = self.anchor - t
            if age > 20 * DAY or r.random() < 0.3:
                t1 = min(self.anchor - HOUR, t + int(r.uniform(0.2, 12) * DAY))
                history.append((2, t1, "IN_PROCESS", "P"))
                if r.random() < 0.8:
                    t2 = min(self.anchor - 60, t1 + int(r.uniform(0.5, 15) * DAY))
                    if r.random() < 0.75:
                        history.append((3, t2, "JUNK", "F"))
                    else:
                        history.append((2, t2, "PROCESSED", "P"))
        for type_id, when, status, sem in history:
            self.put("stage_history", (self.new_id("stage_history"), LEAD, type_id, lid, when, None, sem, status, 0))
        last_t, status, sem = history[-1][1], history[-1][2], history[-1][3]
        closed_at = last_t if sem in ("S", "F") else None
        lead_activities = self.make_activities(LEAD, lid, manager, t, closed_at or self.anchor,
                                               open_at_end=closed_at is None, rate_scale=0.35)
        self.put("leads", (lid, f"{self.label('Лид', 'Lead')} #{lid}: {first} {last}", first, patr, last,
                           None, 0, contact_id or 0, None, source, status, None, None, self.cfg.currency,
                           round(r.lognormvariate(11, 1), -2) if r.random() < 0.5 else 0.0,
                           manager.id, manager.id, manager.id, t, max(last_t, self.floor), closed_at, sem, manager.id,
                           last_t,
                           None, r.choice(ref.CITIES), "Россия", lead_activities, manager.id if lead_activities
                           else None, f"https://example-sales.ru/lp/{lid % 9}"))
        if r.random() < 0.85:
            _, formatted = self.phone_for("contact", 10_000_000 + lid)
            self.put("multifields", (self.new_id("multifields"), LEAD, lid, "PHONE", "WORK", formatted))
        return lid

    # --- deals --------------------------------------------------------------------------------------

    def make_deal(self, t: int, horizon: int, pipeline_id: int | None = None) -> int:
        r = self.rng
        pipe = self.pipelines[pipeline_id] if pipeline_id is not None else weighted(
            r, ref.PIPELINES, [p.share for p in ref.PIPELINES])
        manager = self.pick_manager(t, pipe.id)
        deal_id = self.new_id("deals")
        lead_id = None
        returning = self.next_id["contacts"] > 20 and r.random() < 0.25
        if returning:
            contact_id = r.randint(1, self.next_id["contacts"] - 1)
            company_id = self.contact_company[contact_id] if contact_id < len(self.contact_company) else 0
        else:
            if r.random() < 0.35:
                lead_t = max(self.start, t - int(r.uniform(0.3, 10) * DAY))
                lead_id = self.next_id["leads"]
                contact_id = self.make_contact(t, manager, lead_id=lead_id)
                self.make_lead(lead_t, converted=True, converted_at=t, manager=manager, contact_id=contact_id)
            else:
                contact_id = self.make_contact(t, manager, lead_id=None)
            company_id = self.contact_company[contact_id]
        amount = round(r.lognormvariate(math.log(pipe.amount_median), 0.8), -2)
        events, status, _ = self.walk(pipe, manager, t, horizon)
        _, last_t, last_pipe, last_stage, last_sem = events[-1]
        closed = status != "open"
        close_t = last_t if closed else None
        for type_id, when, p, stage, sem in events:
            self.put("stage_history", (self.new_id("stage_history"), DEAL, type_id, deal_id, when, p.id, sem,
                                       stage, 0))
        activity_end = close_t or horizon
        last_activity = self.make_activities(DEAL, deal_id, manager, t, activity_end, open_at_end=not closed,
                                             rate_scale=1.0)
        self.make_invoices(deal_id, events, status, manager, amount, contact_id, company_id, horizon)
        if r.random() < 0.25:
            for _ in range(r.randint(1, 3)):
                when = self.calendar.working_moment(r, t, activity_end)
                if when is not None:
                    comment_id = self.new_id("timeline_comments")
                    self.put("timeline_comments", (comment_id, "deal", deal_id, when, r.choice(COMMENTS), manager.id,
                                                   self.comment_files(comment_id, when, manager.id)))
        modify = last_t
        if r.random() < 0.3:   # a later edit, somewhere between the last move and the present
            modify = last_t + int(r.random() * max(0, min(5 * DAY, horizon - last_t)))
        loss_reason = None
        if status == "lost" and r.random() < 0.75:
            failure = next((f for f in last_pipe.failures if last_pipe.sid(f.status_id) == last_stage), None)
            code = failure.loss_reason if failure and r.random() < 0.7 else r.choice(
                list(self.enum_ids["UF_CRM_LOSS_REASON"]))
            loss_reason = str(self.enum_ids["UF_CRM_LOSS_REASON"][code])
        planned_close = t + int(r.uniform(10, 60) * DAY)
        title = f"{self.label('Сделка', 'Deal')} #{deal_id}: {r.choice(ref.PRODUCTS)}"
        probability = next((s.probability for s in last_pipe.stages if last_pipe.sid(s.status_id) == last_stage),
                           100 if status == "won" else 0)
        deleted = 1 if r.random() < 0.01 else 0
        self.put("deals", (
            deal_id, title, r.choice(ref.DEAL_TYPES)[0], last_pipe.id, last_stage, last_sem,
            "Y" if returning else "N", probability, self.cfg.currency, amount, company_id or 0, contact_id,
            self.calendar.starts[self.calendar.index(t)], self.calendar.starts[self.calendar.index(close_t)]
            if close_t else self.calendar.starts[self.calendar.index(planned_close)],
            "Y" if closed else "N", "", manager.id, manager.id, manager.id, manager.id, t, max(modify, t),
            last_t, weighted(r, [s[0] for s in ref.SOURCES], [s[3] for s in ref.SOURCES]), None, lead_id,
            last_activity, manager.id if last_activity else None, loss_reason,
            r.choice(ref.CHANNELS), self.calendar.starts[self.calendar.index(close_t)] if status == "won" and close_t
            else None, int(r.random() < 0.15), round(r.uniform(8, 35), 1), deleted))
        if deleted:
            self.flush()
            self.db.execute("UPDATE stage_history SET is_deleted = 1 WHERE entity_type_id = 2 AND owner_id = ?",
                            (deal_id,))
            self.db.execute("UPDATE activities SET is_deleted = 1 WHERE owner_type_id = 2 AND owner_id = ?",
                            (deal_id,))
        return deal_id

    def walk(self, pipe: ref.Pipeline, manager: Manager, t: int,
             horizon: int) -> tuple[list[tuple[int, int, ref.Pipeline, str, str]], str, int]:
        """A deal's stage history: (type, time, pipeline, stage id, semantics) events."""
        r = self.rng
        idx, status, reopened, moved = 0, "open", False, False
        events = [(1, t, pipe, pipe.sid(pipe.stages[0].status_id), "P")]
        while True:
            if status == "open":
                stage = pipe.stages[idx]
                dwell = r.lognormvariate(math.log(stage.dwell_hours * HOUR), 0.9)
                if r.random() < 0.12:
                    dwell *= r.uniform(5, 40)    # stalled: nobody pushes it on
                t_next = t + int(dwell)
                if t_next >= horizon:
                    break
                t = t_next
                if not moved and pipe.id == 0 and idx >= 1 and r.random() < 0.02:
                    pipe, idx, moved = self.pipelines[2], 0, True
                    events.append((5, t, pipe, pipe.sid(pipe.stages[0].status_id), "P"))
                    continue
                last = len(pipe.stages) - 1
                advance = min(0.97, stage.conversion * manager.skill)
                u = r.random()
                if u < advance:
                    if idx == last:
                        status = "won"
                        events.append((3, t, pipe, pipe.sid(pipe.won.status_id), "S"))
                    else:
                        idx += 2 if idx + 2 <= last and r.random() < 0.07 else 1
                        events.append((2, t, pipe, pipe.sid(pipe.stages[idx].status_id), "P"))
                elif u < advance + 0.05 and idx > 0:
                    idx -= 1
                    events.append((2, t, pipe, pipe.sid(pipe.stages[idx].status_id), "P"))
                else:
                    status = "lost"
                    failure = weighted(r, pipe.failures, [f.weight for f in pipe.failures])
                    events.append((3, t, pipe, pipe.sid(failure.status_id), "F"))
            else:
                if reopened or r.random() > 0.03:
                    break
                t_re = t + int(r.uniform(3, 30) * DAY)
                if t_re >= horizon:
                    break
                t, reopened, status = t_re, True, "open"
                events.append((2, t, pipe, pipe.sid(pipe.stages[idx].status_id), "P"))
        return events, status, idx

    def comment_files(self, comment_id: int, when: int, author_id: int) -> str:
        """Most comments carry no files (`{}`); some carry a scan, keyed by file id as the portal does."""
        if self.rng.random() > 0.15:
            return "{}"
        file_id = 9000 + comment_id
        url = f"https://example-sales.bitrix24.ru/disk/showFile/{file_id}/?&ncc=1&filename=scan.pdf"
        return json.dumps({str(file_id): {
            "id": file_id, "date": datetime.fromtimestamp(when, self.tz).isoformat(), "type": "file",
            "name": "scan.pdf", "size": 48_213, "image": False, "authorId": author_id, "authorName": "",
            "urlPreview": "", "urlShow": url, "urlDownload": url.replace("showFile", "downloadFile")}})

    # --- activities ---------------------------------------------------------------------------------

    def make_activities(self, owner_type: int, owner_id: int, manager: Manager, t0: int, t1: int,
                        open_at_end: bool, rate_scale: float) -> int | None:
        """Activities of one CRM record over [t0, t1]; returns the time of the last one done."""
        r = self.rng
        horizon = min(t1, self.anchor)
        span_days = max(0.0, (horizon - t0) / DAY)
        lam = (2.2 + 0.28 * min(span_days, 45)) * manager.activity_level * rate_scale
        count = poisson(r, lam)
        if manager.left_at is not None:
            horizon = min(horizon, manager.left_at)
        last_done: int | None = None
        kinds = [k for k in ACTIVITY_MIX]
        shares = [k[5] for k in ACTIVITY_MIX]
        for _ in range(count):
            when = self.calendar.working_moment(r, t0, horizon)
            if when is None:
                continue
            kind = weighted(r, kinds, shares)
            overdue = kind[0] in PLANNED_KINDS and r.random() < 0.05
            done_at = self.write_activity(owner_type, owner_id, manager.id, kind, when, completed=not overdue)
            if done_at is not None:
                last_done = max(last_done or 0, done_at)
        if open_at_end and t1 >= self.anchor and manager.left_at is None:
            diligence = min(0.92, 0.78 * manager.activity_level ** 0.5)
            if r.random() < diligence * rate_scale:
                when = self.calendar.working_moment(r, self.anchor + HOUR, self.anchor + 10 * DAY)
                if when is not None:
                    kind = weighted(r, [k for k in ACTIVITY_MIX if k[0] in ("todo", "meeting", "task", "call_out")],
                                    (0.5, 0.15, 0.15, 0.2))
                    self.write_activity(owner_type, owner_id, manager.id, kind, when, completed=False,
                                        created=self.anchor - int(r.uniform(0.1, 5) * DAY))
        return last_done

    def write_activity(self, owner_type: int, owner_id: int, user_id: int, kind: tuple[Any, ...], when: int,
                       completed: bool, created: int | None = None) -> int | None:
        r = self.rng
        name, type_id, provider, provider_type, direction, _ = kind
        start, end, deadline = when, when, when
        if name in ("call_out", "call_in"):
            end = when + int(r.lognormvariate(math.log(150), 0.9)) + 5
        elif name == "meeting":
            end = when + HOUR
        elif name == "task":
            deadline = end = when + 2 * DAY
        planned = name in ("meeting", "task", "todo") or not completed
        created_at = created if created is not None else (when - int(r.uniform(0.05, 3) * DAY) if planned else when)
        if name == "call_missed":
            completed = r.random() < 0.6 and completed
        activity_id = self.new_id("activities")
        if name == "call_out" and completed and activity_id % 9 == 4:
            end = start    # nobody answered: telephony records it as failed (603-S) with no duration
        # Work is marked done when it ends; what would end after the portal's present was finished early.
        done_at = None
        if completed:
            done_at = end if end <= self.anchor else when + int(r.random() * max(0, self.anchor - when))
        created_at = max(created_at, self.floor)
        updated = max(done_at if done_at is not None else created_at, self.floor)
        self.put("activities", (activity_id, owner_id, owner_type, type_id, provider, provider_type,
                                SUBJECTS[name], created_at, updated, start, end, deadline,
                                "Y" if completed else "N", user_id, 2, "", direction, user_id, user_id, 0))
        return done_at

    # --- smart invoices -----------------------------------------------------------------------------

    def make_invoices(self, deal_id: int, events: list[tuple[int, int, ref.Pipeline, str, str]], status: str,
                      manager: Manager, amount: float, contact_id: int, company_id: int, horizon: int) -> None:
        """Invoices issued when a deal enters an invoicing stage; paid when it moves on, declined if lost."""
        r = self.rng
        triggers = {"PREPAYMENT_INVOICE": 0.3, "FINAL_INVOICE": 0.7, "C2:INVOICE": 1.0}
        for i, (_, when, pipe, stage, _sem) in enumerate(events):
            share = triggers.get(stage)
            key_won = pipe.id == 1 and stage == pipe.sid(pipe.won.status_id)
            if share is None and not key_won:
                continue
            share = share or 1.0
            later = events[i + 1] if i + 1 < len(events) else None
            if key_won:
                paid_at = when + int(r.uniform(1, 14) * DAY)
                outcome = ("P", paid_at) if paid_at < horizon else (None, None)
            elif later is None:
                outcome = (None, None)
            elif later[4] == "F":
                outcome = ("D", later[1])
            else:
                outcome = ("P", later[1])
            self.write_invoice(deal_id, when, outcome, manager, round(amount * share, 2), contact_id, company_id,
                               horizon)

    def write_invoice(self, deal_id: int, created: int, outcome: tuple[str | None, int | None], manager: Manager,
                      amount: float, contact_id: int, company_id: int, horizon: int) -> None:
        r = self.rng
        inv_id = self.new_id("invoices")
        history = [(1, created, "N", "P")]
        sent_at = created + int(r.uniform(0.1, 1) * DAY)
        final_code, final_at = outcome
        if sent_at < horizon and (final_at is None or sent_at < final_at):
            history.append((2, sent_at, "S", "P"))
        if final_code is not None and final_at is not None:
            history.append((3, final_at, final_code, "S" if final_code == "P" else "F"))
        for type_id, when, code, sem in history:
            self.put("stage_history", (self.new_id("stage_history"), SMART_INVOICE, type_id, inv_id, when,
                                       ref.INVOICE_CATEGORY_ID, sem, ref.invoice_stage(code), 0))
        prev = ref.invoice_stage(history[-2][2]) if len(history) > 1 else None
        last_t = history[-1][1]
        self.put("invoices", (inv_id, f"{self.label('Счёт', 'Invoice')} #{inv_id}", f"СЧ-{inv_id:06d}",
                              ref.invoice_stage(history[-1][2]), prev, ref.INVOICE_CATEGORY_ID,
                              self.calendar.starts[self.calendar.index(created)],
                              self.calendar.starts[self.calendar.index(created + 10 * DAY)], amount,
                              self.cfg.currency, company_id or 0, contact_id, "", manager.id, last_t, deal_id,
                              created, last_t, manager.id, manager.id, manager.id))


def generate(path: str, cfg: DataConfig) -> dict[str, int]:
    """Creates the portal store at `path` (which must not exist) and returns rows written per table."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = OFF")
        stats = Generator(db, cfg).generate()
        db.execute("PRAGMA synchronous = NORMAL")
        return stats
    finally:
        db.close()
