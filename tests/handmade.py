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

from simulator.client import SimulatorProcess
from simulator.config import DataConfig
from simulator.generator import Generator

TZ = ZoneInfo("Europe/Moscow")
NOW = int(datetime(2026, 3, 20, 12, 0, tzinfo=TZ).timestamp())
NOW_LOCAL = datetime(2026, 3, 20, 12, 0)


def at(day: int, hour: int = 10, month: int = 3) -> int:
    """Unix time of a day in March 2026 (portal time)."""
    return int(datetime(2026, month, day, hour, 0, tzinfo=TZ).timestamp())


def new_store(db: sqlite3.Connection) -> None:
    """Schema, reference data and team of a hand-made portal."""
    config = DataConfig(language="en", managers=8, seed=1, anchor=NOW_LOCAL.isoformat())
    db.executescript(resources.files("simulator").joinpath("schema.sql").read_text(encoding="utf-8"))
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
