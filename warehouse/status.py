"""What a warehouse holds and how fresh it is: the report behind `b24wh status` (and `--json` for monitoring).

Read without writing anything: per entity its rows, its incremental cursor and its last load; the last
full read of every id (sweep); the last model and marts builds; the published version and its age; the
last failed command (`<warehouse>.last-error.json`, written by the command line and removed by its next
success); and warnings a person should act on.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.bitrix24.catalogue import ENTITIES
from pipelines.bitrix24.settings import SWEEP_STATE_KEY
from warehouse.publish import publication_folder
from warehouse.settings import Settings


@dataclass(frozen=True)
class EntityStatus:
    entity: str
    rows: int
    deleted: int
    cursor: str | None
    last_loaded_at: str | None


@dataclass
class Status:
    warehouse: str
    entities: list[EntityStatus] = field(default_factory=list)
    last_sweep_at: str | None = None
    model_built_at: str | None = None
    model_build: str | None = None
    model_timezone: str | None = None
    configured_timezone: str | None = None
    marts_built_at: str | None = None
    marts_as_of: str | None = None
    published_version: str | None = None
    published_at: str | None = None
    published_age_seconds: int | None = None
    last_error: dict[str, str] | None = None
    warnings: list[str] = field(default_factory=list)


def error_file(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".last-error.json")


def record_error(warehouse: Path, command: str, line: str) -> None:
    """Keeps the last failure of a command beside the warehouse, for `b24wh status`. Where the folder cannot
    be written (the failure may be just that: read-only, full), the line already printed is all there is."""
    with contextlib.suppress(OSError):
        error_file(warehouse).write_text(json.dumps({"at": _now().isoformat(timespec="seconds"),
                                                     "command": command, "error": line}), encoding="utf-8")


def clear_error(warehouse: Path) -> None:
    with contextlib.suppress(OSError):
        error_file(warehouse).unlink(missing_ok=True)


def read_status(warehouse: Path, settings: Settings, sweep_every_hours: float, timezone: str | None = None) -> Status:
    """The report; `timezone` is the portal time zone configured now (B24WH_TIMEZONE or the default)."""
    status = Status(str(warehouse), configured_timezone=timezone)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {(s, t) for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
        cursors = _cursors(con) if ("raw", "_dlt_pipeline_state") in tables else {}
        for entity in ENTITIES:
            if ("raw", entity.name) not in tables:
                continue
            rows, last = con.execute(
                f"SELECT count(DISTINCT id), (SELECT max(inserted_at) FROM raw._dlt_loads WHERE load_id IN "
                f"(SELECT DISTINCT _dlt_load_id FROM raw.{entity.name})) FROM raw.{entity.name}").fetchone()  # type: ignore[misc]
            deleted = con.execute("SELECT count(*) FROM raw.deletions WHERE entity = ? AND is_deleted",
                                  [entity.name]).fetchone()[0] if ("raw", "deletions") in tables else 0  # type: ignore[index]
            status.entities.append(EntityStatus(entity.name, int(rows), int(deleted), cursors.get(entity.name),
                                                _iso(last)))
        sweep = cursors.get(SWEEP_STATE_KEY)
        status.last_sweep_at = _iso(datetime.fromtimestamp(float(sweep), UTC)) if sweep else None
        if ("meta", "builds") in tables:
            cursor = con.execute("SELECT * FROM meta.builds ORDER BY finished_at DESC LIMIT 1")
            found = cursor.fetchone()
            if found:   # a warehouse built before the time zone was recorded has no `timezone` column
                built = dict(zip([c[0] for c in cursor.description], found, strict=True))
                status.model_built_at = _iso(built["finished_at"])
                status.model_build = f"{built['mode']}: {built['reason']}"
                status.model_timezone = built.get("timezone")
        if ("meta", "mart_builds") in tables:
            marts = con.execute("SELECT finished_at, as_of FROM meta.mart_builds ORDER BY finished_at DESC "
                                "LIMIT 1").fetchone()
            if marts:
                status.marts_built_at, status.marts_as_of = _iso(marts[0]), str(marts[1])   # as_of: portal time
    _publication(status, publication_folder(warehouse, settings))
    if error_file(warehouse).exists():
        status.last_error = json.loads(error_file(warehouse).read_text(encoding="utf-8"))
    _warn(status, settings, sweep_every_hours)
    return status


def _cursors(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each resource's cursor (modification time or last id) and the sweep time, from the dlt state the
    warehouse holds (the newest version)."""
    from dlt.common.versioned_state import decompress_state

    found = con.execute("SELECT state FROM raw._dlt_pipeline_state ORDER BY created_at DESC LIMIT 1").fetchone()
    if not found:
        return {}
    state = decompress_state(found[0])
    source = state.get("sources", {}).get("bitrix24", {})
    cursors = {name: str(r.get("cursor") or r.get("last_id") or "") or None
               for name, r in source.get("resources", {}).items()}
    if source.get(SWEEP_STATE_KEY):
        cursors[SWEEP_STATE_KEY] = str(source[SWEEP_STATE_KEY])
    return {k: v for k, v in cursors.items() if v}


def _publication(status: Status, directory: Path) -> None:
    latest = directory / "LATEST"
    if not latest.is_file():
        return
    published = json.loads(latest.read_text(encoding="utf-8"))
    status.published_version = published.get("version")
    try:
        with duckdb.connect(str(directory / published["file"]), read_only=True) as con:
            at = con.execute("SELECT published_at FROM meta.publication").fetchone()[0]  # type: ignore[index]
    except (duckdb.Error, KeyError):
        return
    status.published_at = _iso(at)
    status.published_age_seconds = int((_now() - at).total_seconds())


def _warn(status: Status, settings: Settings, sweep_every_hours: float) -> None:
    if status.last_error:
        status.warnings.append(f"the last {status.last_error['command']} failed at {status.last_error['at']}: "
                               f"{status.last_error['error']}")
    if status.published_age_seconds is None:
        status.warnings.append("nothing is published: BI tools and the wall have no data (b24wh refresh)")
    elif status.published_age_seconds > settings.stale_after_seconds:
        status.warnings.append(f"the publication is {status.published_age_seconds // 60} min old, older than the "
                               f"wall's limit of {settings.stale_after_seconds // 60} min: is the refresh running?")
    if status.model_timezone and status.configured_timezone and status.model_timezone != status.configured_timezone:
        status.warnings.append(f"the warehouse's dates are in {status.model_timezone} but the portal's time zone is "
                               f"set to {status.configured_timezone} (B24WH_TIMEZONE): the next refresh rebuilds "
                               "every table in it, and refuses it if the portal disagrees")
    if status.entities and status.last_sweep_at is None:
        status.warnings.append("no full read of every id is on record: deletions are unknown (b24wh refresh --sweep)")
    elif status.last_sweep_at is not None:
        hours = (_now() - datetime.fromisoformat(status.last_sweep_at)).total_seconds() / 3600
        if hours > 2 * sweep_every_hours:
            status.warnings.append(f"the last deletion sweep was {hours:.0f} h ago: deletions since are unknown")


def render(status: Status) -> str:
    lines = [f"Warehouse {status.warehouse}", f"{'entity':<24}{'rows':>12}{'deleted':>9}  {'last load':<26}cursor"]
    for e in status.entities:
        lines.append(f"{e.entity:<24}{e.rows:>12,}{e.deleted:>9,}  {e.last_loaded_at or '-':<26}{e.cursor or '-'}")
    lines += [f"Last sweep (every id read): {status.last_sweep_at or 'never'}",
              f"Model built: {status.model_built_at or 'never'}" + (f" ({status.model_build})" if status.model_build
                                                                    else "")
              + (f", dates in {status.model_timezone}" if status.model_timezone else ""),
              f"Marts built: {status.marts_built_at or 'never'}" + (f", as of {status.marts_as_of}"
                                                                     if status.marts_as_of else ""),
              f"Published: {status.published_version or 'nothing'}" + (
                  f" at {status.published_at} ({status.published_age_seconds // 60} min ago)"
                  if status.published_age_seconds is not None else ""),
              f"Last error: {json.dumps(status.last_error, ensure_ascii=False) if status.last_error else 'none'}"]
    lines += [f"WARNING {w}" for w in status.warnings]
    return "\n".join(lines)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="seconds")
    return str(value)
