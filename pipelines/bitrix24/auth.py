"""Credentials: an inbound webhook URL, or an OAuth application with token refresh.

Both know their secrets and how to hide them: `redact()` replaces every secret in a text, and every
message this package builds passes through it.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from pipelines.bitrix24.errors import CREDENTIALS_PLACES, AuthError, ConfigurationError

_WEBHOOK_PATH = re.compile(r"^/rest/(\d+)/([^/]+)/?$")
EXAMPLE_URL = "https://<portal>.bitrix24.ru/rest/<user id>/<secret>/"


class Credentials(Protocol):
    portal: str
    set_at: str      # where these credentials are set, for the messages that ask to check them

    def endpoint(self, method: str) -> str: ...

    def sign(self, params: dict[str, Any]) -> dict[str, Any]: ...

    def refresh(self) -> bool: ...

    def redact(self, text: str) -> str: ...

    def moved(self, new_base: str) -> None: ...


@dataclass
class WebhookAuth:
    """`https://portal/rest/<user_id>/<secret>/` (http:// accepted for local portals)."""

    portal: str
    user_id: int
    secret: str = field(repr=False)     # never in a repr: tracebacks, debuggers and logs show the object
    set_at: str = CREDENTIALS_PLACES

    @classmethod
    def from_url(cls, url: str, set_at: str = CREDENTIALS_PLACES) -> WebhookAuth:
        raw = (url or "").strip()
        if not raw:
            raise ConfigurationError(f"Bitrix24 webhook URL is not set: set it to {EXAMPLE_URL} ({set_at})")
        parts = urlsplit(raw)
        match = _WEBHOOK_PATH.match(parts.path)
        if parts.scheme not in ("http", "https") or not parts.netloc or match is None or parts.query:
            shown = _mask_path(raw)
            raise ConfigurationError(f"Bitrix24 webhook URL {shown!r} is malformed: expected {EXAMPLE_URL} "
                                     "(copy it from the inbound webhook's page in Bitrix24)")
        return cls(f"{parts.scheme}://{parts.netloc}", int(match.group(1)), match.group(2), set_at)

    def endpoint(self, method: str) -> str:
        return f"{self.portal}/rest/{self.user_id}/{self.secret}/{method}"

    def sign(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def refresh(self) -> bool:
        return False

    def redact(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text

    def moved(self, new_base: str) -> None:
        self.portal = new_base.rstrip("/")


@dataclass
class OAuthAuth:
    """An OAuth application: `auth=<access token>` on `/rest/<method>`, renewed with the refresh token.

    Bitrix24 rotates the refresh token on every renewal, so the pair is kept in `token_file`
    (readable by its owner only), never in dlt state or the warehouse.
    """

    portal: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_url: str = "https://oauth.bitrix.info/oauth/token/"
    token_file: Path | None = None
    access_token: str = field(default="", repr=False)
    set_at: str = CREDENTIALS_PLACES
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.portal = self.portal.rstrip("/")
        if self.token_file is not None and self.token_file.exists():
            saved = json.loads(self.token_file.read_text(encoding="utf-8"))
            if saved.get("portal") in (None, self.portal):    # another portal's tokens are never used here
                self.refresh_token = saved.get("refresh_token", self.refresh_token)
                self.access_token = saved.get("access_token", "")

    def endpoint(self, method: str) -> str:
        return f"{self.portal}/rest/{method}"

    def sign(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.access_token:
            self.refresh()
        return {**params, "auth": self.access_token}

    def refresh(self) -> bool:
        with self._lock:
            try:
                response = requests.get(self.token_url, params={
                    "grant_type": "refresh_token", "client_id": self.client_id, "client_secret": self.client_secret,
                    "refresh_token": self.refresh_token}, timeout=30)
            except requests.RequestException as exc:
                raise AuthError(self.redact(f"Bitrix24 OAuth server {self.token_url} is unreachable: {exc}")) from None
            body = _json_or_none(response)
            if response.status_code != 200 or not body or "access_token" not in body:
                code = (body or {}).get("error", response.status_code)
                raise AuthError(f"Bitrix24 OAuth refresh failed ({code}): re-install the application or update its "
                                f"refresh token where the credentials are set: {self.set_at}")
            self.access_token = body["access_token"]
            self.refresh_token = body["refresh_token"]
            if self.token_file is not None:
                self.token_file.parent.mkdir(parents=True, exist_ok=True)
                self.token_file.write_text(json.dumps({"portal": self.portal, "access_token": self.access_token,
                                                       "refresh_token": self.refresh_token,
                                                       "saved_at": int(time.time())}), encoding="utf-8")
                os.chmod(self.token_file, 0o600)
            return True

    def redact(self, text: str) -> str:
        for secret in (self.client_secret, self.refresh_token, self.access_token):
            if secret:
                text = text.replace(secret, "***")
        return text

    def moved(self, new_base: str) -> None:
        self.portal = new_base.rstrip("/")


def _mask_path(url: str) -> str:
    """A URL for messages: the scheme and host stay, the path (which holds the secret) is masked."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..." if parts.netloc else "<unparseable>"


def _json_or_none(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
