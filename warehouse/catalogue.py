"""The model catalogue, read from the models folder: the single source of truth for what the warehouse builds.

Every relation is one file, `models/<layer>/<name>.sql`, holding a SELECT. Its leading comment block states
its grain first and may declare:

    -- Key: deal_id                         the columns that identify a row: checked unique, and the primary
                                            key where the table is published to a SQL database
    -- Changes: deals                       core: patched for the keys of this change set (models/changes/)
    -- Additive: date_key, pipeline_id      core: a snapshot patched by sums over this grain ...
    -- Days: SELECT min(...), max(...) ...  ... over the days this query spans
    -- Reference: ...                       core: rebuilt every time; when its rows change, the build is full
    -- Scope: entity_type, entity_id        marts and intermediates: a table patched for the values of these
                                            columns that `models/scopes/<name>.sql` selects (what changed
                                            since the last marts build); without it a mart is rebuilt every
                                            time and an intermediate is a view
    -- Since: event_at                      marts: rows the moment filters on, added as the moment moves on
    -- Table: ...                           intermediates: a table rebuilt by every marts build (what several
                                            marts read), not a view each of them computes again
    -- Grain: one row per ...               the description (with the lines after it, up to the columns)
    -- <column>: <description>              column documentation, which reaches BI tools as comments

Where DuckDB would not push a patch's filter down to what a model aggregates or unnests (through LEFT JOINs,
lateral joins, CTEs read twice), the SELECT names the records it redoes as `{keys}`: the changed keys of a
core table's `Changes`, the values of a mart's `Scope` columns, `true` in a full build.

Shared idioms (a date key, a surrogate key, the deletion filter, a phone number's digits) are macros, one per
file in `models/macros/`, created in the staging schema before any model is built.

Layers: `staging` (views over the raw tables) and `core` (tables) make the model build (`warehouse.build`);
`intermediate` (views the marts share, or patched tables) and `marts` (tables) make the marts build
(`warehouse.marts`). The build order is derived from the relations each file reads, the keys checked and
published from `Key`, and Dagster's lineage from the raw, core and mart tables each model reads through views,
macros and the relations the builds make in code (`lineage`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / "models"
LAYERS = ("staging", "core", "intermediate", "marts")
DIRECTIVES = ("Key", "Changes", "Additive", "Days", "Reference", "Scope", "Since", "Table")
_REFERENCE = re.compile(r"\b(raw|staging|core|intermediate|marts)\.([a-z_][a-z0-9_]*)\b")
_COMMENT = re.compile(r"--[^\n]*")


class CatalogueError(ValueError):
    """The models folder contradicts itself (a cycle, an unknown change set)."""


@dataclass(frozen=True)
class Model:
    layer: str
    name: str

    @property
    def relation(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.layer / f"{self.name}.sql"

    def text(self) -> str:
        return self.path.read_text("utf-8")

    @cached_property
    def header(self) -> list[tuple[str, str]]:
        """The leading comment block as (name, text) lines; name is '' for a line that continues the previous."""
        lines = []
        for line in self.text().splitlines():
            if not line.startswith("--"):
                break
            text = line[2:].strip()
            name, _, rest = text.partition(": ")
            lines.append((name, rest) if rest and name.isidentifier() else ("", text))
        return lines

    def directive(self, name: str) -> str | None:
        return next((text for key, text in self.header if key == name), None)

    def columns(self, name: str) -> tuple[str, ...]:
        """A directive listing columns (`Key: a, b`), as a tuple; empty when the file has none."""
        return tuple(c.strip() for c in (self.directive(name) or "").split(",") if c.strip())

    @property
    def key(self) -> tuple[str, ...]:
        return self.columns("Key")

    @property
    def changes(self) -> str | None:
        return self.directive("Changes")

    @property
    def grain(self) -> tuple[str, ...]:
        """An additive model's grain; the other columns are sums over the change set's keys."""
        return self.columns("Additive")

    @property
    def days(self) -> str | None:
        return self.directive("Days")

    @property
    def reference(self) -> bool:
        return self.directive("Reference") is not None

    @property
    def additive(self) -> bool:
        return bool(self.grain)

    @property
    def scope(self) -> tuple[str, ...]:
        """A patched table's key (a mart's or an intermediate's): the columns whose changed values
        `models/scopes/<name>.sql` selects."""
        return self.columns("Scope")

    @property
    def view(self) -> bool:
        """An intermediate the marts build makes a view: one without a `Table` directive or a `Scope`."""
        return self.layer == "intermediate" and not self.scope and self.directive("Table") is None

    @property
    def scope_path(self) -> Path:
        return MODELS_DIR / "scopes" / f"{self.name}.sql"

    @property
    def since(self) -> str | None:
        """The column a patched mart's rows enter by as the build's moment moves on (`event_at <= as_of`)."""
        return self.directive("Since")

    def docs(self) -> tuple[str, dict[str, str]]:
        """The description (the Grain line and what follows it up to the first column) and the columns' texts."""
        table: list[str] = []
        columns: dict[str, str] = {}
        for name, text in self.header:
            if name in DIRECTIVES:
                continue
            if name and name != "Grain":
                columns[name] = text
            elif not columns:
                table.append(f"{name}: {text}" if name else text)
        return " ".join(table), columns

    def reads(self) -> set[str]:
        """The relations the SELECT reads (`layer.name`), comments left out."""
        return _reads(self.text())

    def sql(self, timezone: str, **fills: str) -> str:
        """The SELECT with `{portal_tz}` and the runner's fills in place; `{keys}`, the records a patch redoes
        (a condition on the `Changes` key or the `Scope` columns), is `true` unless given."""
        text = self.text().replace("{portal_tz}", timezone)
        for name, value in {"keys": "true", **fills}.items():
            text = text.replace("{" + name + "}", f"({value})" if name == "keys" else value)
        return text


def _reads(sql: str) -> set[str]:
    return {f"{layer}.{name}" for layer, name in _REFERENCE.findall(_COMMENT.sub("", sql))}


def _rank(model: Model) -> tuple[int, int, int, str]:
    """Among models whose inputs are ready: layers in order; in core, what is rebuilt every time before what
    is patched (the build decides between incremental and full once the reference tables are built; a table
    rebuilt from facts, as `dim_date`, waits for them), snapshots last."""
    return LAYERS.index(model.layer), model.changes is not None, model.additive, model.name


def ordered(layers: tuple[str, ...]) -> tuple[Model, ...]:
    """Every model of the layers, each after the models it reads (relations made elsewhere are inputs)."""
    models = {m.relation: m for layer in layers for m in (Model(layer, p.stem)
                                                          for p in sorted((MODELS_DIR / layer).glob("*.sql")))}
    waiting = {relation: model.reads() & set(models) - {relation} for relation, model in models.items()}
    done: list[Model] = []
    while waiting:
        ready = [models[r] for r, inputs in waiting.items() if not inputs]
        if not ready:
            raise CatalogueError(f"the models read each other in a cycle: {', '.join(sorted(waiting))}")
        first = min(ready, key=_rank)
        done.append(first)
        del waiting[first.relation]
        for inputs in waiting.values():
            inputs.discard(first.relation)
    return tuple(done)


MODELS = ordered(("staging", "core"))           # the model build, in order
MARTS = ordered(("intermediate", "marts"))      # the marts build, in order
CORE_TABLES = tuple(m.name for m in MODELS if m.layer == "core")
MART_TABLES = tuple(m.name for m in MARTS if m.layer == "marts")
# The columns that identify one row of a table: checked unique, and its primary key where published to SQL.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {m.relation: m.key for m in (*MODELS, *MARTS) if m.key}
# The layers whose tables are assets of their own in Dagster (the raw tables by their entity): lineage stops there.
ASSET_LAYERS = ("raw", "core", "marts")


def lineage(generated: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """What each model is made from: the raw, core and mart tables it reads, directly or through the staging and
    intermediate relations and the macros it reads. `generated` gives what each relation a build makes in code
    rather than from a file reads; a relation found nowhere is refused, so that lineage cannot silently lose an
    input."""
    reads = {m.relation: m.reads() for m in (*MODELS, *MARTS)}
    reads.update({f"staging.{p.stem}": _reads(p.read_text("utf-8")) for p in (MODELS_DIR / "macros").glob("*.sql")})
    reads.update({relation: set(read) for relation, read in generated.items()})

    def inputs(relation: str) -> set[str]:
        found: set[str] = set()
        waiting, seen = sorted(reads[relation]), {relation}
        while waiting:
            read = waiting.pop()
            if read in seen:
                continue
            seen.add(read)
            if read.split(".", 1)[0] in ASSET_LAYERS:
                found.add(read)
            elif read in reads:
                waiting.extend(reads[read])
            else:
                raise CatalogueError(f"{relation} reads {read}, which no model, macro or build makes")
        return found

    return {m.relation: inputs(m.relation) for m in (*MODELS, *MARTS)}


def _key_column(change_set: Path) -> str:
    """`-- Keys: deal_id of every deal whose ...` -> deal_id."""
    return change_set.read_text("utf-8").split("\n", 1)[0].removeprefix("-- Keys: ").split()[0]


_SIGNATURE = re.compile(r"^-- (\w+)\(([\w, ]*)\):")


def macros() -> list[str]:
    """The shared SQL idioms (models/macros/<name>.sql: a first line `-- name(parameters): what it gives`, then
    the expression) as statements that create them in the staging schema, where every model can call them."""
    statements = []
    for path in sorted((MODELS_DIR / "macros").glob("*.sql")):
        text = path.read_text("utf-8")
        signature = _SIGNATURE.match(text)
        if signature is None or signature.group(1) != path.stem:
            raise CatalogueError(f"{path} must start with `-- {path.stem}(parameters): ...`")
        body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
        statements.append(f"CREATE OR REPLACE MACRO staging.{path.stem}({signature.group(2)}) AS ({body}\n)")
    return statements


# Change sets (models/changes/<name>.sql) and the key column their keys match in the models using them.
CHANGE_SETS: dict[str, str] = {p.stem: _key_column(p) for p in sorted((MODELS_DIR / "changes").glob("*.sql"))}
_unknown = {m.changes for m in MODELS if m.changes} - set(CHANGE_SETS)
if _unknown:
    raise CatalogueError(f"models name change sets without a file in models/changes/: {sorted(_unknown)}")
# Core tables patched by key (their replaced rows are kept for the marts build).
KEYED_CORE = tuple(m for m in MODELS if m.changes and not m.additive)
# Patched marts and intermediate tables, and their scope files (models/scopes/<name>.sql), one for each and
# nothing else.
PATCHED_MARTS = tuple(m for m in MARTS if m.scope)
_scopes = {p.stem for p in (MODELS_DIR / "scopes").glob("*.sql")}
if _scopes != {m.name for m in PATCHED_MARTS}:
    raise CatalogueError(f"models/scopes/ must hold one file per relation with a Scope directive: files "
                         f"{sorted(_scopes)}, relations {sorted(m.name for m in PATCHED_MARTS)}")
