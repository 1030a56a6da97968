"""Settings of the reports: the working calendar, the funnel's gap rule, the lost-reason field, the
data-quality policy fields and the plans file, read from `b24wh.toml` (or the file `B24WH_CONFIG` names).

Every key is optional; `docs/marts.md` lists them with their defaults. A malformed file is refused
with an error naming the key, before anything is built. The file is found in the project folder
(`warehouse.files.project_dir`), and the paths it names resolve against its own folder.

The portal's time zone comes from `B24WH_TIMEZONE` (default Europe/Moscow) and is checked here too.

A deployment serving many portals lists them as `[portals.<name>]` tables (`Portal`, docs/portals.md): each
with its time zone, plan, plans file, warehouse and publication, and the name its credentials are found
under in dlt's configuration (never the credentials themselves). Without a list, one portal as before.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from warehouse.files import SETTINGS_FILE, resolve

DEFAULT_TIMEZONE = "Europe/Moscow"
PORTALS_FOLDER = Path("data") / "portals"     # each listed portal's files: data/portals/<name>/
PORTAL_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
TIMEZONE_ENV = "B24WH_TIMEZONE"
MEMORY = re.compile(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)   # DuckDB's memory_limit


class SettingsError(ValueError):
    """The settings file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Portal:
    """One portal of a deployment that serves many (`[portals.<name>]` in the settings file). Its files live
    apart from every other portal's: the warehouse (with dlt's state and cursors), the publication folder and,
    in the SQL database, the schemas `<name>_core` and `<name>_marts`."""

    name: str                          # lower-case letters, digits, underscores: a folder, a schema, a partition
    credentials: str                   # found as [portals.<credentials>.credentials] in dlt's configuration
    timezone: str | None = None        # None: B24WH_TIMEZONE, else Europe/Moscow
    plan: str | None = None            # the portal's Bitrix24 plan; None: sources.bitrix24.plan, else standard
    warehouse: Path | None = None      # None: data/portals/<name>/warehouse.duckdb in the project folder
    plans_file: Path | None = None
    publish_directory: Path | None = None   # None: published/ beside its warehouse


@dataclass(frozen=True)
class Settings:
    # Working calendar: ISO weekdays off (6 = Saturday, 7 = Sunday) and public holidays.
    weekend: tuple[int, ...] = (6, 7)
    holidays: tuple[date, ...] = ()
    # Funnel gap rule: a step is a gap when the previous stage had at least `gap_min_deals` deals and its
    # conversion is below `gap_absolute`, or below `gap_below_median` times the pipeline's median step
    # conversion, or below (1 - `gap_drop`) times the same step's conversion in the previous month.
    gap_min_deals: int = 10
    gap_absolute: float = 0.3
    gap_below_median: float = 0.75
    gap_drop: float = 0.25
    # How many lost reasons annotate a funnel step.
    top_reasons: int = 3
    # The deal user field holding a loss reason, where the portal has one (an enumeration or a string).
    lost_reason_field: str | None = "UF_CRM_LOSS_REASON"
    # Data-quality policy: fields a contact / company must have filled in (raw column names).
    contact_required: tuple[str, ...] = ("post",)
    company_required: tuple[str, ...] = ("industry",)
    # Plans (plan versus fact): a CSV file, relative to the settings file.
    plans_file: Path | None = None
    # Publishing for BI tools (docs/publishing.md): where (default: `published/` beside the warehouse),
    # which targets, the DuckDB storage version older drivers can open (such as "v1.4.0"), how many
    # DuckDB versions to keep. A SQL database is named by the B24WH_PUBLISH_URL environment variable.
    publish_directory: Path | None = None
    publish_duckdb: bool = True
    publish_parquet: bool = True
    duckdb_storage_version: str | None = None
    keep_versions: int = 3
    # The wall monitor (b24wh wall): language (auto: the browser's; ru; en), theme (dark, light), how old
    # the data may get before the page warns, how often the page asks for news.
    wall_language: str = "auto"
    wall_theme: str = "dark"
    stale_after_seconds: int = 300
    poll_seconds: int = 5
    # The most memory DuckDB may use while the model and the marts are built (DuckDB's units: "512MB",
    # "2GB"). Past it, DuckDB spills to disk beside the warehouse: a build keeps working, only slower. 2GB lets
    # a million-deal warehouse build its marts without spilling.
    memory_limit: str = "2GB"
    # The most threads DuckDB uses in a refresh (its loads, builds and publication). Dagster gives each of the
    # portals it refreshes at once a share of the machine's cores within it (`assets.refresh.shared_threads`).
    threads: int = 2
    # How many of the portals Dagster refreshes in one run build (the model, the marts, the publication) at once;
    # the others wait for a core, their extracts going on meanwhile (`dagster_project.cores`). 0: one per core.
    builds_at_once: int = 0
    # The portals of a deployment that serves many (empty: one portal, configured as before).
    portals: tuple[Portal, ...] = ()
    # A listed portal publishes to the SQL database under schemas of its own (`<name>_core`, `<name>_marts`).
    publish_sql_schema_prefix: str = ""
    source: Path | None = field(default=None, compare=False)


_SECTIONS = {"calendar": ("weekend", "holidays"),
             "funnel": ("gap_min_deals", "gap_absolute", "gap_below_median", "gap_drop", "top_reasons"),
             "lost_reasons": ("lost_reason_field",),
             "data_quality": ("contact_required", "company_required"),
             "plans": ("plans_file",),
             "publish": ("publish_directory", "publish_duckdb", "publish_parquet", "duckdb_storage_version",
                         "keep_versions"),
             "wall": ("wall_language", "wall_theme", "stale_after_seconds", "poll_seconds"),
             "warehouse": ("memory_limit", "threads", "builds_at_once")}


def portal_timezone(name: str | None = None) -> str:
    """The portal's IANA time zone: `name`, else B24WH_TIMEZONE, else Europe/Moscow; refused when unknown."""
    chosen = name or os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE
    check_timezone(chosen)
    return chosen


@functools.cache
def _known_timezones() -> frozenset[str]:
    """The IANA zones this machine knows (read from the time zone database's files: some ms a call)."""
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str) -> None:
    if name not in _known_timezones():
        raise SettingsError(f"unknown portal time zone {name!r} ({TIMEZONE_ENV}): use an IANA name such as "
                            "Europe/Moscow, Asia/Vladivostok or America/New_York")


@dataclass(frozen=True)
class Orchestration:
    """Dagster's schedules and the first month its backfill offers: B24WH_REFRESH_CRON (every five minutes by
    default), B24WH_RECONCILE_CRON (02:15 nightly) and B24WH_BACKFILL_START (2020-01-01), in the portal's zone."""

    refresh_cron: str = "*/5 * * * *"
    reconcile_cron: str = "15 2 * * *"
    backfill_start: str = "2020-01-01"


def orchestration() -> Orchestration:
    """The schedules from the environment, checked: a bad value stops the code location in one line."""
    from dagster._utils.schedules import is_valid_cron_string  # Dagster's own rule (pinned to 1.13)

    defaults = Orchestration()
    values = {"refresh_cron": os.environ.get("B24WH_REFRESH_CRON") or defaults.refresh_cron,
              "reconcile_cron": os.environ.get("B24WH_RECONCILE_CRON") or defaults.reconcile_cron,
              "backfill_start": os.environ.get("B24WH_BACKFILL_START") or defaults.backfill_start}
    for name in ("refresh_cron", "reconcile_cron"):
        if not is_valid_cron_string(values[name]):
            raise SettingsError(f"B24WH_{name.upper()} = {values[name]!r} is not a cron schedule: use five fields "
                                "such as \"*/5 * * * *\"")
    try:
        date.fromisoformat(values["backfill_start"])
    except ValueError:
        raise SettingsError(f"B24WH_BACKFILL_START = {values['backfill_start']!r} is not a date: use YYYY-MM-DD, "
                            "such as 2020-01-01") from None
    return Orchestration(**values)


def check_plans_file(settings: Settings) -> None:
    """The plans file parses, line by line, before any request (its IDs are checked against the warehouse when
    the marts are built)."""
    if settings.plans_file is not None:
        from warehouse.plans import read_plans

        read_plans(settings.plans_file)


def load_settings(path: Path | str | None = None) -> Settings:
    """Reads the settings file (`B24WH_CONFIG`, else b24wh.toml in the project folder); defaults when there is
    none."""
    chosen = resolve(path or os.environ.get("B24WH_CONFIG") or SETTINGS_FILE)
    if not chosen.exists():
        if path or os.environ.get("B24WH_CONFIG"):
            raise SettingsError(f"settings file {chosen} does not exist")
        return Settings()
    try:
        document = tomllib.loads(chosen.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{chosen}: not valid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    portals = document.pop("portals", None)
    if portals is not None:
        values["portals"] = _portals(chosen, portals)
    for section, content in document.items():
        if section not in _SECTIONS or not isinstance(content, dict):
            raise SettingsError(f"{chosen}: unknown section [{section}]; known: {', '.join(_SECTIONS)}, "
                                  "portals")
        for key, value in content.items():
            if key not in _SECTIONS[section]:
                raise SettingsError(f"{chosen}: unknown key {section}.{key}; known: {', '.join(_SECTIONS[section])}")
            values[key] = _convert(chosen, f"{section}.{key}", key, value)
    return Settings(**values, source=chosen)


_PORTAL_KEYS = ("credentials", "timezone", "plan", "warehouse", "plans_file", "publish_directory")


def _portals(path: Path, table: Any) -> tuple[Portal, ...]:
    """`[portals.<name>]` tables, checked: names, keys, paths (against the settings file's folder), time zones."""
    if not isinstance(table, dict) or not table or not all(isinstance(v, dict) for v in table.values()):
        raise SettingsError(f"{path}: [portals] lists portals as tables: [portals.acme] with the keys "
                            f"{', '.join(_PORTAL_KEYS)}")
    portals = []
    for name, content in table.items():
        if not PORTAL_NAME.fullmatch(name):
            raise SettingsError(f"{path}: portal name {name!r} must be lower-case letters, digits and underscores, "
                                "starting with a letter (it names a folder and a database schema)")
        for key, value in content.items():
            if key not in _PORTAL_KEYS:
                raise SettingsError(f"{path}: unknown key portals.{name}.{key}; known: {', '.join(_PORTAL_KEYS)}")
            if not isinstance(value, str) or not value:
                raise SettingsError(f"{path}: portals.{name}.{key} must be a non-empty string")
        reference = content.get("credentials", name)
        if not PORTAL_NAME.fullmatch(reference):
            raise SettingsError(f"{path}: portals.{name}.credentials names where the credentials are kept "
                                "(lower-case letters, digits, underscores), never the webhook or secret itself: put "
                                f"those under [portals.{name}.credentials] in .dlt/secrets.toml (docs/portals.md)")
        if "timezone" in content:
            check_timezone(content["timezone"])
        paths = {key: path.parent / content[key] for key in ("warehouse", "plans_file", "publish_directory")
                 if key in content}
        portals.append(Portal(name, reference, content.get("timezone"), content.get("plan"), **paths))
    return tuple(portals)


def _convert(path: Path, name: str, key: str, value: Any) -> Any:
    default = {f.name: f.default for f in fields(Settings)}[key]
    bad = SettingsError(f"{path}: {name} = {value!r} is not valid")
    if key == "weekend":
        if not isinstance(value, list) or not all(isinstance(d, int) and 1 <= d <= 7 for d in value):
            raise SettingsError(f"{path}: {name} must list ISO weekdays 1-7 (6 = Saturday, 7 = Sunday)")
        return tuple(value)
    if key == "holidays":
        try:
            return tuple(d if isinstance(d, date) else date.fromisoformat(str(d)) for d in value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{path}: {name} must list dates (2026-01-01 or \"2026-01-01\")") from exc
    if key in ("contact_required", "company_required"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v.isidentifier() for v in value):
            raise bad
        return tuple(v.lower() for v in value)
    if key in ("plans_file", "publish_directory"):
        if not isinstance(value, str):
            raise bad
        return (path.parent / value) if value else None
    if key in ("publish_duckdb", "publish_parquet"):
        if not isinstance(value, bool):
            raise SettingsError(f"{path}: {name} must be true or false")
        return value
    if key in ("wall_language", "wall_theme"):
        allowed = ("auto", "ru", "en") if key == "wall_language" else ("dark", "light")
        if value not in allowed:
            raise SettingsError(f"{path}: {name} must be one of {', '.join(allowed)}")
        return value
    if key == "duckdb_storage_version":
        if value and not (isinstance(value, str) and re.fullmatch(r"v\d+\.\d+\.\d+", value)):
            raise SettingsError(f"{path}: {name} must be a DuckDB version such as \"v1.4.0\"")
        return value or None
    if key == "memory_limit":
        if not (isinstance(value, str) and MEMORY.fullmatch(value)):
            raise SettingsError(f"{path}: {name} must be an amount of memory such as \"2GB\" or \"512MB\"")
        return value
    if key in ("threads", "builds_at_once"):
        least = 1 if key == "threads" else 0
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise SettingsError(f"{path}: {name} must be a whole number of at least {least}")
        return value
    if key == "lost_reason_field":
        if value and not (isinstance(value, str) and value.isidentifier()):
            raise bad
        return value or None
    if isinstance(default, int) and not isinstance(default, bool):
        if not isinstance(value, int) or value < 0:
            raise SettingsError(f"{path}: {name} must be a whole number of at least 0")
        return value
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        raise SettingsError(f"{path}: {name} must be a share between 0 and 1")
    return float(value)
