"""Bounded inference pool: CPU-bound model calls run off the event loop, and excess load is refused.

Threads, not processes: CTranslate2 and ONNX Runtime release the GIL during inference, and threads
let every worker share the one copy of each model loaded in the process.

Three guarantees beyond a plain thread pool:

* admission answers in time: a call is refused at once (``Overloaded`` with a Retry-After derived
  from the work ahead) when every slot is taken, or when the expected wait (the work queued and
  still running, from each kind of job's recent service time) plus its own service time would pass
  ``max_wait_s``: nothing is admitted that cannot finish within the request's budget;
* a job past its hard deadline is abandoned: its caller gets a ``PoolDeadlineExceeded``, its slot
  is returned and a replacement worker starts (a Python thread cannot be killed; the stuck one exits
  when its call returns), so a wedged library call cannot take the pool down with it;
* its state is observable (``snapshot``): the watchdog that enforces deadlines also tells when the
  pool makes no progress with work waiting (``stalled``), which /readyz reports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from voxshift.engines import memory
from voxshift.errors import Overloaded

P = ParamSpec("P")
T = TypeVar("T")

_EWMA_ALPHA = 0.2
_MAX_RETRY_AFTER_S = 60
_MAX_STUCK_PER_WORKER = 4


class PoolDeadlineExceeded(TimeoutError):
    """The job ran past the pool's hard deadline and was abandoned (its worker was replaced)."""


@dataclass(frozen=True)
class PoolSnapshot:
    name: str
    workers: int
    capacity: int
    in_flight: int
    running: int
    queued: int
    completed: int
    rejected: int
    abandoned: int
    stuck_threads: int
    service_ms: float
    expected_wait_s: float
    last_progress_age_s: float
    stalled: bool

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name, digits in (("service_ms", 1), ("expected_wait_s", 3), ("last_progress_age_s", 3)):
            data[name] = round(data[name], digits)
        return data


class _Job:
    __slots__ = ("abandoned", "call", "estimate_s", "future", "kind", "started_at", "thread")

    def __init__(self, call: Callable[[], Any], kind: str, estimate_s: float) -> None:
        self.call = call
        self.kind = kind
        self.estimate_s = estimate_s
        self.future: Future[Any] = Future()
        self.started_at: float | None = None
        self.thread: threading.Thread | None = None
        self.abandoned = False


class InferencePool:
    def __init__(
        self,
        workers: int,
        queue_size: int,
        *,
        retry_after_s: int = 1,
        name: str = "inference",
        max_wait_s: float | None = None,
        job_deadline_s: float | None = None,
        stall_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be >= 1 and queue_size >= 0")
        if any(v is not None and v <= 0 for v in (max_wait_s, job_deadline_s)):
            raise ValueError("max_wait_s and job_deadline_s must be positive")
        self.workers = workers
        self.queue_size = queue_size
        self.retry_after_s = retry_after_s
        self.name = name
        self.max_wait_s = max_wait_s
        self.job_deadline_s = job_deadline_s
        self.stall_after_s = stall_after_s
        self._clock = clock
        # One lock for all state: workers, the watchdog and the loop thread all touch it.
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Job] = deque()
        self._running: set[_Job] = set()
        self._queued_work_s = 0.0
        self._in_flight = 0
        self._completed = self._rejected = self._abandoned = 0
        self._service_s: dict[str, float] = {}  # EWMA of service time per kind of job
        self._overall_s = 0.0
        self._last_progress = clock()
        self._threads: set[threading.Thread] = set()
        self._retired: set[threading.Thread] = set()  # replaced while stuck; exit when their call ends
        self._idle = 0
        self._shutdown = False
        self._watchdog: threading.Thread | None = None
        self._serial = 0

    # --- observation ------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        return self.workers + self.queue_size

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def snapshot(self) -> PoolSnapshot:
        with self._cond:
            now = self._clock()
            return PoolSnapshot(
                name=self.name,
                workers=self.workers,
                capacity=self.capacity,
                in_flight=self._in_flight,
                running=len(self._running),
                queued=len(self._queue),
                completed=self._completed,
                rejected=self._rejected,
                abandoned=self._abandoned,
                stuck_threads=len(self._retired),
                service_ms=self._overall_s * 1000.0,
                expected_wait_s=self._expected_wait(now),
                last_progress_age_s=now - self._last_progress,
                stalled=self._stalled(now),
            )

    def _stalled(self, now: float) -> bool:
        return bool(self._queue) and now - self._last_progress > self.stall_after_s

    # --- submission -------------------------------------------------------------------------------
    def ensure_room(self, fn: Callable[..., Any]) -> None:
        """Raise ``Overloaded`` now if a job like ``fn`` would be refused: lets a request skip the
        work it would do before submitting (decoding an upload) when the answer is 503 anyway."""
        with self._cond:
            if self._shutdown:
                raise Overloaded("the service is shutting down", retry_after_s=self.retry_after_s)
            now = self._clock()
            kind = _kind(fn)
            self._refuse_if_full(now, self._service_s.get(kind, self._overall_s))

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a worker; ``Overloaded`` at once when it cannot be admitted (see the module)."""
        return await self._submit(functools.partial(fn, *args, **kwargs), _kind(fn), follow_up=False)

    async def run_follow_up(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The next step of a request already admitted (e.g. encoding after synthesis): queued first
        and never refused for load, since refusing it would waste the work already done."""
        return await self._submit(functools.partial(fn, *args, **kwargs), _kind(fn), follow_up=True)

    async def _submit(self, call: Callable[[], T], kind: str, *, follow_up: bool) -> T:
        job = self._admit(call, kind, follow_up)
        job.future.add_done_callback(functools.partial(self._on_done, job))
        return await asyncio.wrap_future(job.future)

    def _admit(self, call: Callable[[], Any], kind: str, follow_up: bool) -> _Job:
        with self._cond:
            if self._shutdown:
                raise Overloaded("the service is shutting down", retry_after_s=self.retry_after_s)
            now = self._clock()
            estimate = self._service_s.get(kind, self._overall_s)
            if not follow_up:
                self._refuse_if_full(now, estimate)
            job = _Job(call, kind, estimate)
            if follow_up:
                self._queue.appendleft(job)
            else:
                self._queue.append(job)
            self._queued_work_s += estimate
            self._in_flight += 1
            self._ensure_worker()
            self._cond.notify()
        self._ensure_watchdog()
        return job

    def _refuse_if_full(self, now: float, estimate: float) -> None:
        if self._in_flight >= self.capacity:
            self._rejected += 1
            raise Overloaded(
                f"{self.name} queue is full ({self._in_flight} requests in flight); retry shortly",
                retry_after_s=self._retry_after(self._expected_wait(now) / max(1, len(self._queue) + 1)),
            )
        if self.max_wait_s is None:
            return
        wait = self._expected_wait(now)
        if wait + estimate > self.max_wait_s:
            self._rejected += 1
            raise Overloaded(
                f"{self.name} is busy: about {wait:.1f} s of work is ahead of this request and it must "
                f"finish within {self.max_wait_s:g} s; retry shortly",
                retry_after_s=self._retry_after(wait + estimate - self.max_wait_s),
            )

    def _retry_after(self, seconds: float) -> int:
        return max(self.retry_after_s, min(_MAX_RETRY_AFTER_S, math.ceil(seconds)))

    def _expected_wait(self, now: float) -> float:
        """Seconds until a newly queued job would start: all queued work plus what is left of the
        running jobs, shared by the workers; 0 while a worker is free."""
        if len(self._running) < self.workers and not self._queue:
            return 0.0
        left = sum(
            max(0.0, j.estimate_s - (now - j.started_at)) for j in self._running if j.started_at is not None
        )
        return (self._queued_work_s + left) / self.workers

    def _on_done(self, job: _Job, future: Future[Any]) -> None:
        # Only a cancelled job still in the queue needs this: the worker never sees it, so its
        # slot is freed here, at once (a call that already started keeps its slot until it ends).
        if not future.cancelled():
            return
        with self._cond:
            try:
                self._queue.remove(job)
            except ValueError:
                return
            self._queued_work_s = max(0.0, self._queued_work_s - job.estimate_s)
            self._in_flight -= 1

    # --- workers ----------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        """Called under the lock: start a worker when none is idle and fewer than ``workers`` live."""
        live = len(self._threads) - len(self._retired)
        # Stuck threads cannot be killed; past a bound, stop replacing them and let the pool
        # report itself stalled instead of growing without limit.
        room = len(self._retired) < _MAX_STUCK_PER_WORKER * self.workers
        if self._idle == 0 and live < self.workers and room:
            self._serial += 1
            thread = threading.Thread(
                target=self._work, name=f"voxshift-{self.name}-{self._serial}", daemon=True
            )
            self._threads.add(thread)
            thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                self._idle += 1
                while not self._queue and not self._shutdown:
                    self._cond.wait()
                self._idle -= 1
                if self._shutdown and not self._queue:
                    self._threads.discard(me)
                    return
                job = self._queue.popleft()
                self._queued_work_s = max(0.0, self._queued_work_s - job.estimate_s)
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled while queued: _on_done freed its slot
                job.started_at = now = self._clock()
                job.thread = me
                self._last_progress = now
                self._running.add(job)
            try:
                value, error = job.call(), None
            except BaseException as exc:
                value, error = None, exc
            with self._cond:
                if job.abandoned:
                    # Replaced while stuck: its slot was returned and its caller told; just leave.
                    self._retired.discard(me)
                    self._threads.discard(me)
                    if self._queue and not self._shutdown:
                        self._ensure_worker()  # the bound on stuck threads may have held one back
                    return
                self._running.discard(job)
                self._in_flight -= 1
                self._completed += 1
                self._last_progress = now = self._clock()
                self._learn(job.kind, now - job.started_at if job.started_at is not None else 0.0)
            if error is None:
                job.future.set_result(value)
            else:
                job.future.set_exception(error)
            del job, value, error  # drop references to big results before waiting for more work
            if self._in_flight == 0:
                memory.trim()  # a burst is over: hand its heap back (rate-limited, see engines.memory)

    def _learn(self, kind: str, seconds: float) -> None:
        previous = self._service_s.get(kind)
        self._service_s[kind] = seconds if previous is None else previous + _EWMA_ALPHA * (seconds - previous)
        self._overall_s = (
            seconds if self._completed == 1 else self._overall_s + _EWMA_ALPHA * (seconds - self._overall_s)
        )

    # --- watchdog ---------------------------------------------------------------------------------
    def _ensure_watchdog(self) -> None:
        if self.job_deadline_s is None or self._watchdog is not None:
            return
        with self._cond:
            if self._watchdog is None and not self._shutdown:
                self._watchdog = threading.Thread(
                    target=self._watch, name=f"voxshift-{self.name}-watchdog", daemon=True
                )
                self._watchdog.start()

    def _watch(self) -> None:
        assert self.job_deadline_s is not None
        interval = min(1.0, self.job_deadline_s / 10)
        while True:
            with self._cond:
                if self._shutdown:
                    return
            self.abandon_overdue()
            time.sleep(interval)

    def abandon_overdue(self) -> int:
        """Abandon every running job past its hard deadline; returns how many (the watchdog calls it)."""
        if self.job_deadline_s is None:
            return 0
        abandoned: list[_Job] = []
        with self._cond:
            now = self._clock()
            for job in list(self._running):
                if job.started_at is not None and now - job.started_at > self.job_deadline_s:
                    job.abandoned = True
                    self._running.discard(job)
                    self._in_flight -= 1
                    self._abandoned += 1
                    abandoned.append(job)
            for job in abandoned:
                if job.thread is not None:
                    self._retired.add(job.thread)
            if abandoned and self._queue:
                self._ensure_worker()
        for job in abandoned:
            if not job.future.done():
                job.future.set_exception(
                    PoolDeadlineExceeded(f"{self.name} job {job.kind} ran past {self.job_deadline_s:g} s")
                )
        return len(abandoned)

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            pending = list(self._queue)
            self._queue.clear()
            self._in_flight -= len(pending)
            self._cond.notify_all()
        for job in pending:
            job.future.cancel()


def _kind(fn: Callable[..., Any]) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    return getattr(target, "__qualname__", type(target).__name__)
