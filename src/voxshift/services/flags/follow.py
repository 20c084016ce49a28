"""Following other writers: the background tasks that keep one process's flags in step with every
replica. Used by :class:`voxshift.services.flags.service.FeatureFlags` (see its module docstring).

Two tasks, because neither is enough alone: a poll every 250 ms (``FeatureFlags.refresh``: the
state store's copy, or the database's while the store is down), and a pub/sub listener on channel
``flags`` that applies a published config at once. Pub/sub drops messages while a connection is
re-established, so the poll bounds how late a change can be; the listener makes it usually instant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from voxshift.core.flags import FlagConfig
from voxshift.errors import InvalidRequest
from voxshift.services.flags.store import CHANNEL

if TYPE_CHECKING:
    from voxshift.stores.state.base import StateStore

# The flag service's logger, not this module's: operators (and the CLI, which silences it) tune
# the flags' logging in one place.
log = logging.getLogger("voxshift.services.flags.service")

_RESUBSCRIBE_MAX_S = 2.0
_STOP_ATTEMPTS = 100


class FlagFollower:
    """The poll and listen tasks of one FeatureFlags, from :meth:`start` until :meth:`stop`.

    ``refresh`` is one poll; ``apply`` adopts a config received on the channel (and ignores one
    that is not newer). ``store`` None (database only): no listener, the poll alone follows.
    """

    def __init__(
        self,
        store: StateStore | None,
        refresh: Callable[[], Awaitable[FlagConfig]],
        apply: Callable[[FlagConfig], None],
        *,
        poll_interval_s: float,
        listen: bool,
    ) -> None:
        self.store = store
        self.poll_interval_s = poll_interval_s
        self.listen = listen
        self._refresh = refresh
        self._apply = apply
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="flags-poll"))
        if self.listen and self.store is not None:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name="flags-listen"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            # Cancel until it sticks: a cancellation can be absorbed inside redis-py's pub/sub read
            # (seen with redis-py 8.1 on Python 3.11: the task stays "cancelling" and reads on), and
            # a single cancel-and-await would then wait forever.
            for _ in range(_STOP_ATTEMPTS):
                task.cancel()
                await asyncio.wait({task}, timeout=0.05)
                if task.done():
                    break
            else:
                log.warning("flags: task %s did not stop", task.get_name())
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("flags: task %s failed: %r", task.get_name(), task.exception())

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self._refresh()
            except Exception:  # a poll must never die: the next one may succeed
                log.exception("flags: poll failed")

    async def _listen_loop(self) -> None:
        assert self.store is not None
        delay = 0.1
        while True:
            try:
                async with self.store.subscribe(CHANNEL) as sub:
                    delay = 0.1
                    while True:
                        message = await sub.get(timeout=None)
                        if message is not None:
                            self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the poll covers the gap; resubscribe with backoff
                log.debug("flags: subscription lost (%s); resubscribing in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RESUBSCRIBE_MAX_S)

    def _on_message(self, message: bytes) -> None:
        try:
            config = FlagConfig.from_json(message)
        except InvalidRequest as exc:
            log.warning("flags: ignoring an invalid message on %r: %s", CHANNEL, exc.message)
            return
        self._apply(config)
