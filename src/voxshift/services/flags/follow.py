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
from voxshift.services.wiring.background import BackgroundLoop

if TYPE_CHECKING:
    from voxshift.stores.state.base import StateStore

# The flag service's logger, not this module's: operators (and the CLI, which silences it) tune
# the flags' logging in one place.
log = logging.getLogger("voxshift.services.flags.service")

_RESUBSCRIBE_MIN_S = 0.1
_RESUBSCRIBE_MAX_S = 2.0


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
        self._delay = _RESUBSCRIBE_MIN_S
        # A poll must never die (the next one may succeed); a failure is logged with its traceback.
        self._loops = [
            BackgroundLoop(
                "flags-poll",
                refresh,
                interval_s=poll_interval_s,
                wait_first=True,
                logger=log,
                on_error=lambda _exc: log.exception("flags: poll failed"),
            )
        ]
        if listen and store is not None:
            # Back to back: one step is one subscription, held until it breaks.
            self._loops.append(BackgroundLoop("flags-listen", self._listen_once, interval_s=0, logger=log))

    def start(self) -> None:
        if any(loop.running for loop in self._loops):
            return
        self._delay = _RESUBSCRIBE_MIN_S
        for loop in self._loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self._loops:
            await loop.stop()

    async def _listen_once(self) -> None:
        assert self.store is not None
        try:
            async with self.store.subscribe(CHANNEL) as sub:
                self._delay = _RESUBSCRIBE_MIN_S
                while True:
                    message = await sub.get(timeout=None)
                    if message is not None:
                        self._on_message(message)
        except Exception as exc:  # the poll covers the gap; resubscribe with backoff
            log.debug("flags: subscription lost (%s); resubscribing in %.1f s", exc, self._delay)
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, _RESUBSCRIBE_MAX_S)

    def _on_message(self, message: bytes) -> None:
        try:
            config = FlagConfig.from_json(message)
        except InvalidRequest as exc:
            log.warning("flags: ignoring an invalid message on %r: %s", CHANNEL, exc.message)
            return
        self._apply(config)
