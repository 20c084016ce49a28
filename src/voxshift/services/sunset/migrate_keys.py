"""The data migration's Redis part: every legacy voice key to one outcome.

Keys are read a page at a time: SCAN, then one script that reads the page's keys (each key's type,
remaining TTL and value from the same instant), never ``KEYS``. What each family becomes is decided in
``core.sunset.outcomes``; here the values are read and the v2 keys written, always before the
journal row, so a kill between the two only makes the next run write the same key again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import redis.exceptions as rex
from redis.asyncio import Redis

from voxshift.core.legacy_layout import canonical_value, decode_canonical
from voxshift.core.sunset import outcomes as oc
from voxshift.errors import StoreUnavailable
from voxshift.legacy.data.keyspace import CANONICAL, LegacyKeyspace
from voxshift.legacy.data.redis_keyspace import READ_LUA, plain_value
from voxshift.services.sunset.pages import PagesInFlight
from voxshift.stores.db.journal import JournalEntry
from voxshift.stores.state.base import Batch, encode_key

if TYPE_CHECKING:
    from voxshift.services.sunset.migrate import MigrationRun

KEY_PAGE = 500  # keys per scripted read (journal rows are committed in batches: JOURNAL_BATCH)
PAGES_IN_FLIGHT = 3


@dataclass(slots=True)  # one per legacy key: slotted, not frozen, whose __init__ costs 7x
class KeyValue:
    key: str
    kind: str
    value: Any  # in ``core.legacy_layout.canonical_value``'s terms
    pttl_ms: int | None
    canonical: bytes  # ``core.legacy_layout.canonical_value``: what the digest is over
    sha256: str

    @property
    def size(self) -> int:
        return len(self.canonical)


class KeyReader(Protocol):
    async def read(self, keys: Sequence[str]) -> list[KeyValue | None]:
        """Each key's value in order; None for a key that no longer exists (it expired)."""
        ...

    async def aclose(self) -> None: ...


def _key_value(key: str, kind: str, value: Any, pttl_ms: int | None) -> KeyValue:
    canonical = canonical_value(kind, value)
    return KeyValue(key, kind, value, pttl_ms, canonical, hashlib.sha256(canonical).hexdigest())


class RedisKeyReader:
    """Values straight from the legacy Redis, one scripted read per page."""

    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url, decode_responses=False, socket_timeout=10.0)
        self._script = self._redis.register_script(READ_LUA)

    async def read(self, keys: Sequence[str]) -> list[KeyValue | None]:
        if not keys:
            return []
        try:
            replies = await self._script(keys=[encode_key(k) for k in keys])
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            raise StoreUnavailable(f"legacy Redis failed ({type(exc).__name__}: {exc})") from exc
        out: list[KeyValue | None] = []
        for key, reply in zip(keys, replies, strict=True):
            if reply is None:
                out.append(None)
                continue
            kind = bytes(reply[0]).decode("ascii")
            pttl = int(reply[1])
            value = plain_value(kind, reply[2])
            if value is None:  # a type the script does not read: nothing of it to carry over
                kind, value = "set", []
            out.append(_key_value(key, kind, value, pttl if pttl > 0 else None))
        return out

    async def aclose(self) -> None:
        await self._redis.aclose()


class ExportKeyReader:
    """Values through ``LegacyKeyspace.export`` when it gives the canonical form (the embedded store)."""

    def __init__(self, keyspace: LegacyKeyspace) -> None:
        self.keyspace = keyspace

    async def read(self, keys: Sequence[str]) -> list[KeyValue | None]:
        out: list[KeyValue | None] = []
        for item in await self.keyspace.export(keys):
            if item is None:
                out.append(None)
                continue
            if item.payload_format != CANONICAL:
                raise StoreUnavailable(f"cannot read values of {self.keyspace.where} ({item.payload_format})")
            kind, value = decode_canonical(item.payload)
            out.append(_key_value(item.key, kind, value, item.pttl_ms))
        return out

    async def aclose(self) -> None:
        return None


async def migrate_keys(run: MigrationRun) -> None:
    """Every legacy voice key, page by page (a few pages in flight); keys with a journal row are
    not read again. Each item's v2 write precedes its journal row, which is all resuming needs."""
    # A first run has no rows to skip, so it saves a lookup per page. Without a lookup an item seen
    # twice is only written twice (same value) and recorded once: the journal keeps the first row.
    resuming = await run.journal.has_rows("redis")
    async with PagesInFlight(PAGES_IN_FLIGHT) as pages:
        page: list[str] = []
        async for key in run.legacy.keyspace.scan(count=1000):
            page.append(key)
            if len(page) >= run.rate.page(KEY_PAGE):
                await pages.submit(_page(run, page, resuming, pages.commit))
                page = []
        if page:
            await pages.submit(_page(run, page, resuming, pages.commit))


async def _page(run: MigrationRun, keys: list[str], resuming: bool, commit: asyncio.Lock) -> None:
    done = await run.journal.outcomes("redis", keys) if resuming else {}
    todo = [k for k in keys if k not in done]
    if not todo:
        return
    await run.limit(len(todo))
    values = await run.reader.read(todo)
    read_at = time.monotonic()
    plans = [oc.plan_key(key) for key in todo]
    # The object each TTS entry names (parsed once), then looked up in one journal query for the page.
    named = {
        key: oc.tts_response_object(item.value)
        for key, item, plan in zip(todo, values, plans, strict=True)
        if item is not None and item.kind == "string" and plan.action == "tts_response"
    }
    migrated = await run.objects_migrated([k for k, _ in named.values() if k is not None])
    writes = Batch()
    entries = [
        _one(key, item, plan, named.get(key), read_at, migrated, writes)
        for key, item, plan in zip(todo, values, plans, strict=True)
    ]
    if writes and not run.dry_run:
        await run.v2_state.execute(writes)  # the page's v2 keys in one pipeline, before the journal rows
    async with commit:
        await run.finish("redis", entries)


def _one(
    key: str,
    item: KeyValue | None,
    plan: oc.KeyPlan,
    named: tuple[str | None, str | None] | None,
    read_at: float,
    migrated: set[str],
    writes: Batch,
) -> JournalEntry:
    if item is None:
        return JournalEntry("redis", key, "expired", "its TTL ran out between the scan and the read")

    def entry(outcome: oc.Outcome, reason: str | None = None, v2_key: str | None = None) -> JournalEntry:
        return JournalEntry("redis", key, outcome, reason, v2_key, item.sha256, item.size)

    if plan.action == "skip":
        return entry("skipped", plan.reason)
    if plan.action == "history":
        # The canonical form keeps every type (zsets with their scores) and decodes back exactly;
        # no TTL: these are now history, not a cache.
        v2_key = oc.history_key(key)
        writes.set(v2_key, item.canonical)
        return entry("migrated", "legacy figures kept in v2's migration history", v2_key)
    if item.kind != "string":
        return entry("skipped", f"a {item.kind}, but the legacy only wrote strings here: names no object")
    assert named is not None  # every string of the family was parsed in _page
    object_key, why = named
    if object_key is None:
        return entry("skipped", why)
    if object_key not in migrated:
        return entry("skipped", f"{oc.OBJECT_GONE} ({object_key})")
    if item.pttl_ms is None:
        ttl_s: float | None = None
    else:
        # The TTL left now, not the one read a moment ago (the page is written right after this).
        ttl_s = max(item.pttl_ms - (time.monotonic() - read_at) * 1000, 1) / 1000
    v2_key = oc.tts_response_key(key)
    writes.set(v2_key, item.value, ttl_s=ttl_s)
    return entry("migrated", f"names migrated object {object_key}; remaining TTL kept", v2_key)
