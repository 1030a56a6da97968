"""Extraction at the API's ceiling: requests, rows per request, speed and memory per entity.

    python benchmarks/extract.py                      # 200,000 deals (about 2M activities), real limits
    python benchmarks/extract.py --deals 20000 --offset-pages 10

With the simulator's cost model and the real request limit (2 requests/s, burst 50; `--operating-limit
480` adds the per-method budget, which makes a big first load take hours, as on a real portal), it
loads each entity in its own process into one warehouse and prints rows, HTTP requests (not counting
the one preflight request every run makes, whatever it loads), rows per
request against the floor ceil(rows / 2,500), rows/s, peak memory, the modelled server time and the
least time a 480 s / 10 min operating budget would allow for it on a real portal. Beside it, in the same run, the
same portal read by offset paging the way common connectors do (`start=0, 50, ...`, one request per
page, counting `total` every time), sampled for `--offset-pages` pages per entity and extrapolated.
Then 100 changes spread over the entities and one incremental refresh: its request count.

With a real portal's latency, beside the Python clients people use: `benchmarks/clients.py`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b24wh_simulator.client import SimulatorProcess  # noqa: E402
from benchmarks.memory import peak_mib  # noqa: E402
from pipelines.bitrix24.catalogue import ENTITIES  # noqa: E402

CHILD = """
import json, sys, time
from benchmarks.memory import peak_mib
from pipelines.bitrix24.pipeline import load
started = time.perf_counter()
load(sys.argv[1], credentials=sys.argv[2], entities=[sys.argv[3]], progress="log", sweep=False,
     operating_limit=float(sys.argv[4]))
print("RESULT " + json.dumps({"seconds": time.perf_counter() - started,
                              "peak_mib": peak_mib()}))
"""


def load_entity(warehouse: Path, url: str, entity: str, operating_limit: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(warehouse), url, entity, str(operating_limit)], env=env,
                          capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def offset_sample(url: str, entity: object, pages: int) -> tuple[float, float]:
    """Requests/s and modelled server seconds per page of plain offset paging, sampled."""
    session = requests.Session()
    started = time.perf_counter()
    server = 0.0
    for page in range(pages):
        params = dict(entity.params)   # type: ignore[attr-defined]
        params.update({"start": page * 50})
        body = session.post(url + entity.method, json=params, timeout=120).json()   # type: ignore[attr-defined]
        server += float(body.get("time", {}).get("processing", 0.0))
        if "next" not in body:
            break
    elapsed = time.perf_counter() - started
    return elapsed / max(1, page + 1), server / max(1, page + 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=200_000)
    parser.add_argument("--operating-limit", type=float, default=0.0)
    parser.add_argument("--offset-pages", type=int, default=20)
    args = parser.parse_args()
    options = {"deals": args.deals, "clock": "frozen", "anchor": "2026-11-02T18:00:00", "rate": 2, "burst": 50,
               "operating_limit": args.operating_limit}
    with tempfile.TemporaryDirectory(prefix="b24-extract-") as tmp, SimulatorProcess(**options) as sim:
        truth = sim.control.truth()["rows"]
        warehouse = Path(tmp) / "warehouse.duckdb"
        print(f"Portal: {args.deals:,} deals, {truth['activities']:,} activities; limits 2 requests/s, burst 50, "
              f"operating limit {args.operating_limit or 'off'}", flush=True)
        header = (f"{'entity':<22}{'rows':>10}{'requests':>10}{'rows/req':>10}{'vs floor':>9}{'rows/s':>9}"
                  f"{'peak MiB':>9}{'server s':>9}{'480s-min':>9} | {'offset req':>11}{'offset x':>9}"
                  f"{'offset h':>9}")
        print(header)
        totals = {"rows": 0, "requests": 0, "offset": 0}
        for entity in ENTITIES:
            sim.control.reset_stats()
            result = load_entity(warehouse, sim.webhook_url, entity.name, args.operating_limit)
            stats = sim.control.requests_served()
            served = stats.get("http_requests", 0) - 1   # the run's preflight (credentials, scopes, custom fields)
            server = stats.get("server_ms", 0) / 1000
            budget_minutes = server / 480 * 10   # the least time the 480 s / 10 min budget allows
            rows = truth.get(entity.name, 0) if entity.name in truth else _count(warehouse, entity.name)
            floor = max(1, math.ceil(rows / 2500))
            offset_requests = max(1, math.ceil(rows / 50))
            per_page, _server = offset_sample(sim.webhook_url, entity, args.offset_pages)
            offset_hours = offset_requests * max(per_page, 0.5) / 3600
            totals["rows"] += rows
            totals["requests"] += served
            totals["offset"] += offset_requests
            print(f"{entity.name:<22}{rows:>10,}{served:>10,}{rows / max(1, served):>10,.0f}{served / floor:>9.2f}"
                  f"{rows / result['seconds']:>9,.0f}{result['peak_mib']:>9.0f}{server:>9.0f}{budget_minutes:>8.0f}m"
                  f" | {offset_requests:>11,}"
                  f"{offset_requests / max(1, served):>9.1f}{offset_hours:>9.2f}", flush=True)
        print(f"{'all':<22}{totals['rows']:>10,}{totals['requests']:>10,}"
              f"{totals['rows'] / max(1, totals['requests']):>10,.0f}{'':>9}{'':>9}{'':>9} | "
              f"{totals['offset']:>11,}{totals['offset'] / max(1, totals['requests']):>9.1f}")
        changes = sim.control.apply_changes(advance=3600, new_deals=10, stage_moves=20, wins=5, losses=5,
                                            field_edits=20, new_calls=15, complete_activities=10, new_leads=8,
                                            new_contacts=7)
        sim.control.reset_stats()
        started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", "import sys; from pipelines.bitrix24.pipeline import load; "
                        "load(sys.argv[1], credentials=sys.argv[2], progress='log', sweep=False)", str(warehouse),
                        sim.webhook_url], env=env, check=True, capture_output=True)
        served = sim.control.requests_served().get("http_requests", 0)
        print(f"Incremental refresh after {len(changes)} changes: {served} HTTP requests, "
              f"{time.perf_counter() - started:.1f} s (target: at most 5 requests)")
        print(f"Peak memory of this benchmark process: "
              f"{peak_mib():.0f} MiB")
    return 0


def _count(warehouse: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())
