"""One shape for the process's background work: a named task that repeats a step until stopped.

The dependency monitor, the shadow runner, the flag follower, the object store's lifecycle sweep and
the start-up model load each used to hand-roll their own task, loop, error handling and shutdown;
they are all a :class:`BackgroundLoop` now, started and stopped by the runtime that owns them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("voxshift.background")

# Cancelling is retried, not awaited once: a cancellation can be absorbed inside redis-py's pub/sub
# read (seen with redis-py 8.1 on Python 3.11: the task stays "cancelling" and reads on), and a
# single cancel-and-await would then wait forever. 100 x 50 ms bounds a shutdown at 5 s per loop.
_STOP_ATTEMPTS = 100
_STOP_WAIT_S = 0.05


class BackgroundLoop:
    """``step()`` run again and again in a task of its own, from :meth:`start` until :meth:`stop`.

    ``interval_s`` is the pause after each step (before it too with ``wait_first``); 0 runs the steps
    back to back (a step that waits for work itself), None runs the step once. An exception from one
    step goes to ``on_error`` (by default a warning on ``logger``) and the loop carries on: background
    work must never take the process down, and the next step may well succeed.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        *,
        interval_s: float | None,
        wait_first: bool = False,
        logger: logging.Logger = log,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.wait_first = wait_first
        self._step = step
        self._log = logger
        self._on_error = on_error or self._warn
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task (idempotent: a started loop is not started twice)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        for _ in range(_STOP_ATTEMPTS):
            task.cancel()
            await asyncio.wait({task}, timeout=_STOP_WAIT_S)
            if task.done():
                break
        else:
            self._log.warning("task %s did not stop", self.name)
            return
        if not task.cancelled() and task.exception() is not None:
            self._log.error("task %s failed: %r", self.name, task.exception())

    async def _run(self) -> None:
        interval = self.interval_s
        if interval is not None and self.wait_first:
            await asyncio.sleep(interval)
        while True:
            try:
                await self._step()
            except Exception as exc:  # CancelledError is not an Exception: stop() still ends the loop
                self._on_error(exc)
            if interval is None:
                return
            if interval > 0:
                await asyncio.sleep(interval)

    def _warn(self, exc: Exception) -> None:
        self._log.warning("%s failed: %s", self.name, exc)
