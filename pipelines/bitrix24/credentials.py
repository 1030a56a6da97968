"""The portal's credentials as typed dlt configuration: an inbound webhook, or an OAuth application.

They are the source's `credentials` argument, so they resolve as dlt resolves any source's secrets, in one
order, the same for the command line, Dagster and the tests:

1. given explicitly (the demo's simulator; a Dagster `Bitrix24Resource` field a deployment sets, for
   example from `dg.EnvVar`);
2. dlt's configuration under `sources.bitrix24.credentials`: environment variables
   (`SOURCES__BITRIX24__CREDENTIALS__WEBHOOK_URL`; for OAuth `..._PORTAL`, `..._CLIENT_ID`, `..._CLIENT_SECRET`,
   `..._REFRESH_TOKEN`), then `.dlt/secrets.toml`, then `.dlt/config.toml` (of the folder the command runs in,
   or `DLT_PROJECT_DIR`); a webhook wins over an OAuth application;
3. `BITRIX24_WEBHOOK_URL`, the short name, when dlt's configuration names none.

Nothing found is one line saying what to set.

A portal of a deployment that serves many (`[portals.<name>]` in b24wh.toml) has its credentials under its own
name, `portals.<name>.credentials`, resolved the same way (`portal_credentials`): never from the single-portal
settings above, so that one portal's rows can never be read with another's credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Union
from urllib.parse import urlsplit

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.configuration.specs import BaseConfiguration, CredentialsConfiguration
from dlt.common.configuration.specs.exceptions import NativeValueError
from dlt.common.typing import TSecretStrValue

from pipelines.bitrix24.auth import EXAMPLE_URL, Credentials, OAuthAuth, WebhookAuth
from pipelines.bitrix24.errors import CREDENTIALS_PLACES, ConfigurationError

WEBHOOK_ENV = "BITRIX24_WEBHOOK_URL"
OAUTH_TOKEN_URL = "https://oauth.bitrix.info/oauth/token/"


@configspec
class Bitrix24WebhookCredentials(CredentialsConfiguration):
    """An inbound webhook: `webhook_url`, or the URL itself as `sources.bitrix24.credentials`."""

    webhook_url: TSecretStrValue = None
    set_at: str = CREDENTIALS_PLACES    # where they are set, for the messages that ask to check them

    def parse_native_representation(self, native_value: Any) -> None:
        if not isinstance(native_value, str):
            raise NativeValueError(type(self), native_value, "a Bitrix24 webhook URL is a string")
        self.webhook_url = native_value

    def auth(self) -> Credentials:
        return WebhookAuth.from_url(self.webhook_url, self.set_at)


@configspec
class Bitrix24OAuthCredentials(CredentialsConfiguration):
    """An OAuth application installed on the portal. Bitrix24 rotates the refresh token at every renewal, so the
    current pair lives in `token_file`, never in the warehouse. Its default, `~/.b24wh/oauth-<portal host>-
    <client_id>.json`, is one per portal: a partner's one application installed on many portals keeps each
    portal's tokens apart."""

    portal: str = None
    client_id: str = None
    client_secret: TSecretStrValue = None
    refresh_token: TSecretStrValue = None
    token_url: str = OAUTH_TOKEN_URL
    token_file: str | None = None
    set_at: str = CREDENTIALS_PLACES    # as the webhook's

    def auth(self) -> Credentials:
        token_file = Path(self.token_file) if self.token_file else self.default_token_file()
        return OAuthAuth(self.portal, self.client_id, self.client_secret, self.refresh_token,
                         token_url=self.token_url, token_file=token_file, set_at=self.set_at)

    def default_token_file(self) -> Path:
        """`~/.b24wh/oauth-<host>-<client_id>.json`. The file of the name used before portals could share an
        application, `oauth-<client_id>.json`, is moved there once, by the first portal that finds it, when it
        is this portal's or names none (a single-portal deployment's own tokens)."""
        folder = Path.home() / ".b24wh"
        host = urlsplit(self.portal if "://" in self.portal else f"https://{self.portal}").hostname or "portal"
        path = folder / f"oauth-{host}-{self.client_id}.json"
        legacy = folder / f"oauth-{self.client_id}.json"
        if not path.exists() and legacy.is_file():
            with contextlib.suppress(OSError, ValueError):
                if json.loads(legacy.read_text(encoding="utf-8")).get("portal") in (None, self.portal.rstrip("/")):
                    os.replace(legacy, path)
        return path


Bitrix24Credentials = Union[Bitrix24WebhookCredentials, Bitrix24OAuthCredentials]  # noqa: UP007 - dlt reads it


def explicit(value: str | dict[str, Any] | Bitrix24Credentials) -> Bitrix24Credentials:
    """Credentials given in code: a webhook URL, a dict of the OAuth fields, or a credentials object."""
    if isinstance(value, Bitrix24WebhookCredentials | Bitrix24OAuthCredentials):
        return value
    if isinstance(value, str):
        return Bitrix24WebhookCredentials(webhook_url=value)
    missing = [k for k in ("portal", "client_id", "client_secret", "refresh_token") if not value.get(k)]
    if missing:
        raise ConfigurationError(f"Bitrix24 OAuth credentials lack {', '.join(missing)}")
    return Bitrix24OAuthCredentials(**{k: v for k, v in value.items() if v is not None})


def credentials_or_fallback(resolved: Bitrix24Credentials | None) -> Bitrix24Credentials:
    """What dlt resolved for the source, else a webhook from BITRIX24_WEBHOOK_URL, else one line saying what to set."""
    if resolved is not None:
        return resolved
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        return Bitrix24WebhookCredentials(webhook_url=url)
    raise ConfigurationError(
        f"Bitrix24 credentials are not set: set {WEBHOOK_ENV} to {EXAMPLE_URL}, or put webhook_url (or an OAuth "
        "application's portal, client_id, client_secret and refresh_token, all four) under "
        "[sources.bitrix24.credentials] in .dlt/secrets.toml (docs/operations.md)")


@configspec
class _PortalSecrets(BaseConfiguration):
    credentials: Bitrix24Credentials = None


def portal_credentials(name: str) -> Bitrix24Credentials:
    """A listed portal's credentials, from dlt's configuration under `portals.<name>.credentials` (environment
    variables `PORTALS__<NAME>__CREDENTIALS` (the webhook URL) or `PORTALS__<NAME>__CREDENTIALS__<FIELD>`, then
    `.dlt/secrets.toml`, then `.dlt/config.toml`); nothing found is one line saying what to set."""
    variable = f"PORTALS__{name.upper()}__CREDENTIALS"
    try:
        credentials = resolve_configuration(_PortalSecrets(), sections=("portals", name)).credentials
    except ConfigurationException:
        raise ConfigurationError(
            f"no credentials for portal {name}: set {variable} to its webhook URL ({EXAMPLE_URL}), or put webhook_url "
            f"(or an OAuth application's portal, client_id, client_secret and refresh_token) under "
            f"[portals.{name}.credentials] in .dlt/secrets.toml (docs/portals.md)") from None
    credentials.set_at = f"{variable} or [portals.{name}.credentials] in .dlt/secrets.toml"
    return credentials


@configspec
class _EventSecrets(BaseConfiguration):
    application_token: TSecretStrValue = None


def application_token(portal: str | None = None) -> str:
    """The token the portal signs its event calls with (an application's `application_token`, or the one an
    outbound webhook shows), from dlt's configuration: `sources.bitrix24.application_token`, or for a listed
    portal `portals.<name>.application_token` (environment variables SOURCES__BITRIX24__APPLICATION_TOKEN,
    PORTALS__<NAME>__APPLICATION_TOKEN, then `.dlt/secrets.toml`)."""
    sections = ("portals", portal) if portal else ("sources", "bitrix24")
    try:
        return str(resolve_configuration(_EventSecrets(), sections=sections).application_token)
    except ConfigurationException:
        key = ".".join(sections)
        raise ConfigurationError(
            f"no application token for the portal's events: set {'__'.join(sections).upper()}__APPLICATION_TOKEN "
            f"or put application_token under [{key}] in .dlt/secrets.toml: the token the outbound webhook shows, "
            "or the application's (docs/events.md)") from None
