"""The inference pool with real threads: off-loop execution, admission control, slot accounting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from voxshift.engines.pool import InferencePool, PoolDeadlineExceeded
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


# --- hard deadlines, admission by expected wait, observability (issue 9) ---------------------------


async def test_a_job_past_its_deadline_is_abandoned_its_slot_returned_and_its_worker_replaced() -> None:
    pool = InferencePool(workers=1, queue_size=1, job_deadline_s=0.2)
    wedged = threading.Event()  # never set during the test: a library call that never returns
    try:
        with pytest.raises(PoolDeadlineExceeded):
            await pool.run(wedged.wait, 30.0)
        snap = pool.snapshot()
        assert (snap.in_flight, snap.running, snap.abandoned, snap.stuck_threads) == (0, 0, 1, 1)
        # A replacement worker serves the next call while the stuck thread is still blocked.
        assert await pool.run(lambda: threading.current_thread().name) != "stuck"
        assert pool.snapshot().completed == 1
    finally:
        wedged.set()
        pool.shutdown()
    # The stuck thread leaves once its call returns instead of serving again.
    await wait_until(lambda: pool.snapshot().stuck_threads == 0)


async def test_stuck_threads_are_bounded_and_the_pool_then_reports_itself_stalled() -> None:
    pool = InferencePool(workers=1, queue_size=4, job_deadline_s=0.05, stall_after_s=0.3)
    wedged = threading.Event()
    try:
        for _ in range(4):  # the bound: 4 stuck threads per worker
            with pytest.raises(PoolDeadlineExceeded):
                await pool.run(wedged.wait, 30.0)
        assert pool.snapshot().stuck_threads == 4
        waiting = asyncio.create_task(pool.run(lambda: "never started"))
        await wait_until(lambda: pool.snapshot().stalled, timeout=3.0)
        snap = pool.snapshot()
        assert snap.queued == 1 and snap.running == 0 and snap.last_progress_age_s > 0.3
        wedged.set()  # the stuck calls return: their threads leave and a worker takes the queue
        assert await waiting == "never started"
        await wait_until(lambda: not pool.snapshot().stalled)
    finally:
        wedged.set()
        pool.shutdown()


async def test_admission_refuses_what_cannot_start_within_max_wait_with_an_honest_retry_after() -> None:
    # A fake clock that each job moves by its own duration: service times are exact, no sleeping.
    now = [0.0]
    pool = InferencePool(workers=1, queue_size=50, max_wait_s=1.3, clock=lambda: now[0])
    gate = threading.Event()

    def job(seconds: float) -> float:
        now[0] += seconds
        return seconds

    try:
        await pool.run(job, 0.3)  # learns that this kind of job takes 0.3 s
        first = asyncio.create_task(pool.run(gate.wait, 5.0))  # an unknown kind: the overall 0.3 s
        await wait_until(lambda: pool.snapshot().running == 1)
        queued = [asyncio.create_task(pool.run(job, 0.3)) for _ in range(2)]
        await wait_until(lambda: pool.snapshot().queued == 2)
        # 0.3 s left of the running job + 0.6 s queued, one worker.
        assert pool.snapshot().expected_wait_s == pytest.approx(0.9)
        third = asyncio.create_task(pool.run(job, 0.3))  # 0.9 + 0.3 <= 1.3: admitted
        await wait_until(lambda: pool.snapshot().queued == 3)
        with pytest.raises(Overloaded) as refused:
            await pool.run(job, 0.3)  # 1.2 + 0.3 > 1.3
        assert "busy" in refused.value.message and "1.2 s of work" in refused.value.message
        assert refused.value.retry_after_s == 1  # 0.2 s over, rounded up to the next second
        assert pool.snapshot().rejected == 1
        # A follow-up of an admitted request is never refused for load.
        follow = asyncio.create_task(pool.run_follow_up(job, 0.01))
        gate.set()
        assert await first is True
        assert await follow == 0.01
        assert [await t for t in (*queued, third)] == [0.3, 0.3, 0.3]
    finally:
        gate.set()
        pool.shutdown()


def test_retry_after_grows_with_the_work_ahead() -> None:
    now = [0.0]
    pool = InferencePool(workers=2, queue_size=100, max_wait_s=2.0, clock=lambda: now[0])
    pool._service_s["job"] = pool._overall_s = 1.0  # as if learned
    pool._queued_work_s = 11.0  # 11 s of queued work on 2 workers: 5.5 s before a new job starts
    pool._queue.extend([object()] * 11)  # type: ignore[list-item]
    pool._in_flight = 11
    with pytest.raises(Overloaded) as refused:
        pool._admit(lambda: None, "job", follow_up=False)
    assert refused.value.retry_after_s == 5  # 5.5 + 1.0 - 2.0 = 4.5 -> 5
    pool._queue.clear()


async def test_follow_ups_run_before_new_work() -> None:
    pool = InferencePool(workers=1, queue_size=10)
    gate = threading.Event()
    order: list[str] = []
    try:
        busy = asyncio.create_task(pool.run(gate.wait, 5.0))
        await wait_until(lambda: pool.snapshot().running == 1)
        new = asyncio.create_task(pool.run(order.append, "new"))
        await wait_until(lambda: pool.snapshot().queued == 1)
        follow = asyncio.create_task(pool.run_follow_up(order.append, "follow-up"))
        await wait_until(lambda: pool.snapshot().queued == 2)
        gate.set()
        await asyncio.gather(busy, new, follow)
        assert order == ["follow-up", "new"]
    finally:
        gate.set()
        pool.shutdown()


async def test_snapshot_counts_and_shape() -> None:
    pool = InferencePool(workers=2, queue_size=3, name="legacy")
    try:
        await asyncio.gather(*(pool.run(time.sleep, 0.01) for _ in range(4)))
        snap = pool.snapshot().as_dict()
        assert snap["name"] == "legacy"
        assert (snap["workers"], snap["capacity"], snap["in_flight"], snap["completed"]) == (2, 5, 0, 4)
        assert snap["stalled"] is False and snap["service_ms"] >= 10
    finally:
        pool.shutdown()


async def test_ensure_room_refuses_early_exactly_when_a_job_would_be_refused() -> None:
    pool = InferencePool(workers=1, queue_size=0)
    gate = threading.Event()
    try:
        pool.ensure_room(time.sleep)  # a free worker: room
        busy = asyncio.create_task(pool.run(gate.wait, 5.0))
        await wait_until(lambda: pool.in_flight == 1)
        with pytest.raises(Overloaded):
            pool.ensure_room(time.sleep)
        assert pool.in_flight == 1  # a check takes no slot
        gate.set()
        await busy
        await wait_until(lambda: pool.in_flight == 0)
        pool.ensure_room(time.sleep)
    finally:
        gate.set()
        pool.shutdown()
