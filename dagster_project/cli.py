"""`b24wh`: the project's command line.

- `b24wh refresh [--warehouse PATH] [--rebuild]`: incremental extract of every entity, then the model build
  (incremental: only what the load touched; `--rebuild` rebuilds every table)
- `b24wh backfill --start YYYY-MM-DD --end YYYY-MM-DD`: reload a historical window, cursors untouched
- `b24wh demo`: start the simulator, refresh a warehouse from it, print where it is and headline figures
- `b24wh simulator ...`: run the local Bitrix24 portal alone (its own program; see --help)

Exit code 0 only when the warehouse is complete and consistent; otherwise one line on stderr saying
what went wrong and what to do, and the previous warehouse is left as it was.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warehouse.build import Built

DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
DEMO_WAREHOUSE = Path("data/demo/warehouse.duckdb")


def _timezone() -> str:
    return os.environ.get("B24WH_TIMEZONE", "Europe/Moscow")


def refresh(warehouse: Path, *, webhook_url: str | None = None, sweep: bool | None = None,
            backfill: dict[str, Any] | None = None, timezone: str | None = None, rebuild: bool = False) -> Built:
    """Extract (incremental, or a backfill window), then build the model (in full when `rebuild`)."""
    from pipelines.bitrix24.pipeline import load
    from warehouse.build import build

    options: dict[str, Any] = {"webhook_url": webhook_url} if webhook_url else {}
    load(warehouse, sweep=sweep, backfill=backfill, **options)
    return build(warehouse, timezone=timezone or _timezone(), full=rebuild)


def headline(warehouse: Path, timezone: str, as_of: datetime | None = None) -> str:
    """Deals, won amount, the funnel per pipeline and forgotten deals (as of now, portal time), as text."""
    import duckdb

    now = f"TIMESTAMP '{as_of.isoformat(sep=' ')}'" if as_of else f"timezone('{timezone}', now())"

    with duckdb.connect(str(warehouse), read_only=True) as con:
        deals, won, won_amount, currency = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'won'), coalesce(sum(amount) FILTER (WHERE status = "
            "'won'), 0), coalesce(any_value(currency_id), '') FROM core.fact_deal WHERE NOT is_deleted").fetchone()
        funnel = con.execute("""
            WITH visits AS (
                SELECT f.deal_id, f.pipeline_id, s.stage_order, s.semantics
                FROM core.fact_deal_stage AS f JOIN core.dim_stage AS s USING (stage_key)
            ),
            per_deal AS (
                SELECT deal_id, pipeline_id, max(stage_order) FILTER (WHERE semantics = 'process') AS deepest,
                       bool_or(semantics = 'success') AS won
                FROM visits GROUP BY deal_id, pipeline_id
            )
            SELECT st.pipeline_id, st.pipeline_name, st.stage_name, count(d.deal_id) AS reached
            FROM core.dim_stage AS st
            LEFT JOIN per_deal AS d ON d.pipeline_id = st.pipeline_id AND (
                (st.semantics = 'process' AND (d.deepest >= st.stage_order OR d.won))
                OR (st.semantics = 'success' AND d.won))
            WHERE st.semantics IN ('process', 'success') AND NOT st.is_deleted
            GROUP BY ALL ORDER BY st.pipeline_id, min(st.stage_order)""").fetchall()
        forgotten = con.execute(f"""
            SELECT count(*) FROM core.fact_deal AS d
            WHERE d.status = 'open' AND NOT d.is_deleted AND NOT EXISTS (
                SELECT 1 FROM core.fact_activity AS a
                WHERE a.deal_id = d.deal_id AND NOT a.completed
                  AND (a.deadline_at IS NULL OR a.deadline_at >= {now}))""").fetchone()[0]
    lines = [f"Deals: {deals:,} ({won:,} won for {won_amount:,.0f} {currency})",
             f"Forgotten deals (open, nothing planned): {forgotten:,}", "Funnel (deals that reached each stage):"]
    current = None
    for pipeline_id, pipeline_name, stage_name, reached in funnel:
        if pipeline_id != current:
            current = pipeline_id
            lines.append(f"  {pipeline_name or pipeline_id}:")
        lines.append(f"    {stage_name:<32} {reached:>8,}")
    return "\n".join(lines)


def demo(deals: int | None, scale: str) -> int:
    from simulator.client import SimulatorProcess

    print("Starting the Bitrix24 simulator (a local portal with a year of a sales team's CRM)...", flush=True)
    options: dict[str, Any] = {"deals": deals} if deals else {"scale": scale}
    with SimulatorProcess(**options) as portal:
        if DEMO_WAREHOUSE.parent.exists():
            shutil.rmtree(DEMO_WAREHOUSE.parent)
        print(f"Portal: {portal.webhook_url}\nLoading it into the warehouse...", flush=True)
        refresh(DEMO_WAREHOUSE, webhook_url=portal.webhook_url, timezone="Europe/Moscow")
    print(f"\nWarehouse: {DEMO_WAREHOUSE.resolve()}")
    print(headline(DEMO_WAREHOUSE, "Europe/Moscow"))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="b24wh", description="Bitrix24 sales-analytics warehouse")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("refresh", help="incremental extract of every entity and a rebuild of the model")
    run.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    run.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None,
                     help="force (or skip) the deletion sweep; by default it runs once a day")
    run.add_argument("--rebuild", action="store_true",
                     help="rebuild every model table in full (by default only what the load touched)")
    back = commands.add_parser("backfill", help="reload a historical window (by creation date)")
    back.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    back.add_argument("--start", required=True, help="YYYY-MM-DD (inclusive)")
    back.add_argument("--end", required=True, help="YYYY-MM-DD (exclusive)")
    back.add_argument("--by", choices=("created", "modified"), default="created")
    show = commands.add_parser("demo", help="build a warehouse from the local simulator and print headline figures")
    show.add_argument("--scale", default="demo", help="simulator scale (tiny, small, demo, large, huge)")
    show.add_argument("--deals", type=int, help="portal size in deals (overrides --scale)")
    commands.add_parser("simulator", help="run a local Bitrix24 portal (see `b24wh simulator --help`)",
                        add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "simulator":
        # The simulator is its own program: the pipeline side never imports it.
        return subprocess.call([sys.executable, "-m", "simulator", *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from pipelines.bitrix24.errors import Bitrix24Error
    from warehouse.build import WarehouseError

    try:
        if args.command == "demo":
            return demo(args.deals, args.scale)
        window = {"start": args.start, "end": args.end, "by": args.by} if args.command == "backfill" else None
        built = refresh(args.warehouse, sweep=getattr(args, "sweep", None), backfill=window,
                        rebuild=getattr(args, "rebuild", False))
    except (Bitrix24Error, WarehouseError) as exc:
        print(f"b24wh {args.command}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:   # dlt and DuckDB failures: one line, the cause kept
        cause = exc
        while cause.__cause__ is not None and not isinstance(cause, Bitrix24Error | WarehouseError):
            cause = cause.__cause__
        print(f"b24wh {args.command}: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}",
              file=sys.stderr)
        return 1
    print(f"Warehouse {args.warehouse.resolve()} refreshed ({built.mode} model build in {built.seconds:.1f} s: "
          f"{built.reason}): " + ", ".join(f"{k} {v:,}" for k, v in built.counts.items()))
    return 0
