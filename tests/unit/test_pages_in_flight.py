"""PagesInFlight: bounded concurrency for a migration's pages, first failure raised as itself."""

from __future__ import annotations

import asyncio

import pytest

from voxshift.errors import StoreUnavailable
from voxshift.services.sunset.pages import PagesInFlight


async def test_at_most_width_pages_run_at_once_and_all_finish() -> None:
    running = peak = 0
    done: list[int] = []

    async def page(i: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (i % 3))
        running -= 1
        done.append(i)

    async with PagesInFlight(3) as pages:
        for i in range(20):
            await pages.submit(page(i))
    assert sorted(done) == list(range(20))
    assert peak == 3


async def test_a_failing_page_stops_the_run_and_its_error_comes_out_unwrapped() -> None:
    cancelled: list[int] = []
    started: list[int] = []

    async def slow(i: int) -> None:
        started.append(i)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    async def failing() -> None:
        raise StoreUnavailable("legacy Redis failed")

    with pytest.raises(StoreUnavailable, match="legacy Redis failed"):
        async with PagesInFlight(3) as pages:
            await pages.submit(slow(1))
            await pages.submit(failing())
            await pages.submit(slow(2))
            for i in range(3, 10):  # the next free slot reports the failure instead of starting more
                await pages.submit(slow(i))
    assert sorted(cancelled) == [1, 2]  # the pages in flight were cancelled and awaited
    assert started == [1, 2]


async def test_a_failure_in_the_last_pages_is_raised_on_exit() -> None:
    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad page")

    with pytest.raises(ValueError, match="bad page"):
        async with PagesInFlight(2) as pages:
            await pages.submit(failing())


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PagesInFlight(0)
