"""The portal's credentials resolve in one documented order from every entry point (pipelines/bitrix24/credentials.py):
explicit, then dlt's configuration (environment, .dlt/secrets.toml), then BITRIX24_WEBHOOK_URL. An OAuth-only
deployment works from the command line and from Dagster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from b24wh_simulator.client import SimulatorProcess
from dagster_project.definitions import defs
from dagster_project.resources import WarehouseResource
from pipelines.bitrix24.credentials import Bitrix24OAuthCredentials, Bitrix24WebhookCredentials, explicit
from pipelines.bitrix24.errors import ConfigurationError
from pipelines.bitrix24.pipeline import load
from tests.conftest import portal_options

ROOT = Path(__file__).resolve().parents[1]
DLT_KEYS = ("SOURCES__BITRIX24__CREDENTIALS__WEBHOOK_URL", "SOURCES__BITRIX24__CREDENTIALS__PORTAL",
            "SOURCES__BITRIX24__CREDENTIALS__CLIENT_ID", "SOURCES__BITRIX24__CREDENTIALS__CLIENT_SECRET",
            "SOURCES__BITRIX24__CREDENTIALS__REFRESH_TOKEN", "SOURCES__BITRIX24__CREDENTIALS__TOKEN_URL",
            "SOURCES__BITRIX24__CREDENTIALS__TOKEN_FILE", "BITRIX24_WEBHOOK_URL")


@pytest.fixture(scope="module")
def portal() -> Any:
    with SimulatorProcess(**portal_options(deals=60, seed=71)) as sim:
        yield sim


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for key in DLT_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)     # no .dlt/ folder but the test's own
    return monkeypatch


def wrong(portal: Any) -> str:
    return portal.webhook_url.rstrip("/").rsplit("/", 1)[0] + "/wrongsecret/"


def deals(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM raw.deals").fetchone()[0])


def oauth_fields(portal: Any, tmp_path: Path) -> dict[str, str]:
    tokens = portal.control.authorize()
    return {"portal": portal.base_url, "client_id": portal.oauth["client_id"],
            "client_secret": portal.oauth["client_secret"], "refresh_token": tokens["refresh_token"],
            "token_url": portal.oauth["token_url"], "token_file": str(tmp_path / "tokens.json")}


def test_explicit_credentials_take_a_url_or_oauth_fields() -> None:
    hook = explicit("https://team.bitrix24.ru/rest/1/abc/")
    assert isinstance(hook, Bitrix24WebhookCredentials) and hook.auth().portal == "https://team.bitrix24.ru"
    oauth = explicit({"portal": "https://team.bitrix24.ru", "client_id": "app", "client_secret": "s",
                      "refresh_token": "r"})
    assert isinstance(oauth, Bitrix24OAuthCredentials) and oauth.token_url == "https://oauth.bitrix.info/oauth/token/"
    with pytest.raises(ConfigurationError, match="lack client_secret, refresh_token"):
        explicit({"portal": "https://team.bitrix24.ru", "client_id": "app"})


def test_nothing_configured_says_what_to_set(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(Exception) as failed:
        load(tmp_path / "warehouse.duckdb", progress="log")
    from dagster_project.cli import one_line

    line = one_line(failed.value)
    assert line.startswith("Bitrix24 credentials are not set: set BITRIX24_WEBHOOK_URL")
    assert "[sources.bitrix24.credentials] in .dlt/secrets.toml" in line


def test_dlt_configuration_comes_before_the_short_variable_and_explicit_before_both(
        portal: Any, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("BITRIX24_WEBHOOK_URL", wrong(portal))
    clean_env.setenv("SOURCES__BITRIX24__CREDENTIALS__WEBHOOK_URL", portal.webhook_url)
    load(tmp_path / "a.duckdb", progress="log", entities=["deals"])
    assert deals(tmp_path / "a.duckdb") == portal.control.truth()["rows"]["deals"]
    clean_env.setenv("SOURCES__BITRIX24__CREDENTIALS__WEBHOOK_URL", wrong(portal))
    load(tmp_path / "b.duckdb", progress="log", entities=["deals"], credentials=portal.webhook_url)
    assert deals(tmp_path / "b.duckdb") == portal.control.truth()["rows"]["deals"]
    clean_env.delenv("SOURCES__BITRIX24__CREDENTIALS__WEBHOOK_URL")
    clean_env.setenv("BITRIX24_WEBHOOK_URL", portal.webhook_url)
    load(tmp_path / "c.duckdb", progress="log", entities=["deals"])
    assert deals(tmp_path / "c.duckdb") == portal.control.truth()["rows"]["deals"]


def test_an_oauth_application_in_dlt_secrets_refreshes_from_the_command_line(portal: Any, tmp_path: Path) -> None:
    fields = oauth_fields(portal, tmp_path)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        "[sources.bitrix24.credentials]\n" + "".join(f'{k} = "{v}"\n' for k, v in fields.items()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in DLT_KEYS}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "dagster_project", "refresh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert deals(tmp_path / "data" / "warehouse.duckdb") == portal.control.truth()["rows"]["deals"]
    assert fields["client_secret"] not in done.stdout + done.stderr


def test_an_oauth_only_dagster_deployment_loads_and_runs(portal: Any, clean_env: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    for key, value in oauth_fields(portal, tmp_path).items():
        clean_env.setenv(f"SOURCES__BITRIX24__CREDENTIALS__{key.upper()}", value)
    dg.Definitions.validate_loadable(defs)
    warehouse = tmp_path / "warehouse.duckdb"
    result = defs.resolve_job_def("refresh").execute_in_process(
        resources={"warehouse": WarehouseResource(path=str(warehouse))})
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.fact_deal").fetchone()[0] \
            == portal.control.truth()["rows"]["deals"]
