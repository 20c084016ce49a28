"""The legacy's Redis settings cache (``agent_voice_settings:{agent}``, a 1 h copy of the
``agent_configs`` row) compared with the row itself: fresh, stale (and where), absent or corrupt.
The migration reads settings from the rows; this says how far the cache had drifted. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from voxshift.core.agent_settings import type_name
from voxshift.core.sunset.settings import ROOT, json_diff

CacheStatus = Literal["fresh", "stale", "absent", "corrupt"]


@dataclass(frozen=True)
class CacheComparison:
    status: CacheStatus
    differing_paths: tuple[str, ...]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "differing_paths": list(self.differing_paths), "detail": self.detail}


def compare_settings_cache(cached: str | bytes | None, row_settings: Any) -> CacheComparison:
    """The legacy's ``agent_voice_settings:{agent}`` value vs the row's raw ``voice_settings``.

    The cache is ``json.dumps`` of the raw dict (no defaults filled), so the two are compared as raw
    JSON; any difference means the row changed within the cache's hour (or the cache was written by
    something else). Absence is normal: it is written only for enabled agents, and lives 1 h.
    """
    if cached is None:
        return CacheComparison("absent", (), "no cache entry (written only for enabled agents, 1 h TTL)")
    try:
        text = cached.decode("utf-8") if isinstance(cached, bytes) else cached
        value = json.loads(text)
    except UnicodeDecodeError:
        return CacheComparison(
            "corrupt", (), "not UTF-8: the legacy's decode_responses client could not read it"
        )
    except ValueError as exc:
        return CacheComparison("corrupt", (), f"not JSON: {exc}")
    if not isinstance(value, dict):
        return CacheComparison("corrupt", (), f"JSON {type_name(value)}, but the legacy only cached objects")
    if row_settings is None:
        return CacheComparison("stale", (ROOT,), "the row has no voice settings; the cache still holds some")
    paths = tuple(json_diff(row_settings, value))
    if not paths:
        return CacheComparison("fresh", (), "same as the row")
    return CacheComparison("stale", paths, f"{len(paths)} field(s) differ from the row")
