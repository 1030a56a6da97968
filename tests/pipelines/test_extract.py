"""Extraction against a running simulator: every entity, typed; incremental; sweeps; backfills; faults."""

from __future__ import annotations

import base64
import json
import logging
import math
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import requests

from b24wh_simulator.client import SimulatorProcess
from pipelines.bitrix24 import settings
from pipelines.bitrix24.catalogue import ENTITIES
from pipelines.bitrix24.paging import count_due
from pipelines.bitrix24.pipeline import WarehouseIds, last_sweep, load, make_pipeline
from tests.conftest import portal_options
from tests.pipelines.conftest import TRUTH_TABLES, counts, duplicates, query, snapshot


def run(sim: SimulatorProcess, warehouse: Path, **options: Any) -> Any:
    return load(warehouse, credentials=sim.webhook_url, progress="log", **options)


def test_a_full_load_lands_every_entity_with_the_portals_rows(sim: SimulatorProcess, warehouse: Path) -> None:
    sim.control.reset_stats()
    run(sim, warehouse)
    truth = sim.control.truth()["rows"]
    assert counts(warehouse) == {table: truth[key] for table, key in TRUTH_TABLES.items()}
    assert all(n == 0 for n in duplicates(warehouse).values())
    rows = sum(truth[k] for k in TRUTH_TABLES.values())
    requests = sim.control.requests_served()["http_requests"]
    assert requests <= 1 + rows / 2500 * 1.1 + len(TRUTH_TABLES), f"{requests} requests for {rows} rows"


def test_columns_are_typed_never_left_as_text(sim: SimulatorProcess, warehouse: Path) -> None:
    run(sim, warehouse, entities=["deals", "activities", "users", "contacts"])
    types = dict(query(warehouse, "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = 'raw'"))
    assert types["deals.id"] == "BIGINT" and types["deals.assigned_by_id"] == "BIGINT"
    assert types["deals.opportunity"] == "DECIMAL(18,2)"
    assert types["deals.date_create"].startswith("TIMESTAMP") and types["deals.begindate"] == "DATE"
    assert types["deals.closed"] == "BOOLEAN" and types["deals.uf_crm_priority_client"] == "BOOLEAN"
    assert types["deals.uf_crm_contract_date"] == "DATE" and types["deals.uf_crm_loss_reason"] == "BIGINT"
    assert types["activities.completed"] == "BOOLEAN" and types["activities.deadline"].startswith("TIMESTAMP")
    assert types["users.active"] == "BOOLEAN"
    assert types["contacts__phone.value"] == "VARCHAR", "phone multifields land as a child table"


def test_an_incremental_refresh_reflects_changes_with_few_requests(sim: SimulatorProcess, warehouse: Path) -> None:
    with SimulatorProcess(**portal_options(deals=400, seed=23)) as portal:
        run(portal, warehouse)
        changes = portal.control.apply_changes(advance=3600, new_deals=8, stage_moves=20, wins=5, losses=5,
                                               field_edits=24, new_calls=15, complete_activities=10,
                                               new_leads=6, new_contacts=7)
        assert len(changes) >= 90
        portal.control.reset_stats()
        run(portal, warehouse, sweep=False)
        assert portal.control.requests_served()["http_requests"] <= 5
        truth = portal.control.truth()["rows"]
        assert counts(warehouse) == {table: truth[key] for table, key in TRUTH_TABLES.items()}
        moved = [c["id"] for c in changes if c["kind"] in ("stage_move", "win", "loss")]
        api = {r["ID"]: r["STAGE_ID"] for r in _deals(portal, moved)}
        stored = dict(query(warehouse, f"SELECT id, stage_id FROM raw.deals WHERE id IN ({','.join(map(str, moved))})"))
        assert {int(k): v for k, v in api.items()} == stored
        assert all(n == 0 for n in duplicates(warehouse).values())


def loaded(info: Any) -> dict[str, int]:
    """Rows a load wrote per table, tables it wrote nothing into left out."""
    return {t: n for t, n in info.pipeline.last_trace.last_normalize_info.row_counts.items() if n}


def test_a_refresh_loads_only_what_changed_though_its_windows_overlap(warehouse: Path) -> None:
    """Each window re-reads the five minutes before its cursor (settings.OVERLAP_SECONDS). Rows read again
    unchanged are dropped (pipelines/bitrix24/cursor.py) and an empty entity's table is made once, so a refresh
    with nothing changed loads nothing but the pipeline's state, while an edit in the cursor's own second, which
    only the overlap finds, is loaded."""
    with SimulatorProcess(**portal_options(deals=150, seed=37)) as portal:
        run(portal, warehouse)
        assert loaded(run(portal, warehouse, sweep=False)) == {"_dlt_pipeline_state": 1}
        edits = portal.control.apply_changes(field_edits=4)   # at the portal's same moment: inside the overlap
        roots = {"deals", "leads", "contacts", "companies"}
        edited = loaded(run(portal, warehouse, sweep=False))
        assert {t: n for t, n in edited.items() if "__" not in t} == {**dict.fromkeys(roots, 1),
                                                                      "_dlt_pipeline_state": 1}
        deal = next(c["id"] for c in edits if c["entity"] == "deal")
        body = {"filter": {"ID": deal}, "select": ["ID", "OPPORTUNITY"]}
        api = requests.post(portal.webhook_url + "crm.deal.list", json=body, timeout=30).json()["result"][0]
        assert query(warehouse, f"SELECT opportunity FROM raw.deals WHERE id = {deal}")[0][0] == \
            pytest.approx(float(api["OPPORTUNITY"]))
        assert loaded(run(portal, warehouse, sweep=False)) == {"_dlt_pipeline_state": 1}
        truth = portal.control.truth()["rows"]
        assert counts(warehouse) == {table: truth[key] for table, key in TRUTH_TABLES.items()}


def _deals(sim: SimulatorProcess, ids: list[int]) -> list[dict[str, Any]]:
    body = {"filter": {"@ID": ids}, "select": ["ID", "STAGE_ID"], "start": -1}
    return requests.post(sim.webhook_url + "crm.deal.list", json=body, timeout=30).json()["result"]


def test_the_sweep_marks_deletions_and_restores_and_rereads_what_came_back(warehouse: Path) -> None:
    with SimulatorProcess(**portal_options(deals=300, seed=29)) as portal:
        run(portal, warehouse)
        gone = portal.control.apply_changes(advance=60, deletions={"deal": 4, "contact": 2, "activity": 3})
        run(portal, warehouse, sweep=True)
        truth = portal.control.truth()["rows"]
        assert counts(warehouse) == {table: truth[key] for table, key in TRUTH_TABLES.items()}
        marked = set(query(warehouse, "SELECT entity, id FROM raw.deletions WHERE is_deleted"))
        deals = {c["id"] for c in gone if c["entity"] == "deal"}
        assert {("deals", i) for i in deals} <= marked
        kept = query(warehouse, f"SELECT count(*) FROM raw.deals WHERE id IN ({','.join(map(str, deals))})")[0][0]
        assert kept == 4, "deleted deals keep their history in raw"
        portal.control.apply_changes(advance=60, restores={"deal": 4})
        run(portal, warehouse, sweep=True)
        truth = portal.control.truth()["rows"]
        assert counts(warehouse) == {table: truth[key] for table, key in TRUTH_TABLES.items()}
        restored = set(query(warehouse, "SELECT entity, id FROM raw.deletions WHERE NOT is_deleted"))
        assert {("deals", i) for i in deals} <= restored


def test_a_plain_refresh_finds_deletions_by_counting_as_the_sweep_would(warehouse: Path) -> None:
    """Between daily sweeps each refresh counts the ids the warehouse holds (pipelines/bitrix24/paging.py,
    DeletionWalker): nothing deleted costs no more than a request, and deletions of deals, activities, contacts
    and leads (with what the portal deletes along: a deal's activities and history) are marked exactly as a
    sweep, which reads every id, marks them, in a request per level of a 50-way split."""
    with SimulatorProcess(**portal_options(deals=400, seed=31)) as portal:
        run(portal, warehouse)
        portal.control.reset_stats()
        run(portal, warehouse, sweep=False)
        quiet = portal.control.requests_served()["http_requests"]
        # Without counting this refresh took 4 requests: the counts ride in the first batch.
        assert quiet <= 4 + 1, f"a refresh with nothing changed took {quiet} requests"
        assert query(warehouse, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' "
                                "AND table_name = 'deletions'")[0][0] == 0, "nothing deleted, nothing marked"
        wait_until_every_count_is_due(warehouse)

        gone = portal.control.apply_changes(advance=60, deletions={"deal": 3, "activity": 4, "contact": 2, "lead": 2})
        swept = warehouse.with_name("swept.duckdb")
        shutil.copyfile(warehouse, swept)
        portal.control.reset_stats()
        run(portal, warehouse, sweep=False)
        counted_requests = portal.control.requests_served()["http_requests"]
        run(portal, swept, sweep=True)

        marked = set(query(warehouse, "SELECT entity, id FROM raw.deletions WHERE is_deleted"))
        assert marked == set(query(swept, "SELECT entity, id FROM raw.deletions WHERE is_deleted"))
        tables = {"deal": "deals", "activity": "activities", "contact": "contacts", "lead": "leads"}
        assert {(tables[c["entity"]], c["id"]) for c in gone} <= marked
        assert {entity for entity, _ in marked} >= {"deals", "activities", "contacts", "leads", "deal_stage_history"}
        largest = max(query(warehouse, "SELECT count(*) FROM raw.activities")[0][0], 2)
        levels = math.ceil(math.log(largest, 50)) + 1      # counts down to a page of ids, then one list
        entities = len({entity for entity, _ in marked})
        extra = counted_requests - quiet
        print(f"{len(marked)} deletions in {entities} entities found in {extra} requests more ({levels} levels)")
        assert extra <= entities * levels, "at most a request per entity with deletions and level"
        assert extra <= len(marked) * math.log(largest, 50), "within the issue's k·log₅₀(n)"


def wait_until_every_count_is_due(warehouse: Path) -> None:
    """Until the next refresh counts every table's deletions again: a table is counted at most as often as its
    count's share of the portal's time allows (`paging.count_due`: a few thousand rows about every second), and a
    refresh with nothing to load may end sooner than that."""
    swept = [e.name for e in ENTITIES if e.sweep]
    largest = max(query(warehouse, f"SELECT count(*) FROM raw.{name}")[0][0] for name in swept)
    since = time.time()    # after the last refresh's counts began
    while not count_due(largest, since, time.time(), settings.COUNT_SECONDS_PER_REFRESH):
        time.sleep(0.1)


def test_deletions_the_portal_reported_are_marked_where_counting_is_not_afforded(
        warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table too big to count between sweeps (`paging.count_due`) still shows a deletion at the next refresh when
    the portal reported it (`b24wh listen`'s journal): the ids are listed, and only those the portal no longer has
    are marked; a reported id the portal still has (a forged or stale event) stays live."""
    with SimulatorProcess(**portal_options(deals=200, seed=13)) as portal:
        run(portal, warehouse)
        gone = portal.control.apply_changes(advance=60, deletions={"deal": 3})
        deleted = sorted(c["id"] for c in gone if c["entity"] == "deal")
        kept = query(warehouse, f"SELECT min(id) FROM raw.deals WHERE id NOT IN ({','.join(map(str, deleted))})")
        monkeypatch.setattr(settings, "COUNT_SECONDS_PER_REFRESH", 0.0)   # no count fits: every table is "too big"
        run(portal, warehouse, sweep=False)
        assert not query(warehouse, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' "
                                    "AND table_name = 'deletions'")[0][0], "not counted, nothing found"
        held = WarehouseIds(make_pipeline(warehouse), None, every=False)
        assert not held.read, "a table too big to count is not even read"
        assert held.live_count("deals") == query(warehouse, "SELECT count(*) FROM raw.deals")[0][0]
        assert list(held("deals")[0]) == [i for (i,) in query(warehouse, "SELECT id FROM raw.deals ORDER BY id")]
        portal.control.reset_stats()
        run(portal, warehouse, sweep=False, reported_deletions={"deals": [*deleted, kept[0][0]]})
        marked = set(query(warehouse, "SELECT entity, id FROM raw.deletions WHERE is_deleted"))
        assert {(e, i) for e, i in marked if e == "deals"} == {("deals", i) for i in deleted}
        assert portal.control.requests_served()["http_requests"] <= 5, "the reported ids cost one command"


def test_a_backfill_loads_its_window_and_leaves_the_cursors_alone(sim: SimulatorProcess, warehouse: Path) -> None:
    run(sim, warehouse, entities=["deals"])
    cursor_before = _cursor(warehouse)
    full = snapshot(warehouse, "deals")
    start, end = "2026-03-01T00:00:00+03:00", "2026-04-01T00:00:00+03:00"
    in_window = {r[0] for r in query(warehouse, f"SELECT id FROM raw.deals WHERE date_create >= '{start}' "
                                                f"AND date_create < '{end}'")}
    other = warehouse.with_name("backfill.duckdb")
    run(sim, other, entities=["deals"], backfill={"start": start, "end": end, "by": "created"})
    window = snapshot(other, "deals")
    assert {r[0] for r in window} == in_window and 0 < len(window) < len(full)
    assert window == [r for r in full if r[0] in in_window]
    run(sim, warehouse, entities=["deals"], backfill={"start": start, "end": end, "by": "created"})
    assert _cursor(warehouse) == cursor_before
    assert snapshot(warehouse, "deals") == full


def _cursor(warehouse: Path) -> Any:
    state = query(warehouse, "SELECT state FROM raw._dlt_pipeline_state ORDER BY created_at DESC LIMIT 1")[0][0]
    decoded = json.loads(zlib.decompress(base64.b64decode(state)))
    return decoded["sources"]["bitrix24"]["resources"]["deals"]["cursor"]


def test_faults_and_the_real_rate_limit_leave_the_warehouse_identical(sim: SimulatorProcess, tmp_path: Path) -> None:
    clean = tmp_path / "clean" / "warehouse.duckdb"
    run(sim, clean)
    with SimulatorProcess(**portal_options(deals=400, seed=17, rate=2, burst=50, fault_503=0.05, fault_html=0.04,
                                           fault_drop=0.03, fault_slow=0.03, slow_seconds=0.3)) as faulty:
        faulted = tmp_path / "faulted" / "warehouse.duckdb"
        run(faulty, faulted)
        served = faulty.control.requests_served()
        assert served.get("fault_503", 0) + served.get("fault_html", 0) + served.get("fault_drop", 0) > 0
    for table in TRUTH_TABLES:
        if table in ("users", "departments", "pipelines"):
            continue
        assert snapshot(faulted, table) == snapshot(clean, table), table


@pytest.mark.parametrize("kind", ["malformed", "wrong_secret", "missing_scope", "down"])
def test_bad_configuration_fails_in_one_line_before_anything_is_written(sim: SimulatorProcess, warehouse: Path,
                                                                       kind: str) -> None:
    from pipelines.bitrix24.errors import Bitrix24Error

    secret = sim.webhook_url.rstrip("/").rsplit("/", 1)[1]
    urls = {"malformed": sim.webhook_url.replace("/rest/1/", "/rest/"),
            "wrong_secret": sim.webhook_url.replace(secret, "0" * len(secret)),
            "down": "http://127.0.0.1:9/rest/1/abcdef/"}
    if kind == "missing_scope":
        with SimulatorProcess(**portal_options(deals=60, scopes="crm,user")) as limited, \
                pytest.raises(Bitrix24Error) as err:
            load(warehouse, credentials=limited.webhook_url, progress="log")
    else:
        with pytest.raises(Bitrix24Error) as err:
            load(warehouse, credentials=urls[kind], progress="log", max_attempts=2)
    message = str(err.value)
    assert "\n" not in message and secret not in message
    expected = {"malformed": "malformed", "wrong_secret": "user id and secret", "missing_scope": "department",
                        "down": "unreachable"}[kind]
    assert expected in message
    assert not warehouse.exists() or not query(warehouse, "SELECT count(*) FROM information_schema.tables "
                                                          "WHERE table_schema = 'raw' AND table_name = 'deals'")[0][0]


def test_a_large_table_is_read_in_one_id_range_per_batch_in_flight(warehouse: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pipelines.bitrix24.paging")
    with SimulatorProcess(**portal_options(deals=3000, seed=37)) as portal:
        portal.control.reset_stats()
        run(portal, warehouse, entities=["activities"])
        truth = portal.control.truth()["rows"]["activities"]
        served = portal.control.requests_served()["http_requests"]
    assert caplog.text.count("split off to another walker") == settings.BATCHES_IN_FLIGHT - 1
    assert query(warehouse, "SELECT count(*), count(DISTINCT id) FROM raw.activities")[0] == (truth, truth)
    assert served <= 2 + truth / 2500 * 1.1, f"{served} requests for {truth} rows"


def test_a_plain_refresh_sweeps_once_the_cadence_is_due_and_not_before(warehouse: Path) -> None:
    with SimulatorProcess(**portal_options(deals=120, seed=31)) as portal:
        run(portal, warehouse)                                   # a first load reads every id: the clock starts
        first = last_sweep(make_pipeline(warehouse))
        assert first is not None
        gone = {c["id"] for c in portal.control.apply_changes(advance=60, deletions={"deal": 2})}
        run(portal, warehouse)                                   # a day has not passed: no sweep ...
        assert last_sweep(make_pipeline(warehouse)) == first
        marked = {i for (i,) in query(warehouse, "SELECT id FROM raw.deletions WHERE entity = 'deals' AND is_deleted")}
        assert marked == gone, "... yet counting found the deletions"
        run(portal, warehouse, sweep_every_hours=0.0)           # due: the plain refresh sweeps
        marked = {i for (i,) in query(warehouse, "SELECT id FROM raw.deletions WHERE entity = 'deals' AND is_deleted")}
        assert marked == gone
        assert last_sweep(make_pipeline(warehouse)) > first
