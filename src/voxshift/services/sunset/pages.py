"""Pages of a migration in flight together: reads of one page overlap the writes of another.

A page's round trips (legacy read, v2 write, journal commit) are each short, but in a row they leave
the process waiting most of the time; a few pages in flight keep it busy. Memory stays bounded by
``width`` pages. Journal commits still happen one at a time (``commit``), which SQLite needs and
costs PostgreSQL nothing. The first failure stops the run: the remaining pages are cancelled, and
the error is raised as itself (not wrapped in an ``ExceptionGroup``), so callers map it as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any


class PagesInFlight:
    def __init__(self, width: int) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self.commit = asyncio.Lock()
        self._slots = asyncio.Semaphore(width)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    async def __aenter__(self) -> PagesInFlight:
        return self

    async def submit(self, page: Coroutine[Any, Any, None]) -> None:
        """Start ``page`` once a slot is free; raise the failure of an earlier page, if any."""
        try:
            await self._slots.acquire()
        except BaseException:
            page.close()
            raise
        if self._failure is not None:
            self._slots.release()
            page.close()
            raise self._failure
        task = asyncio.create_task(page)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            for task in self._tasks:
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if exc is None and self._failure is not None:
            raise self._failure
