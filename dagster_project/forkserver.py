"""What the multiprocess executor's forkserver loads once, before it forks a step process per portal
(`definitions.build_definitions`, `preload_modules`): the code location, what the steps import only when they run
(`steps.STEP_MODULES`: dlt, pyarrow), and the jobs whose step processes it forks, resolved, with their execution
plans built once. It also makes the slots its step processes share the machine's cores through
(`dagster_project.cores`: `[warehouse] builds_at_once` builds at once, by default one per core).

A step process forked from it starts without importing or resolving anything again, and builds its own execution
plan on the run-config schema and plan structures made here (0.03 s instead of 0.07 s). With the Dagster modules
every step process imports preloaded beside this one (`definitions.STEP_PROCESS_IMPORTS`), it starts in about
0.2 s of CPU instead of 1.2-1.6 s, which ten portals' processes starting at once on two cores used to wait for
(docs/portals.md). The other jobs (each portal's backfill) run one op under Dagster's default executor and are
left unresolved: every step process waits for the forkserver to have loaded what it loads."""

import importlib

from dagster._core.execution.api import create_execution_plan

from dagster_project import cores
from dagster_project.definitions import FORKED_JOBS, SETTINGS, defs
from dagster_project.steps import STEP_MODULES

for _module in STEP_MODULES:
    importlib.import_module(_module)

JOBS = [defs.get_repository_def().get_job(name) for name in FORKED_JOBS]
for _job in JOBS:
    create_execution_plan(_job)

cores.share(SETTINGS.builds_at_once)   # the step processes forked from here share them
