"""Dagster resources: the portal (its webhook through an environment variable) and the warehouse file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from warehouse.settings import Settings, load_settings

WRITER_POOL = "duckdb_writer"   # one run at a time writes the warehouse (dagster.yaml sets its limit to 1)


class Bitrix24Resource(dg.ConfigurableResource):
    """The portal. The webhook URL comes from BITRIX24_WEBHOOK_URL (`dg.EnvVar`), hidden in the UI."""

    webhook_url: str
    plan: str = "standard"


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse file, the portal's time zone and the reports' settings file (b24wh.toml by default)."""

    path: str = "data/warehouse.duckdb"
    timezone: str = "Europe/Moscow"
    settings_file: str | None = None

    @property
    def file(self) -> Path:
        return Path(self.path)

    def settings(self) -> Settings:
        return load_settings(self.settings_file)
