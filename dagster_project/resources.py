"""Dagster resources: the portal and the warehouse, resolved as the command line resolves them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from warehouse.files import default_warehouse, resolve
from warehouse.settings import Settings, load_settings

WRITER_POOL = "duckdb_writer"   # one run at a time writes the warehouse (dagster.yaml sets its limit to 1)


class Bitrix24Resource(dg.ConfigurableResource):
    """The portal: its plan, and credentials only where a deployment sets them here (as `dg.EnvVar`, hidden in
    the UI). Left unset, the source resolves them as the command line does (docs/operations.md: the webhook
    or the OAuth application from the environment or `.dlt/secrets.toml`)."""

    webhook_url: str | None = None
    plan: str | None = None     # standard | enterprise; unset: `sources.bitrix24.plan` in dlt's configuration

    def source_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"credentials": self.webhook_url} if self.webhook_url else {}
        return {**options, **self.plan_option()}

    def plan_option(self) -> dict[str, Any]:
        """The plan alone: what a listed portal takes from here when its own entry names none (its credentials
        come only from its own name)."""
        return {"plan": self.plan} if self.plan else {}


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

    def settings(self) -> Settings:
        return load_settings(self.settings_file)
