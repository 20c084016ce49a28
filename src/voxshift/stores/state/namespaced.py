"""NamespacedStore: a view of a StateStore confined to ``<namespace>:`` keys and channels.

v2 code only ever receives this view (seed M1.1: a separate ``voice_v2:`` namespace next to the
legacy keys), so it cannot read, overwrite or scan a legacy key by accident: every key and channel
it names is prefixed, and scan results come back with the prefix stripped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Sequence

from voxshift.stores.state.base import Batch, Op, OpResult, StateStore, Subscription, ops_of

_NAMESPACE_RE = re.compile(r"[^:\s]+")


class NamespacedStore:
    """Prefix every key and channel with ``f"{namespace}:"``.

    ``aclose`` closes the underlying store only when ``owns_store`` is set: usually the raw store
    is shared with legacy code and closed by whoever opened it.
    """

    def __init__(self, store: StateStore, namespace: str, *, owns_store: bool = False) -> None:
        namespace = namespace.removesuffix(":")
        if not _NAMESPACE_RE.fullmatch(namespace):
            raise ValueError(f"namespace must be a non-empty name without ':' or spaces, got {namespace!r}")
        self.inner = store
        self.namespace = namespace
        self.prefix = f"{namespace}:"
        self.owns_store = owns_store
        self.url = f"{store.url} (namespace {self.prefix})"

    def __repr__(self) -> str:
        return f"NamespacedStore({self.inner!r}, {self.namespace!r})"

    def key(self, key: str) -> str:
        """The raw key behind ``key`` (also what the data migration writes to)."""
        return self.prefix + key

    def unkey(self, raw: str) -> str:
        if not raw.startswith(self.prefix):
            raise ValueError(f"{raw!r} is outside namespace {self.prefix!r}")
        return raw[len(self.prefix) :]

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(self.key(key))

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await self.inner.set(self.key(key), value, ttl_s)

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        return await self.inner.set_if_absent(self.key(key), value, ttl_s)

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, ttl_s: float | None = None
    ) -> bool:
        return await self.inner.compare_and_set(self.key(key), expected, new, ttl_s)

    async def delete(self, *keys: str) -> int:
        return await self.inner.delete(*map(self.key, keys))

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        return await self.inner.incr(self.key(key), amount, ttl_s)

    async def hincr(self, key: str, field: str, amount: float = 1, ttl_s: float | None = None) -> float:
        return await self.inner.hincr(self.key(key), field, amount, ttl_s)

    async def hgetall(self, key: str) -> dict[str, bytes]:
        return await self.inner.hgetall(self.key(key))

    async def expire(self, key: str, ttl_s: float) -> bool:
        return await self.inner.expire(self.key(key), ttl_s)

    async def ttl(self, key: str) -> float | None:
        return await self.inner.ttl(self.key(key))

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(self.key(key))

    async def scan(self, prefix: str, *, count: int = 500) -> AsyncIterator[str]:
        async for raw in self.inner.scan(self.key(prefix), count=count):
            yield self.unkey(raw)

    def map_ops(self, batch: Batch | Sequence[Op]) -> list[Op]:
        return [dataclasses.replace(op, key=self.key(op.key)) for op in ops_of(batch)]

    async def execute(self, batch: Batch | Sequence[Op]) -> list[OpResult]:
        return await self.inner.execute(self.map_ops(batch))

    async def publish(self, channel: str, message: bytes) -> None:
        await self.inner.publish(self.key(channel), message)

    def subscribe(self, channel: str) -> Subscription:
        return self.inner.subscribe(self.key(channel))

    async def ping(self) -> None:
        await self.inner.ping()

    async def aclose(self) -> None:
        if self.owns_store:
            await self.inner.aclose()
