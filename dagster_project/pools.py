"""The writer pools' slots given back when the run holding one can no longer give it back itself.

Every writer pool has one slot (`dagster_home/dagster.yaml`): a portal's refresh waits for it, and Dagster gives
it back when the step holding it ends, which the step's run sees even when the step's process dies. Two cases
escape that:
- A run whose processes are all gone (stopped with its container, the machine rebooted, killed by the
  out-of-memory killer) never gives its slots back, and Dagster's local run launcher cannot see it die. The run
  stays "Started", and every later refresh of its portals waits for the slot for ever, saying only that the step
  is blocked by the pool's limit.
- A run that ended without ending its steps (its worker failed as it started them, or it was terminated) keeps
  the slots it had taken.

The sensor `writer_pools` looks at the writer pools every 30 s. A slot held by a run that has ended is given back.
One held by a run whose processes are gone is given back too, and the run marked failed, saying why: the run's
process and the step's, since while one of them lives the run sees the other die and gives the slot back itself.
Processes are looked for where the sensor runs, the code location's server, which is where Dagster's local run
launcher starts the runs. Under another launcher (Docker, Kubernetes) Dagster's run monitoring marks dead runs
failed (`docs/deployment.md`), and the sensor gives back the slots of runs that have ended.
"""
# No `from __future__ import annotations` here: Dagster reads the sensor's parameter annotations.

import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

SENSOR = "writer_pools"
EVERY_SECONDS = 30


def give_back(instance: dg.DagsterInstance, pools: Sequence[str]) -> list[str]:
    """Gives back the slots of `pools` held by runs that have ended or whose processes are gone (marking those
    failed); returns a line per slot given back."""
    if not instance.event_log_storage.supports_global_concurrency_limits:   # no pools to give back
        return []
    local = isinstance(instance.run_launcher, dg.DefaultRunLauncher)
    given: list[str] = []
    failed: set[str] = set()     # the runs marked failed here
    for pool in pools:
        for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            if slot.run_id not in failed and (run is None or run.is_finished):
                why = "the run had ended"
            elif local and run is not None and (gone := _gone(instance, slot.run_id, slot.step_key)):
                why = f"its processes (PID {', '.join(map(str, gone))}) are gone"
                if slot.run_id not in failed:
                    failed.add(slot.run_id)
                    instance.report_run_failed(run, message=f"{why}: killed or crashed with its steps; the writer "
                                                            "pools' slots it held given back, so that its portals' "
                                                            "refreshes can run again")
            else:
                continue
            instance.event_log_storage.free_concurrency_slot_for_step(slot.run_id, slot.step_key)
            given.append(f"{pool}: the slot of run {slot.run_id} ({slot.step_key}), since {why}")
    return given


def _gone(instance: dg.DagsterInstance, run_id: str, step_key: str) -> list[int]:
    """The run's process and the step's, once all of them no longer exist (while one does, the run sees the other
    die and gives the slot back itself); empty while one exists, or none is known."""
    records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.RUN_START,
                                                            dg.DagsterEventType.STEP_START}).records
    events = [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]
    pids = sorted({e.pid for e in events if e.pid is not None and (
        e.event_type == dg.DagsterEventType.RUN_START or e.step_key == step_key)})
    return [] if any(_exists(pid) for pid in pids) else pids


def _exists(pid: int) -> bool:
    """Whether a process runs as `pid`, and is not a zombie, which a killed process is until the process that
    adopted it collects it (told on Linux, by `/proc`). Not judged on Windows, where `os.kill` would signal it."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:    # another user's process
        pass
    if not Path("/proc/self").exists():
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):   # ended meanwhile
        return False
    return state not in ("Z", "X")


def writer_pools_sensor(pools: Sequence[str]) -> dg.SensorDefinition:
    @dg.sensor(name=SENSOR, minimum_interval_seconds=EVERY_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Gives back the writer pools' slots held by runs that have ended or whose processes are "
                           "gone (dagster_project/pools.py).")
    def writer_pools(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        given = give_back(context.instance, pools)
        for line in given:
            context.log.warning(line)
        return dg.SkipReason("; ".join(given) or "every slot of the writer pools is held by a live run, or free")

    return writer_pools
