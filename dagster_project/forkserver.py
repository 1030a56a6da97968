"""What the multiprocess executor's forkserver loads once, before it forks a step process per portal
(`definitions.build_definitions`, `preload_modules`): the code location with every job resolved.

A step process forked from it starts without resolving the job again; with the Dagster modules every step
process imports preloaded beside this one (`definitions.STEP_PROCESS_IMPORTS`), it starts in about 0.2 s of CPU
instead of 1.2-1.6 s, which ten portals' processes starting at once on two cores used to wait for
(docs/portals.md)."""

from dagster_project.definitions import defs

JOBS = defs.get_repository_def().get_all_jobs()
