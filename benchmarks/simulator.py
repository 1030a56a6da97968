"""Is the simulator ever the bottleneck? Generation time and memory, and serving times on a big portal.

    python benchmarks/simulator.py                 # 1,000,000 deals (about 10M activities)
    python benchmarks/simulator.py --deals 200000

Prints, for the portal: generation time, rows, store size and peak memory of the generating process;
then serving times of a 50-row keyset page, a 50-command chained keyset batch (2,500 rows), a counted
page and a modification-window page, each beside its baseline in the same run: the time a client may
spend per request under the portal's own limit (2 requests/s = 500 ms) and the server time a real
portal is modelled to take for the same call.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from random import Random

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b24wh_simulator.client import SimulatorProcess  # noqa: E402

BUDGET_MS = 1000 / 2.0   # the portal admits 2 requests/s on standard plans


def generate(store: Path, deals: int, seed: int) -> dict[str, float]:
    code = ("import json, sys; from b24wh_simulator.config import DataConfig; "
            "from b24wh_simulator.generator import generate; "
            f"print(json.dumps(generate({str(store)!r}, DataConfig(deals={deals}, seed={seed}))))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": elapsed, "peak_mib": peak_kib / 1024, "rows": sum(rows.values()),
            "deals": rows["deals"], "activities": rows["activities"], "size_mib": store.stat().st_size / 2**20}


def timed(session: requests.Session, url: str, body: dict[str, object]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    response = session.post(url, json=body, timeout=600)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def keyset_batch(after: int) -> dict[str, object]:
    cmd = {"p0": f"crm.deal.list?select[]=ID&select[]=TITLE&select[]=STAGE_ID&select[]=OPPORTUNITY"
                 f"&select[]=DATE_MODIFY&order[ID]=ASC&filter[>ID]={after}&start=-1"}
    for i in range(1, 50):
        cmd[f"p{i}"] = (f"crm.deal.list?select[]=ID&select[]=TITLE&select[]=STAGE_ID&select[]=OPPORTUNITY"
                        f"&select[]=DATE_MODIFY&order[ID]=ASC&filter[>ID]=$result[p{i - 1}][49][ID]&start=-1")
    return {"halt": 1, "cmd": cmd}


def report(name: str, samples: list[float], modelled_ms: float) -> None:
    med = statistics.median(samples)
    p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
    print(f"  {name:<34} median {med:8.1f} ms  p95 {p95:8.1f} ms  | {BUDGET_MS / med:7.1f}x inside the 2 req/s "
          f"budget | {modelled_ms / med:6.1f}x faster than the modelled portal ({modelled_ms:.0f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="b24sim-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        store = Path(tmp) / "portal.sqlite3"
        print(f"Generating a portal of {args.deals:,} deals...", flush=True)
        gen = generate(store, args.deals, args.seed)
        print(f"  generation: {gen['seconds']:.1f} s, {gen['rows']:,.0f} rows ({gen['deals']:,.0f} deals, "
              f"{gen['activities']:,.0f} activities), store {gen['size_mib']:.0f} MiB, "
              f"peak memory {gen['peak_mib']:.0f} MiB ({gen['rows'] / gen['seconds']:,.0f} rows/s)", flush=True)
        options = {"store": store, "clock": "frozen", "rate": 100000, "burst": 10**9, "operating_limit": 0}
        with SimulatorProcess(**options) as sim:
            url = sim.webhook_url
            session = requests.Session()
            rng = Random(1)
            top = args.deals
            pages, batches, counted, windows = [], [], [], []
            modelled: dict[str, list[float]] = {"page": [], "batch": [], "counted": [], "window": []}
            for _ in range(args.samples):
                ms, body = timed(session, url + "crm.deal.list", {
                    "select": ["ID", "TITLE", "STAGE_ID", "OPPORTUNITY", "DATE_MODIFY"], "order": {"ID": "ASC"},
                    "filter": {">ID": rng.randint(0, top - 100)}, "start": -1})
                pages.append(ms)
                modelled["page"].append(body["time"]["processing"] * 1000)
            for _ in range(max(5, args.samples // 3)):
                ms, body = timed(session, url + "batch", keyset_batch(rng.randint(0, max(0, top - 3000))))
                batches.append(ms)
                modelled["batch"].append(body["time"]["processing"] * 1000)
                rows = sum(len(v) for v in body["result"]["result"].values())
                assert rows == 2500, rows
            for _ in range(5):
                ms, body = timed(session, url + "crm.deal.list", {"select": ["ID"], "start": rng.randint(0, top - 100)})
                counted.append(ms)
                modelled["counted"].append(body["time"]["processing"] * 1000)
            since = sim.control.truth()["now"] - 3 * 86_400
            for _ in range(5):
                window = {"select": ["ID", "DATE_MODIFY"], "order": {"ID": "ASC"}, "filter": {">=DATE_MODIFY": since},
                          "start": -1}
                ms, body = timed(session, url + "crm.deal.list", window)
                windows.append(ms)
                modelled["window"].append(body["time"]["processing"] * 1000)
            others = {}
            for method, params, key in (("crm.stagehistory.list", {"entityTypeId": 2}, "ID"),
                                        ("crm.activity.list", {}, "ID"), ("voximplant.statistic.get", {}, "ID"),
                                        ("crm.item.list", {"entityTypeId": 31}, "id")):
                samples = []
                for _ in range(10):
                    body = {**params, "order": {key: "ASC"}, "filter": {f">{key}": rng.randint(0, top)}, "start": -1}
                    ms, _ = timed(session, url + method, body)
                    samples.append(ms)
                others[f"{method} {params or ''}".strip()] = samples
            print(f"Serving from the {args.deals:,}-deal portal (real HTTP on loopback):")
            report("50-row keyset page (start=-1)", pages, statistics.median(modelled["page"]))
            report("50-command keyset batch (2,500 rows)", batches, statistics.median(modelled["batch"]))
            report("50-row page with total (offset)", counted, statistics.median(modelled["counted"]))
            report("DATE_MODIFY window page", windows, statistics.median(modelled["window"]))
            for name, samples in others.items():
                report(f"keyset page: {name}"[:34], samples, statistics.median(modelled["page"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
