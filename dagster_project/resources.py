"""Dagster resources: the portal (its webhook through an environment variable) and the warehouse file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from warehouse.files import default_warehouse, resolve
from warehouse.settings import Settings, load_settings, portal_timezone

WRITER_POOL = "duckdb_writer"   # one run at a time writes the warehouse (dagster.yaml sets its limit to 1)


class Bitrix24Resource(dg.ConfigurableResource):
    """The portal. The webhook URL comes from BITRIX24_WEBHOOK_URL (`dg.EnvVar`), hidden in the UI."""

    webhook_url: str
    plan: str = "standard"


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse file (default: B24WH_WAREHOUSE, else data/warehouse.duckdb in the project folder), the
    portal's time zone (default: B24WH_TIMEZONE, else Europe/Moscow) and the reports' settings file (b24wh.toml
    in the project folder by default). Relative paths resolve as the command line resolves them."""

    path: str | None = None
    timezone: str | None = None
    settings_file: str | None = None

    @property
    def file(self) -> Path:
        return resolve(self.path) if self.path else default_warehouse()

    @property
    def portal_timezone(self) -> str:
        return portal_timezone(self.timezone)

    def settings(self) -> Settings:
        return load_settings(self.settings_file)
