"""The REST client: one place that sends requests to a portal and survives what portals do.

- waits in the client-side request bucket before each request, and per method for its operating time;
- retries with exponential backoff and full jitter on 503/429 limits, other 5xx, HTML gateway pages,
  timeouts and dropped connections; follows a portal's 302 move by re-sending the same POST to the new
  domain; renews an expired OAuth token once;
- turns everything else into a one-line error that keeps the portal's own text and never a secret.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from pipelines.bitrix24 import settings
from pipelines.bitrix24.auth import Credentials
from pipelines.bitrix24.errors import ApiError, AuthError, PortalUnavailable
from pipelines.bitrix24.throttle import OperatingLedger, RequestBucket

log = logging.getLogger(__name__)

_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_METHOD = re.compile(r"^\s*([\w.]+?)(?:\.json)?(?:\?|$)")


@dataclass
class BatchResult:
    results: dict[str, Any]
    errors: dict[str, dict[str, Any]]
    totals: dict[str, int]
    time: dict[str, Any]        # the batch's own `time` block (portal clock, offset, operating time)


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _maybe_dict(value: Any) -> dict[str, Any]:
    """Empty collections come as `[]` from PHP; treat them as empty maps."""
    return value if isinstance(value, dict) else {}


class _RedactingFilter(logging.Filter):
    """urllib3 logs request lines (with the webhook secret in the path) at DEBUG: hide the secrets."""

    def __init__(self) -> None:
        super().__init__()
        self.redactors: list[Callable[[str], str]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactors:
            text = record.getMessage()
            for redact in self.redactors:
                text = redact(text)
            record.msg, record.args = text, ()
        return True


_REDACTOR = _RedactingFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
    logging.getLogger(_name).addFilter(_REDACTOR)


class Bitrix24Client:
    def __init__(self, auth: Credentials, *, rate: float = 2.0, burst: int = 50,
                 operating_limit: float = settings.OPERATING_LIMIT, timeout: float = settings.REQUEST_TIMEOUT,
                 max_attempts: int = settings.MAX_ATTEMPTS, seed: int | None = None) -> None:
        self.auth = auth
        if auth.redact not in _REDACTOR.redactors:
            _REDACTOR.redactors.append(auth.redact)
        self.bucket = RequestBucket(rate, burst)
        self.ledger = OperatingLedger(operating_limit)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.session = requests.Session()
        self.random = random.Random(seed)

    # --- public calls ------------------------------------------------------------------------------

    def batch(self, commands: dict[str, str], halt: bool = False, attempts: int | None = None) -> BatchResult:
        """Up to 50 commands (`method?query`) in one request; sub-errors come back, not raised."""
        body = self._request("batch", {"halt": 1 if halt else 0, "cmd": commands}, attempts or self.max_attempts)
        result = _maybe_dict(body.get("result"))
        results = _maybe_dict(result.get("result"))
        errors = _maybe_dict(result.get("result_error"))
        times = _maybe_dict(result.get("result_time"))
        for name, command in commands.items():
            method = method_of(command)
            if name in times:
                self._record(method, times[name])
            error = errors.get(name)
            if isinstance(error, dict) and error.get("error") == "OPERATION_TIME_LIMIT":
                self.ledger.blocked(method)
        return BatchResult(results, errors, _maybe_dict(result.get("result_total")), _maybe_dict(body.get("time")))

    def wait_for(self, method: str) -> float:
        return self.ledger.wait_for(method)

    # --- the request loop --------------------------------------------------------------------------

    def _record(self, method: str, block: Any) -> None:
        if not isinstance(block, dict):
            return
        processing = block.get("processing", block.get("duration", 0.0))
        reset_at = block.get("operating_reset_at")
        self.ledger.record(method, float(processing or 0.0), _float(block.get("operating")),
                           reset_at if isinstance(reset_at, int | float) else None)

    def _request(self, method: str, params: dict[str, Any], attempts: int) -> dict[str, Any]:
        last = ""
        refreshed = False
        attempt = 0
        while attempt < attempts:
            self.bucket.acquire()
            try:
                return self._send(method, params)
            except _Retry as retry:
                if retry.reason == "expired_token":
                    if refreshed or not self.auth.refresh():
                        raise AuthError("Bitrix24 OAuth access token expired and could not be renewed") from None
                    refreshed = True
                    continue
                if retry.reason == "moved":
                    continue
                attempt += 1
                last = retry.reason
                if attempt >= attempts:
                    break
                backoff = min(settings.BACKOFF_MAX, settings.BACKOFF_BASE * 2 ** (attempt - 1))
                delay = retry.wait if retry.wait is not None else self.random.uniform(0, backoff)
                log.warning("Bitrix24 %s: %s; retry %d/%d in %.1f s", method, last, attempt, attempts - 1, delay)
                time.sleep(delay)
        last = self.auth.redact(last)
        raise PortalUnavailable(self.auth.redact(
            f"Bitrix24 portal {self.auth.portal} kept failing on {method} after {attempts} attempts: {last}"),
            reason=f"{last}, {attempts} attempts")

    def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        url = self.auth.endpoint(method)
        try:
            response = self.session.post(url, json=self.auth.sign(params), timeout=self.timeout,
                                         allow_redirects=False)
        except requests.Timeout:
            raise _Retry(f"no answer within {self.timeout:.0f} s") from None
        except requests.ConnectionError as exc:
            raise _Retry(self.auth.redact(f"connection failed ({type(exc).__name__})")) from None
        if response.status_code in (301, 302, 303, 307, 308):
            return self._moved(method, response)
        try:
            body = response.json()
        except ValueError:
            title = _TITLE.search(response.text or "")
            text = title.group(1).strip() if title else (response.text or "").strip()[:80]
            raise _Retry(f"HTTP {response.status_code} with a non-JSON page: {text!r}") from None
        if response.status_code == 200 and isinstance(body, dict) and "error" not in body:
            return body
        return self._failed(method, response.status_code, body if isinstance(body, dict) else {})

    def _moved(self, method: str, response: requests.Response) -> dict[str, Any]:
        location = response.headers.get("Location", "")
        parts = urlsplit(location)
        if not parts.scheme or not parts.netloc:
            raise _Retry(f"HTTP {response.status_code} redirect without a usable Location")
        new_base = f"{parts.scheme}://{parts.netloc}"
        log.warning("Bitrix24 portal moved from %s to %s; following", self.auth.portal, new_base)
        self.auth.moved(new_base)
        raise _Retry("moved")

    def _failed(self, method: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
        code = body.get("error")
        text = self.auth.redact(str(body.get("error_description") or ""))
        if code == "QUERY_LIMIT_EXCEEDED":
            self.bucket.overflowed()
            raise _Retry(f"HTTP {status} QUERY_LIMIT_EXCEEDED: {text}")
        if code == "OPERATION_TIME_LIMIT":
            self.ledger.blocked(method)
            raise _Retry(f"HTTP {status} OPERATION_TIME_LIMIT: {text}", wait=self.ledger.wait_for(method))
        if code in ("expired_token", "invalid_token"):
            raise _Retry("expired_token")
        if code in ("NO_AUTH_FOUND", "INVALID_CREDENTIALS", "invalid_client", "user_access_error"):
            raise AuthError(f"Bitrix24 refused the credentials (HTTP {status} {code}: {text}): check the webhook's "
                            f"user id and secret (or the OAuth application) where they are set: {self.auth.set_at}")
        if code == "insufficient_scope":
            raise AuthError(f"Bitrix24 webhook may not call {method} (HTTP {status} insufficient_scope): add the "
                            "missing scope to the inbound webhook in Bitrix24")
        if code in ("ACCESS_DENIED", "PAYMENT_REQUIRED"):
            raise AuthError(f"Bitrix24 denied REST access (HTTP {status} {code}: {text}): the portal's plan must "
                            "include the REST API")
        if status >= 500 or code in ("INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER", "OVERLOAD_LIMIT"):
            raise _Retry(f"HTTP {status} {code}: {text}")
        raise ApiError(method, status, code, text)


def method_of(command: str) -> str:
    match = _METHOD.match(command)
    return match.group(1) if match else command


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
