"""Hand-made portals: a simulator store written row by row, whose answers the tests work out by hand.

The store has the generated reference data (pipelines and stages, custom fields) and team (users 1-10:
1 the director, 2-9 managers, 5 of whom left, 10 marketing); the test adds deals, history, activities
and contacts. `serve()` runs the simulator on it, so the pipeline reads it over HTTP like any portal.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from b24wh_simulator.client import SimulatorProcess
from b24wh_simulator.config import DataConfig
from b24wh_simulator.generator import Generator
from pipelines.bitrix24.pipeline import load
from warehouse.build import build

TZ = ZoneInfo("Europe/Moscow")
NOW = int(datetime(2026, 3, 20, 12, 0, tzinfo=TZ).timestamp())
NOW_LOCAL = datetime(2026, 3, 20, 12, 0)


def at(day: int, hour: int = 10, month: int = 3) -> int:
    """Unix time of a day in March 2026 (portal time)."""
    return int(datetime(2026, month, day, hour, 0, tzinfo=TZ).timestamp())


def new_store(db: sqlite3.Connection) -> None:
    """Schema, reference data and team of a hand-made portal."""
    config = DataConfig(language="en", managers=8, seed=1, anchor=NOW_LOCAL.isoformat())
    db.executescript(resources.files("b24wh_simulator").joinpath("schema.sql").read_text(encoding="utf-8"))
    generator = Generator(db, config)
    generator.write_reference()
    generator.write_team()
    db.execute("INSERT INTO meta (key, value) VALUES ('data_config', ?)", (json.dumps(asdict(config)),))


def insert(db: sqlite3.Connection, table: str, **values: Any) -> int:
    cursor = db.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                        tuple(values.values()))
    return int(cursor.lastrowid or 0)


def deal(db: sqlite3.Connection, deal_id: int, path: list[tuple[int, str]], *, deleted: int = 0,
         manager: int = 7, amount: float = 1000.0, **fields: Any) -> None:
    """A deal and its stage history; `path` is (day in March, stage id), the first entry creates it."""
    sem_of = {r[0]: r[1] or "P" for r in db.execute("SELECT status_id, semantics FROM statuses")}
    category = lambda stage: int(stage[1]) if stage.startswith("C") and ":" in stage else 0  # noqa: E731
    for i, (day, stage) in enumerate(path):
        previous = category(path[i - 1][1]) if i else category(stage)
        type_id = 1 if i == 0 else 5 if category(stage) != previous else 3 if sem_of[stage] != "P" else 2
        insert(db, "stage_history", entity_type_id=2, type_id=type_id, owner_id=deal_id, created_time=at(day),
               category_id=category(stage), stage_semantic_id=sem_of[stage], stage_id=stage, is_deleted=deleted)
    last = path[-1][1]
    insert(db, "deals", id=deal_id, title=f"Deal {deal_id}", category_id=category(last), stage_id=last,
           stage_semantic_id=sem_of[last], is_return_customer="N", closed="N" if sem_of[last] == "P" else "Y",
           assigned_by_id=manager, date_create=at(path[0][0]), date_modify=at(path[-1][0]), opportunity=amount,
           currency_id="RUB", is_deleted=deleted, **fields)


def activity(db: sqlite3.Connection, owner: int, type_id: int, direction: int, start: int, *, duration: int = 0,
             completed: str = "Y", deadline: int | None = None, created: int | None = None,
             updated: int | None = None, deleted: int = 0, user: int = 7) -> None:
    insert(db, "activities", owner_id=owner, owner_type_id=2, type_id=type_id, provider_id="X", subject="Work",
           created=created or start, last_updated=updated or start, start_time=start, end_time=start + duration,
           deadline=deadline if deadline is not None else start, completed=completed, responsible_id=user,
           priority=2, direction=direction, is_deleted=deleted)
    if type_id == 3:   # a CRM task activity: a task of the Tasks module stands behind it, as on a portal
        activity_id = db.execute("SELECT max(id) FROM activities").fetchone()[0]
        task(db, owner, created or start, deadline if deadline is not None else start,
             closed=(updated or start) if completed == "Y" else None, user=user, activity_id=activity_id)


def task(db: sqlite3.Connection, deal_id: int | None, created: int, deadline: int | None, *, closed: int | None = None,
         user: int = 7, activity_id: int | None = None, deleted: int = 0) -> None:
    """A task of the Tasks module, bound to a deal (or to nothing)."""
    insert(db, "tasks", title="Work", status=5 if closed is not None else 2, responsible_id=user, created_by=user,
           created_date=created, changed_date=closed or created, closed_date=closed, deadline=deadline,
           crm_owner_type_id=2 if deal_id else None, crm_owner_id=deal_id, activity_id=activity_id,
           is_deleted=deleted)


def contact(db: sqlite3.Connection, contact_id: int, name: str, last_name: str, *, phones: tuple[str, ...] = (),
            emails: tuple[str, ...] = (), comments: str = "", post: str | None = "Manager", deleted: int = 0,
            manager: int = 7, day: int = 1) -> None:
    insert(db, "contacts", id=contact_id, name=name, last_name=last_name, comments=comments, post=post,
           date_create=at(day), date_modify=at(day), assigned_by_id=manager, is_deleted=deleted)
    points(db, 3, contact_id, phones, emails)


def company(db: sqlite3.Connection, company_id: int, title: str, *, phones: tuple[str, ...] = (),
            emails: tuple[str, ...] = (), comments: str = "", industry: str | None = "IT", manager: int = 7,
            day: int = 1) -> None:
    insert(db, "companies", id=company_id, title=title, comments=comments, industry=industry, date_create=at(day),
           date_modify=at(day), assigned_by_id=manager)
    points(db, 4, company_id, phones, emails)


def points(db: sqlite3.Connection, owner_type: int, owner: int, phones: tuple[str, ...],
           emails: tuple[str, ...]) -> None:
    for kind, values in (("PHONE", phones), ("EMAIL", emails)):
        for value in values:
            insert(db, "multifields", entity_type_id=owner_type, entity_id=owner, type_id=kind, value_type="WORK",
                   value=value)


def enum_id(db: sqlite3.Connection, field: str, xml_id: str) -> str:
    """The option id of a custom enumeration field, by its XML id."""
    row = db.execute("SELECT e.id FROM userfield_enums e JOIN userfields f ON f.id = e.field_id "
                     "WHERE f.field_name = ? AND e.xml_id = ?", (field, xml_id)).fetchone()
    return str(row[0])


class HandPortal:
    """A hand-made portal in a file, served by the simulator once written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path)
        new_store(self.db)

    def serve(self) -> SimulatorProcess:
        self.db.commit()
        self.db.close()
        return SimulatorProcess(store=self.path, clock="frozen", anchor=NOW_LOCAL.isoformat(), rate=1000,
                                burst=100000, operating_limit=0)


def handmade_warehouse(folder: Path) -> Path:
    """The sales floor below, loaded from the simulator into `folder/warehouse.duckdb`, core tables built.

    Deals (pipeline 0 unless named; created 1 March 2026; manager 7 unless named; 1,000 RUB unless named):
      1  NEW > PREPARATION > EXECUTING > WON                 skips a stage, won
      2  NEW > PREPARATION > NEW > LOSE                       backward move, then lost (from NEW)
      3  NEW > LOSE > PREPARATION > PREPAYMENT_INVOICE        lost, reopened, open now
      4  NEW > PREPARATION > C2:NEW > C2:OFFER > C2:WON        moved to pipeline 2, won there
      5  NEW > PREPARATION                                    deleted
      6  NEW > APOLOGY                                        lost at once, manager 8
      7  NEW > FINAL_INVOICE > WON > FINAL_INVOICE            won, then reopened
      8  NEW > WON                                            won straight away
      9  NEW > PREPARATION > LOSE                             lost from PREPARATION, 500 RUB, reason "Too expensive"
    Activities, contacts and companies are described where they are written.
    """
    portal = HandPortal(folder / "portal.sqlite3")
    db = portal.db
    deal(db, 1, [(1, "NEW"), (2, "PREPARATION"), (4, "EXECUTING"), (6, "WON")])
    deal(db, 2, [(1, "NEW"), (2, "PREPARATION"), (3, "NEW"), (5, "LOSE")])
    deal(db, 3, [(1, "NEW"), (2, "LOSE"), (9, "PREPARATION"), (10, "PREPAYMENT_INVOICE")])
    deal(db, 4, [(1, "NEW"), (2, "PREPARATION"), (3, "C2:NEW"), (4, "C2:OFFER"), (5, "C2:WON")])
    deal(db, 5, [(1, "NEW"), (2, "PREPARATION")], deleted=1)
    deal(db, 6, [(1, "NEW"), (2, "APOLOGY")], manager=8)
    deal(db, 7, [(1, "NEW"), (3, "FINAL_INVOICE"), (5, "WON"), (8, "FINAL_INVOICE")])
    deal(db, 8, [(1, "NEW"), (7, "WON")])
    deal(db, 9, [(1, "NEW"), (2, "PREPARATION"), (6, "LOSE")], amount=500.0,
         uf_crm_loss_reason=enum_id(db, "UF_CRM_LOSS_REASON", "PRICE"))
    # Forgotten deals: 3 has only an overdue to-do and an overdue task from the Tasks module, and a task
    # closed long ago. 7 has only finished work as activities, but an open task from the Tasks module (due
    # tomorrow) bound to it: not forgotten. 2 and 9 are closed.
    activity(db, 3, 6, 0, at(15), completed="N", deadline=at(15))
    task(db, 3, at(9, 9), at(11))
    task(db, 3, at(9, 9), at(12), closed=at(9, 12))
    activity(db, 7, 2, 2, at(10), duration=60)
    task(db, 7, at(9, 9), NOW + 86_400)
    # Deal 1 (open work planned tomorrow keeps nothing forgotten: it is won anyway) and manager 7's week.
    activity(db, 1, 2, 2, at(16, 10), duration=120)                      # outgoing call, 2 min
    activity(db, 1, 2, 1, at(16, 11), duration=60)                       # incoming call, 1 min
    activity(db, 1, 2, 1, at(16, 12), completed="N")                     # missed: incoming, zero length
    activity(db, 1, 2, 2, at(16, 13), completed="N")                     # a planned call that did not happen
    activity(db, 1, 4, 2, at(16, 14))                                    # e-mail out
    activity(db, 1, 4, 1, at(17, 9))                                     # e-mail in
    activity(db, 1, 1, 0, at(17, 15), duration=3600)                     # meeting
    activity(db, 1, 3, 0, at(18), created=at(16, 9), updated=at(18, 16))   # task created 16th, closed 18th
    activity(db, 1, 6, 0, NOW + 86_400, completed="N", created=at(17, 10))  # to-do created 17th, still open
    activity(db, 1, 2, 2, at(16, 15), duration=30, deleted=1)            # deleted: not counted
    # Data quality. Contacts (post filled unless named):
    contact(db, 1, "Иван", "Петров", phones=("+7 (912) 345-67-89",))                 # duplicate of 2 by phone
    contact(db, 2, "Анна", "Смирнова", phones=("89123456789",))                      # duplicate of 1
    contact(db, 3, "иван", "Сидоров", emails=("ivan@x.ru",), post=None)              # lower case; no post
    contact(db, 4, "John", "smith", phones=("8 912 3456780",))                       # lower-case Latin surname
    contact(db, 5, "Олег", "Орлов", emails=("oleg@x.ru",), comments="тел. 8 912 3456781")    # phone in comments
    contact(db, 6, "Пётр", "Ёлкин", comments="WhatsApp +44 20 7946 0958")            # ... and nothing in fields
    contact(db, 7, "Ольга", "Белова", phones=("12-34",), emails=("A@x.ru",))         # bad phone; e-mail shared
    contact(db, 8, "Мария", "Белова", emails=("a@X.ru ",))                           # duplicate of 7 by e-mail
    contact(db, 9, "Иван", "Петров", phones=("+7 912 345 67 89",), deleted=1)        # deleted: no rule counts
    contact(db, 10, "Юлия", "Носова", emails=("yu@x.ru",), comments="Просит скидку 15% до 01.04")  # no phone there
    contact(db, 11, "Лев", "Львов", phones=("+7 999 111-22-33",), comments="моб. 8-912-345-67-82")  # field filled
    contact(db, 12, "Вера", "Зуева", emails=("vera@x.ru",), comments="Звонить на мобильный +7 (912) 345-67-83")
    contact(db, 13, "Глеб", "Жуков", emails=("gleb@x.ru",), comments="Просил перезвонить: 89123456784, после обеда")
    company(db, 1, "ооо ромашка", industry=None)            # lower case, no phone or e-mail, no industry
    company(db, 2, "ООО «Вектор»", phones=("8 (495) 123-45-67",))
    with portal.serve() as simulator:
        target = folder / "warehouse.duckdb"
        load(target, credentials=simulator.webhook_url, progress="log")
    build(target)
    return target
