"""An incremental entity's modification cursor, and the rows at its edge that the next window reads again.

Each incremental window starts `overlap` seconds before the stored cursor (a row modified in the second of the
last read, or committed late by the portal, is not missed). So every refresh reads the rows of that edge again,
unchanged: a load job, a merge into the raw table and a patch of every table built from them, for nothing. The
cursor keeps a digest of each edge row in the resource's state, committed with the load like the cursor itself,
and a row read again with the same digest is dropped. A row whose content changed is always kept."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from pipelines.bitrix24.catalogue import Entity
from pipelines.bitrix24.convert import to_datetime

EDGE_STATE_KEY = "edge"   # resource state: {id: digest} of the rows within the overlap before the cursor


def digest(value: Any) -> str:
    """A short digest of a row (or a list of rows), the same for the same fields and values in any order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Cursor:
    """The newest modification time read so far, and the rows read within `overlap` of it."""

    def __init__(self, entity: Entity, state: dict[str, Any], overlap: int) -> None:
        self.id_key = entity.id_key
        self.cursor_key = entity.row_key(entity.cursor)
        self.overlap = timedelta(seconds=overlap)
        self.newest: datetime | None = to_datetime(state["cursor"]) if state.get("cursor") else None
        self.seen: dict[str, str] = state.get(EDGE_STATE_KEY, {})
        self.edge: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self.pruned_at = 0

    def fresh(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's rows less those the last load left at the edge unchanged; the cursor moves past them all."""
        kept = []
        for row in page:
            key = str(row[self.id_key])
            modified = to_datetime(row.get(self.cursor_key))
            if modified is not None:
                if self.newest is None or modified > self.newest:
                    self.newest = modified
                if modified >= self.newest - self.overlap:
                    self.edge[key] = (modified, row)
            if key not in self.seen or self.seen[key] != digest(row):
                kept.append(row)
        if len(self.edge) > 2 * self.pruned_at + 1_000:
            self._prune()
        return kept

    def state(self) -> dict[str, Any]:
        """What the resource's state keeps: the cursor and the digests of the rows at its edge."""
        if self.newest is None:
            return {}
        self._prune()
        return {"cursor": self.newest.isoformat(), EDGE_STATE_KEY: {key: digest(row) for key, (_, row) in
                                                                      sorted(self.edge.items())}}

    def _prune(self) -> None:
        if self.newest is not None:
            since = self.newest - self.overlap
            self.edge = {key: kept for key, kept in self.edge.items() if kept[0] >= since}
        self.pruned_at = len(self.edge)
