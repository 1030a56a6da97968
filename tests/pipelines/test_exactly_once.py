"""A load killed at any point and run again leaves exactly the portal's rows; secrets never leak."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from b24wh_simulator.client import SimulatorProcess
from pipelines.bitrix24.pipeline import load
from tests.conftest import portal_options
from tests.pipelines.conftest import TRUTH_TABLES, counts, duplicates, query

ROOT = Path(__file__).resolve().parents[2]

# The child runs a load and dies at a chosen point: mid-extract (killed from outside), after normalize,
# or in the middle of the load step (once some jobs have completed).
CHILD = textwrap.dedent("""
    import os, sys, threading, time
    from pathlib import Path
    from pipelines.bitrix24.pipeline import make_pipeline
    from pipelines.bitrix24.source import bitrix24_source
    warehouse, url, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    pipeline = make_pipeline(warehouse, progress="log")
    pipeline.sync_destination()
    pipeline.extract(bitrix24_source(credentials=url))
    pipeline.normalize()
    if point == "after_normalize":
        os._exit(9)
    if point == "mid_load":
        def watch():
            while True:
                done = list(Path(pipeline.working_dir).glob("load/normalized/*/completed_jobs/*"))
                if len(done) >= 4:
                    os._exit(9)
                time.sleep(0.001)
        threading.Thread(target=watch, daemon=True).start()
    pipeline.load()
""")


def child(warehouse: Path, url: str, point: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(warehouse), url, point], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("point", ["mid_extract", "after_normalize", "mid_load"])
def test_a_killed_load_then_a_rerun_gives_exactly_the_portals_rows(tmp_path: Path, point: str) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=400, seed=31)) as portal:
        load(warehouse, credentials=portal.webhook_url, progress="log", entities=["deals", "activities"])
        portal.control.apply_changes(advance=600, new_deals=20, stage_moves=30, field_edits=20, new_calls=30)
        if point == "mid_extract":
            portal.control.set_costs(latency_scale=0.2)   # about a second per batch: time to be killed
            portal.control.reset_stats()
            process = child(warehouse, portal.webhook_url, point)
            deadline = time.monotonic() + 60
            while portal.control.requests_served().get("http_requests", 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            portal.control.set_costs(latency_scale=0.0)
        else:
            assert child(warehouse, portal.webhook_url, point).wait() == 9
        load(warehouse, credentials=portal.webhook_url, progress="log")
        truth = portal.control.truth()["rows"]
        assert counts(warehouse) == {table: truth[key] for table, key in TRUTH_TABLES.items()}
        assert all(n == 0 for n in duplicates(warehouse).values())


def test_the_secret_never_reaches_logs_errors_state_or_the_warehouse(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    caplog.set_level(logging.DEBUG)
    with SimulatorProcess(**portal_options(deals=80, seed=3, fault_html=0.2, fault_drop=0.1)) as portal:
        secret = portal.webhook_url.rstrip("/").rsplit("/", 1)[1]
        load(warehouse, credentials=portal.webhook_url, progress="log")
        portal.control.set_faults(rate_drop=1.0)
        with pytest.raises(Exception) as failure:
            load(warehouse, credentials=portal.webhook_url, progress="log", max_attempts=2)
    assert secret not in str(failure.value) and secret not in repr(failure.value)
    assert secret not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the secret is written in {path}"


def test_oauth_tokens_are_renewed_when_they_expire(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with SimulatorProcess(**portal_options(deals=80, seed=4)) as portal:
        tokens = portal.control.authorize()
        oauth = {"portal": portal.base_url, "client_id": portal.oauth["client_id"],
                 "client_secret": portal.oauth["client_secret"], "refresh_token": tokens["refresh_token"],
                 "token_url": portal.oauth["token_url"], "token_file": str(tmp_path / "tokens.json")}
        load(warehouse, credentials=oauth, progress="log", entities=["deals"])
        portal.control.apply_changes(advance=7200, new_deals=3)     # the access token has expired by now
        load(warehouse, credentials=oauth, progress="log", entities=["deals"])
        loaded = query(warehouse, "SELECT count(*) FROM raw.deals")[0][0]
        assert loaded == portal.control.truth()["rows"]["deals"]
        assert (tmp_path / "tokens.json").stat().st_mode & 0o777 == 0o600
