"""The inference pool with real threads: off-loop execution, admission control, slot accounting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from voxshift.engines.pool import InferencePool
from voxshift.errors import Overloaded


async def wait_until(predicate: object, timeout: float = 2.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_blocking_work_runs_off_the_event_loop() -> None:
    pool = InferencePool(workers=1, queue_size=0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        started = time.perf_counter()
        result = await pool.run(lambda: (time.sleep(0.3), threading.current_thread().name)[1])
        elapsed = time.perf_counter() - started
    finally:
        task.cancel()
        pool.shutdown()
    assert result.startswith("voxshift-infer")
    assert elapsed >= 0.3
    # A blocked loop would tick ~0 times; allow generous scheduling jitter on a busy 2-core box.
    assert ticks >= 15, ticks


async def test_excess_callers_are_refused_with_retry_after_and_slots_free_afterwards() -> None:
    pool = InferencePool(workers=1, queue_size=1, retry_after_s=3)
    gate = threading.Event()
    try:
        first = asyncio.create_task(pool.run(gate.wait, 5.0))
        second = asyncio.create_task(pool.run(gate.wait, 5.0))  # waits in the queue
        await wait_until(lambda: pool.in_flight == 2)
        assert pool.capacity == 2

        with pytest.raises(Overloaded) as refused:
            await pool.run(time.sleep, 0)
        assert refused.value.retry_after_s == 3
        assert refused.value.headers() == {"Retry-After": "3"}
        assert refused.value.status == 503
        assert pool.in_flight == 2  # a refusal takes no slot

        gate.set()
        assert await first is True and await second is True
        await wait_until(lambda: pool.in_flight == 0)
        assert await pool.run(lambda: 42) == 42
    finally:
        gate.set()
        pool.shutdown()


async def test_slot_stays_taken_while_a_timed_out_call_still_runs() -> None:
    pool = InferencePool(workers=1, queue_size=0)
    gate = threading.Event()
    running = threading.Event()

    def work() -> str:
        running.set()
        gate.wait(5.0)
        return "done"

    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.run(work), 0.05)
        assert running.is_set()
        # The caller gave up but the thread has not: admitting another call would oversubscribe.
        assert pool.in_flight == 1
        with pytest.raises(Overloaded):
            await pool.run(time.sleep, 0)

        gate.set()
        await wait_until(lambda: pool.in_flight == 0)
        assert await pool.run(lambda: "next") == "next"
    finally:
        gate.set()
        pool.shutdown()


async def test_cancelled_queued_call_frees_its_slot_at_once() -> None:
    pool = InferencePool(workers=1, queue_size=1)
    gate = threading.Event()
    ran: list[str] = []
    try:
        busy = asyncio.create_task(pool.run(gate.wait, 5.0))
        await wait_until(lambda: pool.in_flight == 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.run(ran.append, "queued"), 0.05)
        # Never started, so nothing is running on its behalf: the slot is free again.
        assert pool.in_flight == 1
        gate.set()
        await busy
        await wait_until(lambda: pool.in_flight == 0)
        assert ran == []
    finally:
        gate.set()
        pool.shutdown()


async def test_errors_propagate_and_free_the_slot() -> None:
    pool = InferencePool(workers=2, queue_size=0)

    def boom() -> None:
        raise ValueError("bad input")

    try:
        with pytest.raises(ValueError, match="bad input"):
            await pool.run(boom)
        await wait_until(lambda: pool.in_flight == 0)
    finally:
        pool.shutdown()


async def test_counter_returns_to_zero_under_concurrent_release() -> None:
    # Releases happen on worker threads while the loop admits new calls; a racy counter drifts.
    pool = InferencePool(workers=2, queue_size=6)
    try:
        for _ in range(50):
            results = await asyncio.gather(*(pool.run(sum, [i, 1]) for i in range(pool.capacity)))
            assert results == [i + 1 for i in range(pool.capacity)]
        await wait_until(lambda: pool.in_flight == 0)
    finally:
        pool.shutdown()


async def test_after_shutdown_calls_are_refused_not_crashed() -> None:
    pool = InferencePool(workers=1, queue_size=0)
    pool.shutdown()
    with pytest.raises(Overloaded, match="shutting down"):
        await pool.run(time.sleep, 0)
    assert pool.in_flight == 0


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        InferencePool(workers=0, queue_size=1)
    with pytest.raises(ValueError):
        InferencePool(workers=1, queue_size=-1)
