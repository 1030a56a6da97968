"""Publishing a big warehouse for BI tools: time per target (DuckDB file, Parquet, PostgreSQL).

    python benchmarks/publish.py                 # 1,000,000 deals, about 10M activities
    python benchmarks/publish.py --copies 5      # 100,000 deals

The warehouse is made as in benchmarks/model.py (a 20,000-deal portal replicated `--copies` times), its
core tables and marts built; then each target is published twice (the second run replaces the first,
as every refresh does) into a private PostgreSQL server and a temporary folder, beside the baseline
(the same on the base warehouse).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.memory import peak_mib  # noqa: E402
from benchmarks.model import ANCHOR, extract_base, replicate, timed_build  # noqa: E402
from tests.postgres import postgres_server  # noqa: E402
from warehouse.marts import build_marts  # noqa: E402
from warehouse.publish import publish  # noqa: E402
from warehouse.settings import Settings  # noqa: E402


def timed_publish(warehouse: Path, folder: Path, url: str) -> dict[str, float]:
    settings = Settings(publish_directory=folder)
    publish(warehouse, settings, sql_url=url)
    return publish(warehouse, settings, sql_url=url).seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-deals", type=int, default=20_000)
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="b24-publish-") as tmp, postgres_server() as url:
        base, big = Path(tmp) / "base.duckdb", Path(tmp) / "big.duckdb"
        extract_base(base, args.base_deals)
        build_marts(base, as_of=datetime.fromisoformat(ANCHOR))
        baseline = timed_publish(base, Path(tmp) / "base-published", url)
        shutil.copyfile(base, big)
        replicate(big, args.copies)
        timed_build(big, "full")
        marts = build_marts(big, as_of=datetime.fromisoformat(ANCHOR))
        rows = sum(marts.counts.values())
        print(f"  big warehouse built; marts hold {rows:,} rows", flush=True)
        result = timed_publish(big, Path(tmp) / "published", url)
        for target, seconds in result.items():
            print(f"Publish to {target:<8} {seconds:7.1f} s   baseline {baseline[target]:5.1f} s   "
                  f"{seconds / baseline[target]:4.0f}x for {args.copies}x the data", flush=True)
        size = sum(p.stat().st_size for p in (Path(tmp) / "published").rglob("*") if p.is_file()) / 2**20
        print(f"Published files: {size:,.0f} MiB; benchmark process peak memory {peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
