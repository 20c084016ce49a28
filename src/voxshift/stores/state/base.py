"""StateStore: the small key-value contract voxshift needs from Redis (or its embedded stand-in).

Keys are plain strings; values are bytes (the legacy service stores UTF-8 text, and voxshift must be
able to read it unchanged). Implementations see raw keys: namespacing is a view on top
(:class:`NamespacedStore`), so v2 code physically cannot address a key outside its namespace, while
the legacy reference backend and the data migration get an un-prefixed view of the same server.

Keys and hash fields travel as UTF-8 with ``surrogateescape``: a key that some other client wrote
with invalid UTF-8 still comes back from ``scan`` as a ``str`` that addresses the very same key.
"""

from __future__ import annotations

import asyncio
import math
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

OpName = Literal["get", "set", "delete", "incr", "hincr", "expire", "hgetall"]

# What execute() returns per op: get -> bytes | None, set -> None, delete -> int (0/1), incr -> int,
# hincr -> int | float, hgetall -> dict[str, bytes], expire -> bool.
OpResult = bytes | None | int | float | bool | dict[str, bytes]

KEY_ENCODING = "utf-8"
KEY_ERRORS = "surrogateescape"
_INT_RE = re.compile(rb"-?(0|[1-9][0-9]*)")
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Op:
    """One operation of a pipelined batch; results come back in order."""

    name: OpName
    key: str
    value: bytes | None = None
    ttl_s: float | None = None
    amount: float = 1
    field: str | None = None


@dataclass
class Batch:
    """Builder for :meth:`StateStore.execute`; ``store.execute(Batch().get("a").incr("n"))``."""

    ops: list[Op] = field(default_factory=list)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def get(self, key: str) -> Batch:
        self.ops.append(Op("get", key))
        return self

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> Batch:
        self.ops.append(Op("set", key, value=value, ttl_s=ttl_s))
        return self

    def delete(self, key: str) -> Batch:
        self.ops.append(Op("delete", key))
        return self

    def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> Batch:
        self.ops.append(Op("incr", key, amount=amount, ttl_s=ttl_s))
        return self

    def hincr(self, key: str, field_: str, amount: float = 1, ttl_s: float | None = None) -> Batch:
        self.ops.append(Op("hincr", key, field=field_, amount=amount, ttl_s=ttl_s))
        return self

    def hgetall(self, key: str) -> Batch:
        self.ops.append(Op("hgetall", key))
        return self

    def expire(self, key: str, ttl_s: float) -> Batch:
        self.ops.append(Op("expire", key, ttl_s=ttl_s))
        return self


class Subscription(ABC):
    """Messages of one channel, in publish order, from the moment ``start()`` returns.

    Use it as ``async with store.subscribe("ch") as sub:`` and then ``await sub.get(timeout)`` or
    ``async for message in sub``. Entering the context waits until the subscription is live, so a
    publish issued after ``__aenter__`` is never missed (a lazily started generator could miss it).
    """

    def __init__(self, channel: str) -> None:
        self.channel = channel

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def get(self, timeout: float | None = None) -> bytes | None:
        """The next message, or None when ``timeout`` seconds pass without one."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        message = await self.get(None)
        if message is None:
            raise StopAsyncIteration
        return message


@runtime_checkable
class StateStore(Protocol):
    """What voxshift needs from a shared key-value store. Every method is atomic on its own.

    TTLs are seconds (floats allowed, millisecond precision, must be > 0); ``ttl_s=None`` means no
    expiry. An expired key behaves exactly like a missing one for every method, including ``scan``.
    Using a string command on a hash key (or the reverse) and incrementing a non-number raise
    ValueError; an unreachable server raises :class:`voxshift.errors.StoreUnavailable`.
    """

    url: str  # masked, for logs and error messages

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Overwrite (any type); like Redis SET, a write without ``ttl_s`` clears an earlier TTL."""
        ...

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool: ...

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, ttl_s: float | None = None
    ) -> bool:
        """Write ``new`` only when the current value equals ``expected`` (None = key absent)."""
        ...

    async def delete(self, *keys: str) -> int:
        """How many of ``keys`` existed (and are now gone)."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        """Add to a 64-bit integer counter (created at 0). ``ttl_s`` is applied on every call
        when given; without it an existing TTL is kept."""
        ...

    async def hincr(self, key: str, field: str, amount: float = 1, ttl_s: float | None = None) -> float:
        """Add to one field of a hash: an ``int`` amount is HINCRBY and returns an int, a float
        amount is HINCRBYFLOAT and returns a float."""
        ...

    async def hgetall(self, key: str) -> dict[str, bytes]: ...

    async def expire(self, key: str, ttl_s: float) -> bool:
        """Set a TTL on an existing key; False when there is no such key."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left; None when the key has no expiry or does not exist (see ``exists``)."""
        ...

    async def exists(self, key: str) -> bool: ...

    def scan(self, prefix: str, *, count: int = 500) -> AsyncIterator[str]:
        """Every live key starting with ``prefix``, page by page (never a blocking KEYS).

        A key that is written or expires during the scan may or may not be seen; one that exists
        for the whole scan is seen exactly once.
        """
        ...

    async def execute(self, batch: Batch | Sequence[Op]) -> list[OpResult]:
        """Run a batch in one round trip; one result per op, in order (see ``OpResult``)."""
        ...

    async def publish(self, channel: str, message: bytes) -> None: ...

    def subscribe(self, channel: str) -> Subscription:
        """A subscription to enter with ``async with``; see :class:`Subscription`."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached (or, embedded, written)."""
        ...

    async def aclose(self) -> None: ...


# --- helpers shared by the implementations ---------------------------------------------------------


def ttl_ms(ttl_s: float) -> int:
    """A TTL as whole milliseconds (what Redis PX takes), rejecting nonsense early and alike."""
    if isinstance(ttl_s, bool) or not math.isfinite(ttl_s) or ttl_s <= 0:
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    return max(1, round(ttl_s * 1000))


def encode_key(key: str) -> bytes:
    return key.encode(KEY_ENCODING, KEY_ERRORS)


def decode_key(raw: bytes) -> str:
    return raw.decode(KEY_ENCODING, KEY_ERRORS)


def parse_int(raw: bytes, what: str = "value") -> int:
    """Redis' idea of an integer value: canonical decimal within int64, nothing else."""
    if not _INT_RE.fullmatch(raw) or not _INT64[0] <= int(raw) <= _INT64[1]:
        raise ValueError(f"{what} is not an integer or out of range")
    return int(raw)


def check_int64(value: int) -> int:
    if not _INT64[0] <= value <= _INT64[1]:
        raise ValueError("increment or decrement would overflow")
    return value


def parse_float(raw: bytes, what: str = "value") -> float:
    try:
        value = float(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{what} is not a valid float") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} is not a valid float")
    return value


def format_float(value: float) -> bytes:
    """How Redis prints an HINCRBYFLOAT result: integral values without a fraction ("3", not "3.0")."""
    if not math.isfinite(value):
        raise ValueError("increment would produce NaN or Infinity")
    if value.is_integer() and abs(value) < 1e17:
        return str(int(value)).encode()
    return repr(value).encode()


def is_int_amount(amount: float) -> bool:
    return isinstance(amount, int) and not isinstance(amount, bool)


def ops_of(batch: Batch | Sequence[Op]) -> list[Op]:
    return list(batch.ops) if isinstance(batch, Batch) else list(batch)


async def wait_for_event(event: asyncio.Event, timeout: float | None) -> bool:
    """``event.wait()`` bounded by ``timeout``; True when the event fired."""
    if timeout is None:
        await event.wait()
        return True
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            await event.wait()
    except TimeoutError:
        return False
    return True
