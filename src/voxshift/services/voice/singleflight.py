"""Single flight: identical concurrent requests compute once and share the answer.

Ten users of one agent sending the same greeting to TTS at once should cost one synthesis, not ten.
Scope is one process; across replicas the shared cache does the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Future[T]] = {}

    def in_flight(self) -> int:
        return len(self._calls)

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``: ``shared`` is True when another caller's computation answered."""
        pending = self._calls.get(key)
        if pending is not None:
            # shield: one follower giving up must not cancel the leader's work for everybody else.
            return await asyncio.shield(pending), True
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # A failure nobody else waited for must not be logged as "never retrieved".
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._calls[key] = future
        try:
            result = await fn()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(result)
            return result, False
        finally:
            del self._calls[key]
