"""Events the simulated portal sends when CRM data changes, as Bitrix24 does.

Two ways to subscribe, as on a portal:
- an application binds a handler URL to an event with `event.bind` (OAuth only; a webhook gets
  `WRONG_AUTH_TYPE`), and the portal signs each call with the application's `application_token`;
- an administrator sets up an outbound webhook (`/_sim/outbound` here): a handler URL, its events, and a
  token the portal generates for it.

Each change of the live portal (`simulator/live.py`) becomes one call per subscribed handler: a POST of the
form fields `event`, `event_handler_id`, `data[FIELDS][ID]`, `ts` and `auth[...]`, sent from a thread of
its own. A handler that fails or is slow is not called again, as Bitrix24 documents for its portals.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Entity of a live change -> the event name's stem; tasks raise the Tasks module's events.
STEMS = {"deal": "ONCRMDEAL", "lead": "ONCRMLEAD", "contact": "ONCRMCONTACT", "company": "ONCRMCOMPANY",
         "activity": "ONCRMACTIVITY", "task": "ONTASK"}
EVENTS = frozenset(f"{stem}{action}" for stem in STEMS.values() for action in ("ADD", "UPDATE", "DELETE"))


@dataclass(frozen=True)
class Handler:
    id: int
    event: str
    url: str
    application_token: str
    owner: str          # the application's client id, or "outbound"


def event_name(kind: str, entity: str) -> str | None:
    """The event a live change raises (None for changes no CRM event reports, such as a department)."""
    stem = STEMS.get(entity)
    if stem is None:
        return None
    if kind.startswith("new_"):
        return f"{stem}ADD"
    return f"{stem}DELETE" if kind == "deletion" else f"{stem}UPDATE"


class Events:
    """The portal's handlers and the thread that calls them."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.handlers: list[Handler] = []
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[Handler, dict[str, str]]] = queue.Queue()
        self._lock = threading.Lock()
        self._sender: threading.Thread | None = None

    def bind(self, event: str, url: str, application_token: str, owner: str) -> Handler:
        event = event.upper()
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")
        with self._lock:
            for handler in self.handlers:
                if (handler.event, handler.url, handler.owner) == (event, url, owner):
                    return handler
            handler = Handler(len(self.handlers) + 1, event, url, application_token, owner)
            self.handlers.append(handler)
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_forever, name="portal-events", daemon=True)
                self._sender.start()
            return handler

    def unbind(self, event: str, url: str, owner: str) -> int:
        with self._lock:
            kept = [h for h in self.handlers if (h.event, h.url, h.owner) != (event.upper(), url, owner)]
            removed, self.handlers = len(self.handlers) - len(kept), kept
        return removed

    def outbound(self, url: str, events: list[str]) -> str:
        """An outbound webhook: the token the portal shows for it, which every call carries."""
        token = secrets.token_hex(16)
        for event in events:
            self.bind(event, url, token, "outbound")
        return token

    def of(self, owner: str) -> list[Handler]:
        return [h for h in self.handlers if h.owner == owner]

    def raise_changes(self, changes: list[dict[str, Any]], now: int) -> None:
        """Queues a call per subscribed handler for each change, in the order they happened."""
        for change in changes:
            name = event_name(change["kind"], change["entity"])
            for handler in (h for h in list(self.handlers) if h.event == name):
                self._queue.put((handler, {
                    "event": name, "event_handler_id": str(handler.id), "data[FIELDS][ID]": str(change["id"]),
                    "ts": str(now), "auth[domain]": self.domain, "auth[client_endpoint]": f"https://{self.domain}/rest/",
                    "auth[server_endpoint]": "https://oauth.bitrix.info/rest/", "auth[member_id]": "simulator",
                    "auth[application_token]": handler.application_token}))

    def clear(self) -> None:
        with self._lock:
            self.handlers = []

    def _send_forever(self) -> None:
        import requests  # here, not at the top: most portals never send an event, and it costs every start

        with requests.Session() as session:
            while True:
                handler, fields = self._queue.get()
                try:
                    session.post(handler.url, data=fields, timeout=5).raise_for_status()
                    self.sent += 1
                except requests.RequestException as exc:     # not resent, as on a portal
                    self.failed += 1
                    log.info("event %s to handler %d failed: %s", fields["event"], handler.id, exc)
