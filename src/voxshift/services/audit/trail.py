"""Read the audit trail from the settings database: the flag audit log, the rollout history, and the
sunset's audited state changes, each as records, and all three merged newest first.

The sunset keeps its state as a versioned document beside the flags (``flag_config`` row
``sunset``), so its events are the ``flag_changes`` rows of that key; everything else in that table
is a flag change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voxshift.core.flag_config import stored_diff
from voxshift.services.flags.store import DB_KEY
from voxshift.services.sunset.phases import SUNSET_KEY
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import FlagChange, RolloutEvent
from voxshift.stores.db.repositories import FlagAuditRepository, RolloutHistoryRepository


def _iso(at: datetime) -> str:
    return at.isoformat()


def flag_record(change: FlagChange) -> dict[str, Any]:
    return {
        "id": change.id,
        "at": _iso(change.changed_at),
        "actor": change.actor,
        "reason": change.reason,
        "old": change.old_value,
        "new": change.new_value,
        "changes": stored_diff(change.old_value, change.new_value),
    }


def rollout_record(event: RolloutEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _iso(event.at),
        "from_phase": event.from_phase,
        "to_phase": event.to_phase,
        "percentage": event.percentage,
        "actor": event.actor,
        "reason": event.reason,
        "metrics": event.metrics,
    }


async def flag_history(db: Database, limit: int) -> list[dict[str, Any]]:
    return [flag_record(c) for c in await FlagAuditRepository(db).list_recent(limit=limit, key=DB_KEY)]


async def rollout_history(db: Database, limit: int) -> list[dict[str, Any]]:
    return [rollout_record(e) for e in await RolloutHistoryRepository(db).list(limit=limit)]


def _sunset_summary(change: FlagChange) -> str:
    old = (change.old_value or {}).get("phases", {}) if isinstance(change.old_value, dict) else {}
    new = (change.new_value or {}).get("phases", {}) if isinstance(change.new_value, dict) else {}
    moved = [f"{p} {s.get('status')}" for p, s in new.items() if isinstance(s, dict) and old.get(p) != s]
    return "; ".join(moved) or (change.reason or "sunset state changed")


async def audit_trail(db: Database, limit: int) -> list[dict[str, Any]]:
    """Flag changes, rollout transitions and sunset events merged, newest first, at most ``limit``."""
    changes = await FlagAuditRepository(db).list_recent(limit=limit)
    events = await RolloutHistoryRepository(db).list(limit=limit)
    items: list[tuple[datetime, dict[str, Any]]] = []
    for c in changes:
        if c.key == SUNSET_KEY:
            kind, summary = "sunset", _sunset_summary(c)
        else:
            kind, summary = "flags", "; ".join(stored_diff(c.old_value, c.new_value)) or "no change"
        items.append(
            (
                c.changed_at,
                {
                    "at": _iso(c.changed_at),
                    "kind": kind,
                    "actor": c.actor,
                    "reason": c.reason,
                    "summary": summary,
                },
            )
        )
    for e in events:
        transition = (
            (e.metrics or {}).get("kind", "transition") if isinstance(e.metrics, dict) else "transition"
        )
        summary = f"{transition}: {e.from_phase or '-'} -> {e.to_phase} ({e.percentage}%)"
        items.append(
            (
                e.at,
                {
                    "at": _iso(e.at),
                    "kind": "rollout",
                    "actor": e.actor,
                    "reason": e.reason,
                    "summary": summary,
                },
            )
        )
    items.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in items[:limit]]
