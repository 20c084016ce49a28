"""The sunset's phases as a service: where each phase stands, what its guards say, and running the
``read_only`` phase (the others plug in their work).

The state is one versioned document in the settings database (``flag_config`` row ``sunset``):
every change is a compare-and-set with its audit row (who, when, old, new, why) in ``flag_changes``,
like the flags. The facts the guards need are measured here: the newest verified backup, the
legacy's newest write (the newest voice object, and the settings/metrics keys whose fixed TTL dates
their last write), the rollout controller's state, how long the flags have held 100 %.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from voxshift.core.flags import FlagConfig
from voxshift.core.sunset.phases import PHASES, Facts, Phase, PhaseStatus, refusals
from voxshift.errors import InvalidRequest, VersionConflict, VoxshiftError

SUNSET_KEY = "sunset"
FLAGS_KEY = "voice_v2"
# Families whose TTL is fixed, so that the remaining TTL dates the last write (layout doc §1).
FIXED_TTL_S = {
    "agent_voice_settings:": 3600.0,
    "voice_daily_stats:": 30 * 86400.0,
    "voice_metrics:": 7 * 86400.0,
    "voice_rate_limit:": 61.0,
}


class SunsetRefused(VoxshiftError):
    """A phase whose guards do not hold (exit 1; nothing changed)."""

    status = 409
    error_type = "invalid_request_error"
    code = "sunset_refused"


class Stored(Protocol):
    @property
    def value(self) -> Any: ...
    @property
    def version(self) -> int: ...


class DocumentRepo(Protocol):
    """FlagConfigRepository: versioned JSON documents, each change audited."""

    async def get(self, key: str) -> Stored | None: ...

    async def put(
        self, key: str, value: Any, *, expected_version: int, actor: str, reason: str | None = None
    ) -> Any: ...


class AuditEntry(Protocol):
    @property
    def changed_at(self) -> datetime: ...
    @property
    def new_value(self) -> Any: ...


class FlagsLike(Protocol):
    @property
    def config(self) -> FlagConfig: ...

    async def update(
        self, change: Callable[[FlagConfig], FlagConfig] | FlagConfig, *, actor: str, reason: str
    ) -> FlagConfig: ...


class KeyTimes(Protocol):
    """What the legacy keyspace says about a key: its name and remaining TTL (KeyExport)."""

    @property
    def key(self) -> str: ...
    @property
    def pttl_ms(self) -> int | None: ...


class LegacyWrites(Protocol):
    """The legacy's data, read only to date its newest write."""

    def object_times(self) -> AsyncIterator[datetime]: ...

    def key_exports(self, prefixes: Sequence[str]) -> AsyncIterator[KeyTimes]: ...


@dataclass(frozen=True)
class PhaseOutcome:
    phase: Phase
    dry_run: bool
    changed: bool
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "dry_run": self.dry_run, "changed": self.changed, **self.details}


def full(config: Any) -> bool:
    """A FlagConfig or a stored flag document that sends everyone to v2 for both operations."""
    if config is None:
        return False
    doc = config if isinstance(config, FlagConfig) else FlagConfig.from_json(config)
    return doc.enabled and doc.percentages.stt == 100 and doc.percentages.tts == 100


def full_since(history: Sequence[AuditEntry], current: FlagConfig) -> float | None:
    """When the flags last became 100 %/100 % with v2 enabled and stayed so (newest first history)."""
    if not full(current):
        return None
    since: float | None = None
    for entry in history:  # newest first
        try:
            was_full = full(entry.new_value)
        except InvalidRequest:
            was_full = False
        if not was_full:
            break
        since = entry.changed_at.timestamp()
    return since


class SunsetService:
    def __init__(
        self,
        repo: DocumentRepo,
        flags: FlagsLike,
        *,
        flag_history: Callable[[], Awaitable[Sequence[AuditEntry]]],
        backups: Callable[[], Awaitable[Sequence[dict[str, Any]]]] | None = None,
        legacy: LegacyWrites | None = None,
        rollout_state: Callable[[], Awaitable[str | None]] | None = None,
        hold_s: float = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.flags = flags
        self.flag_history = flag_history
        self.backups = backups
        self.legacy = legacy
        self.rollout_state = rollout_state
        self.hold_s = hold_s
        self.clock = clock

    # --- state ------------------------------------------------------------------------------------
    async def document(self) -> tuple[dict[str, Any], int]:
        stored = await self.repo.get(SUNSET_KEY)
        if stored is None:
            return {"phases": {}, "validation": None}, 0
        return dict(stored.value), stored.version

    async def status(self, legacy: dict[str, str]) -> dict[str, Any]:
        """The stored state as `voxshift sunset status --json` and the admin API show it; ``legacy``
        is the legacy's description (``LegacyData.describe()``)."""
        doc, version = await self.document()
        facts = await self.facts()
        return {
            "version": version,
            "phases": {p: doc["phases"].get(p, {"status": "not_started"}) for p in PHASES},
            "validation": doc.get("validation"),
            "legacy": legacy,
            "legacy_read_only": self.flags.config.legacy_read_only,
            "last_legacy_write_at": facts.last_legacy_write_at,
            "backup_verified_at": facts.backup_verified_at,
        }

    async def facts(self, *, confirmed: bool = False) -> Facts:
        doc, _ = await self.document()
        now = self.clock()
        status: dict[str, PhaseStatus] = {
            p: doc["phases"].get(p, {}).get("status", "not_started") for p in PHASES
        }
        validation = doc.get("validation") or {}
        config = self.flags.config
        return Facts(
            now=now,
            status=status,
            backup_verified_at=await self._newest_verified_backup(),
            last_legacy_write_at=await self.last_legacy_write(now),
            rollout_state=await self.rollout_state() if self.rollout_state is not None else None,
            percentages=(config.percentages.stt, config.percentages.tts),
            enabled=config.enabled,
            full_since=full_since(await self.flag_history(), config),
            hold_s=self.hold_s,
            validation_clean=validation.get("clean") if validation else None,
            confirmed=confirmed,
        )

    async def plan(self) -> list[dict[str, Any]]:
        """Each phase with its status and, if it cannot run now, why (confirmation aside)."""
        facts = await self.facts(confirmed=True)
        return [
            {"phase": p, "status": facts.status[p], "refusals": refusals(p, replace(facts, confirmed=True))}
            for p in PHASES
        ]

    async def last_legacy_write(self, now: float) -> float | None:
        """The legacy's newest write seen: the newest voice object (every STT request uploads one
        before anything else), and the keys whose fixed TTL dates their last write."""
        if self.legacy is None:
            return None
        newest: float | None = None
        async for when in self.legacy.object_times():
            ts = when.timestamp()
            newest = ts if newest is None else max(newest, ts)
        async for item in self.legacy.key_exports(tuple(FIXED_TTL_S)):
            ttl = next((t for prefix, t in FIXED_TTL_S.items() if item.key.startswith(prefix)), None)
            if ttl is None or item.pttl_ms is None:
                continue
            written = now - (ttl - item.pttl_ms / 1000.0)
            newest = written if newest is None else max(newest, written)
        return newest

    async def _newest_verified_backup(self) -> float | None:
        if self.backups is None:
            return None
        times = [
            datetime.fromisoformat(str(b["created_at"]).replace("Z", "+00:00")).timestamp()
            for b in await self.backups()
            if b.get("verified_ok")
        ]
        return max(times) if times else None

    # --- running a phase --------------------------------------------------------------------------
    async def run(
        self,
        phase: Phase,
        *,
        actor: str,
        reason: str,
        dry_run: bool = False,
        confirmed: bool = False,
        work: Callable[[bool], Awaitable[dict[str, Any]]] | None = None,
    ) -> PhaseOutcome:
        """Check the guards, then do the phase (``work(dry_run)`` for the phases with data work;
        ``read_only`` switches the legacy to read-only through the audited flags)."""
        facts = await self.facts(confirmed=confirmed or dry_run)
        refused = refusals(phase, facts)
        if refused:
            raise SunsetRefused(f"{phase} refused: " + "; ".join(refused))
        if phase == "read_only":
            details = {"legacy_read_only": True, "was": self.flags.config.legacy_read_only}
            if not dry_run:
                await self.flags.update(
                    lambda c: c.with_legacy_read_only(True), actor=actor, reason=f"sunset read_only: {reason}"
                )
        elif work is None:
            raise SunsetRefused(f"{phase}: nothing to run it with in this build")
        else:
            details = await work(dry_run)
            if phase == "infrastructure_cleanup" and not dry_run:
                # The legacy is gone: the router must stop offering it as a fallback.
                await self.flags.update(
                    lambda c: c.with_legacy_retired(True), actor=actor, reason=f"sunset cleanup: {reason}"
                )
        if not dry_run:
            await self._mark(phase, "completed", actor=actor, reason=reason, details=details)
        return PhaseOutcome(phase, dry_run, not dry_run, details)

    async def record_validation(self, clean: bool, summary: dict[str, Any], *, actor: str) -> None:
        await self._write(
            lambda doc: {**doc, "validation": {"clean": clean, "at": self.clock(), "summary": summary}},
            actor=actor,
            reason="sunset validation " + ("clean" if clean else "found problems"),
        )

    async def _mark(
        self, phase: Phase, status: str, *, actor: str, reason: str, details: dict[str, Any]
    ) -> None:
        entry = {"status": status, "at": self.clock(), "actor": actor, "reason": reason, "details": details}
        await self._write(
            lambda doc: {**doc, "phases": {**doc.get("phases", {}), phase: entry}},
            actor=actor,
            reason=f"sunset {phase} {status}: {reason}",
        )

    async def _write(
        self, change: Callable[[dict[str, Any]], dict[str, Any]], *, actor: str, reason: str
    ) -> None:
        for _ in range(8):
            doc, version = await self.document()
            try:
                await self.repo.put(
                    SUNSET_KEY, change(doc), expected_version=version, actor=actor, reason=reason
                )
                return
            except VersionConflict:
                continue
        raise VersionConflict("the sunset state kept changing; retry")
