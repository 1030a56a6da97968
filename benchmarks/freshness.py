"""Freshness of the sales-floor wall, end to end: from a change in the portal to the figure on the page.

    python benchmarks/freshness.py                    # 20 changes, refresh every 15 s
    python benchmarks/freshness.py --changes 40 --every 20
    python benchmarks/freshness.py --push --deals 20000   # the portal's events start the refreshes

A live simulator (real clock) is loaded once, with its request limits off, its calls costing no server time and
the extractor's own pacing off (else a large portal's first load would take the plan's 2 requests a second and
wait out the operating-time budget the extractor keeps from the time the portal reports: about an hour at
200,000 deals); then the standard plan's limits and costs are set, the extractor paces itself again, and
`b24wh refresh
--every` runs as its own process (extract, model, marts, publish), or with `--push` `b24wh listen`, to which
the portal sends its change events (an outbound webhook); `b24wh wall` serves the page (asking for news every
`--poll` seconds), and headless Chromium shows it. One change at a time (a won deal, then a call, ...) is
made in the portal, at a random moment of a `--every` window; the time until the page's team figure moves is
measured. Prints the distribution (p95 among it) and how many changes reached the page within 60 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from b24wh_simulator.client import SimulatorProcess  # noqa: E402
from b24wh_simulator.config import CostModel, Limits  # noqa: E402
from dagster_project.cli import refresh  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.test_wall import CHROMIUM_FLAGS, chromium  # noqa: E402
from warehouse.settings import load_settings  # noqa: E402

KINDS = (("wins", "won_deals"), ("new_calls", "calls"))
UNLIMITED = {"rate": 10_000, "burst": 100_000, "operating_limit": 0}
UNPACED = {"SOURCES__BITRIX24__RATE": "1000", "SOURCES__BITRIX24__BURST": "100000"}   # the extractor's own pacing
FREE = {"per_call": 0.0, "per_row": 0.0, "per_row_per_column": 0.0, "per_counted_row": 0.0, "per_skipped_row": 0.0}


def wait_until_serving(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the server answers at `url` (it imports for a few seconds first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the wall did not start serving at {url}") from None
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=3000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between refreshes")
    parser.add_argument("--push", action="store_true", help="refresh on the portal's events (b24wh listen)")
    parser.add_argument("--poll", type=int, default=5, help="seconds between the page's requests for news")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="b24-fresh-") as tmp, \
            SimulatorProcess(deals=args.deals, **UNLIMITED) as portal:
        folder = Path(tmp)
        config = folder / "b24wh.toml"
        config.write_text('[publish]\npublish_directory = "published"\npublish_parquet = false\n'
                          f'[wall]\npoll_seconds = {args.poll}\n', encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "B24WH_CONFIG": str(config),
               "BITRIX24_WEBHOOK_URL": portal.webhook_url}
        os.environ.update(env)
        started = time.perf_counter()
        portal.control.set_costs(**FREE)
        os.environ.update(UNPACED)
        refresh(folder / "warehouse.duckdb", credentials=portal.webhook_url, settings=load_settings(config))
        for variable in UNPACED:
            del os.environ[variable]
        print(f"First load of {args.deals:,} deals (the portal's limits off): {time.perf_counter() - started:.0f} s",
              flush=True)
        portal.control.set_limits(**asdict(Limits()))
        portal.control.set_costs(**asdict(CostModel()))
        print("The portal now answers at the standard plan's limits and costs "
              f"({Limits().rate:g} requests/s, a burst of {Limits().burst})", flush=True)
        if args.push:
            listen = free_port()
            env["SOURCES__BITRIX24__APPLICATION_TOKEN"] = portal.control.outbound(
                f"http://127.0.0.1:{listen}/bitrix24/events", ["ONCRMDEALUPDATE", "ONCRMACTIVITYADD"])
            command = ["listen", "--port", str(listen), "--debounce", "0.2"]
        else:
            command = ["refresh", "--every", str(args.every)]
        loop = subprocess.Popen([sys.executable, "-m", "dagster_project", *command, "--warehouse",
                                 str(folder / "warehouse.duckdb")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = free_port()
        wall = subprocess.Popen([sys.executable, "-m", "dagster_project", "wall", "--published",
                                 str(folder / "published"), "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        latencies: list[float] = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                wait_until_serving(f"http://127.0.0.1:{port}/", wall)
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_function("window.wallState && window.wallState.renders > 0", timeout=60000)
                pause = random.Random(7)
                for n in range(args.changes):
                    time.sleep(pause.uniform(0, args.every))   # changes land at any moment of the refresh cycle
                    change, kpi = KINDS[n % len(KINDS)]
                    selector = f"tr.team [data-kpi={kpi}]"
                    before = float(page.get_attribute(selector, "data-fact") or 0)
                    portal.control.apply_changes(**{change: 1})
                    made = time.perf_counter()
                    while float(page.get_attribute(selector, "data-fact") or 0) < before + 1:
                        if time.perf_counter() - made > 180:
                            raise RuntimeError(f"change {n + 1} ({change}) did not reach the page in 180 s")
                        time.sleep(0.2)
                    latencies.append(time.perf_counter() - made)
                    print(f"  change {n + 1:>2} ({change:<9}) on the page after {latencies[-1]:5.1f} s", flush=True)
                browser.close()
        finally:
            loop.terminate()
            wall.terminate()
            loop.wait(60)
            wall.wait(10)
        ordered = sorted(latencies)
        p90, p95 = (ordered[max(0, round(q * len(ordered)) - 1)] for q in (0.9, 0.95))
        how = "refreshes on the portal's events" if args.push else f"refresh every {args.every:.0f} s"
        print(f"Freshness over {len(latencies)} changes ({how}, page polls every {args.poll} s, {args.deals:,} "
              f"deals): min {ordered[0]:.1f} s, median {statistics.median(ordered):.1f} s, p90 {p90:.1f} s, "
              f"p95 {p95:.1f} s, max {ordered[-1]:.1f} s; {sum(x <= 60 for x in ordered)}/{len(ordered)} within 60 s")
        errors = loop.stderr.read() if loop.stderr else ""
        if errors.strip():
            print("refresh loop reported:", errors.strip().splitlines()[-1])
        shutil.rmtree(folder / "published", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
