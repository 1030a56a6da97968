"""Many portals from Dagster: ten simulated portals refreshed in one run against one portal alone, in the same run.

    python -m benchmarks.portals [--portals 10] [--deals 20000] [--changes 100] [--rounds 3]

Each simulated portal answers at the standard plan's limits (2 requests/s, a burst of 50) with a live portal's
latency, so that, as on real portals, the waiting is per portal and can overlap. The deployment is the code
location of `dagster_project.definitions` with the portals listed in a b24wh.toml, run by `dg.execute_job` under
the multiprocess executor on an instance configured by `dagster_home/dagster.yaml` (one slot per writer pool, the
event log storage).

Prints:
- one portal's first load alone, then all N portals' first loads in one run, and the ratio (target: ten portals in
  at most 6x one portal's time);
- the peak memory of the whole deployment: the resident memory of this process and every op process, summed
  over the process tree, sampled every 0.2 s (the simulators, which stand for remote portals, are left out);
- incremental cycles over all N, `--rounds` of them, each after `--changes` changes in each portal and at least
  COUNTS_DUE_AFTER seconds after the one before (the first, after the first loads), as on a schedule of a few minutes:
  every table's deletion count is due each time. Each cycle's time, then the first and the median of the others
  (target: at most 30 s): the first is the first refresh after a first load, the others are as every later one;
- the same cycle from the command line (`b24wh refresh --all`, the portals one after another), after as many
  changes again: the refreshes' own time, without Dagster's bookkeeping;
- the machine's speed before each timed phase: the seconds a fixed Python loop takes. Shared machines vary
  (the same loop took 0.8 s to 2.0 s on the development machine in one day), and the cycle's time follows it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

from benchmarks.memory import tree_rss_mib
from warehouse.settings import load_settings

if TYPE_CHECKING:
    from b24wh_simulator.client import SimulatorProcess

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = "2026-11-02T18:00:00"
STEP_OF = {"raw": "extract", "core": "core", "marts": "marts", "published": "publish"}   # by key
CHANGES = {"new_deals": 0.2, "stage_moves": 0.3, "field_edits": 0.2, "new_activities": 0.3}   # shares of --changes
# Seconds between cycles for every deletion count to be due again (`paging.count_due`: at 20,000 deals the biggest
# table, activities, is counted at most every 57 s), as on the five-minute schedule.
COUNTS_DUE_AFTER = 70.0


class TreeMemory:
    """Peak resident memory of this process and its descendants, leaving out the given processes' trees."""

    def __init__(self, excluded: set[int]) -> None:
        self.excluded = excluded
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, tree_rss_mib(os.getpid(), self.excluded))

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def machine_speed() -> str:
    """How fast the machine is now: the seconds a fixed loop of Python takes."""
    started = time.perf_counter()
    sum(i * i for i in range(2 * 10**7))
    return f"(machine speed: the fixed loop took {time.perf_counter() - started:.2f} s)"


def deployment(folder: Path, names: list[str], sims: dict[str, SimulatorProcess]) -> dict[str, str]:
    """A project folder whose b24wh.toml lists `names`; the environment of a process that runs it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "b24wh.toml").write_text("".join(f'[portals.{n}]\ntimezone = "Europe/Moscow"\n\n' for n in names),
                                       encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "B24WH_PUBLISH_URL"}
    return {**env, "B24WH_CONFIG": str(folder / "b24wh.toml"), "B24WH_HOME": str(folder), "PYTHONPATH": str(ROOT),
            **{f"PORTALS__{n.upper()}__CREDENTIALS": sims[n].webhook_url for n in names}}


def run(env: dict[str, str], instance_dir: Path, excluded: set[int]) -> tuple[float, float]:
    """One `refresh` run in a process of its own (as Dagster's run launcher starts one per run); its seconds, from
    the process's start to the run's end (not the benchmark's reading of the run's events after it), and the peak
    memory of the process tree meanwhile (MiB)."""
    with TreeMemory(excluded) as memory:
        done = subprocess.run([sys.executable, "-m", "benchmarks.portals", "--run", str(instance_dir)],
                              env={**env, "BENCHMARK_RUN_STARTED": str(time.time())}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the refresh run failed: {done.stdout[-500:]}{done.stderr[-2000:]}")
    seconds = None
    for line in done.stdout.splitlines():
        if line.startswith(("seconds per step", "timeline")):
            print("  " + line)
        if line.startswith("run ended "):
            seconds = float(line.split()[-1])
    if seconds is None:
        raise SystemExit(f"the refresh run did not say when it ended: {done.stdout[-500:]}")
    return seconds, memory.peak


def command_line(env: dict[str, str]) -> float:
    """`b24wh refresh --all` in a process of its own: the same refreshes with none of Dagster's bookkeeping (its
    events, its run and step processes); its seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dagster_project", "refresh", "--all"], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"b24wh refresh --all failed: {done.stdout[-500:]}{done.stderr[-2000:]}")
    return seconds


def step_seconds(records: list[dg.EventLogEntry]) -> dict[str, list[float]]:
    """Each refresh step's time per portal, from its op's events: a step ends with its last materialisation
    (its assets' keys tell which step made them), and begins where the one before it ended."""
    began: dict[str, float] = {}
    ended: dict[str, dict[str, float]] = {}
    for record in records:
        event = record.dagster_event
        if not event or not event.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            began[event.step_key] = record.timestamp
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION and event.asset_key:
            path = event.asset_key.path   # portal, then bitrix24/raw/... or warehouse/core|marts|published/...
            step = STEP_OF[path[2] if path[1] == "warehouse" else "raw"]
            ended.setdefault(event.step_key, {})[step] = record.timestamp
    took: dict[str, list[float]] = {}
    for op, ends in ended.items():
        previous = began[op]
        for step in (s for s in STEP_OF.values() if s in ends):
            took.setdefault(step, []).append(ends[step] - previous)
            previous = ends[step]
    return took


def timeline(records: list[dg.EventLogEntry], began: float) -> tuple[str, float]:
    """Where the run's time went, in seconds since its process was started (the run's start, its ops' first start
    and last end, the run's end), and the run's end."""
    times: dict[dg.DagsterEventType, list[float]] = {}
    for record in records:
        if record.dagster_event:
            times.setdefault(record.dagster_event.event_type, []).append(record.timestamp - began)
    ops = times.get(dg.DagsterEventType.STEP_START, [0.0]), times.get(dg.DagsterEventType.STEP_SUCCESS, [0.0])
    ended = max(max(v) for v in times.values())
    return (f"timeline: run started at {min(times[dg.DagsterEventType.RUN_START]):.1f} s, ops from "
            f"{min(ops[0]):.1f} s to {max(ops[1]):.1f} s, run ended at {ended:.1f} s", ended)


def run_here(instance_dir: Path) -> int:
    """`--run DIR`: the refresh job of the settings B24WH_CONFIG names, on the Dagster instance in DIR."""
    began = float(os.environ["BENCHMARK_RUN_STARTED"])
    instance_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster_home" / "dagster.yaml", instance_dir / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(instance_dir)
    with dg.DagsterInstance.get() as instance:     # the deployment's instance: its pools, its event log storage
        # The job as a deployment's run worker finds it: by the code location's module and the job's name.
        job = ReconstructableRepository.for_module("dagster_project.definitions", "defs", str(ROOT))
        result = dg.execute_job(job.get_reconstructable_job("refresh"), instance=instance, raise_on_error=False)
        failed = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        ran = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
        records = list(instance.all_logs(result.run_id))
        print("seconds per step, mean over portals: " + ", ".join(
            f"{step} {statistics.mean(times):.1f}" for step, times in step_seconds(records).items()))
        line, ended = timeline(records, began)
        print(line)
        print(f"run ended {ended:.3f}")
    expected = len(load_settings().portals)
    if failed or len(ran) != expected:
        print(f"failed portals {failed}; {len(ran)} of {expected} portals refreshed", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portals", type=int, default=10)
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=100, help="changes per portal before the incremental cycle")
    parser.add_argument("--rounds", type=int, default=3, help="incremental cycles, one after another")
    parser.add_argument("--latency-scale", type=float, default=1.0, help="the simulators' latency (1: a live portal's)")
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)   # a child: one run of the refresh job
    args = parser.parse_args()
    if args.run:
        return run_here(args.run)
    # The simulators' client (requests) only here: a run's process imports what a deployment's run worker does.
    from b24wh_simulator.client import SimulatorProcess

    names = [f"p{i:02d}" for i in range(args.portals)]
    options = {"deals": args.deals, "clock": "frozen", "anchor": ANCHOR, "rate": 2, "burst": 50,
               "latency_scale": args.latency_scale}
    print(f"{args.portals} portals of {args.deals:,} deals, standard plan limits, latency x{args.latency_scale}, "
          f"{os.cpu_count()} cores", flush=True)
    sims = {n: SimulatorProcess(**options, seed=1000 + i) for i, n in enumerate(names)}
    with tempfile.TemporaryDirectory(prefix="b24-portals-") as tmp:
        try:
            for sim in sims.values():
                sim.start()
            excluded = {sim.process.pid for sim in sims.values() if sim.process}
            print(machine_speed(), flush=True)
            alone, alone_peak = run(deployment(Path(tmp) / "alone", names[:1], sims), Path(tmp) / "dagster", excluded)
            print(f"one portal alone, first load: {alone:.1f} s (peak memory {alone_peak:,.0f} MiB)", flush=True)
            env = deployment(Path(tmp) / "all", names, sims)
            together, peak = run(env, Path(tmp) / "dagster", excluded)
            print(f"{args.portals} portals in one run, first loads: {together:.1f} s = {together / alone:.2f}x one "
                  f"portal alone (target <= 6x)", flush=True)
            changes = {kind: max(1, round(share * args.changes)) for kind, share in CHANGES.items()}
            cycles: list[float] = []
            cycle_peak = 0.0
            ended = time.monotonic()
            for number in range(1, args.rounds + 1):
                time.sleep(max(0.0, COUNTS_DUE_AFTER - (time.monotonic() - ended)))
                for sim in sims.values():
                    sim.control.apply_changes(advance=600, **changes)
                print(machine_speed(), flush=True)
                cycle, memory = run(env, Path(tmp) / "dagster", excluded)
                ended = time.monotonic()
                cycles.append(cycle)
                cycle_peak = max(cycle_peak, memory)
                print(f"incremental cycle {number}: {cycle:.1f} s", flush=True)
            later = (f"; the {len(cycles) - 1} after it: median {statistics.median(cycles[1:]):.1f} s "
                     f"({min(cycles[1:]):.1f}-{max(cycles[1:]):.1f} s)" if len(cycles) > 1 else "")
            print(f"incremental cycle over {args.portals} portals after {args.changes} changes each: the first "
                  f"{cycles[0]:.1f} s{later} (target <= 30 s)", flush=True)
            for sim in sims.values():
                sim.control.apply_changes(advance=600, **changes)
            print(f"the same cycle without Dagster (`b24wh refresh --all`, the portals in turn): "
                  f"{command_line(env):.1f} s", flush=True)
            print(f"peak memory of the deployment (the run's process and every op process): "
                  f"{max(peak, cycle_peak):,.0f} MiB")
        finally:
            for sim in sims.values():
                sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
