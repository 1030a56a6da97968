"""The refresh graph, defined once: its steps in order, what each does, and the checks that guard the next.

    extract -> core (CORE_CHECKS) -> marts (MART_CHECKS) -> publish

`b24wh refresh`, `b24wh backfill` and the demo run `STEPS` in this order in one process (`run_steps`). Dagster
runs the same steps as assets (`assets/`: one asset or multi-asset per step, calling `Step.run`, with the
step's checks as its blocking asset checks), and its `refresh`, `reconcile` and `backfill` jobs select them
all. In both, a failing check stops every later step, and each step writes under the warehouse's writer lock.

Every setting a step reads is resolved and checked once, before any request, by `prepare`: the settings
file, the portal's time zone, the plans file, the publication URL and the warehouse file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dagster_project.progress import Progress
from pipelines.bitrix24.pipeline import load
from warehouse.build import Built, build
from warehouse.checks import CORE_CHECKS, MART_CHECKS, Check, require
from warehouse.files import check_warehouse, writer_lock
from warehouse.marts import MartsBuilt, build_marts
from warehouse.publish import Published, check_publish_url, publish
from warehouse.settings import Settings, check_plans_file, load_settings, portal_timezone


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
    return load(request.warehouse, entities=request.entities, sweep=request.sweep, backfill=request.backfill,
                timezone=request.timezone, progress=request.progress.collector() if request.progress else None,
                **request.source)


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


STEPS: tuple[Step, ...] = (
    Step("extract", extract),
    Step("core", model, CORE_CHECKS, "core check failed, marts left as they were"),
    Step("marts", marts, MART_CHECKS, "mart check failed, nothing published"),
    Step("publish", publication),
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


def run_step(step: Step, request: Request) -> Any:
    """One step alone (as a Dagster asset runs it), under the writer lock."""
    with writer_lock(request.warehouse):
        return step.run(request)


def run_steps(request: Request, steps: Sequence[Step] = STEPS) -> dict[str, Any]:
    """The steps in order (by default all: a refresh), each step's checks passing before the next, the
    warehouse locked from the first step to the last (no other refresh in between). Returns each step's
    result by its name."""
    results: dict[str, Any] = {}
    with writer_lock(request.warehouse):
        for step in steps:
            results[step.name] = step.run(request)
            if step.checks:
                require(str(request.warehouse), step.checks, step.if_checks_fail)
            if request.progress:
                request.progress.finished(step.name, results[step.name])
    return results
