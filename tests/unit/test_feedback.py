"""services.feedback: the request memory's queue (on the real embedded state store), the rating and
comment checks, and the mean rating's confidence interval against independently computed numbers."""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from voxshift.core.rollout.window import RatingStats
from voxshift.errors import InvalidRequest, StoreUnavailable
from voxshift.services.feedback.memory import (
    RequestMemory,
    ServedRequest,
    is_request_id,
    memory_key,
    new_request_id,
)
from voxshift.services.feedback.service import check_comment, check_rating, mean_interval
from voxshift.services.wiring.dependencies import Dependency
from voxshift.stores.state import StateStore, open_state_store
from voxshift.stores.state.base import Op, OpResult


def served(request_id: str | None = None, **fields: Any) -> ServedRequest:
    values: dict[str, Any] = {
        "request_id": request_id or new_request_id(),
        "operation": "stt",
        "system": "voice_v2",
        "provider": "whisper",
        "at": 1_700_000_000.0,
        "user_id": "u1",
        "agent_id": "agent_a",
    }
    return ServedRequest(**(values | fields))


class CountingStore:
    """The real embedded store, counting round trips; ``down`` makes every batch fail as Redis would."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.down = False

    async def execute(self, batch: Sequence[Op] | Any) -> list[OpResult]:
        if self.down:
            raise StoreUnavailable("state store down")
        self.batches.append(len(batch))
        return await self.inner.execute(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    inner = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield CountingStore(inner)
    await inner.aclose()


def test_request_ids_are_random_and_recognisable() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_request_id(i) and len(i) == 28 for i in ids)
    for other in ("req_short", "req_" + "a" * 25, "REQ_" + "a" * 24, "req_" + "a" * 23 + "!", ""):
        assert not is_request_id(other)


async def test_queued_records_are_found_before_and_after_one_batched_write(store: CountingStore) -> None:
    memory = RequestMemory(store, ttl_s=60)  # type: ignore[arg-type]
    records = [served(user_id=f"u{i}") for i in range(3)]
    for record in records:
        memory.remember(record)
    assert memory.pending == 3 and store.batches == []
    assert await memory.recall(records[0].request_id) == records[0]  # still queued: found anyway
    assert await memory.flush() == 3
    assert store.batches == [3]  # one round trip for all three
    assert memory.pending == 0 and memory.counts.remembered == 3
    assert await memory.recall(records[2].request_id) == records[2]  # now from the store
    ttl = await store.inner.ttl(memory_key(records[2].request_id))
    assert ttl is not None and 59 < ttl <= 60
    assert await memory.recall(new_request_id()) is None


async def test_a_full_queue_or_a_store_outage_drops_and_counts(store: CountingStore) -> None:
    memory = RequestMemory(store, ttl_s=60, max_pending=2)  # type: ignore[arg-type]
    first, second, third = served(), served(), served()
    for record in (first, second, third):
        memory.remember(record)  # never raises, never waits
    assert memory.pending == 2 and memory.counts.dropped == 1

    store.down = True
    health = Dependency("state_store", store.inner.ping)
    memory.health = health
    assert await memory.flush() == 0
    assert (memory.pending, memory.counts.dropped, memory.counts.remembered) == (0, 3, 0)
    assert not health.up  # the outage is shared: the next batch is skipped without a round trip
    memory.remember(served())
    assert await memory.flush() == 0 and store.batches == [] and memory.counts.dropped == 4
    store.down = False
    health.mark_up()
    assert await memory.recall(first.request_id) is None  # dropped means unknown, not an error


async def test_the_writer_drains_in_the_background_and_stop_writes_the_rest(store: CountingStore) -> None:
    memory = RequestMemory(store, ttl_s=60)  # type: ignore[arg-type]
    memory.start()
    try:
        record = served()
        memory.remember(record)
        for _ in range(200):
            if memory.counts.remembered == 1:
                break
            await asyncio.sleep(0.01)
        assert memory.counts.remembered == 1 and await store.inner.exists(memory_key(record.request_id))
    finally:
        await memory.stop()
    late = served()
    memory.remember(late)  # queued after the writer stopped
    await memory.stop()
    assert memory.counts.remembered == 2 and await store.inner.exists(memory_key(late.request_id))


async def test_records_this_version_cannot_read_are_unknown(store: CountingStore) -> None:
    memory = RequestMemory(store, ttl_s=60)  # type: ignore[arg-type]
    for junk in (b"not json", b"[]", b'{"request_id": "x"}', served(system="v3").to_json()):
        rid = new_request_id()
        await store.inner.set(memory_key(rid), junk)
        assert await memory.recall(rid) is None
    record = served(fallback=True, user_id=None, system="legacy")
    assert ServedRequest.from_json(record.to_json()) == record


@pytest.mark.parametrize("rating", [0, 6, -1, 4.0, "4", True, None])
def test_ratings_are_integers_from_1_to_5(rating: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_rating(rating)
    assert caught.value.param == "rating"


def test_comments() -> None:
    assert check_comment(None) is None and check_comment("") is None
    assert check_comment("x" * 2000) == "x" * 2000
    for bad in ("x" * 2001, "a\x00b", 5):
        with pytest.raises(InvalidRequest) as caught:
            check_comment(bad)
        assert caught.value.param == "comment"


def stats_of(ratings: list[int]) -> RatingStats:
    return RatingStats(len(ratings), sum(ratings), sum(r * r for r in ratings))


def test_mean_interval_is_students_t() -> None:
    ratings = [5, 4, 4, 3, 5, 2, 4, 5]
    low, high = mean_interval(stats_of(ratings))
    mean, sd = statistics.mean(ratings), statistics.stdev(ratings)
    half = 2.365 * sd / math.sqrt(len(ratings))  # t(0.975, 7 df)
    # The criteria's t quantile is a Cornish-Fisher expansion: within 0.2 % of the 3-decimal table.
    assert low == pytest.approx(mean - half, rel=1e-3) and high == pytest.approx(mean + half, rel=1e-3)
    assert (low, high) == pytest.approx((3.1061, 4.8939), abs=5e-4)  # 4.0 +- 0.8939


def test_mean_interval_edges() -> None:
    assert mean_interval(RatingStats()) == (None, None)
    assert mean_interval(stats_of([4])) == (None, None)  # one rating: no spread, no interval
    assert mean_interval(stats_of([5] * 10)) == (5.0, 5.0)
    assert mean_interval(stats_of([1, 5])) == (1.0, 5.0)  # clipped to the scale
    big = stats_of([4, 5] * 500)
    low, high = mean_interval(big)
    assert (
        low is not None
        and high is not None
        and high - low
        == pytest.approx(2 * 1.96238 * statistics.stdev([4, 5] * 500) / math.sqrt(1000), rel=1e-4)
    )
