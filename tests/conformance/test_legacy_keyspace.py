"""LegacyKeyspace conformance: the same behaviour on a real Redis and on the embedded SQLite store.

Values are written through the raw stores the legacy uses (redis-py without decoding; the state
store's own API), then read, exported, deleted and restored through the keyspace under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.fixtures.redis_server import RedisServer
from voxshift.core.legacy_layout import value_digest
from voxshift.errors import Conflict
from voxshift.legacy.data import KeyExport, LegacyKeyspace
from voxshift.legacy.data.redis_keyspace import RedisKeyspace
from voxshift.legacy.data.state_keyspace import StateStoreKeyspace
from voxshift.stores.state import StateStore, open_state_store

LONG_AGENT = "agent_" + "голосовой_ассистент_@:." * 4 + "_1a2b3c4d"  # non-ASCII, ~115 characters


class Writer:
    """Writes raw values the way the legacy would, on the backend under test."""

    def __init__(self, kind: str, url: str, keyspace: LegacyKeyspace, store: StateStore | None) -> None:
        self.kind = kind
        self.url = url
        self.keyspace = keyspace
        self.store = store

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        if self.kind == "redis":
            async with Redis.from_url(self.url) as r:
                await r.set(key.encode(), value, px=None if ttl_s is None else int(ttl_s * 1000))
        else:
            assert self.store is not None
            await self.store.set(key, value, ttl_s=ttl_s)

    async def exists(self, key: str) -> bool:
        return (await self.keyspace.export([key]))[0] is not None


Pair = tuple[LegacyKeyspace, Writer]


@pytest_asyncio.fixture(loop_scope="function", params=["sqlite", "redis"])
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    keyspace: LegacyKeyspace
    store: StateStore | None = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("clean_redis")
        url = server.url
        keyspace = RedisKeyspace(url)
    else:
        url = f"sqlite:///{tmp_path / 'state.db'}"
        store = open_state_store(url)
        keyspace = StateStoreKeyspace(store)
    try:
        yield keyspace, Writer(request.param, url, keyspace, store)
    finally:
        await keyspace.aclose()


async def test_satisfies_the_protocol(pair: Pair) -> None:
    assert isinstance(pair[0], LegacyKeyspace)


async def test_scan_yields_only_the_voice_families(pair: Pair) -> None:
    keyspace, writer = pair
    voice = [f"stt_cache:{i:032x}" for i in range(1200)] + [f"agent_voice_settings:{LONG_AGENT}"]
    for key in voice:
        await writer.set(key, b"{}")
    for other in ("voice:cache:x", "stt_cachex", "session:1", "voice_v2:stt:abc", "agent_voice_settings"):
        await writer.set(other, b"not ours")
    found = [k async for k in keyspace.scan(count=100)]
    assert sorted(found) == sorted(voice)  # every page, no duplicates, nothing else


async def test_export_keeps_bytes_ttl_and_a_store_independent_digest(
    pair: Pair,
) -> None:
    keyspace, writer = pair
    await writer.set("stt_cache:bad", b"\xff\xfe not utf-8 {", ttl_s=100)
    await writer.set(f"agent_voice_settings:{LONG_AGENT}", b'{"enabled": true}')
    bad, settings, gone = await keyspace.export(
        ["stt_cache:bad", f"agent_voice_settings:{LONG_AGENT}", "stt_cache:missing"]
    )
    assert gone is None
    assert bad is not None and settings is not None
    assert bad.type == "string" and bad.sha256 == value_digest("string", b"\xff\xfe not utf-8 {")
    assert bad.pttl_ms is not None and 98_000 < bad.pttl_ms <= 100_000
    assert settings.pttl_ms is None and settings.key == f"agent_voice_settings:{LONG_AGENT}"


async def test_delete_then_restore_round_trips(pair: Pair) -> None:
    keyspace, writer = pair
    await writer.set("stt_cache:a", b"\x00\x01binary", ttl_s=50)
    await writer.set("voice_daily_stats:x:2026-01-01", b'{"date": "2026-01-01"}')
    before = await keyspace.export(["stt_cache:a", "voice_daily_stats:x:2026-01-01"])
    items = [i for i in before if i is not None]
    assert await keyspace.delete([i.key for i in items]) == 2
    assert await keyspace.export([i.key for i in items]) == [None, None]
    await keyspace.restore(items)
    after = await keyspace.export([i.key for i in items])
    assert [a.sha256 for a in after if a] == [b.sha256 for b in items]
    restored_ttl = after[0].pttl_ms if after[0] else None
    assert restored_ttl is not None and 48_000 < restored_ttl <= 50_000


async def test_restore_refuses_an_existing_key_unless_replace(pair: Pair) -> None:
    keyspace, writer = pair
    await writer.set("stt_cache:a", b"old")
    exported = (await keyspace.export(["stt_cache:a"]))[0]
    assert exported is not None
    await writer.set("stt_cache:a", b"newer")
    with pytest.raises(Conflict):
        await keyspace.restore([exported])
    await keyspace.restore([exported], replace=True)
    again = (await keyspace.export(["stt_cache:a"]))[0]
    assert again is not None and again.sha256 == exported.sha256


async def test_delete_refuses_keys_outside_the_families(pair: Pair) -> None:
    keyspace, writer = pair
    await writer.set("session:1", b"x")
    with pytest.raises(ValueError, match="not a legacy voice key"):
        await keyspace.delete(["session:1"])
    assert await writer.exists("session:1")  # the refused delete left it alone
    with pytest.raises(ValueError):
        await keyspace.restore([KeyExport("session:1", "string", b"", "canonical", None, "")])
