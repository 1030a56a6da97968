"""The `bitrix24` dlt source: one resource per catalogue entity, all fed by one batch scheduler.

Modes of a run:
- incremental (default): entities with a modification cursor read `>= cursor - overlap` (keyset inside
  the window; the rows of the overlap read again unchanged are dropped, `cursor.Cursor`); append-only entities
  read `> last id`; directories are read whole. Cursors live in dlt resource state, so they advance only when
  the load that carries them commits.
- backfill (`backfill={"start": ..., "end": ..., "by": "created"|"modified"}`): a historical window,
  leaving every cursor as it was.
- sweep (`sweep=True` with `known_ids`): also walks every id (id-only, 2,500 per request), marks rows
  that vanished as deleted in the `deletions` table, un-marks restored ones, and re-reads rows the
  warehouse lacks (a restored deal's history, say).

Before anything is read, one preflight request checks the credentials and scopes and discovers custom
fields, so a wrong URL, secret or scope fails in one line with nothing written.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Optional, Protocol
from zoneinfo import ZoneInfo, available_timezones

import dlt
from dlt.common.runtime.collector import Collector
from dlt.sources import DltResource

from pipelines.bitrix24 import settings
from pipelines.bitrix24.catalogue import (
    BY_NAME,
    COLUMN_TYPES,
    ENTITIES,
    USERFIELD_COLUMN_TYPES,
    USERFIELD_METHODS,
    Entity,
)
from pipelines.bitrix24.client import Bitrix24Client
from pipelines.bitrix24.convert import arrow_schema, to_datetime, typed_row, typed_table
from pipelines.bitrix24.credentials import Bitrix24Credentials, credentials_or_fallback
from pipelines.bitrix24.cursor import Cursor, digest
from pipelines.bitrix24.errors import (
    AuthError,
    Bitrix24Error,
    ConfigurationError,
    PortalUnavailable,
)
from pipelines.bitrix24.paging import (
    ByIdWalker,
    DeletionWalker,
    IdsWalker,
    KeysetWalker,
    OffsetWalker,
    Scheduler,
    Walker,
    count_cost,
    count_due,
    deletion_walkers,
)

log = logging.getLogger(__name__)

COUNTED_AT = "deletions_counted_at"   # resource state: when this entity's deletions were last counted
ROWS_PER_ITEM = 5_000   # rows handed to dlt at once: dlt's cost per item is high, per row of a table low


class KnownIds(Protocol):
    """The ids the warehouse holds, per entity name: how many are live, known without reading them, and the ids
    themselves, read only where a sweep or a deletion count needs them."""

    def live_count(self, entity: str) -> int:
        """How many ids the warehouse holds as live."""
        ...

    def __call__(self, entity: str) -> tuple[Sequence[int], Sequence[int]]:
        """The ids it holds as live and as deleted, each ascending."""
        ...


DELETIONS_HINTS = dlt.mark.make_hints(
    table_name="deletions", write_disposition="merge", primary_key=("entity", "id"), file_format="parquet",
    columns={"entity": {"data_type": "text"}, "id": {"data_type": "bigint"}, "is_deleted": {"data_type": "bool"},
             "detected_at": {"data_type": "timestamp"}})


class Run:
    """What one source instance shares between its resources: the client, the scheduler, custom fields."""

    def __init__(self, client: Bitrix24Client, entities: list[Entity], *, overlap: int, language: str,
                 backfill: dict[str, Any] | None, sweep: bool, known_ids: KnownIds | None,
                 timezone: str | None = None, sweep_state_key: str | None = None,
                 progress: Collector | None = None, reported_deletions: dict[str, list[int]] | None = None,
                 held_tables: Sequence[str] = ()) -> None:
        self.client = client
        self.scheduler = Scheduler(client)
        self.entities = entities
        self.overlap = overlap
        self.backfill = backfill
        self.sweep = sweep
        self.known_ids = known_ids
        self.sweep_state_key = sweep_state_key
        self.started = datetime.now().astimezone()
        self.userfields: dict[str, list[dict[str, Any]]] = {}
        self.skipped: set[str] = set()     # optional entities whose scope the webhook lacks
        self.progress = progress
        self.rows_read = 0
        self.rows_expected: int | None = None
        self.count_allowance = settings.COUNT_SECONDS_PER_REFRESH   # the portal's seconds left for deletion counts
        self.reported_deletions = reported_deletions or {}
        self.held_tables = set(held_tables)
        self.preflight(language, timezone)

    # --- preflight ---------------------------------------------------------------------------------

    def preflight(self, language: str, timezone: str | None) -> None:
        """One request: credentials, scopes, custom fields and the portal's time zone. Fails before anything is
        written. A portal that cannot be reached gets a few quick tries here, not the load's long backoff."""
        needed = sorted({e.scope for e in self.entities if not e.optional})
        commands = {"scope": "scope"}
        for method in USERFIELD_METHODS:
            commands[method] = f"{method}?filter[LANG]={language}"
        try:
            batch = self.client.batch(commands, attempts=settings.PREFLIGHT_ATTEMPTS)
        except PortalUnavailable as exc:
            raise PortalUnavailable(f"Bitrix24 portal {self.client.auth.portal} is unreachable or failing "
                                    f"({exc.reason}): check the portal URL and that the portal is up") from None
        if timezone is not None:
            check_portal_timezone(batch.time, timezone)
        granted = batch.results.get("scope")
        if not isinstance(granted, list):
            raise AuthError(f"Bitrix24 did not report the webhook's scopes: check the webhook URL "
                            f"({self.client.auth.set_at})")
        missing = [s for s in needed if s not in granted]
        if missing:
            raise AuthError(f"Bitrix24 webhook lacks the scopes {', '.join(missing)} (it has {', '.join(granted)}): "
                            "edit the inbound webhook in Bitrix24 and tick them")
        self.skipped = {e.name for e in self.entities if e.optional and e.scope not in granted}
        for entity in self.entities:
            if entity.name in self.skipped:
                log.warning("Bitrix24 webhook lacks the scope %s, so %s are not loaded and the reports count no "
                            "%s: tick it on the inbound webhook in Bitrix24", entity.scope, entity.name, entity.name)
        for method in USERFIELD_METHODS:
            rows = batch.results.get(method)
            self.userfields[method] = rows if isinstance(rows, list) else []

    def custom_fields(self, entity: Entity) -> dict[str, str]:
        """`UF_*` fields of an entity and their column types, from its custom-field definitions."""
        if not entity.userfields:
            return {}
        return {f["FIELD_NAME"]: USERFIELD_COLUMN_TYPES.get(f.get("USER_TYPE_ID", ""), "str")
                for f in self.userfields.get(entity.userfields, []) if f.get("MULTIPLE") != "Y"}

    # --- planning ----------------------------------------------------------------------------------

    def window(self, entity: Entity, state: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The filter and starting id of this run for an entity."""
        if self.backfill is not None:
            field = entity.created if self.backfill.get("by", "created") == "created" else entity.cursor
            if field is None or field == entity.id_field:
                field = entity.created
            return {f">={field}": self.backfill["start"], f"<{field}": self.backfill["end"]}, 0
        if entity.incremental and state.get("cursor"):
            since = datetime.fromisoformat(state["cursor"]) - timedelta(seconds=self.overlap)
            return {f">={entity.cursor}": since.isoformat()}, 0
        if entity.append_only:
            return {}, int(state.get("last_id", 0))
        return {}, 0

    def walkers(self, entity: Entity, state: dict[str, Any]) -> list[Walker]:
        if entity.name == "userfields":
            return []
        if entity.order == "none":
            return [OffsetWalker(entity)]
        select = entity.select(tuple(self.custom_fields(entity)))
        if self.backfill is not None and entity.snapshot:
            return [KeysetWalker(entity, select)]   # directories are read whole in a backfill too
        extra, after = self.window(entity, state)
        return [KeysetWalker(entity, select, extra, after_id=after)]

    # --- the rows of one resource -------------------------------------------------------------------

    def rows(self, entity: Entity) -> Iterator[Any]:
        state = dlt.current.resource_state()
        types = {**entity.types, **self.custom_fields(entity)}
        if entity.name == "userfields":   # loaded again only when a definition changed
            keep = {*types, "LIST"}
            rows = [{k: v for k, v in r.items() if k in keep} for method in USERFIELD_METHODS
                    for r in self.userfields[method]]
            definitions = digest(rows)
            if rows and state.get("digest") != definitions:
                yield [typed_row(r, types) for r in rows]
                if self.backfill is None:
                    state["digest"] = definitions
            return
        if entity.write == "versions":
            yield from self.versions(entity, types, state)
            return
        if entity.name in self.skipped:
            return
        walkers = [self.scheduler.register(w) for w in self.walkers(entity, state)]
        for walker in walkers:
            if isinstance(walker, KeysetWalker):
                walker.spawn = lambda sibling: walkers.append(self.scheduler.register(sibling))
        ids_walker = self.scheduler.register(IdsWalker(entity)) if self.sweep and entity.sweep else None
        deletions = self.deletion_walkers(entity, state)
        yield None   # every selected resource registers before the first batch goes out
        cursor = Cursor(entity, state if self.backfill is None else {}, self.overlap) if entity.incremental else None
        last_id = int(state.get("last_id", 0))
        walkers += [*([ids_walker] if ids_walker is not None else []), *deletions]
        ready: list[dict[str, Any]] = []   # pages go to dlt in tables of about ROWS_PER_ITEM rows
        for page in self.drain(walkers):
            if page:
                if cursor is not None:
                    page = cursor.fresh(page)
                if entity.append_only and page:
                    last_id = max(last_id, max(int(r[entity.id_key]) for r in page))
                ready += page
            if ready and (not page or len(ready) >= ROWS_PER_ITEM):   # full, or nothing more arrived yet
                yield typed_page(entity, ready, types)
                ready = []
            elif not page:
                yield None
        if ready:
            yield typed_page(entity, ready, types)
        if ids_walker is not None:
            yield from self.reconcile(entity, types, ids_walker.ids)
        deleted = set().union(*(w.deleted for w in deletions))
        if deleted:
            log.info("Bitrix24 %s: %d deleted in the portal, found by counting in %d commands", entity.name,
                     len(deleted), sum(w.commands_sent for w in deletions))
            yield self.marks(entity, deleted=deleted)
        if any(w.counting for w in deletions):
            state[COUNTED_AT] = self.started.timestamp()
        if self.backfill is None:
            if cursor is not None:
                state.update(cursor.state())
            if entity.append_only:
                state["last_id"] = last_id

    def versions(self, entity: Entity, types: dict[str, str], state: dict[str, Any]) -> Iterator[Any]:
        """A small directory read whole; a version row for each record that changed or vanished since the
        last committed load (the last version of each id is kept in resource state)."""
        walkers = [self.scheduler.register(w) for w in self.walkers(entity, {})]
        yield None
        current: dict[str, dict[str, Any]] = {}
        for page in self.drain(walkers):
            if not page:
                yield None
            for row in page:
                typed = typed_row(row, types)
                current[str(typed[entity.id_field])] = typed
        if self.backfill is not None:
            return
        known: dict[str, str] = state.setdefault("versions", {})
        rows = []
        for key, row in sorted(current.items()):
            version = digest(row)
            if known.get(key) != version:
                rows.append({**row, "version_hash": version, "previous_hash": known.get(key, ""),
                             "valid_from": self.started, "is_deleted": False})
                known[key] = version
        for key in sorted(set(known) - set(current)):
            if known[key] != "deleted":
                rows.append({entity.id_field: int(key), "version_hash": "deleted", "previous_hash": known[key],
                             "valid_from": self.started, "is_deleted": True})
                known[key] = "deleted"
        if rows:
            yield rows

    def drain(self, walkers: list[Walker]) -> Iterator[list[dict[str, Any]]]:
        """Pages of these walkers as they arrive; an empty list means 'nothing yet' (the pipeline moves on)."""
        while True:
            produced = False
            for walker in walkers:
                while walker.pages:
                    produced = True
                    page = walker.pages.popleft()
                    self.count(len(page))
                    yield page
            if all(w.done and not w.pages for w in walkers):
                return
            self.scheduler.pump()
            if not produced and not any(w.pages for w in walkers):
                yield []

    def count(self, rows: int) -> None:
        """The progress display's `Rows` counter: rows read from the portal, of about how many in all (what is
        read so far and what the walkers still expect: an estimate that firms up as the id ranges are probed)."""
        self.rows_read += rows
        if self.progress is None:
            return
        expected = self.rows_read + self.scheduler.rows_left()
        if self.rows_expected is None:
            self.progress.update("Rows", inc=rows, total=expected)
        else:
            self.progress.update("Rows", inc=rows, inc_total=expected - self.rows_expected)
        self.rows_expected = expected

    def reconcile(self, entity: Entity, types: dict[str, str], live: set[int]) -> Iterator[Any]:
        """After an id sweep: mark vanished rows deleted, un-mark restored ones, re-read what is missing."""
        if self.known_ids is None:
            raise ConfigurationError("a deletion sweep needs the warehouse's known ids (known_ids)")
        known_live, known_deleted = (set(ids) for ids in self.known_ids(entity.name))
        vanished = known_live - live
        restored = known_deleted & live
        missing = sorted(live - known_live)          # never loaded, or restored: read them again
        log.info("Bitrix24 sweep of %s: %d live, %d vanished, %d restored, %d to re-read", entity.name, len(live),
                 len(vanished), len(restored), len(missing))
        if missing:
            select = entity.select(tuple(self.custom_fields(entity)))
            by_id = self.scheduler.register(ByIdWalker(entity, select, missing))
            for page in self.drain([by_id]):
                yield typed_page(entity, page, types) if page else None
        if vanished or restored:
            yield self.marks(entity, deleted=vanished, restored=restored)

    def deletion_walkers(self, entity: Entity, state: dict[str, Any]) -> list[DeletionWalker]:
        """Between sweeps, a plain refresh counts the ids the warehouse holds as live (`deletion_walkers`), as
        often as the count's cost to the portal allows (`count_due`; the last count's time is in the resource's
        state), and checks the live ids the portal reported deleted (`reported_deletions`) by listing them."""
        if self.sweep or not entity.sweep or self.backfill is not None or self.known_ids is None:
            return []
        rows = self.known_ids.live_count(entity.name)
        if not rows:
            return []
        counting = count_due(rows, state.get(COUNTED_AT), self.started.timestamp(), self.count_allowance)
        if counting:
            self.count_allowance -= count_cost(rows)
        else:
            log.info("Bitrix24 %s: deletions not counted this time (%d rows; the portal's time for counting is "
                     "spent or the count is too big: the sweep finds them)", entity.name, rows)
        reported = sorted(set(self.reported_deletions.get(entity.name, ())))
        if not counting and not reported:
            return []     # the ids of a table left to the sweep are not even read
        live, _ = self.known_ids(entity.name)
        reported = [i for i in reported if holds(live, i)]
        return [self.scheduler.register(w) for w in deletion_walkers(entity, live if counting else (), reported)]

    def marks(self, entity: Entity, *, deleted: set[int], restored: set[int] | None = None) -> Any:
        """Rows of the `deletions` table: ids deleted in the portal, and ids restored there."""
        marks = [{"entity": entity.name, "id": i, "is_deleted": True, "detected_at": self.started}
                 for i in sorted(deleted)]
        marks += [{"entity": entity.name, "id": i, "is_deleted": False, "detected_at": self.started}
                  for i in sorted(restored or ())]
        return dlt.mark.with_hints(marks, DELETIONS_HINTS, create_table_variant=True)


def check_portal_timezone(block: dict[str, Any], timezone: str) -> None:
    """The portal writes every time in its own offset (`time.date_start`): refuse a configured time zone whose
    offset differs at that moment, since every day boundary of the warehouse would be shifted."""
    portal = to_datetime(block.get("date_start"))
    if portal is None or portal.utcoffset() is None:
        return   # nothing to compare with (the portal did not say)
    offset = portal.utcoffset()
    ours = portal.astimezone(ZoneInfo(timezone)).utcoffset()
    if ours == offset:
        return
    zones = zones_at(portal)
    raise ConfigurationError(
        f"the portal's clock runs at UTC{_offset(offset)}, but the warehouse's time zone {timezone} is "
        f"UTC{_offset(ours)} now: set B24WH_TIMEZONE to the portal's zone (Bitrix24: Settings > Time zone)"
        + (f", for example {', '.join(zones)}" if zones else ""))


def zones_at(moment: datetime, limit: int = 4) -> list[str]:
    """IANA zones with the offset `moment` carries at that moment, the best-known first."""
    offset = moment.utcoffset()
    found = [name for name in sorted(available_timezones()) if name.split("/")[0] in _REGIONS
             and moment.astimezone(ZoneInfo(name)).utcoffset() == offset]
    return sorted(found, key=lambda name: (_PREFERRED.index(name) if name in _PREFERRED else len(_PREFERRED),
                                           name))[:limit]


_REGIONS = ("Europe", "Asia", "America", "Africa", "Australia", "Pacific", "Atlantic", "Indian")
_PREFERRED = ("Europe/Moscow", "Europe/Kaliningrad", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
              "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
              "Asia/Magadan", "Asia/Kamchatka", "Europe/Minsk", "Asia/Almaty", "Europe/Kyiv", "Europe/Berlin",
              "Europe/London", "America/New_York", "America/Bogota", "America/Chicago", "America/Denver",
              "America/Los_Angeles", "America/Sao_Paulo", "Asia/Dubai", "Asia/Tashkent")


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def typed_page(entity: Entity, page: list[dict[str, Any]], types: dict[str, str]) -> Any:
    """Rows as dlt takes them: an Arrow table for a flat entity, typed rows where multifields nest."""
    if entity.multifields:
        return [typed_row(r, types) for r in page]
    return typed_table(page, types, arrow_schema(types, key=entity.id_key))


def holds(ascending: Sequence[int], value: int) -> bool:
    """Whether an ascending sequence of ids holds `value`."""
    at = bisect.bisect_left(ascending, value)
    return at < len(ascending) and ascending[at] == value


def make_resource(run: Run, entity: Entity) -> DltResource:
    types = {**entity.types, **run.custom_fields(entity)}
    columns = {name: dict(COLUMN_TYPES[kind]) for name, kind in types.items()}
    key: Any = entity.id_key
    disposition: Any = "merge"
    if entity.write == "versions":
        disposition = {"disposition": "merge", "strategy": "insert-only"}
        key = (entity.id_field, "version_hash", "previous_hash")
        columns.update({"version_hash": {"data_type": "text"}, "previous_hash": {"data_type": "text"},
                        "valid_from": {"data_type": "timestamp"}, "is_deleted": {"data_type": "bool"}})

    def rows() -> Iterator[Any]:
        loaded = False
        for item in run.rows(entity):
            loaded = loaded or bool(item)
            yield item
        if run.sweep_state_key:   # every id was read: record when, in state committed with this load
            dlt.current.source_state()[run.sweep_state_key] = run.started.timestamp()
        # A portal without such records still gets the (empty) table the model reads, once: the marker is a load
        # job of its own. Not for version tables: dlt's insert-only merge cannot take the empty marker, and every
        # portal has users, departments, statuses and pipelines.
        if not loaded and entity.write != "versions" and entity.name not in run.held_tables:
            yield dlt.mark.materialize_table_schema()

    # Parquet: typed files that DuckDB loads in bulk (dlt's default INSERT statements are slow and huge).
    return dlt.resource(rows, name=entity.name, write_disposition=disposition, primary_key=key, columns=columns,
                        max_table_nesting=1, file_format="parquet")


@dlt.source(name="bitrix24", max_table_nesting=1)
def bitrix24_source(
    credentials: Optional[Bitrix24Credentials] = None,  # noqa: UP045 - dlt reads the annotation
    plan: str = "standard",
    rate: float | None = None,
    burst: int | None = None,
    operating_limit: float = settings.OPERATING_LIMIT,
    max_attempts: int = settings.MAX_ATTEMPTS,
    entities: list[str] | None = None,
    overlap_seconds: int = settings.OVERLAP_SECONDS,
    language: str = "en",
    backfill: dict[str, Any] | None = None,
    sweep: bool = False,
    known_ids: Any = None,
    timezone: str | None = None,
    sweep_state_key: str | None = None,
    progress: Any = None,
    reported_deletions: dict[str, list[int]] | None = None,
    held_tables: list[str] | None = None,
) -> list[DltResource]:
    """Bitrix24 CRM entities, incrementally, at the portal's rate limit.

    Args:
        credentials: an inbound webhook or an OAuth application (`pipelines.bitrix24.credentials` says where
            they come from: `sources.bitrix24.credentials` in dlt's configuration, else BITRIX24_WEBHOOK_URL).
        plan: `standard` (2 requests/s, burst 50) or `enterprise` (5/s, 250); `rate`/`burst` override.
        operating_limit: the portal's per-method operating-time budget (seconds per 10 minutes).
        max_attempts: tries of one request (503/429/5xx/HTML pages/timeouts/dropped connections) before failing.
        entities: names from the entity catalogue to load (default: all).
        overlap_seconds: how far before the stored cursor each incremental window starts.
        language: language of custom-field labels.
        backfill: {"start": ISO, "end": ISO, "by": "created"|"modified"}: a window that leaves cursors alone.
        sweep: also run the id-only deletion sweep (needs `known_ids`).
        known_ids: the ids the warehouse holds (`KnownIds`), for the sweep and the deletion counts.
        timezone: the warehouse's IANA time zone; the preflight refuses it when the portal's offset differs.
        sweep_state_key: source-state key that records when this run read every id (a sweep or a first load).
        progress: the pipeline's progress collector, given a `Rows` counter with the expected total.
        reported_deletions: per entity, ids the portal reported deleted (`b24wh listen`'s journal): the live
            ones are listed by id, and those the portal no longer has are marked deleted, counted or not.
        held_tables: the raw tables the warehouse holds: an entity with nothing new loads nothing into them.
    """
    if plan not in settings.PLAN_LIMITS:
        raise ConfigurationError(f"unknown Bitrix24 plan {plan!r} (sources.bitrix24.plan): use one of "
                                 f"{', '.join(settings.PLAN_LIMITS)}")
    default_rate, default_burst = settings.PLAN_LIMITS[plan]
    names = entities or [e.name for e in ENTITIES]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ConfigurationError(f"unknown Bitrix24 entities {unknown}: choose from {', '.join(BY_NAME)}")
    chosen = [BY_NAME[n] for n in names]
    auth = credentials_or_fallback(credentials).auth()
    client = Bitrix24Client(auth, rate=rate or default_rate, burst=burst or default_burst,
                            operating_limit=operating_limit, max_attempts=max_attempts)
    try:
        run = Run(client, chosen, overlap=overlap_seconds, language=language, backfill=backfill, sweep=sweep,
                  known_ids=known_ids, timezone=timezone, sweep_state_key=sweep_state_key, progress=progress,
                  reported_deletions=reported_deletions, held_tables=held_tables or ())
    except Bitrix24Error as exc:
        raise type(exc)(auth.redact(str(exc))) from None
    return [make_resource(run, e) for e in chosen]

