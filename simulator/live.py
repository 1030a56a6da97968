"""Changes to a living portal at its current time: what users of the CRM do all day.

Each change kind touches the store the way Bitrix24 would: a stage move appends stage history and
bumps `DATE_MODIFY`/`MOVED_TIME`; a deletion makes a deal vanish with its history and activities
(the recycle bin keeps them, so a restore brings them back); a department change edits the user.
Choices are drawn from a seeded generator, so the same sequence of calls gives the same portal.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from random import Random
from typing import Any

from b24wh_simulator import reference as ref
from b24wh_simulator.catalogue import DEAL
from b24wh_simulator.config import DataConfig
from b24wh_simulator.generator import ACTIVITY_MIX, DAY, HOUR, Calendar, Generator

# Change kinds accepted by `apply`, in the order they are applied.
CHANGE_KINDS = ("new_deals", "new_leads", "new_contacts", "new_activities", "new_calls", "new_tasks",
                "complete_activities", "stage_moves", "wins", "losses", "field_edits", "department_changes",
                "deletions", "restores")

# Tables a deletion or restore may target, with their entity type id for bound activities.
DELETABLE = {"deal": ("deals", DEAL), "lead": ("leads", 1), "contact": ("contacts", 3), "company": ("companies", 4),
             "activity": ("activities", None), "task": ("tasks", None)}


@dataclass(frozen=True)
class Change:
    kind: str
    entity: str
    id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LivePortal:
    """Applies changes to the store at the portal time `now()`."""

    def __init__(self, db: sqlite3.Connection, cfg: DataConfig, now: Callable[[], int]) -> None:
        self.db = db
        self.cfg = cfg
        self.now = now
        self.rng = Random(f"{cfg.seed}:live")
        self.gen = Generator(db, cfg, rng=self.rng)
        self.gen.load_team()
        self.gen.calendar = Calendar(cfg, self.gen.start, self.gen.anchor + 800 * DAY)

    def apply(self, counts: dict[str, Any]) -> list[Change]:
        unknown = set(counts) - set(CHANGE_KINDS)
        if unknown:
            raise ValueError(f"unknown change kinds: {sorted(unknown)}; known: {', '.join(CHANGE_KINDS)}")
        now = self.now()
        self.gen.anchor = now
        self.gen.floor = now
        changes: list[Change] = []
        for kind in CHANGE_KINDS:
            spec = counts.get(kind)
            if not spec:
                continue
            if kind in ("deletions", "restores"):
                targets = spec if isinstance(spec, dict) else {"deal": int(spec)}
                for entity, n in targets.items():
                    changes += getattr(self, kind)(entity, int(n), now)
            else:
                changes += getattr(self, kind)(int(spec), now)
        self.gen.flush()
        self.db.commit()
        return changes

    # --- helpers -----------------------------------------------------------------------------------

    def pick(self, table: str, where: str, n: int) -> list[tuple[Any, ...]]:
        """Up to n distinct random rows matching `where`, chosen by the seeded generator."""
        top = self.db.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
        if top == 0:
            return []
        picked: dict[int, tuple[Any, ...]] = {}
        attempts = 0
        while len(picked) < n and attempts < 20 * n + 50:
            attempts += 1
            probe = self.rng.randint(1, top)
            row = self.db.execute(f"SELECT * FROM {table} WHERE id >= ? AND {where} ORDER BY id LIMIT 1",
                                  (probe,)).fetchone()
            if row is not None:
                picked[row[0]] = row
        if len(picked) < n:   # sparse matches: take what exists, in id order
            for row in self.db.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY id LIMIT ?", (n * 4,)):
                if len(picked) >= n:
                    break
                picked.setdefault(row[0], row)
        return list(picked.values())[:n]

    def open_deals(self, n: int) -> list[dict[str, Any]]:
        rows = self.pick("deals", "is_deleted = 0 AND stage_semantic_id = 'P'", n)
        cols = [d[0] for d in self.db.execute("SELECT * FROM deals LIMIT 0").description]
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def pipeline_of(self, category_id: int) -> ref.Pipeline:
        return self.gen.pipelines[category_id]

    def history(self, deal_id: int, type_id: int, now: int, pipe: ref.Pipeline, stage: str, sem: str) -> None:
        self.gen.put("stage_history", (self.gen.new_id("stage_history"), DEAL, type_id, deal_id, now, pipe.id, sem,
                                       stage, 0))

    # --- change kinds ------------------------------------------------------------------------------

    def new_deals(self, n: int, now: int) -> list[Change]:
        return [Change("new_deal", "deal", self.gen.make_deal(now, now + 1)) for _ in range(n)]

    def new_leads(self, n: int, now: int) -> list[Change]:
        return [Change("new_lead", "lead", self.gen.make_lead(now, converted=False)) for _ in range(n)]

    def new_contacts(self, n: int, now: int) -> list[Change]:
        return [Change("new_contact", "contact", self.gen.make_contact(now, self.gen.pick_manager(now, None), None))
                for _ in range(n)]

    def _activity(self, n: int, now: int, kinds: tuple[str, ...], label: str) -> list[Change]:
        changes = []
        for deal in self.open_deals(n):
            chosen = self.rng.choice(kinds)
            kind = next(k for k in ACTIVITY_MIX if k[0] == chosen)
            activity_id = self.gen.next_id["activities"]
            self.gen.write_activity(DEAL, deal["id"], deal["assigned_by_id"], kind, now, completed=True, created=now)
            self.gen.flush()
            self.db.execute("UPDATE activities SET last_updated = ?, created = ? WHERE id = ?", (now, now, activity_id))
            self.db.execute("UPDATE deals SET last_activity_time = ?, last_activity_by = ? WHERE id = ?",
                            (now, deal["assigned_by_id"], deal["id"]))
            changes.append(Change(label, "activity", activity_id))
        return changes

    def new_activities(self, n: int, now: int) -> list[Change]:
        return self._activity(n, now, ("call_out", "call_in", "email_out", "email_in", "meeting"), "new_activity")

    def new_calls(self, n: int, now: int) -> list[Change]:
        return self._activity(n, now, ("call_out", "call_in"), "new_call")

    def new_tasks(self, n: int, now: int) -> list[Change]:
        """A manager's own task, bound to one of their open deals from the Tasks module (no CRM activity)."""
        changes = []
        for deal in self.open_deals(n):
            cursor = self.db.execute(
                "INSERT INTO tasks (title, status, responsible_id, created_by, created_date, changed_date, deadline, "
                "crm_owner_type_id, crm_owner_id) VALUES (?, 2, ?, ?, ?, ?, ?, ?, ?)",
                ("Подготовить договор", deal["assigned_by_id"], deal["assigned_by_id"], now, now, now + 2 * DAY,
                 DEAL, deal["id"]))
            changes.append(Change("new_task", "task", int(cursor.lastrowid or 0)))
        return changes

    def complete_activities(self, n: int, now: int) -> list[Change]:
        # Meetings, tasks and to-dos get done later; calls are logged when they happen (new_calls).
        rows = self.pick("activities", "is_deleted = 0 AND completed = 'N' AND type_id != 2", n)
        for row in rows:
            self.db.execute("UPDATE activities SET completed = 'Y', last_updated = ?, editor_id = responsible_id "
                            "WHERE id = ?", (now, row[0]))
            self.db.execute("UPDATE tasks SET status = 5, closed_date = ?, changed_date = ? WHERE activity_id = ?",
                            (now, now, row[0]))
        return [Change("complete_activity", "activity", r[0]) for r in rows]

    def _move(self, deal: dict[str, Any], now: int, pipe: ref.Pipeline, stage: str, sem: str, type_id: int) -> None:
        closed = sem != "P"
        self.history(deal["id"], type_id, now, pipe, stage, sem)
        self.db.execute(
            "UPDATE deals SET stage_id = ?, stage_semantic_id = ?, closed = ?, moved_time = ?, moved_by_id = "
            "assigned_by_id, date_modify = ?, modify_by_id = assigned_by_id, closedate = CASE WHEN ? THEN ? "
            "ELSE closedate END WHERE id = ?",
            (stage, sem, "Y" if closed else "N", now, now, closed,
             self.gen.calendar.starts[self.gen.calendar.index(now)], deal["id"]))

    def stage_moves(self, n: int, now: int) -> list[Change]:
        changes = []
        for deal in self.open_deals(n):
            pipe = self.pipeline_of(deal["category_id"])
            codes = [pipe.sid(s.status_id) for s in pipe.stages]
            idx = codes.index(deal["stage_id"]) if deal["stage_id"] in codes else 0
            if idx + 1 < len(codes):
                self._move(deal, now, pipe, codes[idx + 1], "P", 2)
            else:
                self._move(deal, now, pipe, pipe.sid(pipe.won.status_id), "S", 3)
            changes.append(Change("stage_move", "deal", deal["id"]))
        return changes

    def wins(self, n: int, now: int) -> list[Change]:
        changes = []
        for deal in self.open_deals(n):
            pipe = self.pipeline_of(deal["category_id"])
            self._move(deal, now, pipe, pipe.sid(pipe.won.status_id), "S", 3)
            manager = next((m for m in self.gen.managers if m.id == deal["assigned_by_id"]), self.gen.managers[0])
            self.gen.write_invoice(deal["id"], now - HOUR, ("P", now), manager, deal["opportunity"],
                                   deal["contact_id"], deal["company_id"], now + 1)
            changes.append(Change("win", "deal", deal["id"]))
        return changes

    def losses(self, n: int, now: int) -> list[Change]:
        changes = []
        for deal in self.open_deals(n):
            pipe = self.pipeline_of(deal["category_id"])
            failure = self.rng.choice(pipe.failures)
            self._move(deal, now, pipe, pipe.sid(failure.status_id), "F", 3)
            changes.append(Change("loss", "deal", deal["id"]))
        return changes

    def field_edits(self, n: int, now: int) -> list[Change]:
        targets = (("deals", "deal", "opportunity"), ("leads", "lead", "opportunity"),
                   ("contacts", "contact", "post"), ("companies", "company", "revenue"))
        changes = []
        for i, (table, entity, column) in enumerate(targets):
            share = n // len(targets) + (1 if i < n % len(targets) else 0)
            for row in self.pick(table, "is_deleted = 0", share):
                value: Any = self.rng.choice(ref.POSITIONS_CONTACT) if column == "post" else \
                    round(self.rng.uniform(10_000, 900_000), -2)
                self.db.execute(f"UPDATE {table} SET {column} = ?, date_modify = ? WHERE id = ?", (value, now, row[0]))
                changes.append(Change("field_edit", entity, row[0]))
        return changes

    def department_changes(self, n: int, now: int) -> list[Change]:
        changes = []
        active = [m for m in self.gen.managers if m.left_at is None]
        for manager in self.rng.sample(active, min(n, len(active))):
            target = self.rng.choice([d for d in ref.SALES_DEPARTMENTS if d != manager.department])
            manager.department = target
            self.db.execute("UPDATE users SET uf_department = ?, work_position = ? WHERE id = ?",
                            (json.dumps([target]), self.rng.choice(ref.POSITIONS_MANAGER), manager.id))
            changes.append(Change("department_change", "user", manager.id))
        return changes

    def _set_deleted(self, entity: str, n: int, deleted: int, label: str) -> list[Change]:
        table, owner_type = DELETABLE[entity]
        rows = self.pick(table, f"is_deleted = {1 - deleted}", n)
        for row in rows:
            self.db.execute(f"UPDATE {table} SET is_deleted = ? WHERE id = ?", (deleted, row[0]))
            if owner_type is not None:
                self.db.execute("UPDATE activities SET is_deleted = ? WHERE owner_type_id = ? AND owner_id = ?",
                                (deleted, owner_type, row[0]))
            if entity in ("deal", "lead"):
                self.db.execute("UPDATE stage_history SET is_deleted = ? WHERE entity_type_id = ? AND owner_id = ?",
                                (deleted, owner_type, row[0]))
        return [Change(label, entity, r[0]) for r in rows]

    def deletions(self, entity: str, n: int, now: int) -> list[Change]:
        return self._set_deleted(entity, n, 1, "deletion")

    def restores(self, entity: str, n: int, now: int) -> list[Change]:
        return self._set_deleted(entity, n, 0, "restore")

