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
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import duckdb
import pytest
import requests

from b24wh_simulator.client import SimulatorProcess
from dagster_project.cli import refresh
from dagster_project.receiver import ENTITIES_OF, EVENTS, Counts, Refresher, ReportedDeletions
from pipelines.bitrix24.catalogue import BY_NAME
from tests.conftest import free_port
from tests.portals import partner_days, portal_deals, small_portals, warehouse_deals


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
    refresher = Refresher(runs.append, debounce=0.2, counts=Counts(), every=1.5, turns=threading.Semaphore(1))
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
    refresher.join()
    assert len(runs) == 3 and refresher.counts.refreshes == 3


def test_portals_refreshers_take_turns_and_each_refreshes_its_own_entities() -> None:
    """Three portals' refreshers sharing two turns: never more than two refreshes at once, each refresher
    running its own portal's refresh of what its own events asked for."""
    running, most, lock = [0], [0], threading.Lock()
    runs: dict[str, list[list[str] | None]] = {"a": [], "b": [], "c": []}

    def refresh_of(portal: str) -> Callable[[list[str] | None], None]:
        def refresh(entities: list[str] | None) -> None:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.3)
            runs[portal].append(entities)
            with lock:
                running[0] -= 1
        return refresh

    turns = threading.Semaphore(2)
    refreshers = {p: Refresher(refresh_of(p), debounce=0.05, counts=Counts(), every=60, turns=turns) for p in runs}
    for refresher in refreshers.values():
        refresher.start()
    refreshers["a"].ask(EVENTS["ONCRMDEALADD"])
    refreshers["b"].ask(EVENTS["ONTASKADD"])
    refreshers["c"].ask(EVENTS["ONCRMCONTACTADD"])
    wait_until(lambda: all(runs.values()))
    for refresher in refreshers.values():
        refresher.stop()
    for refresher in refreshers.values():
        refresher.join()
    assert runs == {"a": [["deal_stage_history", "deals"]], "b": [["tasks"]], "c": [["contacts"]]}
    assert most[0] == 2, "two turns: two refreshes at once, the third after one of them"


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


def reachable(url: str) -> bool:
    try:
        requests.get(f"{url}/status", timeout=1)
    except requests.ConnectionError:
        return False
    return True


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


@pytest.fixture(scope="module")
def two_portals() -> Iterator[dict[str, SimulatorProcess]]:
    """Two small portals whose deal ids overlap."""
    with small_portals({"north": {"seed": 201}, "south": {"seed": 202}}) as sims:
        yield sims


def test_one_receiver_serves_every_listed_portal_each_by_its_own_token(
        tmp_path: Path, two_portals: dict[str, SimulatorProcess]) -> None:
    """`b24wh listen --all`: one URL for every portal, each portal's events refreshing its own warehouse only; a
    listed portal without a token is left out with its own line, and the others are served."""
    (tmp_path / "b24wh.toml").write_text("".join(f'[portals.{name}]\ntimezone = "Europe/Moscow"\n\n'
                                                 for name in ("north", "south", "west")), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tokens = {name: sim.control.outbound(f"{url}/bitrix24/events", ["ONCRMDEALADD", "ONCRMDEALUPDATE",
                                                                   "ONCRMDEALDELETE"])
              for name, sim in two_portals.items()}
    assert tokens["north"] != tokens["south"]
    env = {**os.environ, "B24WH_CONFIG": str(tmp_path / "b24wh.toml"), "B24WH_HOME": str(tmp_path),
           **{f"PORTALS__{name.upper()}__CREDENTIALS": sim.webhook_url for name, sim in two_portals.items()},
           **{f"PORTALS__{name.upper()}__APPLICATION_TOKEN": token for name, token in tokens.items()}}
    process = subprocess.Popen([sys.executable, "-m", "dagster_project", "listen", "--all", "--port", str(port),
                                "--debounce", "0.5"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: reachable(url) or process.poll() is not None, timeout=60)
        assert process.poll() is None, process.communicate()
        def portals() -> dict[str, dict[str, Any]]:
            return dict(status(url)["portals"])

        wait_until(lambda: all(p["refreshes"] >= 1 for p in portals().values()), timeout=120)  # the catch-ups
        assert set(portals()) == {"north", "south"}, "west has no token: it is left out"
        folder = {name: tmp_path / "data" / "portals" / name / "published" / "warehouse.duckdb" for name in tokens}
        assert all(warehouse_deals(folder[name]) == portal_deals(sim) for name, sim in two_portals.items())

        changes = two_portals["north"].control.apply_changes(advance=60, new_deals=2)
        new = {c["id"] for c in changes if c["kind"] == "new_deal"}
        wait_until(lambda: new <= {deal for deal, _ in warehouse_deals(folder["north"])}, timeout=60)
        wait_until(lambda: portals()["north"]["refreshes"] >= 2, timeout=30)
        north, south = portals()["north"], portals()["south"]
        assert (north["accepted"], north["last_refresh_of"]) == (2, ["deal_stage_history", "deals"])
        assert (south["accepted"], south["refreshes"], south["last_refresh_of"]) == (0, 1, None), \
            "north's events refresh north only"
        assert all(warehouse_deals(folder[name]) == portal_deals(sim) for name, sim in two_portals.items())

        # A call no portal signed is refused and counted apart; a portal's signed non-CRM call is its own refusal.
        assert requests.post(f"{url}/bitrix24/events", data={"event": "ONCRMDEALADD", "data[FIELDS][ID]": "1",
                                                             "auth[application_token]": "forged"}).status_code == 401
        assert requests.post(f"{url}/bitrix24/events", data={
            "event": "ONAPPUNINSTALL", "auth[application_token]": tokens["south"]}).status_code == 400
        assert status(url)["unsigned_refused"] == 1 and portals()["south"]["refused"] == 1
        days = partner_days(tmp_path / "data" / "partner" / "summary.duckdb")
        assert {name for name, rows in days.items() if any(r["published"] for r in rows)} == {"north", "south"}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1, "a listed portal was left out"
    assert "b24wh listen [west]:" in err and "PORTALS__WEST__APPLICATION_TOKEN" in err
    assert "Listening for the events of 2 portals (north, south)" in out
    assert not any(token in out + err for token in tokens.values())


def test_portals_sharing_a_token_are_left_out_and_the_others_served(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Two portals signed with one token cannot be told apart: neither is served, each says so; the third is."""
    from dagster_project import cli, receiver

    (tmp_path / "b24wh.toml").write_text("".join(f'[portals.{name}]\ntimezone = "Europe/Moscow"\n\n'
                                                 for name in ("north", "south", "east")), encoding="utf-8")
    for name, token in (("north", "tok-shared-9f3"), ("south", "tok-shared-9f3"), ("east", "tok-own-1a2")):
        monkeypatch.setenv(f"PORTALS__{name.upper()}__APPLICATION_TOKEN", token)
    monkeypatch.setenv("B24WH_HOME", str(tmp_path))
    monkeypatch.setenv("B24WH_CONFIG", str(tmp_path / "b24wh.toml"))
    served: list[dict[str | None, receiver.Listener]] = []
    monkeypatch.setattr(receiver, "listen", lambda listeners, host, port: served.append(dict(listeners)))
    assert cli.main(["listen", "--all", "--port", "1"]) == 1
    assert [set(listeners) for listeners in served] == [{"east"}]
    said = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in said] == ["b24wh listen [north]", "b24wh listen [south]"]
    assert "the same application token as portal south" in said[0] and "portal north" in said[1]
    assert "tok-" not in " ".join(said), "the token itself is never shown"


def test_a_stop_during_the_debounce_or_a_wait_for_a_turn_ends_the_refresher_at_once() -> None:
    """Stopped within its debounce (as when the receiver's port is taken right after the start), or while another
    portal's refresh holds the only turn, a refresher ends without refreshing, not `every` seconds later."""
    runs: list[list[str] | None] = []
    debouncing = Refresher(runs.append, debounce=5, counts=Counts(), every=600, turns=threading.Semaphore(1))
    debouncing.start()
    debouncing.ask()
    time.sleep(0.3)
    started = time.monotonic()
    debouncing.stop()
    debouncing.join()
    assert time.monotonic() - started < 2 and runs == []

    turns = threading.Semaphore(1)
    turns.acquire()         # another portal's refresh holds the only turn
    waiting = Refresher(runs.append, debounce=0.01, counts=Counts(), every=600, turns=turns)
    waiting.start()
    waiting.ask()
    time.sleep(0.3)
    waiting.stop()
    turns.release()
    started = time.monotonic()
    waiting.join()
    assert time.monotonic() - started < 2 and runs == []


def test_listen_on_a_port_already_taken_says_so_at_once(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "BITRIX24_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/rest/1/abcdefgh12345678/",
               "SOURCES__BITRIX24__APPLICATION_TOKEN": "t0ken-abc"}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "dagster_project", "listen", "--warehouse",
                               str(tmp_path / "warehouse.duckdb"), "--port", str(port)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == (
        f"b24wh listen: 127.0.0.1:{port} is taken by another program (address already in use): stop it, or choose "
        "another --port"), done.stderr
    assert time.monotonic() - started < 30, "not after the refresher's `every` seconds"
