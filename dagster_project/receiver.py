"""`b24wh listen`: changes pushed from the portal start a refresh at once (docs/events.md).

Bitrix24 calls a URL when CRM data changes: an outbound webhook, or an application's handlers
(`event.bind`), with ONCRMDEALADD/UPDATE/DELETE, the lead, contact, company and activity events and the
Tasks module's ONTASKADD/UPDATE/DELETE. Each call is a form POST (`event`, `data[FIELDS][ID]`, `ts`,
`auth[...]`); its `auth[application_token]` must be the token configured for the portal
(`pipelines.bitrix24.credentials.application_token`), else it is refused with 401 and changes nothing.

It refreshes once when it starts, to catch up. An accepted event is journaled at once
(`<warehouse>.events.jsonl`: when, which event, which id; a deletion is recorded the moment it arrives) and
asks for a refresh of the entities it concerns (`ENTITIES_OF`: a deal's event, the deals and their stage
history). Refreshes run one at a time, in a thread of their own: one starts `debounce` seconds after the event
that asked for it, so that a burst makes one refresh (of every entity the burst concerns), and events that
arrive during a refresh make one more after it; without events, a refresh of everything runs `every` seconds
after the last. Polling stays the truth: each refresh reads what changed since its cursors and counts
deletions, so a lost, repeated or late event changes nothing but when a refresh runs, and the refresh of
everything catches what no event announced (users, stages, invoices). `GET /status` tells what the receiver
did.

One receiver serves every listed portal it is given (`docs/portals.md`), at the same URL: each portal's events
are signed with its own application token, which tells them apart; each portal has its own journal and its own
refresher, and refreshes of different portals run side by side, as many at once as the machine has cores.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

# Per event family, the catalogue's entities (pipelines/bitrix24/catalogue.py) its changes reach: a deal's stage
# move writes the stage history too; a call ends as an activity.
ENTITIES_OF: dict[str, tuple[str, ...]] = {
    "ONCRMDEAL": ("deals", "deal_stage_history"),
    "ONCRMLEAD": ("leads", "lead_status_history"),
    "ONCRMCONTACT": ("contacts",),
    "ONCRMCOMPANY": ("companies",),
    "ONCRMACTIVITY": ("activities", "calls"),
    "ONTASK": ("tasks",),
}
ACTIONS = ("ADD", "UPDATE", "DELETE")
EVENTS = {f"{family}{action}": entities for family, entities in ENTITIES_OF.items() for action in ACTIONS}
Refresh = Callable[[list[str] | None], None]    # the entities to read; None: every one
PATH = "/bitrix24/events"


@dataclass
class Counts:
    accepted: int = 0
    refused: int = 0
    refreshes: int = 0
    failed_refreshes: int = 0
    last_event_at: str | None = None
    last_refresh_at: str | None = None
    last_refresh_of: list[str] | None = None    # the entities the last refresh read; None: every one


class Refresher:
    """Runs `refresh` in a thread of its own, one at a time: `debounce` seconds after it is asked (for the
    entities asked for since the last run), once more after a run during which it was asked again, and for
    every entity `every` seconds after the last run when nobody asked (Bitrix24 does not send an event again
    when a call fails). A run waits for one of the `turns` it shares with the other portals' refreshers."""

    def __init__(self, refresh: Refresh, debounce: float, counts: Counts, every: float,
                 turns: threading.Semaphore) -> None:
        self.refresh = refresh
        self.debounce = debounce
        self.every = every
        self.counts = counts
        self.turns = turns
        self._asked = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._entities: set[str] | None = set()    # asked for since the last run; None: every one
        self._thread = threading.Thread(target=self._run, name="b24wh-refresher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def ask(self, entities: tuple[str, ...] | None = None) -> None:
        """A refresh of these entities (None: of every one)."""
        with self._lock:
            if entities is None or self._entities is None:
                self._entities = None
            else:
                self._entities.update(entities)
        self._asked.set()

    def _take(self) -> list[str] | None:
        with self._lock:
            asked, self._entities = self._entities, set()
        return None if asked is None else sorted(asked)

    def stop(self) -> None:
        """Asks the thread to end once a refresh under way is done (`join` waits for it)."""
        self._stopped.set()
        self._asked.set()

    def join(self) -> None:
        self._thread.join(timeout=600)

    def _run(self) -> None:
        # A stop is seen through anything that waits (the debounce, a turn): it ends the thread at once, and a
        # refresh under way finishes first.
        while not self._stopped.is_set():
            if self._asked.wait(timeout=self.every):
                self._stopped.wait(self.debounce)     # the rest of the burst joins this refresh
            else:
                self.ask()                            # nobody asked for `every` seconds: everything
            self._asked.clear()
            entities = self._take()
            with self.turns:
                if self._stopped.is_set():
                    return
                try:
                    self.refresh(entities)
                    self.counts.refreshes += 1
                except Exception:   # reported by `refresh` itself; the next event tries again
                    self.counts.failed_refreshes += 1
            self.counts.last_refresh_at = datetime.now(UTC).isoformat(timespec="seconds")
            self.counts.last_refresh_of = entities


def journal_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".events.jsonl")


class ReportedDeletions:
    """The ids the journal's deletion events name, by entity (a deal's under `deals`): each refresh checks those
    the warehouse still holds as live by listing them, so a deletion shows at the next refresh even in a table
    too big to count (`pipelines.bitrix24.paging.count_due`); an id the portal still has is left as it is.
    Each call reads only the complete lines appended since the last one (the journal grows with every event)."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.offset = 0
        self.deleted: dict[str, set[int]] = {}

    def __call__(self) -> dict[str, list[int]]:
        if self.journal.exists():
            with open(self.journal, "rb") as handle:
                handle.seek(self.offset)
                appended = handle.read()
            complete = appended[:appended.rfind(b"\n") + 1]    # a line being written waits for the next call
            self.offset += len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    event, record = str(entry["event"]), int(entry["id"])
                except (ValueError, KeyError, TypeError):
                    continue    # a line cut short by a crash, or an event without an id
                if event.endswith("DELETE") and event in EVENTS:
                    self.deleted.setdefault(EVENTS[event][0], set()).add(record)
        return {entity: sorted(ids) for entity, ids in self.deleted.items()}


def parse(form: dict[str, str]) -> tuple[str, str | None, str]:
    """(event, record id, application token) of a Bitrix24 event call's form fields."""
    return (str(form.get("event", "")).upper(), form.get("data[FIELDS][ID]"),
            str(form.get("auth[application_token]", "")))


@dataclass
class Listener:
    """One portal's side of the receiver: the token its events are signed with, its journal, its refresher."""
    token: str
    journal: Path
    refresher: Refresher


def signed_by(listeners: Mapping[str | None, Listener], given: str) -> Listener | None:
    """The listener whose token signed the call (every token compared, in constant time); None: no portal's."""
    if not given:
        return None
    found = None
    for listener in listeners.values():
        if hmac.compare_digest(given.encode(), listener.token.encode()):
            found = listener
    return found


def build_app(listeners: Mapping[str | None, Listener]) -> web.Application:
    """The receiver of `listeners`, by portal name (None: the deployment's only portal, whose `/status` is its
    counts; with listed portals it is the calls no portal signed and each portal's counts)."""
    lock = threading.Lock()
    unsigned = listeners[None].refresher.counts if None in listeners else Counts()   # calls no portal signed

    async def receive(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body: Any = await request.json()
            form = {"event": body.get("event", ""), "data[FIELDS][ID]": (body.get("data") or {}).get("FIELDS", {})
                    .get("ID"), "auth[application_token]": (body.get("auth") or {}).get("application_token", "")}
        else:
            form = {k: str(v) for k, v in (await request.post()).items()}
        event, record, given = parse(form)
        listener = signed_by(listeners, given)
        if listener is None:
            unsigned.refused += 1
            return web.json_response({"error": "unknown application token"}, status=401)
        counts = listener.refresher.counts
        if event not in EVENTS:
            counts.refused += 1
            return web.json_response({"error": f"not a CRM change event: {event or '(none)'}"}, status=400)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        line = json.dumps({"received_at": now, "event": event, "id": record, "ts": form.get("ts")}) + "\n"
        with lock, open(listener.journal, "a", encoding="utf-8") as handle:
            handle.write(line)
        counts.accepted += 1
        counts.last_event_at = now
        listener.refresher.ask(EVENTS[event])
        return web.json_response({"accepted": event})

    async def status(request: web.Request) -> web.Response:
        if None in listeners:
            return web.json_response(asdict(unsigned))
        return web.json_response({"unsigned_refused": unsigned.refused,
                                  "portals": {name: asdict(listener.refresher.counts)
                                              for name, listener in listeners.items()}})

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post(PATH, receive)
    app.router.add_get("/status", status)
    return app


def listen(listeners: Mapping[str | None, Listener], host: str, port: int) -> None:
    """Serves until stopped (Ctrl-C, SIGTERM); refreshes under way finish first."""
    for listener in listeners.values():
        listener.refresher.start()
        listener.refresher.ask()     # catch up with everything that changed while nobody listened
    url = f"http://{host}:{port}{PATH}"
    if None in listeners:
        listening = (f"Listening for the portal's events at {url} (journal {listeners[None].journal}); set this URL "
                     "as the outbound webhook's handler (docs/events.md)")
    else:
        listening = (f"Listening for the events of {len(listeners)} portals ({', '.join(map(str, listeners))}) at "
                     f"{url}, each told apart by its application token (journals beside each warehouse); set this "
                     "URL as each portal's outbound webhook's handler (docs/events.md)")
    try:    # aiohttp prints once the port is bound
        web.run_app(build_app(listeners), host=host, port=port, access_log=None,
                    print=lambda _: print(listening, flush=True))
    finally:
        for listener in listeners.values():
            listener.refresher.stop()
        for listener in listeners.values():
            listener.refresher.join()
