"""Building the star schema on a big warehouse: a full build, then an incremental one after 100 changed deals.

    python benchmarks/model.py                 # 1,000,000 deals, about 10M activities
    python benchmarks/model.py --copies 5      # 100,000 deals

A real portal of 20,000 deals (the simulator) is extracted into a base warehouse, then its raw tables
are replicated `--copies` times with shifted ids (every key and reference moved together), which
keeps the data's shapes while reaching the size; extracting 25M rows through the API would take
most of an hour. The big warehouse is built in full. Then about 100 deals change in the portal (new,
moved, won, lost, edited, with their activities and calls), an incremental load brings them in, and
the model is built again, incrementally. Prints each build's time and the process's peak memory beside
the baseline (the full build of the base warehouse), and checks the incremental result equals a full
rebuild of the same raw data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b24wh_simulator.client import SimulatorProcess  # noqa: E402
from benchmarks.memory import peak_mib  # noqa: E402
from warehouse.catalogue import CORE_TABLES  # noqa: E402

# Per raw table: the id column and the columns that reference other replicated rows.
SHIFTED = {
    "deals": ("id", "contact_id", "company_id", "lead_id"),
    "deal_stage_history": ("id", "owner_id"),
    "activities": ("id", "owner_id"),
    "contacts": ("id", "company_id"),
    "companies": ("id",),
    "invoices": ("id", "parent_id2", "company_id", "contact_id"),
    "invoice_stage_history": ("id", "owner_id"),
    "calls": ("id", "crm_entity_id", "crm_activity_id"),
}

BUILD = """
import json, sys
from benchmarks.memory import peak_mib
from warehouse.build import build
built = build(sys.argv[1], full=sys.argv[2] == "full")
print("RESULT " + json.dumps({"mode": built.mode, "reason": built.reason, "seconds": built.seconds,
      "peak_mib": peak_mib(), "counts": built.counts}))
"""


def timed_build(warehouse: Path, mode: str) -> dict[str, Any]:
    """Builds in a fresh process (so its peak memory is the build's own); mode: full | auto."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", BUILD, str(warehouse), mode], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])


LOAD = """
import json, sys, time
from pipelines.bitrix24 import pipeline
replicas = json.loads(sys.argv[3])     # per raw table: ids from here on are the benchmark's copies, not the portal's
if replicas:
    class PortalsOwn(pipeline.WarehouseIds):
        def ids_sql(self, client, entity, which):
            below = f" AND id < {replicas[entity]}" if entity in replicas else ""
            return super().ids_sql(client, entity, which) + below
    pipeline.WarehouseIds = PortalsOwn
started = time.perf_counter()
pipeline.load(sys.argv[1], credentials=sys.argv[2], progress="log", operating_limit=0)
print(f"RESULT {time.perf_counter() - started}")
"""


def load(warehouse: Path, webhook_url: str, replicas: dict[str, int] | None = None) -> tuple[float, float]:
    """An incremental load in a fresh process, as the builds are run: the seconds of the load itself, timed as
    `timed_build` times a build (without the process's start and imports), and of the whole process. In a
    replicated warehouse (`replicas`: where each raw table's copies start) a plain refresh counts deletions
    among the portal's own ids: the copies are not in the portal, and counting them would find every one
    deleted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LOAD, str(warehouse), webhook_url, json.dumps(replicas or {})],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the load failed: {done.stderr.strip().splitlines()[-1:]}")
    itself = float(next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    return itself, time.perf_counter() - started


ANCHOR = "2026-11-02T18:00:00"


def portal(deals: int) -> SimulatorProcess:
    """A simulator portal with a frozen clock and the limits out of the way (the benchmarks time our code)."""
    return SimulatorProcess(deals=deals, clock="frozen", anchor=ANCHOR, rate=1000, burst=10**6, operating_limit=0)


def differences(warehouse: Path, other: Path) -> int:
    """Rows in which two warehouses' core tables differ (both ways, as multisets)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET memory_limit = '4GB'")
        con.execute(f"ATTACH '{other}' AS other (READ_ONLY)")
        return sum(int(con.execute(f"SELECT (SELECT count(*) FROM (FROM core.{t} EXCEPT ALL FROM other.core.{t})) + "
                                   f"(SELECT count(*) FROM (FROM other.core.{t} EXCEPT ALL FROM core.{t}))"
                                   ).fetchone()[0])  # type: ignore[index]
                   for t in CORE_TABLES)


def report(label: str, result: dict[str, Any]) -> str:
    return (f"{label}: {result['counts']['fact_deal']:,} deals, {result['counts']['fact_activity']:,} activities, "
            f"{result['mode']} in {result['seconds']:.1f} s, peak {result['peak_mib']:.0f} MiB")


# What each shifted column points at (None: the row's own table); owners are mostly deals.
REFERENCES = {"id": None, "contact_id": "contacts", "company_id": "companies", "lead_id": "leads",
              "parent_id2": "deals", "crm_activity_id": "activities", "owner_id": "deals", "crm_entity_id": "deals"}


def replicate(warehouse: Path, copies: int) -> dict[str, int]:
    """Adds `copies - 1` copies of every replicated raw table, each id and reference moved by its span (twice
    the table's largest id, so rows the portal creates later keep ids of their own); returns where each
    table's copies start."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("SET memory_limit = '4GB'")
        tops = {t: int(con.execute(f"SELECT max(id) FROM raw.{t}").fetchone()[0] or 0) for t in {*SHIFTED, "leads"}}
        spans = {t: 2 * top for t, top in tops.items()}
        for table, columns in SHIFTED.items():
            top = tops[table]
            for copy in range(1, copies):
                moved = ", ".join(f"{c} + {copy * spans[REFERENCES[c] or table]} AS {c}" for c in columns)
                con.execute(f"INSERT INTO raw.{table} SELECT * REPLACE ({moved}, _dlt_id || '-{copy}' AS _dlt_id) "
                            f"FROM raw.{table} WHERE id <= {top}")
        con.execute("CHECKPOINT")
    return {table: spans[table] + 1 for table in SHIFTED}


# About 100 changed deals: 20 new, 30 moved a stage on, 15 won (each with an invoice), 15 lost, 20 with a new
# amount (of 80 field edits, a quarter hit deals); besides, new and completed activities and calls.
CHANGES = {"new_deals": 20, "stage_moves": 30, "wins": 15, "losses": 15, "field_edits": 80, "new_activities": 30,
           "complete_activities": 20, "new_calls": 30}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-deals", type=int, default=20_000)
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="b24-model-") as tmp:
        base, big, rebuilt = (Path(tmp) / name for name in ("base.duckdb", "big.duckdb", "rebuilt.duckdb"))
        print(f"Extracting a {args.base_deals:,}-deal portal into the base warehouse...", flush=True)
        with portal(args.base_deals) as sim:
            load(base, sim.webhook_url)
            baseline = timed_build(base, "full")
            print("  baseline " + report("full build", baseline), flush=True)
            shutil.copyfile(base, big)
            started = time.perf_counter()
            replicas = replicate(big, args.copies)
            print(f"  replicated raw tables x{args.copies} in {time.perf_counter() - started:.0f} s", flush=True)
            full = timed_build(big, "full")
            print(report("Full build", full) + f" (target at most 120 s); {full['seconds'] / baseline['seconds']:.0f}x "
                  f"the baseline's time for {full['counts']['fact_deal'] / baseline['counts']['fact_deal']:.0f}x "
                  "the deals", flush=True)
            changes = sim.control.apply_changes(advance=3600, **CHANGES)
            deals = len({c["id"] for c in changes if c["entity"] == "deal"})
            loaded, process = load(big, sim.webhook_url, replicas)
            print(f"  {len(changes)} changes in the portal ({deals} deals); incremental load {loaded:.1f} s "
                  f"({process:.1f} s with its process's start)", flush=True)
        shutil.copyfile(big, rebuilt)
        incremental = timed_build(big, "auto")
        print(report("Incremental build", incremental) + f" (target at most 10 s): {incremental['reason']}; "
              f"{full['seconds'] / incremental['seconds']:.0f}x faster than the full build", flush=True)
        check = timed_build(rebuilt, "full")
        print(f"  the same raw data rebuilt in full: {check['seconds']:.1f} s; "
              f"rows that differ from the incremental result: {differences(big, rebuilt)}")
        print(f"Benchmark process peak memory: {peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
