"""StateStore: the small key-value contract voxshift needs from Redis (or its embedded stand-in).

Keys are plain strings; values are bytes (the legacy service stores UTF-8 text, and voxshift must be
able to read it unchanged). Implementations see raw keys: namespacing is a view on top
(:class:`NamespacedStore`), so v2 code physically cannot address a key outside its namespace, while
the legacy reference backend and the data migration get an un-prefixed view of the same server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

OpName = Literal["get", "set", "delete", "incr", "hincr", "expire", "hgetall"]


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
    ops: list[Op] = field(default_factory=list)

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


@runtime_checkable
class StateStore(Protocol):
    """What voxshift needs from a shared key-value store. Every method is atomic on its own.

    TTLs are seconds (floats allowed); ``ttl_s=None`` means no expiry. An expired key behaves exactly
    like a missing one for every method, including ``scan``.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool: ...

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, ttl_s: float | None = None
    ) -> bool:
        """Write ``new`` only when the current value equals ``expected`` (None = key absent)."""
        ...

    async def delete(self, *keys: str) -> int: ...

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        """Add to an integer counter (created at 0); ``ttl_s`` is set when given, on every call."""
        ...

    async def hincr(self, key: str, field: str, amount: float = 1, ttl_s: float | None = None) -> float:
        """Add to one field of a hash (int amounts stay integral)."""
        ...

    async def hgetall(self, key: str) -> dict[str, bytes]: ...

    async def expire(self, key: str, ttl_s: float) -> bool: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left; None when the key has no expiry or does not exist (see ``exists``)."""
        ...

    async def exists(self, key: str) -> bool: ...

    def scan(self, prefix: str, *, count: int = 500) -> AsyncIterator[str]:
        """Every live key starting with ``prefix``, incrementally (never a blocking KEYS)."""
        ...

    async def execute(self, ops: Sequence[Op]) -> list[object]:
        """Run a batch in one round trip; results in order (get -> bytes|None, incr -> int, ...)."""
        ...

    async def publish(self, channel: str, message: bytes) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages published on ``channel`` after the subscription starts, in order."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the server cannot be reached."""
        ...

    async def aclose(self) -> None: ...
