"""The rollout leader lease and the fenced state document, against a real redis-server and the
embedded SQLite file, always through the ``voice_v2:`` view the services get: one winner among
concurrent acquirers (tasks and OS processes), strictly increasing fencing tokens, expiry and
takeover, release only by the holder, and a stale leader's writes refused by the token."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import pytest_asyncio

from tests.fixtures.redis_server import RedisServer
from voxshift.errors import VersionConflict
from voxshift.services.rollout.fenced import FencedDocument, StaleLeader, Stored
from voxshift.services.rollout.lease import Lease, default_holder, take_token
from voxshift.stores.state import NamespacedStore, StateStore, open_state_store

TTL = 0.3
PAST_TTL = 0.5  # sleep this long to be sure a TTL-second lease has expired in the store
NAMESPACE = "voice_v2"


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("clean_redis")
        return server.url
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest_asyncio.fixture(loop_scope="function")
async def opener(url: str) -> AsyncIterator[Callable[[], StateStore]]:
    """Opens separate handles (connections) on the same store, as separate replicas would."""
    opened: list[StateStore] = []

    def open_view() -> StateStore:
        raw = open_state_store(url)
        opened.append(raw)
        return NamespacedStore(raw, NAMESPACE)

    yield open_view
    for raw in opened:
        await raw.aclose()


@pytest.fixture
def store(opener: Callable[[], StateStore]) -> StateStore:
    return opener()


def lease(store: StateStore, holder: str, ttl_s: float = TTL) -> Lease:
    return Lease(store, holder=holder, ttl_s=ttl_s)


async def test_exactly_one_of_ten_concurrent_acquirers_wins(opener: Callable[[], StateStore]) -> None:
    leases = [lease(opener(), f"replica-{i}", ttl_s=30) for i in range(10)]
    grants = await asyncio.gather(*(le.acquire() for le in leases))
    winners = [g for g in grants if g is not None]
    assert len(winners) == 1
    assert await leases[0].holder_info() == (winners[0].holder, winners[0].token)
    assert winners[0].token == 1  # losers never number a lease they did not claim
    # Nobody else gets it while it is held; the winner acquiring again renews the same token.
    again = await asyncio.gather(*(le.acquire() for le in leases))
    assert [(g.holder, g.token) for g in again if g is not None] == [(winners[0].holder, 1)]


async def test_keys_live_in_the_namespace_with_the_documented_names(store: StateStore) -> None:
    assert isinstance(store, NamespacedStore)
    grant = await lease(store, "me", ttl_s=30).acquire()
    assert grant is not None
    assert await store.inner.get("voice_v2:rollout:lease") == b"me|1"
    assert await store.inner.get("voice_v2:rollout:fence") == b"1"
    remaining = await store.ttl("rollout:lease")
    assert remaining is not None and 29 < remaining <= 30


async def test_tokens_strictly_increase_across_grants_refences_and_operator_tokens(store: StateStore) -> None:
    a, b = lease(store, "a", ttl_s=30), lease(store, "b", ttl_s=30)
    seen: list[int] = []
    for step in range(3):
        first = await a.acquire()
        assert first is not None and await b.acquire() is None
        refenced = await a.refence()
        assert refenced is not None and refenced.holder == "a"
        assert await a.holder_info() == ("a", refenced.token)
        operator = await take_token(store)
        await a.release()
        assert a.grant is None
        second = await b.acquire()
        assert second is not None, f"step {step}: a released lease is free at once"
        await b.release()
        seen += [first.token, refenced.token, operator, second.token]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen == list(range(1, 13))


async def test_renew_extends_only_while_ours(store: StateStore) -> None:
    a, b = lease(store, "a"), lease(store, "b")
    assert await a.renew() is None  # nothing held yet
    first = await a.acquire()
    assert first is not None
    await asyncio.sleep(TTL / 2)
    renewed = await a.renew()
    assert renewed is not None and renewed.token == first.token
    assert renewed.expires_at > first.expires_at
    await asyncio.sleep(PAST_TTL)  # a missed renewal: the store lets it go
    assert a.grant is None
    taken = await b.acquire()
    assert taken is not None and taken.token > first.token
    assert await a.renew() is None
    assert await a.acquire() is None
    assert await b.holder_info() == ("b", taken.token)
    assert await b.renew() is not None


async def test_release_only_removes_our_own_lease(store: StateStore) -> None:
    a, b, c = lease(store, "a"), lease(store, "b"), lease(store, "c")
    assert await a.acquire() is not None
    await asyncio.sleep(PAST_TTL)
    held = await b.acquire()
    assert held is not None
    await a.release()  # a's lease ran out and b took over: a must not free b's
    assert await c.acquire() is None
    assert await b.holder_info() == ("b", held.token)
    await b.release()
    assert await b.holder_info() is None
    taken = await c.acquire()
    assert taken is not None and taken.holder == "c"


async def test_refence_after_losing_the_lease_gives_nothing(store: StateStore) -> None:
    a, b = lease(store, "a"), lease(store, "b")
    assert await a.refence() is None
    assert await a.acquire() is not None
    await asyncio.sleep(PAST_TTL)
    assert await b.acquire() is not None
    assert await a.refence() is None
    assert a.grant is None


class _HeldIncr(NamespacedStore):
    """A replica that stalls (a GC pause, a stopped VM) between claiming the lease and numbering it."""

    def __init__(self, inner: StateStore) -> None:
        super().__init__(inner, NAMESPACE)
        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        self.entered.set()
        await self.go.wait()
        return await super().incr(key, amount, ttl_s)


async def test_a_claimant_that_stalls_past_the_ttl_never_gets_an_older_token_granted(
    store: StateStore,
) -> None:
    assert isinstance(store, NamespacedStore)
    slow = _HeldIncr(store.inner)
    a, b = lease(slow, "a"), lease(store, "b")
    attempt = asyncio.create_task(a.acquire())
    await slow.entered.wait()
    assert await b.holder_info() == ("a", 0)  # claimed, not yet numbered
    await asyncio.sleep(PAST_TTL)
    taken = await b.acquire()
    assert taken is not None and taken.token == 1
    slow.go.set()
    assert await attempt is None  # its token (2) was burned: b's grant stays the only one
    assert await take_token(store) == 3
    assert await b.holder_info() == ("b", 1)


async def test_grant_is_trusted_locally_only_until_a_margin_before_expiry(store: StateStore) -> None:
    now = [1000.0]
    a = Lease(store, holder="a", ttl_s=30, clock=lambda: now[0], safety_margin_s=5)
    grant = await a.acquire()
    assert grant is not None and grant.expires_at == 1030.0
    assert a.renew_interval_s == pytest.approx(25 / 3)
    now[0] = 1024.9
    assert a.grant == grant
    now[0] = 1025.0
    assert a.grant is None  # the store still has it for ~5 s: the local view ends first
    now[0] = 1026.0
    renewed = await a.renew()
    assert renewed is not None and renewed.expires_at == 1056.0 and a.grant == renewed
    assert Lease(store, holder="x", ttl_s=10).safety_margin_s == 2.0
    with pytest.raises(ValueError):
        Lease(store, holder="x", ttl_s=10, safety_margin_s=10)
    with pytest.raises(ValueError):
        Lease(store, holder="", ttl_s=10)


def test_default_holder_is_host_pid_random() -> None:
    import os
    import socket

    first, second = default_holder(), default_holder()
    host, pid, rand = first.rsplit(":", 2)
    assert host == socket.gethostname() and pid == str(os.getpid()) and len(rand) == 8
    assert first != second


# --- the fenced document ---------------------------------------------------------------------------


async def test_a_stale_leader_cannot_overwrite_a_newer_leaders_state(store: StateStore) -> None:
    doc = FencedDocument(store, "rollout:state")
    a, b = lease(store, "a"), lease(store, "b")
    grant_a = await a.acquire()
    assert grant_a is not None
    stored = await doc.claim(grant_a.token)
    assert stored == Stored(None, grant_a.token, b"%d\n" % grant_a.token)
    assert await doc.write(b'{"phase": "canary"}', token=grant_a.token, expected=stored)
    stale_view = await doc.read()
    assert stale_view.value == b'{"phase": "canary"}' and stale_view.fence == grant_a.token

    await asyncio.sleep(PAST_TTL)  # a stalls past its lease; b takes over and claims the document
    grant_b = await b.acquire()
    assert grant_b is not None and grant_b.token > grant_a.token
    claimed = await doc.claim(grant_b.token)
    assert claimed.value == b'{"phase": "canary"}' and claimed.fence == grant_b.token

    # a wakes up and writes what it decided before the pause: refused, though b changed no value.
    with pytest.raises(StaleLeader) as caught:
        await doc.write(b'{"phase": "pilot"}', token=grant_a.token, expected=stale_view)
    assert (caught.value.token, caught.value.fence) == (grant_a.token, grant_b.token)
    assert isinstance(caught.value, VersionConflict)
    with pytest.raises(StaleLeader):  # a fresh read does not help an old token
        await doc.write(b'{"phase": "pilot"}', token=grant_a.token, expected=await doc.read())
    with pytest.raises(StaleLeader):
        await doc.claim(grant_a.token)
    assert (await doc.read()).value == b'{"phase": "canary"}'


async def test_a_stale_leader_cannot_write_the_first_document_either(store: StateStore) -> None:
    doc = FencedDocument(store, "rollout:state")
    never_written = await doc.read()
    assert never_written == Stored(None, 0, None)
    await doc.claim(2)  # the new leader claims a document nobody wrote yet
    with pytest.raises(StaleLeader):
        await doc.write(b"old", token=1, expected=never_written)
    assert await doc.write(b"new", token=2, expected=await doc.read())
    assert (await doc.read()).value == b"new"


async def test_a_compare_and_set_conflict_returns_false_and_keeps_the_winner(store: StateStore) -> None:
    doc = FencedDocument(store, "rollout:state")
    token = await doc.next_token()
    base = await doc.read()
    results = await asyncio.gather(*(doc.write(b"w%d" % i, token=token, expected=base) for i in range(10)))
    assert results.count(True) == 1
    assert (await doc.read()).value == b"w%d" % results.index(True)
    assert not await doc.write(b"late", token=token, expected=base)
    current = await doc.read()
    assert await doc.write(b"next", token=token, expected=current)
    with pytest.raises(ValueError):
        await doc.write(b"", token=token, expected=await doc.read())
    with pytest.raises(ValueError):
        await doc.write(b"x", token=0, expected=await doc.read())


async def test_an_operator_write_fences_the_leader_until_it_refences(store: StateStore) -> None:
    doc = FencedDocument(store, "rollout:state")
    leader = lease(store, "leader", ttl_s=30)
    grant = await leader.acquire()
    assert grant is not None
    assert await doc.write(b"running", token=grant.token, expected=await doc.claim(grant.token))

    # `voxshift rollout pause`: a one-shot token from the same counter, then a CAS write.
    operator = await doc.next_token()
    assert operator > grant.token
    assert await doc.write(b"paused", token=operator, expected=await doc.read())

    # The leader's next write (from its last read) is refused; it re-fences, re-reads, continues.
    with pytest.raises(StaleLeader):
        await doc.write(b"promoted", token=grant.token, expected=await doc.read())
    fresh = await leader.refence()
    assert fresh is not None and fresh.token > operator
    assert await leader.holder_info() == ("leader", fresh.token)
    current = await doc.read()
    assert current.value == b"paused"
    assert await doc.write(b"paused (seen)", token=fresh.token, expected=current)

    # An operator who took a token before the refence retries with a new one.
    with pytest.raises(StaleLeader):
        await doc.write(b"resumed", token=operator, expected=await doc.read())
    retry = await doc.next_token()
    assert await doc.write(b"resumed", token=retry, expected=await doc.read())
    assert (await doc.read()).value == b"resumed"


async def test_a_document_without_a_fence_header_is_a_typed_error(store: StateStore) -> None:
    from voxshift.errors import VoxshiftError

    await store.set("rollout:state", b'{"not": "fenced"}')
    with pytest.raises(VoxshiftError, match="not a fenced document"):
        await FencedDocument(store, "rollout:state").read()


# --- OS processes --------------------------------------------------------------------------------

PROCESSES = 4


def _race(url: str, holder: str, start: Event, results: Queue[tuple[str, int | None]]) -> None:
    async def run() -> None:
        raw = open_state_store(url)
        try:
            view = NamespacedStore(raw, NAMESPACE)
            await view.ping()
            start.wait(60)  # every process is connected: now they race
            grant = await Lease(view, holder=holder, ttl_s=60).acquire()
            results.put((holder, None if grant is None else grant.token))
        finally:
            await raw.aclose()

    asyncio.run(run())


async def test_processes_racing_for_the_lease_on_one_store_yield_one_winner(
    url: str, store: StateStore
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results: Queue[tuple[str, int | None]] = ctx.Queue()
    holders = [f"proc-{i}" for i in range(PROCESSES)]
    procs = [ctx.Process(target=_race, args=(url, h, start, results)) for h in holders]
    for proc in procs:
        proc.start()
    start.set()
    outcomes = [await asyncio.to_thread(results.get, True, 120) for _ in procs]
    for proc in procs:
        await asyncio.to_thread(proc.join, 60)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    winners = [(holder, token) for holder, token in outcomes if token is not None]
    assert len(winners) == 1 and winners[0][1] == 1
    assert await Lease(store, holder="observer", ttl_s=1).holder_info() == winners[0]
