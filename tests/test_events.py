"""Changes pushed from the portal: the simulator calls handlers as Bitrix24 does (`event.bind` for applications,
outbound webhooks), and `b24wh listen` turns accepted events into refreshes, refusing anything unsigned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import duckdb
import pytest
import requests

from dagster_project.cli import refresh
from dagster_project.receiver import ENTITIES_OF, EVENTS, Counts, Refresher, ReportedDeletions
from pipelines.bitrix24.catalogue import BY_NAME
from tests.conftest import free_port


class Capture:
    """A handler URL that records the form of every call it gets."""

    def __init__(self) -> None:
        calls: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                calls.append(dict(parse_qsl(self.rfile.read(length).decode())))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.calls = calls
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/handler"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.calls


def wait_until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_burst_refreshes_the_entities_its_events_concern_and_silence_refreshes_everything() -> None:
    assert {e for entities in ENTITIES_OF.values() for e in entities} <= set(BY_NAME)
    runs: list[list[str] | None] = []
    refresher = Refresher(runs.append, debounce=0.2, counts=Counts(), every=1.5)
    refresher.start()
    for event in ("ONCRMDEALUPDATE", "ONCRMACTIVITYADD", "ONCRMDEALDELETE"):
        refresher.ask(EVENTS[event])
    wait_until(lambda: len(runs) == 1)
    assert runs == [["activities", "calls", "deal_stage_history", "deals"]]
    assert refresher.counts.last_refresh_of == runs[0]
    wait_until(lambda: len(runs) == 2)     # nobody asked for `every` seconds
    assert runs[1] is None and refresher.counts.last_refresh_of is None
    refresher.ask(EVENTS["ONTASKADD"])
    refresher.ask()                         # everything takes in what was asked before
    refresher.ask(EVENTS["ONCRMCONTACTADD"])
    wait_until(lambda: len(runs) == 3)
    assert runs[2] is None
    refresher.stop()
    assert len(runs) == 3 and refresher.counts.refreshes == 3


def test_the_journals_deletion_events_name_the_ids_each_refresh_checks(tmp_path: Path) -> None:
    journal = tmp_path / "warehouse.duckdb.events.jsonl"
    reported = ReportedDeletions(journal)
    assert reported() == {}, "no journal yet: nothing reported"
    journal.write_text("\n".join([
        json.dumps({"event": "ONCRMDEALDELETE", "id": "12"}), json.dumps({"event": "ONCRMDEALUPDATE", "id": "13"}),
        json.dumps({"event": "ONCRMACTIVITYDELETE", "id": "7"}), json.dumps({"event": "ONCRMDEALDELETE", "id": "12"}),
        json.dumps({"event": "ONCRMDEALDELETE", "id": None}), '{"event": "ONCRMDEALDELETE", "id": "4',
        json.dumps({"event": "ONCRMCONTACTDELETE", "id": "3"})]) + "\n", encoding="utf-8")
    assert reported() == {"deals": [12], "activities": [7], "contacts": [3]}
    with open(journal, "a", encoding="utf-8") as handle:   # one more event, and one still being written
        handle.write(json.dumps({"event": "ONCRMDEALDELETE", "id": "20"}) + "\n" + '{"event": "ONCRMDEALDEL')
    assert reported() == {"deals": [12, 20], "activities": [7], "contacts": [3]}, "earlier reports are kept"
    with open(journal, "a", encoding="utf-8") as handle:
        handle.write('ETE", "id": "21"}\n')
    assert reported()["deals"] == [12, 20, 21], "the line finished since is read whole"


@pytest.fixture()
def capture() -> Iterator[Capture]:
    handler = Capture()
    yield handler
    handler.server.shutdown()


def test_an_application_binds_handlers_and_the_portal_calls_them_signed(fresh_portal: Any, capture: Capture) -> None:
    hook = requests.post(fresh_portal.webhook_url + "event.bind", json={"event": "ONCRMDEALUPDATE",
                                                                       "handler": capture.url}, timeout=30)
    assert hook.status_code == 401 and hook.json()["error"] == "WRONG_AUTH_TYPE", "webhooks cannot bind handlers"
    app = fresh_portal.control.status()["oauth_apps"][0]
    tokens = fresh_portal.control.authorize(app["client_id"])
    rest = fresh_portal.base_url + "/rest/"
    for event in ("ONCRMDEALUPDATE", "ONCRMDEALDELETE"):
        bound = requests.post(rest + "event.bind", json={"auth": tokens["access_token"], "event": event,
                                                         "handler": capture.url}, timeout=30)
        assert bound.json()["result"] is True
    listed = requests.post(rest + "event.get", json={"auth": tokens["access_token"]}, timeout=30).json()["result"]
    assert {(h["event"], h["handler"]) for h in listed} == {("ONCRMDEALUPDATE", capture.url),
                                                            ("ONCRMDEALDELETE", capture.url)}
    changes = fresh_portal.control.apply_changes(stage_moves=3, deletions={"deal": 2}, new_contacts=2)
    moved = {str(c["id"]) for c in changes if c["kind"] == "stage_move"}
    deleted = {str(c["id"]) for c in changes if c["kind"] == "deletion"}
    calls = capture.wait_for(len(moved) + len(deleted))
    assert {(c["event"], c["data[FIELDS][ID]"]) for c in calls} == \
        {("ONCRMDEALUPDATE", i) for i in moved} | {("ONCRMDEALDELETE", i) for i in deleted}, "no contact events bound"
    assert {c["auth[application_token]"] for c in calls} == {tokens["application_token"]}


@pytest.fixture()
def listening(tmp_path: Path, fresh_portal: Any) -> Iterator[tuple[Any, Path, str, str]]:
    """A refreshed warehouse, an outbound webhook to `b24wh listen` serving it; yields the portal, the
    warehouse, the receiver's URL and the webhook's application token."""
    warehouse = tmp_path / "warehouse.duckdb"
    refresh(warehouse, credentials=fresh_portal.webhook_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = fresh_portal.control.outbound(f"{url}/bitrix24/events", ["ONCRMDEALADD", "ONCRMDEALUPDATE",
                                                                     "ONCRMDEALDELETE", "ONCRMCONTACTADD"])
    env = {**os.environ, "BITRIX24_WEBHOOK_URL": fresh_portal.webhook_url,
           "SOURCES__BITRIX24__APPLICATION_TOKEN": token}
    process = subprocess.Popen([sys.executable, "-m", "dagster_project", "listen", "--warehouse", str(warehouse),
                                "--port", str(port), "--debounce", "0.5"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/status", timeout=1)
            break
        except requests.ConnectionError:
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
    wait_until(lambda: status(url)["refreshes"] >= 1, timeout=60)     # the catch-up refresh at start
    assert status(url)["last_refresh_of"] is None, "the catch-up refresh reads every entity"
    yield fresh_portal, warehouse, url, token
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Listening for the portal's events" in out and token not in out + err


def published(warehouse: Path, sql: str) -> Any:
    with duckdb.connect(str(warehouse.parent / "published" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def status(url: str) -> dict[str, Any]:
    return dict(requests.get(f"{url}/status", timeout=5).json())


def test_events_refresh_the_warehouse_at_once_and_unsigned_calls_change_nothing(
        listening: tuple[Any, Path, str, str]) -> None:
    portal, warehouse, url, token = listening
    changes = portal.control.apply_changes(advance=60, deletions={"deal": 1}, new_deals=2)
    gone = next(c["id"] for c in changes if c["kind"] == "deletion")
    new = {c["id"] for c in changes if c["kind"] == "new_deal"}
    started, seen = time.monotonic(), False
    while time.monotonic() - started < 60 and not seen:
        time.sleep(0.2)
        rows = dict(published(warehouse, f"SELECT deal_id, is_deleted FROM core.fact_deal WHERE deal_id IN "
                                         f"({', '.join(map(str, {gone, *new}))})"))
        seen = rows.get(gone) is True and all(rows.get(d) is False for d in new)
    assert seen, "the deletion and the new deals reached the published warehouse"
    print(f"portal change -> published: {time.monotonic() - started:.1f} s")
    journal = [json.loads(line) for line in (warehouse.parent / "warehouse.duckdb.events.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert {"event": "ONCRMDEALDELETE", "id": str(gone)} in [{"event": e["event"], "id": e["id"]} for e in journal]
    deadline = time.monotonic() + 30     # the refresh counts once its last lines are printed
    while status(url)["refreshes"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    before = status(url)
    assert before["accepted"] == len(journal) == 3 and before["refreshes"] >= 2
    assert before["last_refresh_of"] == ["deal_stage_history", "deals"], "a deal's events read deals only"
    # Unsigned, wrongly signed and foreign calls are refused; they start nothing.
    for form in ({"event": "ONCRMDEALDELETE", "data[FIELDS][ID]": "1"},
                 {"event": "ONCRMDEALDELETE", "data[FIELDS][ID]": "1", "auth[application_token]": "forged"},
                 {"event": "ONAPPUNINSTALL", "auth[application_token]": token}):
        answer = requests.post(f"{url}/bitrix24/events", data=form, timeout=5)
        assert answer.status_code in (400, 401)
    time.sleep(1.5)
    after = status(url)
    assert (after["refused"], after["accepted"], after["refreshes"]) == (3, before["accepted"], before["refreshes"])
    # A burst of repeated events makes one or two refreshes, never one each.
    for _ in range(20):
        requests.post(f"{url}/bitrix24/events", data={"event": "ONCRMDEALUPDATE", "data[FIELDS][ID]": str(gone),
                                                      "auth[application_token]": token}, timeout=5)
    deadline = time.monotonic() + 60
    while status(url)["refreshes"] == after["refreshes"] and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    burst = status(url)
    assert 1 <= burst["refreshes"] - after["refreshes"] <= 2 and burst["failed_refreshes"] == 0
