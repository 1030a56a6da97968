"""`b24wh`: the project's command line.

- `b24wh refresh [--warehouse PATH] [--rebuild] [--every SECONDS] [--verbose]`: incremental extract of every
  entity, the model build (only what the load touched; `--rebuild` rebuilds every table), the marts and publishing;
  `--every` repeats it for as long as it runs (the wall's minute-fresh loop)
- `b24wh backfill --start YYYY-MM-DD --end YYYY-MM-DD`: reload a historical window, cursors untouched
- `b24wh publish [--warehouse PATH]`: publish the built warehouse for BI tools again (refresh does it)
- `b24wh status [--warehouse PATH] [--json]`: what the warehouse holds and how fresh it is, the last error
- `b24wh wall [--host H] [--port P] [--token T]`: serve the sales-floor page from the published warehouse
- `b24wh listen [--host H] [--port P] [--debounce SECONDS] [--every SECONDS]`: refresh when the portal sends
  change events, and every SECONDS without them
- `b24wh demo`: start the simulator, load a warehouse from it with plans for its team, print where it is, the
  headline figures and what to do next
- `b24wh simulator ...`: run the local Bitrix24 portal alone (its own program; see --help)

Where the settings file lists portals (`[portals.<name>]`, docs/portals.md), refresh, backfill, publish and status
take `--portal NAME` (repeatable) or `--all`: each portal runs in turn on its own files, its lines and errors
marked `[name]`; one portal's failure is its own line and the others still run (exit 1 if any failed). `listen`
takes them too: one receiver, at one URL, serves every chosen portal, their events told apart by their tokens.

A refresh, backfill or demo prints one line per phase (`dagster_project.progress`); `--verbose` adds dlt's
progress per table.

Exit code 0 only when the warehouse is complete and consistent; otherwise one line on stderr saying
what went wrong and what to do, and the previous warehouse is left as it was.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster_project.portals import Scope
    from dagster_project.progress import Progress
    from dagster_project.receiver import Refresh
    from dagster_project.steps import Refreshed
    from pipelines.bitrix24.credentials import Bitrix24Credentials
    from warehouse.publish import Published
    from warehouse.settings import Settings

DEMO_WAREHOUSE = Path("data/demo/warehouse.duckdb")
WAREHOUSE_HELP = ("the warehouse file (default: B24WH_WAREHOUSE, else data/warehouse.duckdb in the project folder: "
                  "the nearest folder up from here holding b24wh.toml or data/warehouse.duckdb)")


def refresh(warehouse: Path, *, credentials: str | dict[str, Any] | Bitrix24Credentials | None = None,
            plan: str | None = None,
            sweep: bool | None = None,
            backfill: dict[str, Any] | None = None, timezone: str | None = None, rebuild: bool = False,
            settings: Settings | None = None, as_of: datetime | None = None,
            progress: Progress | None = None, entities: Sequence[str] | None = None,
            reported_deletions: dict[str, list[int]] | None = None) -> Refreshed:
    """The refresh graph (`dagster_project.steps`): extract (incremental, or a backfill window; of `entities`
    only, when given; checking the ids in `reported_deletions`, by entity, as the portal's events named them),
    the model (in
    full when `rebuild`) and its checks, the marts (as of `as_of`, portal time; default now) and their checks,
    and publishing for BI tools. Every setting is checked before any request; no other refresh may hold the
    warehouse. `credentials` (a webhook URL or OAuth fields) and `plan` (the portal's Bitrix24 plan) override
    the configured ones (`pipelines.bitrix24.credentials`, `sources.bitrix24.plan`). `progress` prints a
    line per phase (`dagster_project.progress`)."""
    from dagster_project.steps import Refreshed, prepare, run_steps

    source = {name: value for name, value in (("credentials", credentials), ("plan", plan),
                                              ("reported_deletions", reported_deletions)) if value}
    return Refreshed.of(run_steps(prepare(warehouse, settings=settings, timezone=timezone, source=source,
                                          sweep=sweep, backfill=backfill, rebuild=rebuild, as_of=as_of,
                                          progress=progress, entities=entities)))


def headline(warehouse: Path) -> str:
    """Deals, won amount, the funnel per pipeline (all cohorts) and forgotten deals, from the marts."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        deals, won, won_amount, currency = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'won'), coalesce(sum(amount) FILTER (WHERE status = "
            "'won'), 0), coalesce(any_value(currency_id), '') FROM core.fact_deal WHERE NOT is_deleted").fetchone()
        funnel = con.execute(
            "SELECT pipeline_id, any_value(pipeline_name), any_value(stage_name), sum(deals_reached) "
            "FROM marts.funnel_team GROUP BY pipeline_id, stage_order ORDER BY pipeline_id, stage_order").fetchall()
        forgotten = con.execute("SELECT count(*) FROM marts.deals_without_activities").fetchone()[0]
    lines = [f"Deals: {deals:,} ({won:,} won for {won_amount:,.0f} {currency})",
             f"Forgotten deals (open, nothing planned): {forgotten:,}", "Funnel (deals that reached each stage):"]
    current = None
    for pipeline_id, pipeline_name, stage_name, reached in funnel:
        if pipeline_id != current:
            current = pipeline_id
            lines.append(f"  {pipeline_name or pipeline_id}:")
        lines.append(f"    {stage_name:<32} {reached:>8,}")
    return "\n".join(lines)


def demo(deals: int | None, scale: str, verbose: bool) -> int:
    """The simulator's team in a warehouse of its own: a first load, plans for the team (110 % of each
    manager's last three months, written beside the warehouse), the marts with them, the publication."""
    from dataclasses import replace

    import duckdb

    from b24wh_simulator.client import SimulatorProcess
    from dagster_project.progress import Progress
    from dagster_project.steps import STEPS, Refreshed, prepare, run_steps
    from warehouse.files import resolve
    from warehouse.plans import suggest_plans, write_plans

    print("Starting the Bitrix24 simulator (a local portal with a year of a sales team's CRM)...", flush=True)
    options: dict[str, Any] = {"deals": deals} if deals else {"scale": scale}
    warehouse = resolve(DEMO_WAREHOUSE)
    plans_file = warehouse.parent / "plans.csv"
    progress = Progress(sys.stdout, verbose=verbose)
    with SimulatorProcess(**options, rate=5, burst=250) as portal:
        if warehouse.parent.exists():
            shutil.rmtree(warehouse.parent)
        print(f"Portal: {portal.webhook_url} (answering at the Enterprise plan's limits: 5 requests/s, "
              "a burst of 250)\nLoading it into the warehouse...", flush=True)
        request = prepare(warehouse, timezone=portal.timezone, progress=progress,
                          source={"credentials": portal.webhook_url, "plan": "enterprise"})
        results = run_steps(request, STEPS[:3])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        plans = suggest_plans(con)
    write_plans(plans_file, plans, "The demo team's plans: 110 % of each manager's mean of the three months "
                                   "before, per metric (b24wh demo)")
    print(f"plans    {len(plans):,} plans for {len({p.scope_id for p in plans})} managers: {plans_file}", flush=True)
    with_plans = replace(request, settings=replace(request.settings, plans_file=plans_file))
    done = Refreshed.of({**results, **run_steps(with_plans, STEPS[2:])})
    print(f"\nWarehouse: {warehouse}")
    print(published_lines(done.published))
    print(headline(warehouse))
    published = warehouse.parent / "published"
    print(f"""
What next:
  - the sales-floor wall, plan against fact: b24wh wall --published {published}  (then open http://127.0.0.1:8050)
  - Power BI: open powerbi/parquet/b24wh.pbip and point its folder parameter at {published / 'parquet'}
    (docs/power-bi.md)
  - your own portal: set BITRIX24_WEBHOOK_URL to an inbound webhook (crm, user, department; task optional),
    then b24wh refresh (docs/operations.md)""")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="b24wh", description="Bitrix24 sales-analytics warehouse")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("refresh", help="incremental extract of every entity and a rebuild of the model")
    run.add_argument("--warehouse", type=Path, help=WAREHOUSE_HELP)
    run.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None,
                     help="force (or skip) the deletion sweep; by default it runs once a day")
    run.add_argument("--rebuild", action="store_true",
                     help="rebuild every model table in full (by default only what the load touched)")
    run.add_argument("--every", type=float, metavar="SECONDS",
                     help="repeat the refresh every SECONDS until stopped; a failed run is reported and retried")
    back = commands.add_parser("backfill", help="reload a historical window (by creation date)")
    back.add_argument("--warehouse", type=Path, help=WAREHOUSE_HELP)
    back.add_argument("--start", required=True, help="YYYY-MM-DD (inclusive)")
    back.add_argument("--end", required=True, help="YYYY-MM-DD (exclusive)")
    back.add_argument("--by", choices=("created", "modified"), default="created")
    out = commands.add_parser("publish", help="publish the warehouse for BI tools (DuckDB file, Parquet, SQL)")
    out.add_argument("--warehouse", type=Path, help=WAREHOUSE_HELP)
    state = commands.add_parser("status", help="what the warehouse holds, how fresh it is, the last error, warnings")
    state.add_argument("--warehouse", type=Path, help=WAREHOUSE_HELP)
    state.add_argument("--json", action="store_true", help="the same as JSON, for monitoring")
    screen = commands.add_parser("wall", help="serve the sales-floor wall page from the published warehouse")
    screen.add_argument("--published", type=Path, help="the publication folder (default: data/published or "
                                                          "[publish] publish_directory)")
    screen.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    screen.add_argument("--port", type=int, default=8050)
    screen.add_argument("--token", default=os.environ.get("B24WH_WALL_TOKEN"),
                        help="access token the page's link must carry (default: B24WH_WALL_TOKEN)")
    hear = commands.add_parser("listen", help="refresh when the portal sends change events (docs/events.md)")
    hear.add_argument("--warehouse", type=Path, help=WAREHOUSE_HELP)
    hear.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    hear.add_argument("--port", type=int, default=8060)
    hear.add_argument("--debounce", type=float, default=1.0, metavar="SECONDS",
                      help="wait this long after an event for the rest of a burst (default: 1)")
    hear.add_argument("--every", type=float, default=300.0, metavar="SECONDS",
                      help="refresh this long after the last refresh when no event came (default: 300)")
    show = commands.add_parser("demo", help="build a warehouse from the local simulator and print headline figures")
    show.add_argument("--scale", default="demo", help="simulator scale (tiny, small, demo, large, huge)")
    show.add_argument("--deals", type=int, help="portal size in deals (overrides --scale)")
    for command in (run, back, show):
        command.add_argument("--verbose", action="store_true", help="dlt's progress per table as well")
    for command in (run, back, out, state, hear):
        command.add_argument("--portal", action="append", default=[], metavar="NAME",
                             help="a portal listed in the settings file (repeatable); see docs/portals.md")
        command.add_argument("--all", action="store_true", help="every portal listed in the settings file")
    commands.add_parser("simulator", help="run a local Bitrix24 portal (see `b24wh simulator --help`)",
                        add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "simulator":
        # The simulator is its own program: the pipeline side never imports it.
        return subprocess.call([sys.executable, "-m", "b24wh_simulator", *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return _run(args)


def one_line(exc: BaseException, warehouse: Path | None = None) -> str:
    """The message of an error in one line: a local file failure as what to do about it, ours as they are,
    others (dlt, DuckDB) by their root cause."""
    from pipelines.bitrix24.errors import Bitrix24Error
    from warehouse.build import WarehouseError
    from warehouse.files import LocalFileError, explain
    from warehouse.settings import SettingsError

    ours = (Bitrix24Error, WarehouseError, SettingsError, LocalFileError)
    local = explain(exc, warehouse) if warehouse is not None and not isinstance(exc, ours) else None
    if local:
        return local
    cause = exc
    while cause.__cause__ is not None and not isinstance(cause, ours):
        cause = cause.__cause__
    text = str(cause).splitlines()[0] if str(cause) else ""
    return text if isinstance(cause, ours) else f"{type(cause).__name__}: {text}"


class UsageError(ValueError):
    """A command's options are wrong; nothing was done (exit 2)."""


def backfill_window(start: str, end: str, by: str) -> dict[str, Any]:
    """A backfill window checked before any request: ISO dates, start before end, start not after today."""
    from datetime import date

    days = []
    for name, value in (("--start", start), ("--end", end)):
        try:
            days.append(date.fromisoformat(value))
        except ValueError:
            raise UsageError(f"{name} {value!r} is not a date: use YYYY-MM-DD, such as 2026-03-01") from None
    first, last = days
    if first >= last:
        raise UsageError(f"--start {first} must be before --end {last} (the end is exclusive)")
    if first > date.today():
        raise UsageError(f"--start {first} is in the future: a backfill reloads history up to today")
    return {"start": first.isoformat(), "end": last.isoformat(), "by": by}


def _run(args: argparse.Namespace) -> int:
    from dagster_project.portals import PortalChoiceError, scopes
    from warehouse.files import default_warehouse
    from warehouse.settings import load_settings

    given = args.warehouse.resolve() if getattr(args, "warehouse", None) else None
    try:
        window = backfill_window(args.start, args.end, args.by) if args.command == "backfill" else None
    except UsageError as exc:
        print(f"b24wh {args.command}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "demo":
            return demo(args.deals, args.scale, args.verbose)
        if args.command == "wall":
            return wall(args.published, args.host, args.port, args.token)
        chosen = scopes(load_settings(), args.portal, args.all, given)
    except PortalChoiceError as exc:
        print(f"b24wh {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:   # one line, the cause kept
        line = one_line(exc, given or default_warehouse())
        print(f"b24wh {args.command}: {line}", file=sys.stderr)
        portals_named = bool(getattr(args, "portal", None) or getattr(args, "all", False))
        if args.command in ("refresh", "backfill", "publish") and not portals_named:
            from warehouse.status import record_error

            record_error(given or default_warehouse(), args.command, line)
        return 1
    if args.command == "status":
        return status(chosen, args.json)
    if args.command == "listen":
        try:
            return listen(chosen, args.host, args.port, args.debounce, args.every)
        except Exception as exc:   # one line, the cause kept
            print(f"b24wh listen: {one_line(exc)}", file=sys.stderr)
            return 1
    if getattr(args, "every", None):
        return repeat(args, chosen)
    failed = [scope for scope in chosen if not _run_one(args, scope, window)]
    summarised = summary(args.command, chosen)
    return 1 if failed or not summarised else 0


def summary(command: str, chosen: list[Scope], quiet: bool = False) -> bool:
    """With listed portals, the partner's summary over all of them, after any portal's run (or failure); where
    it is, unless `quiet` (`refresh --every`), and a failure as one line."""
    from dagster_project.portals import update_summary

    if not chosen[0].name:
        return True
    try:
        where = update_summary(chosen[0].settings)
        if not quiet:
            print(f"Partner summary: {where}", flush=True)
    except Exception as exc:   # one line, the cause kept
        print(f"b24wh {command} [partner summary]: {one_line(exc)}", file=sys.stderr, flush=True)
        return False
    return True


def _run_one(args: argparse.Namespace, scope: Scope, window: dict[str, Any] | None) -> bool:
    """The command on one portal; a failure is one line (marked with the portal's name) and False."""
    from dagster_project.progress import Progress
    from warehouse.status import clear_error, record_error

    try:
        if args.command == "publish":
            publish_only(scope)
            clear_error(scope.warehouse)
            return True
        if scope.name:
            print(f"Portal {scope.name}: {scope.warehouse}", flush=True)
        done = refresh(scope.warehouse, sweep=getattr(args, "sweep", None), backfill=window,
                       rebuild=getattr(args, "rebuild", False), settings=scope.settings, timezone=scope.timezone,
                       progress=Progress(sys.stdout, verbose=args.verbose), **scope.source_options())
    except Exception as exc:   # one line, the cause kept
        line = one_line(exc, scope.warehouse)
        print(f"b24wh {args.command}{scope.mark}: {line}", file=sys.stderr, flush=True)
        if args.command in ("refresh", "backfill", "publish"):
            record_error(scope.warehouse, args.command, line)
        return False
    clear_error(scope.warehouse)
    model, marts = done.model, done.marts
    print(f"Warehouse {scope.warehouse} refreshed ({model.mode} model build in {model.seconds:.1f} s: "
          f"{model.reason}; {marts.mode} marts build in {marts.seconds:.1f} s): "
          + ", ".join(f"{k} {v:,}" for k, v in {**model.counts, **marts.counts}.items()))
    print(published_lines(done.published), flush=True)
    return True


def repeat(args: argparse.Namespace, chosen: list[Scope]) -> int:
    """`refresh --every`: one refresh after another (of each chosen portal in turn), each turn starting `every`
    seconds after the last began. A failure is one line on stderr and the loop goes on. Ctrl-C or SIGTERM stops
    it: an extraction stops at its next row, a model build or publication finishes first; a second signal stops
    at once.

    dlt intercepts both signals during a pipeline run and forgets one that arrived after its last check.
    Intercepting them here for the whole loop makes dlt's interception a nested no-op, so no signal is
    forgotten."""
    import time

    from dlt.common.runtime import signals

    with signals.intercepted_signals():
        while not signals.was_signal_received():
            started = time.monotonic()
            for scope in chosen:
                if signals.was_signal_received():
                    break
                try:
                    refresh_quietly(scope, sweep=args.sweep, rebuild=args.rebuild,
                                    stopping=signals.was_signal_received)
                except Exception:  # reported, then retried at the next turn
                    if signals.was_signal_received():
                        break
            summary("refresh", chosen, quiet=True)
            if not signals.was_signal_received():
                signals.sleep(max(0.0, args.every - (time.monotonic() - started)))
    return 0


def refresh_quietly(scope: Scope, sweep: bool | None = None, rebuild: bool = False,
                    stopping: Callable[[], bool] = lambda: False, entities: Sequence[str] | None = None,
                    reported_deletions: dict[str, list[int]] | None = None) -> None:
    """One refresh of a repeated or event-driven series (of `entities` only, when given; checking
    `reported_deletions`): a line when done, a failure as one line on stderr and in the warehouse's status
    (unless `stopping`: interrupted on purpose), then raised."""
    import time

    from dagster_project.progress import Progress
    from warehouse.status import clear_error, record_error

    began = time.monotonic()
    try:
        done = refresh(scope.warehouse, sweep=sweep, rebuild=rebuild, settings=scope.settings,
                       timezone=scope.timezone, progress=Progress(None), entities=entities,
                       reported_deletions=reported_deletions, **scope.source_options())
    except Exception as exc:
        if not stopping():
            line = one_line(exc, scope.warehouse)
            print(f"b24wh refresh{scope.mark}: {line}", file=sys.stderr, flush=True)
            record_error(scope.warehouse, "refresh", line)
        raise
    clear_error(scope.warehouse)
    which = f" {', '.join(entities)}" if entities else ""
    print(f"{datetime.now():%H:%M:%S}{scope.mark} refreshed{which} in {time.monotonic() - began:.1f} s "
          f"({done.model.reason}); published {done.published.version}", flush=True)


def listen(chosen: list[Scope], host: str, port: int, debounce: float, every: float) -> int:
    """`b24wh listen`: the chosen portals' change events start refreshes, one receiver for all of them
    (dagster_project/receiver.py). A portal without an application token, or with the same one as another, is
    left out with one line (the others are served): exit 1 if any was left out, or none is served."""
    import threading

    from dagster_project import receiver
    from pipelines.bitrix24.credentials import application_token
    from pipelines.bitrix24.errors import ConfigurationError

    signed: list[tuple[Scope, str]] = []
    for scope in chosen:
        try:
            signed.append((scope, application_token(scope.name or None)))
        except ConfigurationError as exc:
            print(f"b24wh listen{scope.mark}: {one_line(exc, scope.warehouse)}", file=sys.stderr, flush=True)
    turns = threading.BoundedSemaphore(os.cpu_count() or 1)    # portals' refreshes at once
    listeners: dict[str | None, receiver.Listener] = {}
    for scope, token in signed:
        alike = [other.name for other, theirs in signed if theirs == token and other is not scope]
        if alike:
            print(f"b24wh listen{scope.mark}: the same application token as portal {', '.join(map(str, alike))}: "
                  "their events cannot be told apart, so none of them is served; give each portal its own outbound "
                  "webhook (docs/events.md)", file=sys.stderr, flush=True)
            continue
        journal = receiver.journal_path(scope.warehouse)
        refresher = receiver.Refresher(refresher_of(scope, receiver.ReportedDeletions(journal)), debounce,
                                       receiver.Counts(), every, turns)
        listeners[scope.name or None] = receiver.Listener(token, journal, refresher)
    if listeners:
        try:
            receiver.listen(listeners, host, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            print(f"b24wh listen: {host}:{port} is taken by another program (address already in use): stop it, or "
                  "choose another --port", file=sys.stderr)
            return 1
    return 0 if len(listeners) == len(chosen) else 1


def refresher_of(scope: Scope, reported: Callable[[], dict[str, list[int]]]) -> Refresh:
    """The portal's refresh of the entities its events concern, checking the deletions its journal reports; then,
    for a listed portal, the partner's summary, as after any run of it."""
    def refresh(entities: list[str] | None) -> None:
        try:
            refresh_quietly(scope, entities=entities, reported_deletions=reported())
        finally:
            summary("listen", [scope], quiet=True)

    return refresh


def status(chosen: list[Scope], as_json: bool) -> int:
    """`b24wh status`: each chosen portal's report (with listed portals, `--json` gives one object keyed by portal
    name). A portal without a warehouse is one line on stderr, with its last error, and exit 1."""
    import json
    from dataclasses import asdict

    from pipelines.bitrix24 import settings as source_settings
    from warehouse.files import LocalFileError
    from warehouse.settings import portal_timezone
    from warehouse.status import error_file, read_status, render

    reports: dict[str | None, Any] = {}
    for scope in chosen:
        try:
            if not scope.warehouse.is_file():
                last = (json.loads(error_file(scope.warehouse).read_text("utf-8"))
                        if error_file(scope.warehouse).is_file() else None)
                raise LocalFileError(f"no warehouse at {scope.warehouse}: " + (
                    f"the last {last['command']} failed at {last['at']}: {last['error']}" if last
                    else "run b24wh refresh" + ("" if scope.name else " (or point --warehouse at one)")))
            reports[scope.name] = read_status(scope.warehouse, scope.settings, source_settings.SWEEP_EVERY_HOURS,
                                              portal_timezone(scope.timezone))
        except Exception as exc:   # this portal's one line; the others are still reported
            print(f"b24wh status{scope.mark}: {one_line(exc, scope.warehouse)}", file=sys.stderr, flush=True)
    if as_json:
        documents = {name: asdict(report) for name, report in reports.items()}
        if documents:
            print(json.dumps(documents if chosen[0].name else documents[None], ensure_ascii=False, indent=2))
    else:
        print("\n\n".join((f"Portal {name}\n" if name else "") + render(r) for name, r in reports.items()))
    return 0 if len(reports) == len(chosen) else 1


def publish_only(scope: Scope) -> None:
    from warehouse.files import writer_lock
    from warehouse.publish import check_publish_url, publish

    check_publish_url()
    with writer_lock(scope.warehouse):
        print(published_lines(publish(scope.warehouse, scope.settings)))


def wall(published: Path | None, host: str, port: int, token: str | None) -> int:
    """The wall of the only portal, or of every listed portal (each at `?portal=<name>`) from one server."""
    from dagster_project.portals import scopes
    from wall.server import WallConfig, serve
    from warehouse.files import default_warehouse
    from warehouse.publish import publication_folder
    from warehouse.settings import load_settings

    settings = load_settings()
    portals: dict[str, Path] = {}
    if settings.portals and published is None:
        portals = {s.name or "": s.published for s in scopes(settings, every=True)}
    folder = None if portals else (published or publication_folder(default_warehouse(), settings))
    serve(WallConfig(folder, token=token or None, portals=portals, language=settings.wall_language,
                     theme=settings.wall_theme, stale_after_seconds=settings.stale_after_seconds,
                     poll_seconds=settings.poll_seconds), host=host, port=port)
    return 0


def published_lines(published: Published) -> str:
    return "\n".join(f"Published ({target}, {published.modes[target]}, {published.seconds[target]:.1f} s): {where}"
                     for target, where in published.locations.items())
