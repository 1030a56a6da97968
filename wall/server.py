"""`b24wh wall`: the sales-floor page, served by aiohttp from the published warehouse.

- `/` the page (static HTML, CSS and JavaScript shipped in this package; nothing is fetched from the
  internet), `/static/...` its files;
- `/api/snapshot` what the page shows, as JSON. The page polls it; for the version it already has, the
  answer is only `{"unchanged": true}` and the data's age.
  The snapshot is read once per published version; between versions only the data's age changes.
- With an access token, the page and its data need `?token=...` (the static files, which hold no data,
  do not); without it the server answers a plain page saying so. The server binds to 127.0.0.1 unless told otherwise.
- Serving many portals (`WallConfig.portals`), the page and its data need `?portal=<name>`, and with a token, each
  portal's own: `portal_token(token, name)`, an HMAC of the name under the server's token. A client's link opens
  its own floor only; changing the portal in it opens nothing.
If no publication exists yet, or the newest one cannot be read, the page keeps what it last showed (or
says it is waiting) instead of an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from wall.snapshot import read_snapshot, waiting
from warehouse.publish import newest_file

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WallConfig:
    published: Path | None           # the publication folder (data/published); None when serving portals
    token: str | None = None
    portals: dict[str, Path] = field(default_factory=dict)   # portal name -> its publication folder
    language: str = "auto"           # auto (the browser's), ru or en
    theme: str = "dark"              # dark or light
    stale_after_seconds: int = 300   # older data is flagged on the page
    poll_seconds: float = 5.0


class SnapshotCache:
    """The snapshot of the newest published version, read again only when a new version appears."""

    def __init__(self, published: Path) -> None:
        self.published = published
        self.key: tuple[str, float] | None = None
        self.snapshot: dict[str, Any] = waiting("no publication yet")
        self.lock = asyncio.Lock()

    async def current(self) -> dict[str, Any]:
        path = newest_file(self.published)
        if path is None:
            return self.snapshot if self.snapshot["status"] == "ok" else waiting("no publication yet")
        try:
            key = (path.name, path.stat().st_mtime)
        except OSError:             # removed between the listing and now: keep what we have
            return self.snapshot
        if key != self.key:
            async with self.lock:
                if key != self.key:
                    try:
                        self.snapshot = await asyncio.to_thread(read_snapshot, path)
                        self.key = key
                    except Exception as exc:   # a publication being replaced: show the last good one
                        log.warning("could not read %s (%s); showing the previous snapshot", path, exc)
        return self.snapshot


def portal_token(token: str, portal: str) -> str:
    """A portal's own access token, derived from the server's: its link cannot be turned into another's."""
    return hmac.new(token.encode(), portal.encode(), hashlib.sha256).hexdigest()[:32]


def _authorised(request: web.Request, config: WallConfig) -> bool:
    portal = request.query.get("portal", "")
    if config.portals and portal not in config.portals:
        return False
    if not config.token:
        return True
    expected = portal_token(config.token, portal) if config.portals else config.token
    return hmac.compare_digest(request.query.get("token", "").encode(), expected.encode())


def build_app(config: WallConfig) -> web.Application:
    folders = config.portals or {"": config.published or Path("published")}
    caches = {name: SnapshotCache(folder) for name, folder in folders.items()}

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/static/") and not _authorised(request, config):   # assets hold no data
            link = "…/?portal=…&token=…" if config.portals else "…/?token=…"
            return web.Response(status=401, content_type="text/html", text=(
                "<!doctype html><meta charset=utf-8><title>Sales floor</title><body style='font:32px sans-serif;"
                f"background:#111;color:#eee;padding:2em'>This screen needs its access link ({link}).</body>"))
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        return response

    settings = {"language": config.language, "theme": config.theme, "poll_seconds": config.poll_seconds,
                "stale_after_seconds": config.stale_after_seconds}
    html = (STATIC / "index.html").read_text("utf-8").replace("__WALL_SETTINGS__", json.dumps(settings))

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(text=html, content_type="text/html")

    async def snapshot(request: web.Request) -> web.StreamResponse:
        current = await caches[request.query.get("portal", "") if config.portals else ""].current()
        now = datetime.now(UTC)
        age = None
        if current.get("published_at"):
            age = (now - datetime.fromisoformat(current["published_at"])).total_seconds()
        headers = {"ETag": f'"{current.get("version")}"'} if current.get("version") else {}
        freshness = {"server_time": now.isoformat(), "age_seconds": age,
                     "stale": age is not None and age > config.stale_after_seconds}
        if headers and request.headers.get("If-None-Match") == headers["ETag"]:
            return web.json_response({"unchanged": True, **freshness}, headers=headers)
        return web.json_response({**current, **freshness}, headers=headers, dumps=_dumps)

    app = web.Application(middlewares=[guard])
    app.router.add_get("/", page)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_static("/static/", STATIC)
    return app


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def serve(config: WallConfig, host: str = "127.0.0.1", port: int = 8050) -> None:
    if config.portals:
        for name, folder in config.portals.items():
            token = f"&token={portal_token(config.token, name)}" if config.token else ""
            print(f"Sales-floor wall of {name}: http://{host}:{port}/?portal={name}{token} (data from {folder})",
                  flush=True)
    else:
        print(f"Sales-floor wall: http://{host}:{port}/{'?token=…' if config.token else ''} "
              f"(data from {config.published})", flush=True)
    web.run_app(build_app(config), host=host, port=port, print=None, access_log=None)
