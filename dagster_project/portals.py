"""Which portal a command works on: the deployment's only one, or listed ones (`[portals.<name>]` in b24wh.toml).

A `Scope` is everything one refresh of one portal reads and writes: its warehouse file (which holds its dlt
state and cursors), its settings (plans file, publication folder, SQL schemas) and time zone, and how to find
its credentials. Listed portals share nothing: each has its own folder (`data/portals/<name>/` by default),
its credentials only under its own name, and its schemas in the SQL database. `b24wh --portal NAME` and
`--all`, and each portal's Dagster assets (`assets.refresh.scope_of`), all go through `scopes()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from warehouse.files import default_warehouse, resolve
from warehouse.publish import publication_folder
from warehouse.settings import PORTALS_FOLDER, Portal, Settings, SettingsError

PARTNER_FOLDER = Path("data") / "partner"    # the cross-portal summary (warehouse.summary)


class PortalChoiceError(ValueError):
    """The command names no portal, or one the settings do not list; nothing was done (exit 2)."""


@dataclass(frozen=True)
class Scope:
    portal: Portal | None       # None: the deployment's only portal, configured as before portals were listed
    warehouse: Path
    settings: Settings
    timezone: str | None

    @property
    def name(self) -> str | None:
        return self.portal.name if self.portal else None

    @property
    def published(self) -> Path:
        """Its publication folder."""
        return publication_folder(self.warehouse, self.settings)

    @property
    def mark(self) -> str:
        """What marks this portal's lines on the command line: ` [north]`, nothing for the only portal."""
        return f" [{self.name}]" if self.name else ""

    def source_options(self) -> dict[str, Any]:
        """The source's credentials and plan: a listed portal's from its own name in dlt's configuration (a
        missing one is this portal's one-line error, raised here, inside its own run), else as configured."""
        from pipelines.bitrix24.credentials import portal_credentials  # dlt (steps.STEP_MODULES)

        options: dict[str, Any] = {}
        if self.portal is not None:
            options["credentials"] = portal_credentials(self.portal.credentials)
            if self.portal.plan:
                options["plan"] = self.portal.plan
        return options


def portal_scope(portal: Portal, settings: Settings) -> Scope:
    warehouse = resolve(portal.warehouse or PORTALS_FOLDER / portal.name / "warehouse.duckdb")
    own = replace(settings, plans_file=portal.plans_file,
                  publish_directory=portal.publish_directory or warehouse.parent / "published",
                  publish_sql_schema_prefix=f"{portal.name}_")
    return Scope(portal, warehouse, own, portal.timezone)


def scopes(settings: Settings, names: Sequence[str] = (), every: bool = False,
           warehouse: Path | None = None) -> list[Scope]:
    """The portals a command works on. Without listed portals: the one warehouse (`warehouse`, else the default),
    and naming a portal is an error. With them: the named ones (or every one), and naming none is an error."""
    if not settings.portals:
        if names or every:
            raise PortalChoiceError("no portals are listed in the settings file: list them as [portals.<name>] "
                                    "tables in b24wh.toml (docs/portals.md), or leave out --portal and --all")
        return [Scope(None, warehouse or default_warehouse(), settings, None)]
    listed = {p.name: p for p in settings.portals}
    if warehouse is not None:
        raise PortalChoiceError("--warehouse does not go with listed portals: each has its own (portals.<name>."
                                "warehouse in b24wh.toml)")
    if not names and not every:
        raise PortalChoiceError(f"name a portal with --portal NAME, or --all; listed: {', '.join(listed)}")
    unknown = [n for n in names if n not in listed]
    if unknown:
        raise PortalChoiceError(f"no portal {unknown[0]!r} in the settings file; listed: {', '.join(listed)}")
    listed_scopes = [portal_scope(p, settings) for p in settings.portals]
    _check_apart(listed_scopes)
    return [s for s in listed_scopes if every or s.name in names]


def _check_apart(listed: list[Scope]) -> None:
    """Two portals must never share a warehouse or a publication folder."""
    for attribute in ("warehouse", "publication"):
        seen: dict[Path, str] = {}
        for scope in listed:
            path = scope.warehouse if attribute == "warehouse" else scope.published
            other = seen.setdefault(path.resolve(), scope.name or "")
            if other != scope.name:
                raise SettingsError(f"portals {other} and {scope.name} share the {attribute} {path}: give each its "
                                    "own (or leave it out: data/portals/<name>/)")


def update_summary(settings: Settings) -> Path:
    """Rebuilds the partner's summary over every listed portal (after any portal's run, or its failure)."""
    from warehouse.summary import PortalFiles, publish_summary  # pyarrow (steps.STEP_MODULES)

    listed = scopes(settings, every=True)
    return publish_summary([PortalFiles(s.name or "", s.warehouse, s.published) for s in listed],
                           resolve(PARTNER_FOLDER))
