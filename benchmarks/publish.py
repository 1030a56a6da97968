"""Publishing a big warehouse for BI tools, in full and after a change: time per target (DuckDB file,
Parquet, PostgreSQL), and a whole refresh's time after the change.

    python benchmarks/publish.py                 # 1,000,000 deals, about 10M activities
    python benchmarks/publish.py --copies 5      # 100,000 deals

The warehouse is made as in benchmarks/model.py (a 20,000-deal portal replicated `--copies` times), its
core tables and marts built, and published in full to every target (a private PostgreSQL server and a
temporary folder), beside the baseline (the same on the base warehouse). Then, `--rounds` times (default 4),
about 100 deals change in the portal an hour later (benchmarks/model.py's changes); an incremental load, core
build and marts build bring them in, and every target is published again: incrementally where it can be
(DuckDB, PostgreSQL; Parquet is always written whole). Two versions are kept: the first publication after a
change patches a copy of the newest DuckDB file, the second patches the oldest file, as every later one does.
Prints each step's time, the refresh's total (load, core, marts, DuckDB publication: the median and range of
the rounds after the first, since one round on a shared machine can be 15-25 % off), and checks the published
file equals the warehouse and PostgreSQL holds as many rows. Each step runs in a process of its own and is
timed inside it, without the process's start and imports, which a refresh pays once for all its steps (about a
second). The total is also printed with the checks a refresh counts between its steps, and with a process's
start.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.marts import slowest, timed_marts  # noqa: E402
from benchmarks.memory import peak_mib  # noqa: E402
from benchmarks.model import ANCHOR, CHANGES, load, portal, replicate, timed_build  # noqa: E402
from tests.postgres import postgres_server  # noqa: E402
from warehouse.checks import CORE_CHECKS, MART_CHECKS, Check, count  # noqa: E402
from warehouse.publish import PUBLISHED, Published, publish  # noqa: E402
from warehouse.settings import Settings  # noqa: E402


def timed_publish(warehouse: Path, folder: Path, url: str) -> Published:
    """Keeping two versions: from the third publication on, the older is patched into the next."""
    return publish(warehouse, Settings(publish_directory=folder, keep_versions=2), sql_url=url)


def timed_checks(warehouse: Path, checks: tuple[Check, ...]) -> float:
    """Seconds the checks take, as a refresh counts them after its step; each must pass."""
    started = time.perf_counter()
    failed = [f"{c.table}.{c.name}" for c, n in count(str(warehouse), checks).items() if n]
    if failed:
        raise SystemExit(f"checks failed: {failed}")
    return time.perf_counter() - started


def vacuum(url: str) -> float:
    """VACUUM ANALYZE of the server: its autovacuum would otherwise work through the rows of the full publication
    during the timed rounds, on the same two cores (a production server is usually a machine of its own)."""
    started = time.perf_counter()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def differences(warehouse: Path, published: Path, url: str) -> list[str]:
    """Published tables whose rows differ from the warehouse's: in the DuckDB file as multisets, in PostgreSQL
    by count."""
    engine = sa.create_engine(url)
    with duckdb.connect(str(warehouse), read_only=True) as con, engine.connect() as pg:
        con.execute("SET memory_limit = '4GB'")
        con.execute(f"ATTACH '{published}' AS published (READ_ONLY)")
        differ = []
        for schema, table in PUBLISHED:
            name = f"{schema}.{table}"
            if con.execute(f"SELECT (SELECT count(*) FROM (FROM {name} EXCEPT ALL FROM published.{name})) + "
                           f"(SELECT count(*) FROM (FROM published.{name} EXCEPT ALL FROM {name}))").fetchone()[0]:  # type: ignore[index]
                differ.append(f"{name} (DuckDB)")
            if con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] != \
                    pg.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar():  # type: ignore[index]
                differ.append(f"{name} (PostgreSQL)")
    engine.dispose()
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-deals", type=int, default=20_000)
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4, help="changes an hour apart, each refreshed (at least 2)")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: the first round copies the newest file, the others show the rest")
    with tempfile.TemporaryDirectory(prefix="b24-publish-") as tmp, postgres_server() as url:
        base, big = Path(tmp) / "base.duckdb", Path(tmp) / "big.duckdb"
        folder = Path(tmp) / "published"
        print(f"Extracting a {args.base_deals:,}-deal portal into the base warehouse...", flush=True)
        with portal(args.base_deals) as sim:
            load(base, sim.webhook_url)
            timed_build(base, "full")
            timed_marts(base)
            shutil.copyfile(base, big)
            baseline = timed_publish(base, Path(tmp) / "base-published", url).seconds
            replicas = replicate(big, args.copies)
            timed_build(big, "full")
            marts = timed_marts(big)
            print(f"  big warehouse built; marts hold {sum(marts['counts'].values()):,} rows", flush=True)
            full = timed_publish(big, folder, url)
            for target, seconds in full.seconds.items():
                print(f"Publish in full to {target:<8} {seconds:7.1f} s   baseline {baseline[target]:5.1f} s   "
                      f"{seconds / baseline[target]:4.0f}x for {args.copies}x the data", flush=True)
            print(f"  PostgreSQL vacuumed after the full publication in {vacuum(url):.0f} s", flush=True)
            rounds = []
            for hour in range(1, args.rounds + 1):   # the first copies the newest file, the others patch the oldest
                changes = sim.control.apply_changes(advance=3600, **CHANGES)
                loaded, process = load(big, sim.webhook_url, replicas)
                core = timed_build(big, "auto")
                checked = timed_checks(big, CORE_CHECKS)
                after = timed_marts(big, (datetime.fromisoformat(ANCHOR) + timedelta(hours=hour)).isoformat())
                checked += timed_checks(big, MART_CHECKS)
                again = timed_publish(big, folder, url)
                deals = len({c["id"] for c in changes if c["entity"] == "deal"})
                print(f"After {len(changes)} changes ({deals} deals): load {loaded:.1f} s ({process:.1f} s with its "
                      f"process's start), core {core['mode']} {core['seconds']:.1f} s, marts {after['mode']} "
                      f"{after['seconds']:.1f} s, checks {checked:.1f} s", flush=True)
                print(f"  the marts' slowest: {slowest(after)}", flush=True)
                for target, seconds in again.seconds.items():
                    print(f"Publish after the change to {target:<8} {again.modes[target]:<11} {seconds:7.1f} s   "
                          f"{full.seconds[target] / seconds:5.1f}x faster than in full", flush=True)
                rounds.append((loaded + core["seconds"] + after["seconds"] + again.seconds["duckdb"],
                               again.seconds["duckdb"], process - loaded, checked))
        (copied, copy, _, _), steady = rounds[0], rounds[1:]
        recycled, patch, start, checks = (statistics.median(r[i] for r in steady) for i in range(4))
        spread = f"{min(r[0] for r in steady):.1f}-{max(r[0] for r in steady):.1f} s over {len(steady)} rounds"
        print(f"DuckDB publication after a change: {copy:.1f} s patching a copy of the newest file (one version kept "
              f"so far), {patch:.1f} s patching the oldest kept file ({copy / patch:.1f}x)")
        print(f"A whole refresh after the change (load, core, marts, DuckDB publication): median {recycled:.1f} s "
              f"({spread}; target at most 10 s; {copied:.1f} s with the copy); {recycled + checks:.1f} s with the "
              f"checks `b24wh refresh` runs between the steps, {recycled + checks + start:.1f} s with a process's "
              f"start and imports too; PostgreSQL publication {again.seconds['sql']:.1f} s (target at most 15 s)")
        print(f"  published tables that differ from the warehouse: "
              f"{differences(big, folder / 'warehouse.duckdb', url) or 'none'}")
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
        print(f"Published files: {size:,.0f} MiB; benchmark process peak memory {peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
