"""FeatureFlags: the live rollout configuration of one process, kept in step with every replica.

Decisions are synchronous and in memory (:meth:`FeatureFlags.decide` is ``core.flags.decide`` on
the current config): no I/O per request, unlike the seed's per-decision Redis ``SETEX``.

Where the config lives (see ``flag_store``): the state store (v2 namespace, key ``flags:config``)
for fast propagation, and the settings database (``flag_config`` row ``voice_v2``) where every
change is audited (who, when, old, new, why). The config carries a version; whichever copy is newer
wins, and a copy that is behind is repaired.

Precedence at start-up: the stored config (runtime changes survive restarts); only when nothing is
stored yet does the ``VOICE_V2_*`` environment give the initial values, which are then stored. A
warning is logged when the environment disagrees with the stored config, because an operator who
edits ``VOICE_V2_ROLLOUT_PERCENTAGE`` and restarts would otherwise expect it to apply. Change a
running system with ``voxshift flags set`` (or :meth:`FeatureFlags.update`).

Propagation: a writer publishes the new config on channel ``flags`` (v2 namespace); every replica
subscribes, and also polls the key every 250 ms because pub/sub drops messages while a connection
is re-established. A change made anywhere therefore applies everywhere within about 1 s. When the
state store is down the replica keeps serving its last known config and polls the database instead.
The background tasks that do this are ``flag_follow``.

Writes: optimistic, retried on conflict. The database CAS orders writers when it is up; the state
store then only ever moves forward (never to a lower version). With the database down a change is
refused unless it is a rollback (``core.flags.is_rollback``: kill, lower, deny): the safe direction
never waits for the audit trail, and anything that sends more traffic to v2 must be audited.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from voxshift.core.flags import (
    Decision,
    FlagConfig,
    Operation,
    decide,
    diff,
    explain,
    is_rollback,
)
from voxshift.errors import InvalidRequest, StoreUnavailable, VersionConflict
from voxshift.services.flags.follow import FlagFollower
from voxshift.services.flags.store import CHANNEL, FlagConfigRepo, FlagStorage, Snapshot

if TYPE_CHECKING:
    from voxshift.config import Settings
    from voxshift.services.wiring.backends import Backends
    from voxshift.stores.state.base import StateStore

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25
SYSTEM_ACTOR = "voxshift"
INIT_REASON = "initial flag config from the VOICE_V2_* environment"
_WRITE_ATTEMPTS = 16
_BACKOFF_S = 0.005  # per attempt; 16 attempts wait at most ~0.7 s in total
_ENV_FIELDS = ("voice_v2_enabled", "voice_v2_rollout_percentage", "voice_v2_features")

ChangeCallback = Callable[[FlagConfig, FlagConfig], None]  # (old, new)
Change = Callable[[FlagConfig], FlagConfig] | FlagConfig


@dataclass(frozen=True)
class WriteOutcome:
    """How far the last write got: callers (the CLI) warn about a missing audit row or broadcast."""

    config: FlagConfig
    audited: bool  # an audit row is in the database
    stored: bool  # the state store has it (replicas see it within a poll)
    published: bool  # the pub/sub notification went out


class FeatureFlags:
    def __init__(
        self,
        store: StateStore | None,
        repo: FlagConfigRepo | None,
        initial: FlagConfig,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        listen: bool = True,
        env_explicit: bool = True,
    ) -> None:
        """``store`` is the v2 view of the state store; ``initial`` the environment's config
        (``FlagConfig.from_settings``). With neither store nor repo the flags live in memory only.
        ``env_explicit``: whether VOICE_V2_* were actually set (else there is nothing to disagree with)."""
        self.storage = FlagStorage(store, repo)
        self.initial = replace(initial, version=0)
        self.env_explicit = env_explicit
        self.poll_interval_s = poll_interval_s
        self.listen = listen
        self.env_disagreement: list[str] = []  # what the environment would change, at load
        self.source: Literal["environment", "state store", "database"] = "environment"
        self.last_write: WriteOutcome | None = None
        self.conflicts = 0  # lost optimistic races (retried)
        self._config = self.initial
        self._callbacks: list[ChangeCallback] = []
        self._follower: FlagFollower | None = None  # while started with watch=True

    @classmethod
    def from_backends(
        cls, backends: Backends, *, poll_interval_s: float = POLL_INTERVAL_S, listen: bool = True
    ) -> FeatureFlags:
        from voxshift.stores.db.repositories import FlagConfigRepository

        return cls(
            backends.v2_state,
            FlagConfigRepository(backends.database),
            FlagConfig.from_settings(backends.settings),
            poll_interval_s=poll_interval_s,
            listen=listen,
            env_explicit=env_is_explicit(backends.settings),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureFlags:
        """In-memory flags from the environment (tests, tools without stores)."""
        return cls(None, None, FlagConfig.from_settings(settings))

    # --- the hot path ------------------------------------------------------------------------------
    @property
    def config(self) -> FlagConfig:
        return self._config

    def decide(self, operation: Operation, user_id: str | None, agent_id: str | None = None) -> Decision:
        return decide(self._config, operation, user_id, agent_id)

    def use_v2(self, operation: Operation, user_id: str | None, agent_id: str | None = None) -> bool:
        return decide(self._config, operation, user_id, agent_id).use_v2

    def explain(self, user_id: str | None, agent_id: str | None = None) -> list[str]:
        return explain(self._config, user_id, agent_id)

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(old, new)`` after every applied change; returns an unsubscribe function."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    # --- life cycle ---------------------------------------------------------------------------------
    async def start(self, *, watch: bool = True) -> FlagConfig:
        """Load (initialising the stores from the environment when empty), then follow changes."""
        await self.load()
        if watch and self._follower is None and not self.storage.memory_only:
            self._follower = FlagFollower(
                self.storage.store,
                self.refresh,
                self._apply,
                poll_interval_s=self.poll_interval_s,
                listen=self.listen,
            )
            self._follower.start()
        return self._config

    async def stop(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            await follower.stop()

    async def __aenter__(self) -> FeatureFlags:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def load(self, *, read_only: bool = False) -> FlagConfig:
        """The newest stored config, repairing a copy that is behind; with nothing stored, the
        environment's, which is then stored. ``read_only`` (the CLI's show/explain) skips both
        writes. Both stores down: keep serving what we have."""
        for _ in range(_WRITE_ATTEMPTS):
            snap = await self.storage.read()
            newest = snap.newest
            if newest is not None:
                self.source = "state store" if newest is snap.store_config else "database"
                self._note_env(newest)
                if not read_only:
                    await self.storage.repair(snap, newest)
                self._apply(newest)
                return self._config
            if snap.store_down and snap.db_down:
                log.warning("flags: state store and database unavailable; serving the last known config")
                return self._config
            if read_only or self.storage.memory_only:
                return self._config
            first = replace(self.initial, version=1)
            try:
                await self.storage.write(
                    snap, first, actor=SYSTEM_ACTOR, reason=INIT_REASON, require_audit=False
                )
            except VersionConflict:  # another replica initialised first: read what it stored
                self.conflicts += 1
                continue
            self.source = "environment"
            self._apply(first)
            await self.storage.publish(first)
            return self._config
        raise VersionConflict("flag config keeps changing during start-up; retry")

    # --- writes ------------------------------------------------------------------------------------
    async def update(self, change: Change, *, actor: str, reason: str) -> FlagConfig:
        """Apply ``change`` to the newest stored config and store it (version + 1), retrying when
        another writer got there first. A FlagConfig (not a function) replaces the config; when it
        carries a version >= 1 it must still be the stored one (else VersionConflict)."""
        actor, reason = _text(actor, "actor"), _text(reason, "reason")
        if self.storage.memory_only:
            new = self._next(self._config, change)
            if not new.same_rules(self._config):
                self._apply(new)
            return self._config
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            snap = await self.storage.read()
            if snap.store_down and snap.db_down:
                raise StoreUnavailable("cannot change flags: the state store and the database are down")
            base = snap.newest or self.initial
            new = self._next(base, change)
            if new.same_rules(base):
                self._apply(base)
                self.last_write = WriteOutcome(base, audited=False, stored=False, published=False)
                return base
            if snap.db_down and not is_rollback(base, new):
                raise StoreUnavailable(
                    "the settings database is unavailable: only a rollback (kill, lower a percentage, "
                    "deny) can be applied without its audit trail; retry when it is back"
                )
            try:
                audited, stored = await self.storage.write(
                    snap, new, actor=actor, reason=reason, require_audit=not is_rollback(base, new)
                )
            except VersionConflict:
                self.conflicts += 1
                # Jittered back-off: writers that collided once should not collide again in step.
                await asyncio.sleep(random.uniform(0, _BACKOFF_S * attempt))
                continue
            self._apply(new, f" by {actor} ({reason})")
            published = await self.storage.publish(new)
            self.last_write = WriteOutcome(new, audited, stored, published)
            return new
        raise VersionConflict(f"flag config changed concurrently {_WRITE_ATTEMPTS} times; re-read and retry")

    async def kill(self, *, actor: str, reason: str) -> FlagConfig:
        """The kill switch: everything to legacy on every replica within about 1 s."""
        return await self.update(FlagConfig.killed, actor=actor, reason=reason)

    async def set_percentage(
        self, operation: Operation | None, percentage: int, *, actor: str, reason: str
    ) -> FlagConfig:
        return await self.update(
            lambda c: c.with_percentage(operation, percentage), actor=actor, reason=reason
        )

    async def set_feature(self, name: str, on: bool, *, actor: str, reason: str) -> FlagConfig:
        return await self.update(lambda c: c.with_feature(name, on), actor=actor, reason=reason)

    async def allow(
        self,
        user_id: str | None = None,
        *,
        agent_id: str | None = None,
        remove: bool = False,
        actor: str,
        reason: str,
    ) -> FlagConfig:
        return await self._listed("allow", user_id, agent_id, remove, actor, reason)

    async def deny(
        self,
        user_id: str | None = None,
        *,
        agent_id: str | None = None,
        remove: bool = False,
        actor: str,
        reason: str,
    ) -> FlagConfig:
        return await self._listed("deny", user_id, agent_id, remove, actor, reason)

    async def _listed(
        self,
        kind: Literal["allow", "deny"],
        user_id: str | None,
        agent_id: str | None,
        remove: bool,
        actor: str,
        reason: str,
    ) -> FlagConfig:
        return await self.update(
            lambda c: c.with_listed(kind, user_id=user_id, agent_id=agent_id, remove=remove),
            actor=actor,
            reason=reason,
        )

    # --- following other writers ----------------------------------------------------------------
    async def refresh(self) -> FlagConfig:
        """One poll: the state store's copy (or the database's while the store is down)."""
        if self._config.version == 0:  # never loaded from a store: try the full start-up path again
            return await self.load()
        config = await self.storage.poll(self._config)
        if config is not None:
            self._apply(config)
        return self._config

    # --- internals ---------------------------------------------------------------------------------
    def _next(self, base: FlagConfig, change: Change) -> FlagConfig:
        if isinstance(change, FlagConfig):
            if change.version not in (0, base.version):
                raise VersionConflict(
                    f"flag config is at version {base.version}, not {change.version}: someone else "
                    "changed it; re-read and retry",
                    param="version",
                )
            new = change
        else:
            new = change(base)
        return replace(new, version=base.version + 1)

    def _apply(self, new: FlagConfig, why: str = "") -> None:
        """Adopt ``new`` when it is newer (versions only move forward), then tell the listeners."""
        old = self._config
        if new.version <= old.version:
            return
        self._config = new
        if old.version:  # the first load is not news for the log; listeners still hear it
            log.info(
                "flags: now at version %d%s: %s",
                new.version,
                why,
                "; ".join(diff(old, new)) or "no rule change",
            )
        for callback in list(self._callbacks):
            try:
                callback(old, new)
            except Exception:  # one broken listener must not stop the others (or the poll)
                log.exception("flags: on_change callback failed")

    def _note_env(self, stored: FlagConfig) -> None:
        if not self.env_explicit:
            return
        env, mine = self.initial, replace(stored, version=0)
        keep = replace(mine, enabled=env.enabled, features=env.features, percentages=env.percentages)
        self.env_disagreement = diff(keep, mine) if not keep.same_rules(mine) else []
        if self.env_disagreement:
            log.warning(
                "flags: the VOICE_V2_* environment differs from the stored config (version %d), which "
                "wins so that runtime changes survive restarts (environment -> stored: %s); "
                "use `voxshift flags set` to change it",
                stored.version,
                "; ".join(self.env_disagreement),
            )


def env_is_explicit(settings: Settings) -> bool:
    """Whether any VOICE_V2_{ENABLED,ROLLOUT_PERCENTAGE,FEATURES} came from the environment or the
    --config file rather than the defaults."""
    from voxshift.config_report import describe

    return any(r.source != "default" for r in describe(settings) if r.name in _ENV_FIELDS)


def _text(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} must be a non-empty text", param=name)
    return value.strip()


__all__ = ["CHANNEL", "FeatureFlags", "Snapshot", "WriteOutcome"]
