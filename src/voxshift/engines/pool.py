"""Bounded inference pool: CPU-bound model calls run off the event loop, and excess load is refused.

Threads, not processes: CTranslate2 and ONNX Runtime release the GIL during inference, and threads
let every worker share the one copy of each model loaded in the process.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from voxshift.errors import Overloaded

P = ParamSpec("P")
T = TypeVar("T")


class InferencePool:
    def __init__(self, workers: int, queue_size: int, *, retry_after_s: int = 1) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be >= 1 and queue_size >= 0")
        self.workers = workers
        self.queue_size = queue_size
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="voxshift-infer")
        self._in_flight = 0
        # ``_release`` runs on the worker thread that finished (or on the loop thread when a queued
        # call is cancelled), ``run`` on the event loop: ``+=``/``-=`` are not atomic across threads.
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self.workers + self.queue_size

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a worker; raise Overloaded at once when every worker and queue slot is taken."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise Overloaded(
                    f"inference queue is full ({self._in_flight} requests in flight); retry shortly",
                    retry_after_s=self.retry_after_s,
                )
            self._in_flight += 1
        try:
            future = self._executor.submit(functools.partial(fn, *args, **kwargs))
        except RuntimeError:  # submit after shutdown(): the process is stopping
            self._release(None)
            raise Overloaded("the service is shutting down", retry_after_s=self.retry_after_s) from None
        # Count the slot free only when the worker really finishes: a caller that timed out and
        # moved on does not stop the thread, and the next request must not be admitted on top of it.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: object) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
