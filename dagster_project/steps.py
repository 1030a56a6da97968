"""The refresh graph, defined once: its steps in order, what each does, and the checks that guard the next.

    extract -> core (CORE_CHECKS) -> marts (MART_CHECKS) -> publish

`b24wh refresh`, `b24wh backfill` and the demo run `STEPS` in this order in one process (`run_steps`). Dagster
runs the same steps the same way, as one multi-asset per portal (`assets/refresh.py`: `each_step`, every step's
assets materialised as it ends, its checks reported as asset check results), which its `refresh`, `reconcile`
and `backfill` jobs select. In both, a failing check stops every later step, and the steps write under the
warehouse's writer lock.

Every setting a step reads is resolved and checked once, before any request, by `prepare`: the settings
file, the portal's time zone, the plans file, the publication URL and the warehouse file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warehouse.build import Built, build
from warehouse.checks import CORE_CHECKS, MART_CHECKS, Check, count, require
from warehouse.files import check_warehouse, kept_open, writer_lock
from warehouse.marts import MartsBuilt, build_marts
from warehouse.publish import Published, check_publish_url, publish
from warehouse.settings import Settings, check_plans_file, load_settings, portal_timezone

if TYPE_CHECKING:
    from dagster_project.progress import Progress

# What a refresh imports only when it runs: dlt and pyarrow, with the modules that use them. Dagster loads the code
# location (which defines the steps) in every process it starts, the run's too, so they are left out of it; the
# forkserver the portals' step processes are forked from imports them once (dagster_project/forkserver.py).
STEP_MODULES = ("pipelines.bitrix24.pipeline", "pipelines.bitrix24.credentials", "dagster_project.progress",
                "warehouse.summary")


@dataclass(frozen=True)
class Request:
    """One refresh, every setting resolved: what to extract (all entities incrementally, a backfill window,
    with or without the deletion sweep), whether to rebuild the model in full, and the marts' moment."""

    warehouse: Path
    settings: Settings
    timezone: str
    source: dict[str, Any] = field(default_factory=dict)   # the source's options: credentials, plan
    entities: Sequence[str] | None = None
    sweep: bool | None = None                               # None: when due (daily)
    backfill: dict[str, Any] | None = None
    rebuild: bool = False
    as_of: datetime | None = None                           # portal time; None: now
    progress: Progress | None = None                        # the command line's display; None: dlt's log


def prepare(warehouse: Path | str, *, settings: Settings | None = None, timezone: str | None = None,
            **options: Any) -> Request:
    """A checked request: a malformed settings or plans file, an unknown time zone, a bad publication URL
    or an unusable warehouse file fails here, in one line, before any request to the portal."""
    settings = settings or load_settings()
    timezone = portal_timezone(timezone)
    check_plans_file(settings)
    check_publish_url()
    warehouse = Path(warehouse).resolve()
    check_warehouse(warehouse)
    return Request(warehouse, settings, timezone, **options)


def extract(request: Request) -> Any:
    from pipelines.bitrix24.pipeline import load  # dlt, only where a load runs (STEP_MODULES)

    return load(request.warehouse, entities=request.entities, sweep=request.sweep, backfill=request.backfill,
                timezone=request.timezone, progress=request.progress.collector() if request.progress else None,
                threads=request.settings.threads, **request.source)


def model(request: Request) -> Built:
    return build(request.warehouse, timezone=request.timezone, settings=request.settings, full=request.rebuild)


def marts(request: Request) -> MartsBuilt:
    return build_marts(request.warehouse, timezone=request.timezone, settings=request.settings,
                       as_of=request.as_of)


def publication(request: Request) -> Published:
    return publish(request.warehouse, request.settings)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Request], Any]
    checks: tuple[Check, ...] = ()
    if_checks_fail: str = ""     # what a failing check means for the steps after it
    attaches_warehouse: bool = False   # reads the file through a DuckDB of its own, so it cannot be kept open
    waits_on_portal: bool = False      # mostly waits on the portal's answers rather than on the machine


STEPS: tuple[Step, ...] = (
    Step("extract", extract, waits_on_portal=True),
    Step("core", model, CORE_CHECKS, "core check failed, marts left as they were"),
    Step("marts", marts, MART_CHECKS, "mart check failed, nothing published"),
    Step("publish", publication, attaches_warehouse=True),
)
STEP = {step.name: step for step in STEPS}


@dataclass(frozen=True)
class Refreshed:
    model: Built
    marts: MartsBuilt
    published: Published

    @classmethod
    def of(cls, results: dict[str, Any]) -> Refreshed:
        return cls(results["core"], results["marts"], results["publish"])


@dataclass(frozen=True)
class Done:
    """A step that ran: its result and how many rows break each of its checks."""

    step: Step
    result: Any
    violations: dict[Check, int]

    @property
    def passed(self) -> bool:
        return not any(self.violations.values())


def each_step(request: Request, steps: Sequence[Step] = STEPS,
              core: AbstractContextManager[None] | None = None) -> Iterator[Done]:
    """The steps in order, the warehouse locked from the first step to the last (no other refresh in between).
    Yields each step as it ends, with its checks counted; after a step whose check fails, raises WarehouseError
    naming it instead of going on. Close the iterator when leaving it early: it holds the lock.

    The warehouse file is kept open until the first step that attaches it (`files.kept_open`; publication, the
    last): opening and checkpointing it once instead of at every connection takes a fifth off a small refresh.
    `core` (a core of the machine, `dagster_project.cores`) is held from the first step that does not wait on the
    portal to the end."""
    with writer_lock(request.warehouse), ExitStack() as kept, ExitStack() as held:
        kept.enter_context(kept_open(request.warehouse))
        for step in steps:
            if core is not None and not step.waits_on_portal:
                held.enter_context(core)
                core = None
            if step.attaches_warehouse:
                kept.close()
            done = Done(step, step.run(request), count(str(request.warehouse), step.checks))
            yield done
            require(done.violations, step.if_checks_fail)


def run_steps(request: Request, steps: Sequence[Step] = STEPS) -> dict[str, Any]:
    """The steps in order (by default all: a refresh), each step's checks passing before the next. Returns each
    step's result by its name."""
    results: dict[str, Any] = {}
    with closing(each_step(request, steps)) as done_steps:
        for done in done_steps:
            results[done.step.name] = done.result
            if request.progress and done.passed:
                request.progress.finished(done.step.name, done.result)
    return results
