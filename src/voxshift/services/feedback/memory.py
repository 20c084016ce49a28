"""Which system served a request: remembered per request id, so that feedback on it can be judged
per system (seed ``user_feedback``, ``user_satisfaction``).

Remembering sits on the request path, so it never waits for the state store: :meth:`remember` only
queues the record, and one background writer drains the queue, all that is queued in one pipelined
round trip. Under load that batches by itself; at rest a record is written at once (no timer to
wait for), so feedback sent straight after the answer finds it. Until it is written a record is
looked up in the queue, for feedback that reaches the same replica first.

When the store is down (or slower than the traffic, past ``max_pending`` records) records are
dropped and counted, never retried: the request already succeeded, and feedback on it is then an
unknown id, which is the documented cost of an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, TypeVar

from voxshift.core.vocabulary import OPERATIONS, Operation
from voxshift.errors import StoreUnavailable
from voxshift.services.wiring.background import BackgroundLoop
from voxshift.stores.state.base import Batch, StateStore

log = logging.getLogger("voxshift.feedback")

System = Literal["voice_v2", "legacy"]
SYSTEMS: tuple[System, ...] = ("voice_v2", "legacy")
T = TypeVar("T")

REQUEST_ID_PREFIX = "req_"
# 18 random bytes: 24 URL-safe characters, 144 bits, so an id cannot be guessed to rate another
# user's request.
_ID_BYTES = 18
REQUEST_ID_RE = re.compile(r"req_[A-Za-z0-9_-]{24}")
MAX_BATCH = 500  # records per round trip: a pipeline this size is still one quick write
STOP_FLUSH_S = 5.0


def new_request_id() -> str:
    return REQUEST_ID_PREFIX + secrets.token_urlsafe(_ID_BYTES)


def is_request_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id this service hands out (others were never issued)."""
    return REQUEST_ID_RE.fullmatch(value) is not None


def memory_key(request_id: str) -> str:
    """The key in the v2 view of the state store (``voice_v2:requests:{id}`` on the server)."""
    return f"requests:{request_id}"


@dataclass(frozen=True)
class ServedRequest:
    """One answered voice request: who asked and which system answered."""

    request_id: str
    operation: Operation
    system: System
    provider: str
    at: float  # unix seconds, when it was answered
    user_id: str | None = None
    agent_id: str | None = None
    fallback: bool = False  # v2 failed and legacy answered

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ServedRequest | None:
        """None for a record this version cannot read (written by hand, or by a future version)."""
        try:
            data: Any = json.loads(raw)
            served = cls(**data)
        except (ValueError, TypeError):
            return None
        if served.operation not in OPERATIONS or served.system not in SYSTEMS:
            return None
        if isinstance(served.at, bool) or not isinstance(served.at, int | float):
            return None
        return served


class Health(Protocol):
    """The state store's shared health (services.wiring.dependencies.Dependency): while it is down
    nothing is attempted, so an outage costs no connect timeout per batch."""

    async def call(self, fn: Callable[[], Awaitable[T]], fallback: T) -> T: ...


@dataclass
class MemoryCounts:
    remembered: int = 0  # written to the store
    dropped: int = 0  # never written: the store was down or failed, or the queue was full


class RequestMemory:
    def __init__(
        self,
        store: StateStore,
        *,
        ttl_s: float,
        health: Health | None = None,
        max_pending: int = 10_000,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.health = health
        self.max_pending = max_pending
        self.counts = MemoryCounts()
        # Insertion-ordered: the writer takes the oldest first; a record stays here until its
        # write has ended, so a lookup meanwhile still finds it.
        self._pending: dict[str, ServedRequest] = {}
        self._wake = asyncio.Event()
        self._writer = BackgroundLoop(
            "voxshift-request-memory", self._write_next, interval_s=0, logger=log, on_error=self._failed
        )

    # --- the request path ----------------------------------------------------------------------
    def remember(self, served: ServedRequest) -> None:
        """Queue ``served`` for writing; never blocks and never raises."""
        if len(self._pending) >= self.max_pending:
            self.counts.dropped += 1
            log.debug("request memory queue full: %s not remembered", served.request_id)
            return
        self._pending[served.request_id] = served
        self._wake.set()

    async def recall(self, request_id: str) -> ServedRequest | None:
        """The remembered request; None when unknown or expired. StoreUnavailable when the store
        cannot be asked (an outage is not the same answer as "never served")."""
        pending = self._pending.get(request_id)
        if pending is not None:
            return pending
        raw = await self.store.get(memory_key(request_id))
        return None if raw is None else ServedRequest.from_json(raw)

    # --- the writer ----------------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()

    async def stop(self) -> None:
        """Stop the writer, then write what is still queued (best effort: a store that is down
        now loses those records, as it would have a moment earlier)."""
        await self._writer.stop()
        # Bounded: a store that hangs must not hold up the shutdown by its timeout per batch.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_FLUSH_S):
                while self._pending:
                    await self.flush()
        if self._pending:
            self._dropped(list(self._pending.values()), "the process stopped before they were written")
            self._pending.clear()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write up to ``MAX_BATCH`` queued records in one round trip; how many were written."""
        batch = list(self._pending.values())[:MAX_BATCH]
        if not batch:
            return 0
        try:
            if self.health is None:
                written = await self._write(batch)
            else:
                written = await self.health.call(lambda: self._write(batch), False)
        except StoreUnavailable:
            written = False
        except Exception:
            self._dropped(batch, "the write failed")
            raise
        finally:
            for served in batch:
                self._pending.pop(served.request_id, None)
        if not written:
            self._dropped(batch, "the state store is unavailable")
            return 0
        self.counts.remembered += len(batch)
        return len(batch)

    async def _write(self, batch: list[ServedRequest]) -> bool:
        ops = Batch()
        for served in batch:
            ops.set(memory_key(served.request_id), served.to_json(), ttl_s=self.ttl_s)
        await self.store.execute(ops)
        return True

    async def _write_next(self) -> None:
        if not self._pending:
            self._wake.clear()
            await self._wake.wait()
        await self.flush()

    def _failed(self, exc: Exception) -> None:
        # flush() has dropped and counted the batch; an error other than an outage is worth a line.
        log.warning("request memory write failed: %s", exc)

    def _dropped(self, batch: list[ServedRequest], why: str) -> None:
        self.counts.dropped += len(batch)
        log.debug("%d request ids not remembered: %s", len(batch), why)
