"""Errors of the Bitrix24 source: one line each, saying what to do, never carrying a secret."""

from __future__ import annotations


class Bitrix24Error(RuntimeError):
    """Base class; the message is safe to log (secrets are redacted before it is built)."""


class ConfigurationError(Bitrix24Error):
    """The portal configuration is missing or malformed."""


class AuthError(Bitrix24Error):
    """The portal refused the credentials or their scopes."""


class PortalUnavailable(Bitrix24Error):
    """The portal could not be reached or kept failing after retries; `reason` is the last failure alone."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class ApiError(Bitrix24Error):
    """The portal answered a call with an error that retrying will not fix."""

    def __init__(self, method: str, status: int, code: object, description: str) -> None:
        super().__init__(f"Bitrix24 {method} failed: HTTP {status} {code or '(no code)'}: {description}")
        self.method = method
        self.status = status
        self.code = code
        self.description = description


# Where credentials are set, for the messages that ask to check them (pipelines.bitrix24.credentials).
CREDENTIALS_PLACES = ("BITRIX24_WEBHOOK_URL or [sources.bitrix24.credentials] in .dlt/secrets.toml; for a portal "
                      "listed in b24wh.toml, PORTALS__<NAME>__CREDENTIALS or [portals.<name>.credentials]")
