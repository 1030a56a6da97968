"""Paging at the API's ceiling: walkers propose page commands, the scheduler packs them into batches.

A walker reads one entity (or one id range of it) and knows how to ask for its next pages:
- `KeysetWalker`: `order[ID]=ASC`, `filter[>ID]=<last>`, `start=-1`, chained inside a batch through
  `$result[previous][49][ID]` (the official SDK's fast export), as many pages per batch as it gets;
- `OffsetWalker`: small directories and methods without `order`: `start=0`, then every other page
  at once once `total` is known;
- `IdsWalker`: an id-only keyset (the deletion sweep), keeping ids rather than rows;
- `ByIdWalker`: rows for a known list of ids (`filter[@ID]`), 50 per command.

The `Scheduler` sends batches holding commands of the walkers that need data (up to 50), four in
flight at once by default, skipping methods that must wait for their operating-time budget. The first
batch of a run therefore carries the first page of every entity, and an incremental refresh with few
changes costs a handful of requests in all. Deletion counts are what a command can cost the portal seconds
for, and a batch runs its commands one after another: a batch carries at most COUNT_SECONDS_PER_BATCH of
counting, so a big portal's counts are counted side by side in the batches in flight (`deletion_walkers`).
Results after the first short page of a chain (or after a failed command) are ignored, whatever the portal
substitutes for an unresolvable reference.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipelines.bitrix24 import encoding, settings
from pipelines.bitrix24.catalogue import Entity
from pipelines.bitrix24.client import BatchResult, Bitrix24Client
from pipelines.bitrix24.errors import ApiError

log = logging.getLogger(__name__)

MAX_BUFFERED_PAGES = 150   # per walker: bounds memory (about 7,500 rows) while the pipeline drains it


@dataclass
class Command:
    name: str
    text: str           # `method?query`
    payload: Any = None  # what the walker needs to retry it (an offset, a chunk of ids)


def rows_of(entity: Entity, result: Any) -> list[dict[str, Any]]:
    if isinstance(result, dict):
        inner = result.get(entity.shape)
        return inner if isinstance(inner, list) else []
    return result if isinstance(result, list) else []


class Walker(ABC):
    """Reads pages of one entity; `pages` holds row lists ready for the pipeline."""

    _names = itertools.count()

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        self.pages: deque[list[dict[str, Any]]] = deque()
        self.done = False
        self.failures = 0
        self.key = f"w{next(self._names)}"
        self._seq = itertools.count()

    @property
    def method(self) -> str:
        return self.entity.method

    @property
    def hungry(self) -> bool:
        return not self.done and len(self.pages) < MAX_BUFFERED_PAGES

    def name(self) -> str:
        return f"{self.key}_{next(self._seq)}"

    @abstractmethod
    def wants(self) -> int:
        """How many commands this walker could use in the next batch."""

    def rows_left(self) -> int:
        """About how many rows this walker has still to read (0 when it cannot tell yet), for progress."""
        return 0

    def counting_seconds(self) -> float:
        """The portal's seconds the counts among the commands it wants cost (a page costs it hundredths)."""
        return 0.0

    @abstractmethod
    def commands(self, budget: int) -> list[Command]:
        """The next page commands, at most `budget` of them."""

    @abstractmethod
    def deliver(self, commands: list[Command], batch: BatchResult) -> None:
        """Takes this walker's results out of a batch answer."""

    def failed(self, command: Command, batch: BatchResult) -> bool:
        error = batch.errors.get(command.name)
        if error is None and command.name in batch.results:
            return False
        error = error or {"error": "MISSING", "error_description": "no result for the command"}
        code = error.get("error")
        if code not in ("OPERATION_TIME_LIMIT", "QUERY_LIMIT_EXCEEDED", "INTERNAL_SERVER_ERROR", "MISSING"):
            raise ApiError(self.method, 400, code, str(error.get("error_description", "")))
        if code == "OPERATION_TIME_LIMIT":
            return True    # the client pauses this method until its budget resets; not a failure
        self.failures += 1
        if self.failures > settings.MAX_ATTEMPTS * 4:
            raise ApiError(self.method, 503, code, "kept failing inside batch")
        return True


class KeysetWalker(Walker):
    """`filter[>ID]` keyset inside `extra_filter` (a modification window, a backfill window, an id range).

    Its first batch also asks for the largest id in range (one `order[ID]=DESC` row), so later batches
    ask for about as many pages as remain, not a fixed chain that runs past the end of the table. A range
    with more than two full batches left splits once into as many parts as batches fly at once (up to
    four), handed to sibling walkers (`spawn`), so that one big table is read by several batches at once.
    """

    SPLIT_PAGES = 2 * settings.MAX_BATCH   # ranges worth splitting: more than two full batches left

    def __init__(self, entity: Entity, select: list[str], extra_filter: dict[str, Any] | None = None,
                 after_id: int = 0, until_id: int | None = None) -> None:
        super().__init__(entity)
        self.select = select
        self.filter = dict(extra_filter or {})
        if until_id is not None:
            self.filter[f"<={entity.id_field}"] = until_id
        self.last_id = after_id
        self.first_id: int | None = None
        self.max_id: int | None = None
        self.probe: str | None = None
        self.rows_seen = 0
        self.known_density: float | None = None   # rows per id, handed down by the walker that split
        self.ramp = 1   # pages asked per batch inside a window: doubles while pages come back full
        self.spawn: Callable[[Walker], None] | None = None   # set where a resource can take more walkers

    def _params(self, descending: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.entity.params)
        direction = "DESC" if descending else "ASC"
        if self.entity.order == "strings":
            params.update({"SORT": self.entity.id_field, "ORDER": direction})
        else:
            params["order"] = {self.entity.id_field: direction}
        params["select"] = [self.entity.id_field] if descending else self.select
        params["start"] = -1
        return params

    def _reference(self, previous: str) -> str:
        wrap = f"[{self.entity.shape}]" if self.entity.shape != "list" else ""
        return f"$result[{previous}]{wrap}[{settings.PAGE_SIZE - 1}][{self.entity.id_key}]"

    def wants(self) -> int:
        if self.max_id is None:
            # A full read (no window, from the start) fills its first batch; a window starts small, since
            # a chain that outruns a short window only costs the portal's time.
            full_read = not self.filter and self.last_id == 0
            if self.probe is None:   # the probe, and pages: all a full read can take, two in a window
                return settings.MAX_BATCH if full_read else 3
            return 1
        density = self.density()
        if density is None:
            return 1
        remaining = max(0, self.max_id - self.last_id) * density / settings.PAGE_SIZE
        # A tenth and a page more than the estimate, so a range's last batch rarely falls a page short; ids in
        # a modification window are sparse, so the estimate runs low there: ramp up as well.
        return max(1, min(settings.MAX_BATCH, max(math.ceil(remaining * 1.1) + 1, self.ramp)))

    def rows_left(self) -> int:
        density = self.density()
        if self.done or self.max_id is None or density is None:
            return 0
        return int(max(0, self.max_id - self.last_id) * density)

    def density(self) -> float | None:
        """Rows per id in this walker's range so far (or as the walker it split from saw them)."""
        if self.first_id is None or self.rows_seen == 0:
            return self.known_density
        return self.rows_seen / max(1, self.last_id - self.first_id + 1)

    def commands(self, budget: int) -> list[Command]:
        commands: list[Command] = []
        if self.probe is None and budget > 0:
            params = self._params(descending=True)
            params[self.entity.filter_key] = dict(self.filter)
            self.probe = self.name()
            commands.append(Command(self.probe, f"{self.method}?{encoding.encode(params)}", "probe"))
            budget -= 1
        key = encoding.encode({self.entity.filter_key: {f">{self.entity.id_field}": 0}}).rsplit("=", 1)[0]
        previous: str | None = None
        for _ in range(budget):
            params = self._params()
            params[self.entity.filter_key] = dict(self.filter)
            after = str(self.last_id) if previous is None else self._reference(previous)
            previous = self.name()
            commands.append(Command(previous, f"{self.method}?{encoding.encode(params)}&{key}={after}"))
        return commands

    def deliver(self, commands: list[Command], batch: BatchResult) -> None:
        for command in commands:
            if command.payload == "probe":
                if self.failed(command, batch):
                    self.probe = None
                    continue
                top = rows_of(self.entity, batch.results[command.name])
                self.max_id = int(top[0][self.entity.id_key]) if top else self.last_id
                continue
            if self.failed(command, batch):
                return
            rows = rows_of(self.entity, batch.results[command.name])
            if rows:
                self.pages.append(rows)
                self.rows_seen += len(rows)
                if self.first_id is None:
                    self.first_id = int(rows[0][self.entity.id_key])
                self.last_id = int(rows[-1][self.entity.id_key])
            if len(rows) < settings.PAGE_SIZE:
                self.done = True
                return
        self.ramp = min(settings.MAX_BATCH, self.ramp * 2)
        if self.max_id is not None and self.last_id >= self.max_id:
            self.done = True   # rows created after this run started are the next run's
        elif self.spawn is not None and self.wants() >= settings.MAX_BATCH:
            self.split()

    def split(self) -> None:
        """Hands all but the first part of the remaining ids to sibling walkers, one part per batch in flight;
        a walker splits once (its siblings never), so a table is read by at most that many walkers."""
        assert self.max_id is not None and self.spawn is not None
        density = self.density() or 0.0
        pages = (self.max_id - self.last_id) * density / settings.PAGE_SIZE
        if pages < self.SPLIT_PAGES:
            return
        spawn, self.spawn = self.spawn, None
        parts = min(settings.BATCHES_IN_FLIGHT, int(pages // settings.MAX_BATCH))
        step = (self.max_id - self.last_id) // parts
        bounds = [self.last_id + step * i for i in range(1, parts)] + [self.max_id]
        for low, high in itertools.pairwise(bounds):
            sibling = KeysetWalker(self.entity, self.select, self.filter, after_id=low, until_id=high)
            sibling.max_id, sibling.probe, sibling.known_density = high, "known", density
            log.debug("Bitrix24 %s: ids %d..%d split off to another walker", self.entity.name, low, high)
            spawn(sibling)
        self.filter[f"<={self.entity.id_field}"] = bounds[0]
        self.max_id = bounds[0]


class OffsetWalker(Walker):
    """`start=0, 50, ...` for small tables and methods that do not order (counted, so keep them small)."""

    def __init__(self, entity: Entity, params: dict[str, Any] | None = None) -> None:
        super().__init__(entity)
        self.params = {**entity.params, **(params or {})}
        self.pending: list[int] = [0]
        self.total: int | None = None
        self.received: set[int] = set()

    def rows_left(self) -> int:
        return 0 if self.done or self.total is None else max(0, self.total - settings.PAGE_SIZE * len(self.received))

    def wants(self) -> int:
        return len(self.pending)

    def commands(self, budget: int) -> list[Command]:
        starts, self.pending = self.pending[:budget], self.pending[budget:]
        return [Command(self.name(), f"{self.method}?{encoding.encode({**self.params, 'start': s})}", s)
                for s in starts]

    def deliver(self, commands: list[Command], batch: BatchResult) -> None:
        for command in commands:
            start = int(command.payload)
            if self.failed(command, batch):
                self.pending.append(start)
                continue
            rows = rows_of(self.entity, batch.results[command.name])
            if rows:
                self.pages.append(rows)
            self.received.add(start)
            if self.total is None:
                self.total = int(batch.totals.get(command.name, len(rows)))
                self.pending += list(range(settings.PAGE_SIZE, self.total, settings.PAGE_SIZE))
        self.done = not self.pending and self.total is not None


class IdsWalker(KeysetWalker):
    """Every live id of an entity (id-only select: the cheapest full read there is)."""

    def __init__(self, entity: Entity) -> None:
        super().__init__(entity, [entity.id_field])
        self.ids: set[int] = set()

    @property
    def hungry(self) -> bool:
        return not self.done

    def deliver(self, commands: list[Command], batch: BatchResult) -> None:
        super().deliver(commands, batch)
        while self.pages:
            self.ids.update(int(r[self.entity.id_key]) for r in self.pages.popleft())


def by_ids(entity: Entity, ids: list[int], select: list[str]) -> dict[str, Any]:
    """The list parameters of the rows with these ids (a page at most: `@ID` with up to 50 ids)."""
    return {**entity.params, entity.filter_key: {f"@{entity.id_field}": ids}, "select": select, "start": -1}


def count_cost(rows: int) -> float:
    """The portal's seconds for counting `rows` (`total` of a list over them)."""
    return rows * settings.COUNT_SECONDS_PER_ROW


def count_due(rows: int, counted_at: float | None, now: float, allowance: float) -> bool:
    """Whether a refresh counts an entity's deletions: the count (`rows` of the warehouse's live ids, at
    COUNT_SECONDS_PER_ROW of the portal's time) fits what is left of the refresh's `allowance`, and the last
    count (`counted_at`) is old enough that counting takes at most COUNT_BUDGET_SHARE of the method's operating
    time. A small table is counted by every refresh; 200,000 deals about once a minute; a table whose count
    would not fit one refresh's allowance (about a million rows) only by the daily sweep."""
    cost = count_cost(rows)
    if cost > allowance:
        return False
    spacing = cost * settings.OPERATING_WINDOW / (settings.COUNT_BUDGET_SHARE * settings.OPERATING_LIMIT)
    return counted_at is None or now - counted_at >= spacing


def deletion_walkers(entity: Entity, known: Sequence[int], reported: Sequence[int] = ()) -> list[DeletionWalker]:
    """The walkers counting `known` (and listing `reported`, as `DeletionWalker` takes them): one per slice of
    known ids whose count fits COUNT_SECONDS_PER_BATCH, so that the slices of a big table are counted in
    parallel batches rather than one after another in one (at 20,000 deals, ten seconds of the portal's time
    in one batch)."""
    per_slice = max(settings.PAGE_SIZE, int(settings.COUNT_SECONDS_PER_BATCH / settings.COUNT_SECONDS_PER_ROW))
    slices = math.ceil(len(known) / per_slice)
    size = math.ceil(len(known) / slices) if slices else 0
    parts = [known[i:i + size] for i in range(0, len(known), size)] if size else []
    walkers = [DeletionWalker(entity, part, reported if i == 0 else ()) for i, part in enumerate(parts)]
    return walkers or ([DeletionWalker(entity, (), reported)] if len(reported) else [])


class DeletionWalker(Walker):
    """The ids the warehouse holds as live that the portal no longer has, found by counting rather than reading
    every id: the portal's rows with ids in the range of the warehouse's (the `total` of an id-only list) against
    the warehouse's own count. A range whose counts differ splits into up to a batch of ranges of equal known
    ids, all counted in the next batch, until a range holds at most a page of known ids: one id-only list of
    them then names the live ones, and the others are deleted. Nothing deleted costs one command; k deletions
    among n rows about k·log₅₀(n). Restored or unloaded rows inside a range can hide a deletion from its count;
    the daily sweep, which reads every id, finds those."""

    def __init__(self, entity: Entity, known: Sequence[int], reported: Sequence[int] = ()) -> None:
        """`known`: the warehouse's live ids to count, ascending (a list, or a compact `array` of a big table's;
        empty: no count). `reported`: ids the portal said it deleted (its events), checked by listing them."""
        super().__init__(entity)
        self.counting = bool(len(known))
        self.to_count: list[Sequence[int]] = [known] if self.counting else []   # known ids of each range
        self.to_list: list[Sequence[int]] = [reported[i:i + settings.PAGE_SIZE]
                                             for i in range(0, len(reported), settings.PAGE_SIZE)]
        self.deleted: set[int] = set()
        self.commands_sent = 0
        self.done = not self.to_count and not self.to_list

    @property
    def hungry(self) -> bool:
        return not self.done

    def wants(self) -> int:
        return len(self.to_count) + len(self.to_list)

    def counting_seconds(self) -> float:
        return sum(count_cost(len(ids)) for ids in self.to_count)

    def commands(self, budget: int) -> list[Command]:
        commands = []
        id_field = self.entity.id_field
        while budget > 0 and (self.to_list or self.to_count):
            listing = bool(self.to_list)
            ids = self.to_list.pop() if listing else self.to_count.pop()
            if listing:
                params = by_ids(self.entity, list(ids), [id_field])
            else:   # start=0: the portal counts the range (`total`)
                params = {**self.entity.params, self.entity.filter_key: {f">={id_field}": ids[0],
                                                                         f"<={id_field}": ids[-1]},
                          "select": [id_field], "start": 0}
            commands.append(Command(self.name(), f"{self.method}?{encoding.encode(params)}",
                                    ("list" if listing else "count", ids)))
            budget -= 1
        self.commands_sent += len(commands)
        return commands

    def deliver(self, commands: list[Command], batch: BatchResult) -> None:
        for command in commands:
            kind, ids = command.payload
            if self.failed(command, batch):
                (self.to_list if kind == "list" else self.to_count).append(ids)
                continue
            if kind == "list":
                live = {int(r[self.entity.id_key]) for r in rows_of(self.entity, batch.results[command.name])}
                if live - set(ids):   # the portal ignored the id filter: this answer proves nothing
                    log.warning("Bitrix24 %s: the id filter was not applied; deletions are left to the sweep",
                                self.entity.name)
                    continue
                self.deleted |= set(ids) - live
                continue
            total = batch.totals.get(command.name)
            if total is None or total == len(ids):
                continue   # the same count (or a method that does not count): nothing to look for here
            if len(ids) <= settings.PAGE_SIZE:
                self.to_list.append(ids)
            else:
                size = math.ceil(len(ids) / settings.MAX_BATCH)
                self.to_count += [ids[i:i + size] for i in range(0, len(ids), size)]
        self.done = not self.to_count and not self.to_list


class ByIdWalker(Walker):
    """Rows for known ids, 50 per command."""

    def __init__(self, entity: Entity, select: list[str], ids: list[int]) -> None:
        super().__init__(entity)
        self.select = select
        self.chunks = [ids[i:i + settings.PAGE_SIZE] for i in range(0, len(ids), settings.PAGE_SIZE)]
        self.done = not self.chunks

    def wants(self) -> int:
        return len(self.chunks)

    def commands(self, budget: int) -> list[Command]:
        taken, self.chunks = self.chunks[:budget], self.chunks[budget:]
        commands = []
        for chunk in taken:
            params = by_ids(self.entity, chunk, self.select)
            commands.append(Command(self.name(), f"{self.method}?{encoding.encode(params)}", chunk))
        return commands

    def deliver(self, commands: list[Command], batch: BatchResult) -> None:
        for command in commands:
            if self.failed(command, batch):
                self.chunks.append(command.payload)
                continue
            rows = rows_of(self.entity, batch.results[command.name])
            if rows:
                self.pages.append(rows)
        self.done = not self.chunks


WalkerT = TypeVar("WalkerT", bound=Walker)


@dataclass(eq=False)
class Scheduler:
    """Packs page commands of all walkers into shared batches, `parallel` batches in flight at once.

    A real portal spends seconds on a 50-command batch, and each method has its own operating-time
    budget, so a second batch in flight (other walkers, often other methods) uses the portal's
    allowance that one batch at a time would leave idle. Results are delivered on the caller's thread.
    """

    client: Bitrix24Client
    parallel: int = settings.BATCHES_IN_FLIGHT
    walkers: list[Walker] = field(default_factory=list)
    batches: int = 0
    failure: Exception | None = None   # once the portal is given up on, every resource stops at once
    in_flight: dict[Future[BatchResult], list[tuple[Walker, list[Command]]]] = field(default_factory=dict)
    pool: ThreadPoolExecutor | None = None

    def register(self, walker: WalkerT) -> WalkerT:
        self.walkers.append(walker)
        return walker

    def rows_left(self) -> int:
        """About how many rows the walkers have still to read: what the progress display's estimate rests on."""
        return sum(w.rows_left() for w in self.walkers)

    def pump(self) -> None:
        """Launches batches for walkers that need data, then takes in at least one answer."""
        if self.failure is not None:
            raise self.failure
        self._launch()
        if not self.in_flight:
            self._wait_for_budget()
            return
        done, _ = wait(list(self.in_flight), return_when=FIRST_COMPLETED)
        for future in done:
            self._deliver(future)

    def _busy(self) -> set[int]:
        return {id(w) for plan in self.in_flight.values() for w, _ in plan}

    def _allocate(self) -> dict[Walker, int]:
        """Commands per walker for the next batch. The walkers that want the most fill it first, whole: a
        walker in a batch in flight waits for its answer (its next pages chain on it), so the walkers of one
        big table go out in parallel batches, not squeezed into one. What is left of the 50 commands goes to
        the walkers that want little (the first pages of an incremental refresh share one batch), then the
        costliest counts, as long as the batch's time at the portal (its pages at PAGE_SECONDS, its counting)
        stays within COUNT_SECONDS_PER_BATCH: the counts left over go out in the next batch, counted while this
        one is. So the pages of an incremental refresh's first batch are not held up by 1.5 s of counting on top
        of them while the other batches in flight count."""
        busy = self._busy()
        ready = [w for w in self.walkers if w.hungry and id(w) not in busy and self.client.wait_for(w.method) <= 0]
        counts: dict[Walker, int] = {}
        budget, seconds = settings.MAX_BATCH, 0.0
        for walker in sorted(ready, key=lambda w: (-w.wants(), -w.counting_seconds())):
            if budget == 0:
                break
            take = min(budget, walker.wants())
            cost = walker.counting_seconds()
            if counts and cost and seconds + cost > settings.COUNT_SECONDS_PER_BATCH:
                continue
            if take > 0:
                counts[walker] = take
                budget -= take
                seconds += cost or settings.PAGE_SECONDS * take
        return counts

    def _launch(self) -> None:
        while len(self.in_flight) < self.parallel:
            counts = self._allocate()
            if not counts:
                return
            thin = (sum(counts.values()) < settings.MAX_BATCH // 2
                    and sum(w.counting_seconds() for w in counts) < settings.COUNT_SECONDS_PER_BATCH / 2)
            if self.in_flight and thin:
                return   # a thin extra batch costs a request; wait to fill it with what comes back
            plan = [(w, w.commands(n)) for w, n in counts.items()]
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="bitrix24-batch")
            commands = {c.name: c.text for _, cmds in plan for c in cmds}
            self.in_flight[self.pool.submit(self.client.batch, commands)] = plan

    def _deliver(self, future: Future[BatchResult]) -> None:
        plan = self.in_flight.pop(future)
        try:
            batch = future.result()
            self.batches += 1
            for walker, commands in plan:
                walker.deliver(commands, batch)
        except Exception as exc:
            self.failure = exc
            raise

    def _wait_for_budget(self) -> None:
        busy = self._busy()
        hungry = [w for w in self.walkers if w.hungry and id(w) not in busy]
        if hungry:
            pause = min(self.client.wait_for(w.method) for w in hungry)
            if pause > 0:
                log.info("Bitrix24: every pending method waits for its operating-time budget; pausing %.0f s", pause)
                time.sleep(pause)
