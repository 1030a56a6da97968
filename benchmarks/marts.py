"""The report marts on a big warehouse: a full build, then an incremental one after 100 changed deals.

    python benchmarks/marts.py                 # 1,000,000 deals, about 10M activities
    python benchmarks/marts.py --copies 5      # 100,000 deals

The warehouse is made as in benchmarks/model.py: a 20,000-deal portal from the simulator, its raw tables
replicated `--copies` times with shifted ids, the core tables built. All marts are built in full in a fresh
process, timed, beside the baseline (the marts of the base warehouse). Then about 100 deals change in the
portal an hour later (benchmarks/model.py's changes), an incremental load and core build bring them in, and
the marts are built again: the patched relations (user_history, data_quality, manager_events) incrementally,
the rest in full. Prints that time beside the full build's, with the tables each build spent most on, and checks
the result equals a full rebuild of a copy, row for row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.model import ANCHOR, CHANGES, load, portal, replicate, timed_build  # noqa: E402
from warehouse.catalogue import MART_TABLES  # noqa: E402

MARTS = """
import json, sys
from datetime import datetime
from benchmarks.memory import peak_mib
from warehouse.marts import build_marts
built = build_marts(sys.argv[1], as_of=datetime.fromisoformat(sys.argv[2]), full=sys.argv[3] == "full")
print("RESULT " + json.dumps({"seconds": built.seconds, "peak_mib": peak_mib(), "counts": built.counts,
      "mode": built.mode, "reason": built.reason, "timings": built.timings}))
"""


def timed_marts(warehouse: Path, as_of: str = ANCHOR, mode: str = "auto") -> dict[str, Any]:
    """Builds the marts in a fresh process (so its peak memory is the build's own); mode: full | auto."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", MARTS, str(warehouse), as_of, mode], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])


def slowest(built: dict[str, Any], top: int = 6) -> str:
    """The tables a marts build spent most on, with their seconds."""
    ranked = sorted(built["timings"].items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{relation} {seconds:.2f} s" for relation, seconds in ranked)


def differences(warehouse: Path, other: Path) -> dict[str, int]:
    """Rows in which two warehouses' marts differ (both ways, as multisets), per mart that differs."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET memory_limit = '4GB'")
        con.execute(f"ATTACH '{other}' AS other (READ_ONLY)")
        found = {t: int(con.execute(f"SELECT (SELECT count(*) FROM (FROM marts.{t} EXCEPT ALL FROM other.marts.{t})) "
                                    f"+ (SELECT count(*) FROM (FROM other.marts.{t} EXCEPT ALL FROM marts.{t}))"
                                    ).fetchone()[0])  # type: ignore[index]
                 for t in MART_TABLES}
    return {t: n for t, n in found.items() if n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-deals", type=int, default=20_000)
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    later = (datetime.fromisoformat(ANCHOR) + timedelta(hours=1)).isoformat()
    with tempfile.TemporaryDirectory(prefix="b24-marts-") as tmp:
        base, big, rebuilt = (Path(tmp) / name for name in ("base.duckdb", "big.duckdb", "rebuilt.duckdb"))
        print(f"Extracting a {args.base_deals:,}-deal portal into the base warehouse...", flush=True)
        with portal(args.base_deals) as sim:
            load(base, sim.webhook_url)
            timed_build(base, "full")
            baseline = timed_marts(base)
            print(f"  baseline: marts of {args.base_deals:,} deals in {baseline['seconds']:.1f} s, "
                  f"peak {baseline['peak_mib']:.0f} MiB", flush=True)
            shutil.copyfile(base, big)
            replicas = replicate(big, args.copies)
            core = timed_build(big, "full")
            print(f"  core tables: {core['counts']['fact_deal']:,} deals, {core['counts']['fact_activity']:,} "
                  f"activities built in {core['seconds']:.1f} s", flush=True)
            full = timed_marts(big)
            print(f"All marts built in full in {full['seconds']:.1f} s (target at most 60 s), peak "
                  f"{full['peak_mib']:.0f} MiB; {full['seconds'] / baseline['seconds']:.0f}x the baseline's time for "
                  f"{args.copies}x the data", flush=True)
            for name, rows in full["counts"].items():
                print(f"  marts.{name:<38} {rows:>12,} rows")
            print(f"  slowest: {slowest(full)}", flush=True)
            changes = sim.control.apply_changes(advance=3600, **CHANGES)
            load(big, sim.webhook_url, replicas)
        step = timed_build(big, "auto")
        print(f"  {len(changes)} changes in the portal ({len({c['id'] for c in changes if c['entity'] == 'deal'})} "
              f"deals) loaded; core built {step['mode']}ly in {step['seconds']:.1f} s", flush=True)
        shutil.copyfile(big, rebuilt)
        patched = timed_marts(big, later)
        print(f"Marts after the change, {patched['mode']}: {patched['seconds']:.1f} s, peak {patched['peak_mib']:.0f} "
              f"MiB ({patched['reason']}); {full['seconds'] / patched['seconds']:.1f}x faster than in full", flush=True)
        print(f"  slowest: {slowest(patched)}", flush=True)
        check = timed_marts(rebuilt, later, "full")
        print(f"  the same warehouse's marts rebuilt in full: {check['seconds']:.1f} s; marts that differ from the "
              f"incremental result: {differences(big, rebuilt) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
