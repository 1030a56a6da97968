"""Building the star schema on a big warehouse: time and peak memory of a full model build.

    python benchmarks/model.py                 # 1,000,000 deals, about 10M activities
    python benchmarks/model.py --copies 5      # 100,000 deals

A real portal of 20,000 deals (the simulator) is extracted into a base warehouse, then its raw tables
are replicated `--copies` times with shifted ids (every key and reference moved together), which
keeps the data's shapes while reaching the size; extracting 25M rows through the API would take
most of an hour. Prints the raw sizes, the full build's time and the process's peak memory, beside the
baseline of the same build on the base warehouse.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.client import SimulatorProcess  # noqa: E402

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
import resource, sys, time
from warehouse.build import build
started = time.perf_counter()
counts = build(sys.argv[1])
print("RESULT", time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      counts["fact_deal"], counts["fact_activity"])
"""


def timed_build(warehouse: Path) -> tuple[float, float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", BUILD, str(warehouse)], env=env, capture_output=True, text=True,
                          check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    _, seconds, peak, deals, activities = line.split()
    return float(seconds), float(peak), int(deals), int(activities)


# What each shifted column points at (None: the row's own table); owners are mostly deals.
REFERENCES = {"id": None, "contact_id": "contacts", "company_id": "companies", "lead_id": "leads",
              "parent_id2": "deals", "crm_activity_id": "activities", "owner_id": "deals", "crm_entity_id": "deals"}


def replicate(warehouse: Path, copies: int) -> None:
    """Adds `copies - 1` copies of every replicated raw table, each id and reference moved by its span."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("SET memory_limit = '4GB'")
        spans = {t: int(con.execute(f"SELECT max(id) FROM raw.{t}").fetchone()[0] or 0)
                 for t in {*SHIFTED, "leads"}}
        for table, columns in SHIFTED.items():
            top = spans[table]
            for copy in range(1, copies):
                moved = ", ".join(f"{c} + {copy * spans[REFERENCES[c] or table]} AS {c}" for c in columns)
                con.execute(f"INSERT INTO raw.{table} SELECT * REPLACE ({moved}, _dlt_id || '-{copy}' AS _dlt_id) "
                            f"FROM raw.{table} WHERE id <= {top}")
        con.execute("CHECKPOINT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-deals", type=int, default=20_000)
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="b24-model-") as tmp:
        base = Path(tmp) / "base.duckdb"
        options = {"deals": args.base_deals, "clock": "frozen", "anchor": "2026-11-02T18:00:00", "rate": 1000,
                   "burst": 10**6, "operating_limit": 0}
        print(f"Extracting a {args.base_deals:,}-deal portal into the base warehouse...", flush=True)
        with SimulatorProcess(**options) as sim:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            subprocess.run([sys.executable, "-c", "import sys; from pipelines.bitrix24.pipeline import load; "
                            "load(sys.argv[1], webhook_url=sys.argv[2], progress='log', operating_limit=0)",
                            str(base), sim.webhook_url], env=env, check=True, capture_output=True)
        seconds, peak, deals, activities = timed_build(base)
        print(f"  baseline build: {deals:,} deals, {activities:,} activities in {seconds:.1f} s, "
              f"peak {peak:.0f} MiB", flush=True)
        big = Path(tmp) / "big.duckdb"
        shutil.copyfile(base, big)
        started = time.perf_counter()
        replicate(big, args.copies)
        print(f"  replicated raw tables x{args.copies} in {time.perf_counter() - started:.0f} s", flush=True)
        seconds_big, peak_big, deals_big, activities_big = timed_build(big)
        print(f"Full build: {deals_big:,} deals, {activities_big:,} activities in {seconds_big:.1f} s "
              f"(target at most 120 s), peak memory {peak_big:.0f} MiB; "
              f"{seconds_big / max(seconds, 0.001):.0f}x the baseline's time for {deals_big / max(deals, 1):.0f}x "
              f"the deals")
        print(f"Benchmark process peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
