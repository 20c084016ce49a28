"""BackgroundLoop: the one shape of the runtime's background work (monitor, shadow, flag follower,
lifecycle sweep, model load)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voxshift.services.wiring import background
from voxshift.services.wiring.background import BackgroundLoop


async def test_steps_repeat_until_stopped_and_a_failed_step_does_not_end_the_loop() -> None:
    calls = 0
    errors: list[Exception] = []

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("boom")

    loop = BackgroundLoop("t", step, interval_s=0.01, on_error=errors.append)
    loop.start()
    loop.start()  # idempotent: still one task
    while calls < 4:
        await asyncio.sleep(0.01)
    assert loop.running
    await loop.stop()
    assert not loop.running
    seen = calls
    await asyncio.sleep(0.05)
    assert calls == seen  # stopped for good
    assert [str(e) for e in errors] == ["boom"]
    await loop.stop()  # idempotent


async def test_the_default_error_handler_logs_a_warning_named_after_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def step() -> None:
        raise ValueError("nope")

    loop = BackgroundLoop("lifecycle sweep", step, interval_s=None)
    with caplog.at_level(logging.WARNING, logger="voxshift.background"):
        loop.start()
        await asyncio.sleep(0.02)
        await loop.stop()
    assert "lifecycle sweep failed: nope" in [r.getMessage() for r in caplog.records]


async def test_interval_none_runs_once_and_wait_first_waits_before_the_first_step() -> None:
    once: list[int] = []

    async def record() -> None:
        once.append(1)

    single = BackgroundLoop("once", record, interval_s=None)
    single.start()
    await asyncio.sleep(0.02)
    assert once == [1] and not single.running
    await single.stop()

    later: list[int] = []

    async def record_later() -> None:
        later.append(1)

    delayed = BackgroundLoop("later", record_later, interval_s=0.2, wait_first=True)
    delayed.start()
    await asyncio.sleep(0.05)
    assert later == []  # the first step comes after one interval
    await delayed.stop()


async def test_stop_gives_up_on_a_task_that_swallows_its_cancellation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(background, "_STOP_ATTEMPTS", 3)
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                me = asyncio.current_task()
                assert me is not None
                me.uncancel()

    loop = BackgroundLoop("stubborn", stubborn, interval_s=None)
    loop.start()
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="voxshift.background"):
        await loop.stop()  # returns instead of waiting forever
    assert "task stubborn did not stop" in [r.getMessage() for r in caplog.records]
    release.set()
    await asyncio.sleep(0.01)  # let it end before the test's event loop does
