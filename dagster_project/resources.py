"""Dagster resources: the portal (its webhook through an environment variable) and the warehouse file."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

WRITER_POOL = "duckdb_writer"   # one run at a time writes the warehouse (dagster.yaml sets its limit to 1)


class Bitrix24Resource(dg.ConfigurableResource):
    """The portal. The webhook URL comes from BITRIX24_WEBHOOK_URL (`dg.EnvVar`), hidden in the UI."""

    webhook_url: str
    plan: str = "standard"


class WarehouseResource(dg.ConfigurableResource):
    path: str = "data/warehouse.duckdb"
    timezone: str = "Europe/Moscow"

    @property
    def file(self) -> Path:
        return Path(self.path)
