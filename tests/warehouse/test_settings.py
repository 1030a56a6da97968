"""The settings file: the documented example loads, and every malformed value is refused by name."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from warehouse.settings import Settings, SettingsError, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented(tmp_path: Path, guide: str) -> Path:
    example = re.search(r"```toml\n(.*?)```", (DOCS / guide).read_text("utf-8"), re.S)
    assert example is not None
    path = tmp_path / "b24wh.toml"
    path.write_text(example.group(1), encoding="utf-8")
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    settings = load_settings(documented(tmp_path, "marts.md"))
    assert settings.weekend == (6, 7) and date(2026, 11, 4) in settings.holidays and len(settings.holidays) == 9
    assert settings.plans_file == tmp_path / "plans.csv" and settings.lost_reason_field == "UF_CRM_LOSS_REASON"
    assert (settings.gap_min_deals, settings.gap_absolute, settings.contact_required) == (10, 0.3, ("post",))
    assert (settings.wall_language, settings.wall_theme, settings.stale_after_seconds) == ("auto", "dark", 300)
    assert (settings.memory_limit, settings.threads, settings.builds_at_once) == ("2GB", 2, 0)


def test_the_documented_publishing_settings_load(tmp_path: Path) -> None:
    settings = load_settings(documented(tmp_path, "publishing.md"))
    assert settings.publish_directory == tmp_path / "published" and settings.duckdb_storage_version is None
    assert (settings.publish_duckdb, settings.publish_parquet, settings.keep_versions) == (True, True, 3)


def test_no_file_means_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("B24WH_CONFIG", raising=False)
    assert load_settings() == Settings()


@pytest.mark.parametrize(("text", "message"), [
    ("[funnel\n", "not valid TOML"),
    ("[report]\nx = 1\n", r"unknown section \[report\]"),
    ("[funnel]\ngap = 1\n", "unknown key funnel.gap"),
    ("[funnel]\ngap_absolute = 2\n", "funnel.gap_absolute must be a share between 0 and 1"),
    ("[funnel]\ngap_min_deals = -1\n", "funnel.gap_min_deals must be a whole number of at least 0"),
    ("[calendar]\nweekend = [0]\n", "calendar.weekend must list ISO weekdays"),
    ("[calendar]\nholidays = [\"soon\"]\n", "calendar.holidays must list dates"),
    ("[data_quality]\ncontact_required = [\"post; DROP\"]\n", "data_quality.contact_required"),
    ("[publish]\nduckdb_storage_version = \"1.4\"\n", "publish.duckdb_storage_version must be a DuckDB version"),
    ("[publish]\npublish_parquet = \"yes\"\n", "publish.publish_parquet must be true or false"),
    ("[wall]\nwall_theme = \"pink\"\n", "wall.wall_theme must be one of dark, light"),
    ("[warehouse]\nmemory_limit = \"lots\"\n", "warehouse.memory_limit must be an amount of memory"),
    ("[warehouse]\nmemory_limit = 2048\n", "warehouse.memory_limit must be an amount of memory"),
    ("[warehouse]\nthreads = 0\n", "warehouse.threads must be a whole number of at least 1"),
    ("[warehouse]\nthreads = \"two\"\n", "warehouse.threads must be a whole number of at least 1"),
    ("[warehouse]\nthreads = true\n", "warehouse.threads must be a whole number of at least 1"),
    ("[warehouse]\nbuilds_at_once = -1\n", "warehouse.builds_at_once must be a whole number of at least 0"),
    ("[warehouse]\nbuilds_at_once = true\n", "warehouse.builds_at_once must be a whole number of at least 0"),
])
def test_a_malformed_value_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b24wh.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=message):
        load_settings(path)


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nowhere.toml")
