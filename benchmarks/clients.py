"""This project's extractor beside the two Python clients people use on real portals, on the same portal.

    python benchmarks/clients.py                          # 20,000 deals, deals only, latency as a real portal's
    python benchmarks/clients.py --deals 20000 --entities deals,activities --operating-limit 480

The simulator serves HTTPS (b24pysdk speaks nothing else) with its cost model slept for real
(`--latency-scale 1`: a 50-row page takes 0.03-0.07 s of server time, a batch of 50 pages 1.5-3.5 s, as
the recordings in tests/fixtures/bitrix24-real show), the standard plan's request bucket (2/s, burst 50)
and, by default, the cloud's operating budget (480 s per method per 10 minutes). Each client reads the
same fields of the same entities in a process of its own, after the portal's limits are reset:

- this project: `pipelines.bitrix24.pipeline.load` (batched keyset chains, batches in flight);
- fast_bitrix24: `Bitrix.get_all` (count, then offset pages packed into parallel batches);
- b24pysdk: `as_list_fast()` (the official SDK's batched keyset export).

It prints seconds, rows (against the portal's truth), HTTP requests, refused requests, and the ratio of
each client's time to this project's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b24wh_simulator.client import SimulatorProcess  # noqa: E402
from pipelines.bitrix24.catalogue import BY_NAME  # noqa: E402
from tests.simulator.test_sdks import self_signed  # noqa: E402

OURS = """
import json, sys, time, duckdb
from pipelines.bitrix24.pipeline import load
warehouse, url, entities, limit = sys.argv[1], sys.argv[2], sys.argv[3].split(","), float(sys.argv[4])
started = time.perf_counter()
load(warehouse, credentials=url, entities=entities, progress="log", sweep=False, operating_limit=limit)
seconds = time.perf_counter() - started
with duckdb.connect(warehouse, read_only=True) as con:
    rows = {e: con.execute(f"SELECT count(DISTINCT id) FROM raw.{e}").fetchone()[0] for e in entities}
print("RESULT " + json.dumps({"seconds": seconds, "rows": rows}))
"""

FAST_BITRIX24 = """
import json, sys, time
from fast_bitrix24 import Bitrix
url, plan = sys.argv[1], json.loads(sys.argv[2])
bitrix = Bitrix(url, verbose=False)
rows = {}
started = time.perf_counter()
for name, (method, params) in plan.items():
    found = bitrix.get_all(method, params=params)
    rows[name] = len({int(r.get("ID") or r.get("id")) for r in found})
print("RESULT " + json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))
"""

B24PYSDK = """
import json, sys, time
from b24pysdk import BitrixWebhook, Client
host, token, plan = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = Client(BitrixWebhook(domain=host, webhook_token=token))
rows = {}
started = time.perf_counter()
for name, (method, params) in plan.items():
    scope, entity, action = method.split(".")
    call = getattr(getattr(getattr(client, scope), entity), action)
    kwargs = {"select": params["select"]} if "select" in params else {}
    if "entityTypeId" in params:
        kwargs["entity_type_id"] = params["entityTypeId"]
    found = list(call(**kwargs).as_list_fast().result)
    rows[name] = len({int(r.get("ID") or r.get("id")) for r in found})
print("RESULT " + json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))
"""


def run(code: str, *args: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"seconds": float("nan"), "rows": {}, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--entities", default="deals", help="catalogue names, comma-separated")
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument("--operating-limit", type=float, default=480.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    entities = args.entities.split(",")
    plan = {}
    for name in entities:
        entity = BY_NAME[name]
        params: dict[str, object] = dict(entity.params)
        if entity.shape == "list":
            params["select"] = entity.select()
        plan[name] = (entity.method, params)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "REQUESTS_CA_BUNDLE": str(cert), "SSL_CERT_FILE": str(cert)}
        os.environ.update({"REQUESTS_CA_BUNDLE": str(cert)})
        with SimulatorProcess(deals=args.deals, seed=args.seed, tls_cert=cert, tls_key=key,
                              latency_scale=args.latency_scale, operating_limit=args.operating_limit) as portal:
            truth = portal.control.truth()["rows"]
            expected = {name: truth[name] for name in entities}
            secret = portal.webhook_url.rstrip("/").rsplit("/", 1)[1]
            host = portal.base_url.removeprefix("https://")
            clients = {
                "this project": lambda: run(OURS, str(Path(tmp) / "warehouse.duckdb"), portal.webhook_url,
                                            ",".join(entities), str(args.operating_limit), env=env),
                "fast_bitrix24": lambda: run(FAST_BITRIX24, portal.webhook_url, json.dumps(plan), env=env),
                "b24pysdk": lambda: run(B24PYSDK, host, f"1/{secret}", json.dumps(plan), env=env),
            }
            results = {}
            for name, go in clients.items():
                portal.control.set_limits(operating_limit=args.operating_limit)   # a fresh bucket and budget
                portal.control.reset_stats()
                result = go()
                stats = portal.control.requests_served()
                result["requests"] = stats.get("http_requests", 0)
                result["refused"] = stats.get("status_429", 0) + stats.get("status_503", 0) + stats.get("throttled", 0)
                results[name] = result
    print(f"{args.deals:,} deals; entities {', '.join(entities)}; rows in the portal {expected}; latency x"
          f"{args.latency_scale}; operating limit {args.operating_limit:g} s")
    ours = float(results["this project"]["seconds"])  # type: ignore[arg-type]
    print(f"{'client':<14} {'seconds':>8} {'requests':>9} {'refused':>8} {'every row':>10} {'time / ours':>12}")
    for name, result in results.items():
        seconds = float(result["seconds"])  # type: ignore[arg-type]
        complete = result["rows"] == expected
        print(f"{name:<14} {seconds:>8.1f} {result['requests']:>9} {result['refused']:>8} "
              f"{'yes' if complete else 'NO ' + json.dumps(result['rows']):>10} {seconds / ours:>11.2f}x"
              + (f"  ({result['error']})" if "error" in result else ""))


if __name__ == "__main__":
    main()
