"""Rebuilding every report mart on a big warehouse: time and peak memory.

    python benchmarks/marts.py                 # 1,000,000 deals, about 10M activities
    python benchmarks/marts.py --copies 5      # 100,000 deals

The warehouse is made as in benchmarks/model.py: a 20,000-deal portal from the simulator, its raw tables
replicated `--copies` times with shifted ids, the core tables built. Then all marts are built in a
fresh process, timed, beside the baseline (the marts of the base warehouse).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.model import ANCHOR, extract_base, replicate, timed_build  # noqa: E402

MARTS = """
import json, sys
from datetime import datetime
from benchmarks.memory import peak_mib
from warehouse.marts import build_marts
built = build_marts(sys.argv[1], as_of=datetime.fromisoformat(sys.argv[2]))
print("RESULT " + json.dumps({"seconds": built.seconds, "peak_mib": peak_mib(), "counts": built.counts}))
"""


def timed_marts(warehouse: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", MARTS, str(warehouse), ANCHOR], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-deals", type=int, default=20_000)
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="b24-marts-") as tmp:
        base, big = Path(tmp) / "base.duckdb", Path(tmp) / "big.duckdb"
        extract_base(base, args.base_deals)
        baseline = timed_marts(base)
        print(f"  baseline: marts of {args.base_deals:,} deals in {baseline['seconds']:.1f} s, "
              f"peak {baseline['peak_mib']:.0f} MiB", flush=True)
        shutil.copyfile(base, big)
        replicate(big, args.copies)
        core = timed_build(big, "full")
        print(f"  core tables: {core['counts']['fact_deal']:,} deals, {core['counts']['fact_activity']:,} activities "
              f"built in {core['seconds']:.1f} s", flush=True)
        result = timed_marts(big)
        print(f"All marts rebuilt in {result['seconds']:.1f} s (target at most 60 s), peak {result['peak_mib']:.0f} "
              f"MiB; {result['seconds'] / baseline['seconds']:.0f}x the baseline's time for {args.copies}x the data")
        for name, rows in result["counts"].items():
            print(f"  marts.{name:<38} {rows:>12,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
