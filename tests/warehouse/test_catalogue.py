"""The models folder is the single source of truth: order, keys, change sets and dependencies come from the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse import catalogue
from warehouse.catalogue import (
    CHANGE_SETS,
    CORE_TABLES,
    MART_TABLES,
    MARTS,
    MODELS,
    MODELS_DIR,
    PRIMARY_KEYS,
    CatalogueError,
    Model,
    lineage,
    ordered,
)
from warehouse.marts import GENERATED_RELATIONS


def test_every_file_is_a_model_of_one_build() -> None:
    files = {f"{p.parent.name}.{p.stem}" for layer in catalogue.LAYERS for p in (MODELS_DIR / layer).glob("*.sql")}
    assert files == {m.relation for m in (*MODELS, *MARTS)}
    assert {m.layer for m in MODELS} == {"staging", "core"} and {m.layer for m in MARTS} == {"intermediate", "marts"}


@pytest.mark.parametrize("build", [MODELS, MARTS], ids=["model build", "marts build"])
def test_each_model_comes_after_every_model_it_reads(build: tuple[Model, ...]) -> None:
    position = {m.relation: i for i, m in enumerate(build)}
    for model in build:
        for read in model.reads() & set(position):
            assert position[read] < position[model.relation], f"{model.relation} reads {read}, built later"


def test_the_reference_tables_come_before_what_is_patched() -> None:
    core = [m for m in MODELS if m.layer == "core"]
    first_patched = min(i for i, m in enumerate(core) if m.changes is not None)
    assert all(i < first_patched for i, m in enumerate(core) if m.reference), \
        "the build decides incremental or full once the reference tables are rebuilt"
    assert all(m.layer == "staging" for m in MODELS[:len(MODELS) - len(core)])


def test_every_relation_states_its_grain_and_every_table_its_description() -> None:
    for model in (*MODELS, *MARTS):
        assert model.directive("Grain"), f"{model.path} states no grain"
        description, _ = model.docs()
        assert description.startswith("Grain: one row per"), model.relation
        assert not any(d in description for d in ("Key:", "Changes:", "Reference:")), model.relation


def test_keys_change_sets_and_raw_inputs_come_from_the_files() -> None:
    assert PRIMARY_KEYS["core.fact_deal"] == ("deal_id",)
    assert PRIMARY_KEYS["marts.manager_activity"] == ("user_id", "period_grain", "period_start")
    assert all(f"core.{t}" in PRIMARY_KEYS for t in CORE_TABLES if t not in ("fact_pipeline_daily",
                                                                               "dim_activity_type"))
    assert CHANGE_SETS["deals"] == "deal_id" and CHANGE_SETS["tasks"] == "task_id"
    assert {m.changes for m in MODELS if m.changes} <= set(CHANGE_SETS)
    daily = next(m for m in MODELS if m.name == "fact_pipeline_daily")
    assert daily.grain == ("date_key", "pipeline_id", "stage_key", "manager_key") and daily.days
    assert {m.name for m in MODELS if m.reference} == {"directory", "dim_stage", "dim_manager", "dim_source",
                                                       "dim_activity_type"}
    assert "user_history" in MART_TABLES and "fact_task" in CORE_TABLES


def test_lineage_is_what_a_model_reads_through_views_macros_and_generated_relations() -> None:
    inputs = lineage(GENERATED_RELATIONS)
    # core/fact_call.sql reads staging.calls (a view of raw.calls), core.dim_manager and the date_key macro
    assert inputs["core.fact_call"] == {"raw.calls", "core.dim_manager"}
    # marts/lost_reasons.sql reads core.fact_deal, core.dim_stage and intermediate.deal_lost_reasons, which the
    # marts build makes in code from the deals, their field labels, the facts and the stages
    assert inputs["marts.lost_reasons"] == {"core.fact_deal", "core.dim_stage", "raw.deals", "raw.userfields"}
    assert inputs["core.dim_activity_type"] == set()    # a constant list
    assert "marts.deals_without_activities" in inputs["marts.data_quality"]


def test_lineage_refuses_a_relation_that_nothing_makes() -> None:
    declared = {relation: reads for relation, reads in GENERATED_RELATIONS.items()
                if relation != "intermediate.deal_lost_reasons"}
    with pytest.raises(CatalogueError, match=r"reads intermediate\.deal_lost_reasons, which no model, macro or build "
                                             r"makes"):
        lineage(declared)


def test_a_key_column_written_in_the_header_is_not_a_column_description() -> None:
    fact_deal = next(m for m in MODELS if m.name == "fact_deal")
    _, columns = fact_deal.docs()
    assert "Key" not in columns and "Changes" not in columns


def test_models_that_read_each_other_in_a_cycle_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "a.sql").write_text("-- Grain: one row per a.\nSELECT * FROM core.b\n", "utf-8")
    (tmp_path / "core" / "b.sql").write_text("-- Grain: one row per b.\n-- reads core.c only in a comment\n"
                                             "SELECT * FROM core.a\n", "utf-8")
    (tmp_path / "core" / "c.sql").write_text("-- Grain: one row per c.\nSELECT 1 AS x\n", "utf-8")
    monkeypatch.setattr(catalogue, "MODELS_DIR", tmp_path)
    with pytest.raises(CatalogueError, match=r"cycle: core\.a, core\.b$"):
        ordered(("core",))
    (tmp_path / "core" / "a.sql").write_text("-- Grain: one row per a.\nSELECT * FROM core.c\n", "utf-8")
    assert [m.name for m in ordered(("core",))] == ["c", "a", "b"]


def test_shared_idioms_are_written_once_as_macros() -> None:
    statements = catalogue.macros()
    assert {s.split("MACRO staging.", 1)[1].split("(", 1)[0] for s in statements} == {
        "date_key", "surrogate_key", "deleted_in_portal", "normalise_phone"}
    for model in (*MODELS, *MARTS):
        text = model.text()
        for idiom in ("'%Y%m%d'", "9007199254740991", "FROM staging.deletions WHERE"):
            assert idiom not in text, f"{model.relation} spells out {idiom!r}: call the macro"
    # "The last in-progress stage" has one definition; the funnel and the lost reasons read it.
    assert [m.relation for m in (*MODELS, *MARTS) if "arg_max(v.stage_key" in m.text()] == ["core.fact_deal"]
    assert all("last_process_stage_key" in m.text() for m in (*MODELS, *MARTS)
               if m.name in ("funnel_steps", "lost_reasons"))


def test_a_macro_file_must_state_its_signature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "macros").mkdir()
    (tmp_path / "macros" / "twice.sql").write_text("-- doubles a number\nx * 2\n", "utf-8")
    monkeypatch.setattr(catalogue, "MODELS_DIR", tmp_path)
    with pytest.raises(CatalogueError, match=r"must start with `-- twice\(parameters\)"):
        catalogue.macros()
    (tmp_path / "macros" / "twice.sql").write_text("-- twice(x): doubles a number\nx * 2\n", "utf-8")
    assert catalogue.macros() == ["CREATE OR REPLACE MACRO staging.twice(x) AS (x * 2\n)"]
