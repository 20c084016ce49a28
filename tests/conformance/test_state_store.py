"""One suite, identical assertions, for every StateStore: SQLite (a tmp file) and a real redis-server,
each used raw and through a NamespacedStore view. Redis-only behaviour (outage, recovery, auth) is at
the end; SQLite's shared-file behaviour is in tests/integration/test_state_multiprocess.py and URL
parsing in tests/unit/test_state_keys.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.fixtures.redis_server import RedisServer, free_port
from voxshift.errors import StoreUnavailable
from voxshift.stores.state import Batch, NamespacedStore, StateStore, open_state_store
from voxshift.stores.state.redis import RedisStateStore

TTL = 0.3
PAST_TTL = 0.5  # sleep this long to be sure a TTL-second key is gone


@pytest.fixture(params=["sqlite", "redis"])
def raw_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("clean_redis")
        return server.url
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest_asyncio.fixture(loop_scope="function")
async def raw_store(raw_url: str) -> AsyncIterator[StateStore]:
    store = open_state_store(raw_url)
    yield store
    await store.aclose()


@pytest_asyncio.fixture(loop_scope="function", params=["raw", "namespaced"])
async def store(request: pytest.FixtureRequest, raw_store: StateStore) -> StateStore:
    return raw_store if request.param == "raw" else NamespacedStore(raw_store, "voice_v2")


async def keys(store: StateStore, prefix: str = "", count: int = 500) -> list[str]:
    return [key async for key in store.scan(prefix, count=count)]


async def test_store_satisfies_the_protocol(store: StateStore) -> None:
    assert isinstance(store, StateStore)
    await store.ping()


async def test_get_set_delete(store: StateStore) -> None:
    assert await store.get("k") is None
    await store.set("k", b"v1")
    assert await store.get("k") == b"v1"
    await store.set("k", b"v2")
    assert await store.get("k") == b"v2"
    await store.set("other", b"x")
    assert await store.delete("k", "other", "missing") == 2
    assert await store.get("k") is None
    assert await store.delete() == 0


async def test_arbitrary_bytes_and_legacy_style_keys_round_trip(store: StateStore) -> None:
    values = [b"", b"\xff\xfe\x00\x80", "привет".encode(), bytes(range(256))]
    names = ["agent_voice_settings:агент@acme.io:1", "stt_cache:a*b?c[d]\\e", "tts:ágent:u:17", "k\udcff"]
    for name, value in zip(names, values, strict=True):
        await store.set(name, value)
    for name, value in zip(names, values, strict=True):
        assert await store.get(name) == value
    assert sorted(await keys(store)) == sorted(names)


async def test_ttl_expiry_is_honoured_everywhere(store: StateStore) -> None:
    await store.set("short", b"1", ttl_s=TTL)
    await store.set("long", b"2", ttl_s=30)
    await store.hincr("hash", "f", 1, ttl_s=TTL)
    await store.incr("counter", 5, ttl_s=TTL)
    remaining = await store.ttl("short")
    assert remaining is not None and 0 < remaining <= TTL
    assert await store.exists("short")
    await asyncio.sleep(PAST_TTL)
    assert await store.get("short") is None
    assert not await store.exists("short")
    assert await store.ttl("short") is None
    assert await store.hgetall("hash") == {}
    assert await keys(store) == ["long"]
    assert await store.delete("short") == 0
    assert not await store.expire("short", 10)
    assert await store.incr("counter") == 1  # an expired counter starts again from 0
    assert await store.set_if_absent("short", b"new")
    assert await store.get("long") == b"2"


async def test_set_clears_a_ttl_and_incr_keeps_it(store: StateStore) -> None:
    await store.set("k", b"1", ttl_s=30)
    await store.set("k", b"2")
    assert await store.ttl("k") is None
    await store.incr("n", ttl_s=30)
    await store.incr("n")
    remaining = await store.ttl("n")
    assert remaining is not None and 29 < remaining <= 30


async def test_set_if_absent(store: StateStore) -> None:
    assert await store.set_if_absent("lock", b"a", ttl_s=30)
    assert not await store.set_if_absent("lock", b"b")
    assert await store.get("lock") == b"a"
    remaining = await store.ttl("lock")
    assert remaining is not None and remaining > 29


async def test_compare_and_set(store: StateStore) -> None:
    assert await store.compare_and_set("cfg", None, b"v1")  # expected None: only when absent
    assert not await store.compare_and_set("cfg", None, b"other")
    assert not await store.compare_and_set("cfg", b"wrong", b"v2")
    assert await store.get("cfg") == b"v1"
    assert await store.compare_and_set("cfg", b"v1", b"v2", ttl_s=30)
    assert await store.get("cfg") == b"v2"
    remaining = await store.ttl("cfg")
    assert remaining is not None and remaining > 29
    assert not await store.compare_and_set("missing", b"v1", b"v2")
    assert not await store.exists("missing")
    # Many racing writers, one expected value: exactly one wins.
    wins = await asyncio.gather(*(store.compare_and_set("cfg", b"v2", b"w%d" % i) for i in range(20)))
    assert wins.count(True) == 1


async def test_compare_and_set_refreshes_the_ttl(store: StateStore) -> None:
    # The rollout lease renews itself with compare_and_set(value, value, ttl_s): it must extend.
    await store.set("lease", b"me|1", ttl_s=TTL)
    assert await store.compare_and_set("lease", b"me|1", b"me|1", ttl_s=30)
    await asyncio.sleep(PAST_TTL)
    assert await store.get("lease") == b"me|1"
    remaining = await store.ttl("lease")
    assert remaining is not None and 29 < remaining <= 30
    assert await store.compare_and_set("lease", b"me|1", b"me|1", ttl_s=TTL)
    await asyncio.sleep(PAST_TTL)
    assert not await store.compare_and_set("lease", b"me|1", b"me|1", ttl_s=30)  # expired = absent
    assert await store.get("lease") is None
    assert await store.compare_and_set("lease", None, b"you|2")
    assert await store.ttl("lease") is None  # without ttl_s a write clears the TTL, like SET


async def test_incr_is_atomic_under_200_concurrent_callers(store: StateStore) -> None:
    results = await asyncio.gather(*(store.incr("hits") for _ in range(200)))
    assert sorted(results) == list(range(1, 201))
    assert await store.get("hits") == b"200"
    assert await store.incr("hits", -205) == -5


async def test_type_and_number_errors_are_value_errors(store: StateStore) -> None:
    await store.set("text", b"abc")
    await store.set("fraction", b"1.5")
    await store.hincr("hash", "f", 1.5)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.incr("text"),
        lambda: store.incr("fraction"),
        lambda: store.hincr("text", "f"),
        lambda: store.get("hash"),
        lambda: store.hgetall("text"),
        lambda: store.hincr("hash", "f", 1),  # HINCRBY on a float field
        lambda: store.set("k", b"v", ttl_s=0),
        lambda: store.incr("n", 1.5),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(ValueError):
            await call()
    assert await store.get("text") == b"abc"


async def test_hincr_int_and_float_and_hgetall(store: StateStore) -> None:
    assert await store.hgetall("h") == {}
    first = await store.hincr("h", "n", 2)
    assert first == 2 and isinstance(first, int)
    assert await store.hincr("h", "n", 3) == 5
    assert await store.hincr("h", "поле", 0.5) == 0.5
    assert await store.hincr("h", "поле", 0.25) == 0.75
    total = await store.hincr("h", "поле", 0.25)
    assert total == 1.0 and isinstance(total, float)
    assert await store.hincr("h", "n", 0.5) == 5.5  # HINCRBYFLOAT on an integer field is fine
    assert await store.hincr("h", "m", -1) == -1
    assert await store.hgetall("h") == {"n": b"5.5", "поле": b"1", "m": b"-1"}


async def test_expire_ttl_exists(store: StateStore) -> None:
    assert not await store.expire("nothing", 10)
    assert await store.ttl("nothing") is None
    assert not await store.exists("nothing")
    await store.set("k", b"v")
    assert await store.exists("k")
    assert await store.ttl("k") is None
    assert await store.expire("k", 10)
    remaining = await store.ttl("k")
    assert remaining is not None and 9 < remaining <= 10
    await store.hincr("h", "f")
    assert await store.expire("h", TTL)
    await asyncio.sleep(PAST_TTL)
    assert not await store.exists("h")
    with pytest.raises(ValueError):
        await store.expire("k", -1)


async def test_scan_by_prefix_with_glob_characters(store: StateStore) -> None:
    prefix = "agent_voice_settings:a*b?c[d]\\:"
    wanted = {f"{prefix}{i:04d}" for i in range(1200)}
    decoys = [
        "agent_voice_settings:aXbYcd\\:0001",  # what the unescaped glob would match
        "agent_voice_settings:a*b?c[d]\\",  # the prefix minus one character
        "agent_voice_settings:a*b?c[d\\:0001",
        "other:a*b?c[d]\\:0001",
    ]
    names = sorted(wanted)
    for start in range(0, len(names), 100):
        batch = Batch()
        for name in names[start : start + 100]:
            batch.set(name, b"1")
        await store.execute(batch)
    for decoy in decoys:
        await store.set(decoy, b"0")
    await store.hincr(prefix + "hash", "f")
    await store.set(prefix + "gone", b"0", ttl_s=TTL)
    await asyncio.sleep(PAST_TTL)
    found = await keys(store, prefix, count=100)
    assert len(found) == len(set(found))
    assert set(found) == wanted | {prefix + "hash"}
    pages = store.scan(prefix, count=10)  # incremental: the first key arrives before the end
    assert (await anext(pages)).startswith(prefix)
    await pages.aclose()  # type: ignore[attr-defined]
    assert len(await keys(store, "")) == 1200 + 1 + len(decoys)


async def test_execute_runs_a_batch_of_100_in_order(store: StateStore) -> None:
    batch = Batch()
    expected: list[object] = []
    for i in range(20):
        batch.set(f"b:{i}", b"v%d" % i).get(f"b:{i}").incr("b:count", 2).hincr("b:h", "n", 1)
        expected += [None, b"v%d" % i, 2 * (i + 1), i + 1]
        if i % 2:
            batch.delete(f"b:{i}")
        else:
            batch.expire(f"b:{i}", 60)
        expected.append(1 if i % 2 else True)
    assert len(batch) == 100
    results = await store.execute(batch)
    assert results == expected
    assert [type(r) for r in results[:5]] == [type(None), bytes, int, int, bool]
    follow_up = Batch().hgetall("b:h").get("b:1").get("b:0").hincr("b:h", "x", 0.5, ttl_s=60)
    assert await store.execute(follow_up.incr("b:fresh", ttl_s=60)) == [{"n": b"20"}, None, b"v0", 0.5, 1]
    for key in ("b:h", "b:0", "b:fresh"):
        remaining = await store.ttl(key)
        assert remaining is not None and 59 < remaining <= 60
    assert await store.execute(Batch()) == []


async def test_publish_subscribe_in_order(store: StateStore) -> None:
    await store.publish("events", b"before anyone listens")
    subscribe = store.subscribe
    async with subscribe("events") as sub, subscribe("events") as sub2, subscribe("other") as other:
        for i in range(50):
            await store.publish("events", b"m%d" % i)
        await store.publish("other", b"o")
        sent = [b"m%d" % i for i in range(50)]
        assert [await sub.get(timeout=5) for _ in range(50)] == sent
        received: list[bytes] = []
        async for message in sub2:
            received.append(message)
            if len(received) == 50:
                break
        assert received == sent
        assert await other.get(timeout=5) == b"o"
        assert await sub.get(timeout=0.2) is None


async def test_namespaced_view_is_isolated(raw_store: StateStore) -> None:
    v2 = NamespacedStore(raw_store, "voice_v2")
    assert NamespacedStore(raw_store, "voice_v2:").prefix == "voice_v2:"
    await raw_store.set("stt_cache:abc", b"legacy")
    await v2.set("stt_cache:abc", b"v2")
    assert await raw_store.get("stt_cache:abc") == b"legacy"
    assert await raw_store.get("voice_v2:stt_cache:abc") == b"v2"
    await v2.incr("n")
    await v2.execute(Batch().set("b", b"1").hincr("h", "f"))
    assert sorted(await keys(v2)) == ["b", "h", "n", "stt_cache:abc"]
    assert sorted(await keys(v2, "stt")) == ["stt_cache:abc"]
    assert sorted(await keys(raw_store)) == [
        "stt_cache:abc",
        "voice_v2:b",
        "voice_v2:h",
        "voice_v2:n",
        "voice_v2:stt_cache:abc",
    ]
    assert await v2.delete("stt_cache:abc") == 1
    assert await raw_store.get("stt_cache:abc") == b"legacy"
    async with raw_store.subscribe("voice_v2:ch") as raw_sub, v2.subscribe("ch") as v2_sub:
        await raw_store.publish("ch", b"legacy channel")
        await v2.publish("ch", b"from v2")
        assert await raw_sub.get(timeout=5) == b"from v2"
        assert await v2_sub.get(timeout=5) == b"from v2"
    await v2.aclose()  # a view does not close the shared store
    await raw_store.ping()
    with pytest.raises(ValueError):
        NamespacedStore(raw_store, "")


# --- Redis specifics ----------------------------------------------------------------------------


async def test_redis_outage_is_store_unavailable_and_recovers(clean_redis: RedisServer) -> None:
    store = open_state_store(clean_redis.url)
    try:
        await store.set("k", b"v")
        await asyncio.to_thread(clean_redis.stop)
        calls: list[Callable[[], Awaitable[object]]] = [
            store.ping,
            lambda: store.get("k"),
            lambda: store.execute(Batch().get("k")),
            lambda: keys(store),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailable) as info:
                await call()
            assert clean_redis.url in str(info.value) and info.value.status == 503
        await asyncio.to_thread(clean_redis.restart)
        await store.ping()  # the same store object, no reopen
        assert await store.get("k") is None  # the server keeps nothing on disk
        assert await store.incr("k") == 1
    finally:
        if not clean_redis.running:
            await asyncio.to_thread(clean_redis.restart)
        await store.aclose()


async def test_redis_unreachable_fails_fast_with_a_masked_url() -> None:
    store = open_state_store(f"redis://:s3cret@127.0.0.1:{free_port()}/0", timeout_s=0.5)
    with pytest.raises(StoreUnavailable) as info:
        await store.ping()
    assert "s3cret" not in str(info.value) and ":****@127.0.0.1" in str(info.value)
    await store.aclose()


async def test_redis_passwords_users_and_unix_sockets(clean_redis: RedisServer) -> None:
    admin = Redis.from_url(clean_redis.url)
    await admin.config_set("requirepass", "pw")
    try:
        for url in (
            f"redis://:pw@127.0.0.1:{clean_redis.port}/2",
            f"redis://default:pw@127.0.0.1:{clean_redis.port}",
            f"unix://:pw@{clean_redis.unix_path}?db=3",
        ):
            store = open_state_store(url)
            await store.set("k", url.encode())
            assert await store.get("k") == url.encode()
            await store.aclose()
        wrong = open_state_store(f"redis://:nope@127.0.0.1:{clean_redis.port}/0")
        with pytest.raises(StoreUnavailable):
            await wrong.ping()
        await wrong.aclose()
    finally:
        await admin.config_set("requirepass", "")
        await admin.aclose()


async def test_redis_reads_what_the_legacy_client_wrote(clean_redis: RedisServer) -> None:
    legacy = Redis.from_url(clean_redis.url, decode_responses=True)  # as the legacy service does
    await legacy.set("agent_voice_settings:агент", '{"name": "\\u0430"}', ex=3600)
    raw_client = Redis.from_url(clean_redis.url)
    await raw_client.set(b"stt_cache:\xff\xfe", b"odd key")
    store = open_state_store(clean_redis.url)
    try:
        assert await store.get("agent_voice_settings:агент") == b'{"name": "\\u0430"}'
        odd = [k for k in await keys(store, "stt_cache:")]
        assert len(odd) == 1 and await store.get(odd[0]) == b"odd key"
    finally:
        await store.aclose()
        await legacy.aclose()
        await raw_client.aclose()


async def test_redis_subscription_survives_a_restart(clean_redis: RedisServer) -> None:
    store = open_state_store(clean_redis.url)
    try:
        async with store.subscribe("events") as sub:
            await store.publish("events", b"before")
            assert await sub.get(timeout=5) == b"before"
            await asyncio.to_thread(clean_redis.restart)
            received = None
            for attempt in range(100):  # messages sent before it re-subscribed are lost: resend
                await store.publish("events", b"after-%d" % attempt)
                received = await sub.get(timeout=0.1)
                if received is not None:
                    break
            assert received is not None and received.startswith(b"after-")
    finally:
        await store.aclose()


async def test_redis_subscription_fails_cleanly_while_the_server_is_down(clean_redis: RedisServer) -> None:
    store = RedisStateStore(clean_redis.url, reconnect_s=0.3)
    try:
        async with store.subscribe("events") as sub:
            await asyncio.to_thread(clean_redis.stop)
            with pytest.raises(StoreUnavailable):
                await sub.get(timeout=5)
        with pytest.raises(StoreUnavailable):
            async with store.subscribe("events"):
                pass
    finally:
        await asyncio.to_thread(clean_redis.restart)
        await store.aclose()
