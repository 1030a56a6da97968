"""What the multiprocess executor's forkserver loads once, before it forks a step process per portal
(`definitions.build_definitions`, `preload_modules`): the Dagster modules every step process imports
(`definitions.STEP_PROCESS_IMPORTS`), the code location, what the steps import only when they run
(`steps.STEP_MODULES`: dlt, pyarrow), and the jobs whose step processes it forks, resolved, with their execution
plans built once. It also makes the slots its step processes share the machine's cores through
(`dagster_project.cores`: `[warehouse] builds_at_once` builds at once, by default one per core).

A step process forked from it starts without importing or resolving anything again, and builds its own execution
plan on the run-config schema and plan structures made here (0.03 s instead of 0.07 s): it starts in about 0.2 s of
CPU instead of 1.2-1.6 s, which ten portals' processes starting at once on two cores used to wait for
(docs/portals.md). A Dagster module that Dagster renames is skipped, costing only the time, as the forkserver skips
a preload module it cannot import. The other jobs (each portal's backfill) run one op under Dagster's default
executor and are left unresolved: every step process waits for the forkserver to have loaded what it loads.

Python's cyclic garbage collector is off while the forkserver loads, and what it has loaded is then frozen
(`gc.freeze`, as Python's documentation advises before forking): all of it lives as long as the server, so
collecting it finds next to nothing. Otherwise the server's loading collected five times (0.36-0.39 s of CPU at
the start of a ten-portal run, before any op can start), and each step process's first full collection went
through the 280,000 objects inherited from here (0.13 s of CPU a portal), writing to their memory, which the
process then no longer shared with the server (docs/portals.md). So only the forkserver imports this module:
any process importing it has its objects frozen.

Whatever fails while it loads is logged (to the run's standard error) and left to the step processes: Python's
forkserver ends on any exception but an ImportError from a module it preloads, and then every step process of the
run fails with nothing but "unexpected EOF". Forked from a server that loaded nothing, a step process loads the code
location itself, and fails with the real error (a settings file malformed since the run began, say); without the
cores' slots (no writable temporary folder), the builds run without taking turns."""

import gc
import importlib
import logging
from contextlib import suppress

log = logging.getLogger(__name__)
JOBS: list[object] = []   # the jobs it resolved

gc.disable()   # before loading anything; on again once everything is loaded and frozen
try:
    try:
        from dagster._core.execution.api import create_execution_plan

        from dagster_project import cores
        from dagster_project.definitions import FORKED_JOBS, SETTINGS, STEP_PROCESS_IMPORTS, defs
        from dagster_project.steps import STEP_MODULES

        for _module in STEP_PROCESS_IMPORTS:
            with suppress(ImportError):
                importlib.import_module(_module)
        for _module in STEP_MODULES:
            importlib.import_module(_module)

        JOBS.extend(defs.get_repository_def().get_job(name) for name in FORKED_JOBS)
        for _job in JOBS:
            create_execution_plan(_job)
    except Exception as exc:   # raised here, it would end the server: every step process would fail "unexpected EOF"
        log.warning("the forkserver could not load the code location (%s): each step process loads it itself",
                    f"{type(exc).__name__}: {exc}".splitlines()[0])
    else:
        try:
            cores.share(SETTINGS.builds_at_once)   # the step processes forked from here share them
        except OSError as exc:
            log.warning("the portals' builds do not take turns on the cores: their slots' file could not be made "
                        "(%s); set TMPDIR to a writable folder", exc)
finally:   # what was loaded is never collected in the step processes forked from here, nor written to by
    gc.freeze()   # collecting it; the collector is on again after a failed load too
    gc.enable()
