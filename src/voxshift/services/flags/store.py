"""Where the flag config is kept: the state store copy, the audited database copy, and keeping the
two in step. Used by :class:`voxshift.services.flags.service.FeatureFlags`; see its module docstring for
the rules (newest version wins, the store only moves forward, the database orders writers).

Both copies are the canonical JSON of ``core.flags.FlagConfig`` with its version; the database row
also has its own CAS version (``flag_config.version``), which may differ from the config's when a
rollback was written while the database was down.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from voxshift.core.flags import FlagConfig
from voxshift.errors import InvalidRequest, StoreUnavailable, VersionConflict

if TYPE_CHECKING:
    from voxshift.stores.state.base import StateStore

log = logging.getLogger("voxshift.services.flags.service")

CONFIG_KEY = "flags:config"  # in the v2 namespace: voice_v2:flags:config
CHANNEL = "flags"  # voice_v2:flags
DB_KEY = "voice_v2"  # flag_config.key and flag_changes.key
SYNC_ACTOR = "voxshift"
DB_CHECK_EVERY = 20  # polls; with 250 ms polls the database is compared every 5 s
_UPGRADE_ATTEMPTS = 8


class StoredFlagRecord(Protocol):
    @property
    def value(self) -> Any: ...
    @property
    def version(self) -> int: ...


class FlagConfigRepo(Protocol):
    """What FeatureFlags needs from the database (``stores.db.repositories.FlagConfigRepository``)."""

    async def get(self, key: str) -> StoredFlagRecord | None: ...

    async def put(
        self, key: str, value: Any, *, expected_version: int, actor: str, reason: str | None = None
    ) -> StoredFlagRecord: ...


@dataclass(frozen=True)
class Snapshot:
    """Both copies as read at one moment (for a write: the expected values of both CASes)."""

    store_raw: bytes | None = None
    store_config: FlagConfig | None = None
    store_down: bool = True
    db_version: int = 0  # the row's CAS version (0 = no row)
    db_config: FlagConfig | None = None
    db_down: bool = True

    @property
    def newest(self) -> FlagConfig | None:
        found = [c for c in (self.store_config, self.db_config) if c is not None]
        return max(found, key=lambda c: c.version) if found else None


class FlagStorage:
    def __init__(self, store: StateStore | None, repo: FlagConfigRepo | None) -> None:
        self.store = store
        self.repo = repo
        self._last_raw: bytes | None = None  # the store value last seen: unchanged -> no parse
        self._polls = 0

    @property
    def memory_only(self) -> bool:
        return self.store is None and self.repo is None

    async def read(self) -> Snapshot:
        raw, store_config, store_down = None, None, True
        if self.store is not None:
            try:
                raw = await self.store.get(CONFIG_KEY)
                store_down = False
                store_config = _parse(raw, "the state store")
            except StoreUnavailable as exc:
                log.debug("flags: state store unavailable: %s", exc.message)
        db_version, db_config, db_down = 0, None, True
        if self.repo is not None:
            try:
                record = await self.repo.get(DB_KEY)
                db_down = False
                if record is not None:
                    db_version = record.version
                    db_config = _parse(record.value, "the database")
            except StoreUnavailable as exc:
                log.debug("flags: database unavailable: %s", exc.message)
        return Snapshot(raw, store_config, store_down, db_version, db_config, db_down)

    async def write(
        self, snap: Snapshot, new: FlagConfig, *, actor: str, reason: str, require_audit: bool
    ) -> tuple[bool, bool]:
        """Store ``new`` as of ``snap``: (audited, stored). VersionConflict when another writer
        won; StoreUnavailable when ``require_audit`` and the database is down, or nothing took it."""
        audited = False
        if self.repo is not None and not snap.db_down:
            try:
                await self.repo.put(
                    DB_KEY, new.to_json(), expected_version=snap.db_version, actor=actor, reason=reason
                )
                audited = True
            except StoreUnavailable:
                if require_audit:
                    raise
        elif require_audit:
            raise StoreUnavailable("the settings database is unavailable: the change cannot be audited")
        stored = False
        if self.store is not None and not snap.store_down:
            if audited:  # the database ordered the writers: the store just has to move forward
                stored = await self.upgrade(new)
            else:  # the store is the only arbiter: CAS against exactly what the write was based on
                try:
                    stored = await self.store.compare_and_set(CONFIG_KEY, snap.store_raw, new.dumps())
                except StoreUnavailable:
                    stored = False
                else:
                    if not stored:
                        raise VersionConflict("flag config changed in the state store; re-read and retry")
                    self._last_raw = new.dumps()
        if not audited and not stored:
            raise StoreUnavailable("cannot store the flag config: the state store and the database are down")
        return audited, stored

    async def upgrade(self, new: FlagConfig) -> bool:
        """Put ``new`` in the store unless it already holds that version or a newer one."""
        if self.store is None:
            return False
        encoded = new.dumps()
        try:
            for _ in range(_UPGRADE_ATTEMPTS):
                raw = await self.store.get(CONFIG_KEY)
                current = _parse(raw, "the state store")
                if current is not None and current.version >= new.version:
                    return current.version == new.version
                if await self.store.compare_and_set(CONFIG_KEY, raw, encoded):
                    self._last_raw = encoded
                    return True
        except StoreUnavailable:
            return False
        return False

    async def repair(self, snap: Snapshot, newest: FlagConfig) -> None:
        """At load: bring a copy that is behind up to ``newest`` (a flushed Redis, a new database)."""
        if not snap.store_down and (snap.store_config is None or snap.store_config.version < newest.version):
            await self.upgrade(newest)
        behind = snap.db_config is None or snap.db_config.version < newest.version
        if self.repo is not None and not snap.db_down and behind:
            # A conflict means another replica repaired it; an outage is fixed by the next write.
            with contextlib.suppress(VersionConflict, StoreUnavailable):
                await self.repo.put(
                    DB_KEY,
                    newest.to_json(),
                    expected_version=snap.db_version,
                    actor=SYNC_ACTOR,
                    reason=f"sync: the database was behind the state store (version {newest.version})",
                )

    async def publish(self, new: FlagConfig) -> bool:
        if self.store is None:
            return False
        try:
            await self.store.publish(CHANNEL, new.dumps())
        except StoreUnavailable:
            return False
        return True

    async def poll(self, current: FlagConfig) -> FlagConfig | None:
        """A config newer than ``current``, if either copy has one. The store is read every time
        (one GET, no parse when unchanged); the database when the store is down, and every
        ``DB_CHECK_EVERY`` polls, which catches a change written while the store was unreachable."""
        self._polls += 1
        store_ok = False
        if self.store is not None:
            try:
                raw = await self.store.get(CONFIG_KEY)
                store_ok = True
            except StoreUnavailable:
                raw = None
            if store_ok and raw != self._last_raw:
                found = _parse(raw, "the state store")
                if found is not None and found.version >= current.version:
                    self._last_raw = raw
                    return found if found.version > current.version else None
                # Flushed, restored from an old snapshot or edited by hand: put back the newest known.
                newer = await self._from_db(current)
                await self.upgrade(newer or current)
                return newer
        if store_ok and self._polls % DB_CHECK_EVERY:
            return None
        newer = await self._from_db(current)
        if newer is not None and store_ok:
            await self.upgrade(newer)
        return newer

    async def _from_db(self, current: FlagConfig) -> FlagConfig | None:
        if self.repo is None:
            return None
        try:
            record = await self.repo.get(DB_KEY)
        except StoreUnavailable:
            return None
        found = _parse(record.value, "the database") if record is not None else None
        return found if found is not None and found.version > current.version else None


def _parse(raw: Any, where: str) -> FlagConfig | None:
    if raw is None:
        return None
    try:
        return FlagConfig.from_json(raw)
    except InvalidRequest as exc:
        # Only a hand edit can do this; ignoring the copy (the other one, or the last known config,
        # keeps serving) beats refusing to route requests.
        log.error("flags: ignoring the invalid flag config in %s: %s", where, exc.message)
        return None
