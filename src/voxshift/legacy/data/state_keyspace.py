"""The legacy keyspace on voxshift's own state store (the embedded reference legacy's keys).

The embedded store (``SqliteStateStore``) has strings and hashes only, no sorted sets, so the
reference legacy writes strings (settings cache, STT cache) and nothing else. Its export payload is
the canonical value form of ``core.legacy_layout``; the store has no DUMP.

Hashes are restored field by field through ``hincr``, the only hash write the store offers, so only
numeric fields can be restored and a restore of a hash is not atomic; the legacy never wrote a hash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from voxshift.core.legacy_layout import KEY_PREFIXES, canonical_value, decode_canonical, value_digest
from voxshift.errors import Conflict, InvalidRequest
from voxshift.legacy.data.keyspace import CANONICAL, KeyExport, only_voice_keys
from voxshift.stores.state import Batch, Op, StateStore
from voxshift.stores.state.base import decode_key, encode_key, parse_float


class StateStoreKeyspace:
    """``LegacyKeyspace`` over a raw (un-namespaced) ``StateStore``; closing it closes the store."""

    def __init__(self, store: StateStore, where: str = "embedded state store") -> None:
        self.where = where
        self._store = store

    def __repr__(self) -> str:
        return f"StateStoreKeyspace({self.where})"

    async def scan(
        self, match_prefixes: Sequence[str] = KEY_PREFIXES, *, count: int = 500
    ) -> AsyncIterator[str]:
        for prefix in match_prefixes:
            async for key in self._store.scan(prefix, count=count):
                yield key

    async def export(self, keys: Sequence[str]) -> list[KeyExport | None]:
        if not keys:
            return []
        # TTLs first: a key that expires after its TTL was read shows up as a missing value, never as
        # a value with a TTL from before it was rewritten.
        ttls = [await self._store.ttl(k) for k in keys]
        try:
            values = await self._store.execute(Batch([Op("get", k) for k in keys]))
        except ValueError:  # a hash among them: WRONGTYPE fails the batch, so read one at a time
            values = [await self._get_one(k) for k in keys]
        out: list[KeyExport | None] = []
        for key, ttl, got in zip(keys, ttls, values, strict=True):
            value: bytes | dict[bytes, bytes] | None = (
                got if isinstance(got, bytes) else await self._hash(key)
            )
            if value is None:
                out.append(None)
                continue
            kind = "string" if isinstance(value, bytes) else "hash"
            out.append(
                KeyExport(
                    key=key,
                    type=kind,
                    payload=canonical_value(kind, value),
                    payload_format=CANONICAL,
                    pttl_ms=None if ttl is None else max(1, round(ttl * 1000)),
                    sha256=value_digest(kind, value),
                )
            )
        return out

    async def _get_one(self, key: str) -> bytes | None:
        try:
            return await self._store.get(key)
        except ValueError:
            return None

    async def _hash(self, key: str) -> dict[bytes, bytes] | None:
        try:
            fields = await self._store.hgetall(key)
        except ValueError:
            return None
        return {encode_key(f): v for f, v in fields.items()} if fields else None

    async def restore(self, items: Sequence[KeyExport], *, replace: bool = False) -> None:
        only_voice_keys([i.key for i in items])
        for item in items:
            if item.payload_format != CANONICAL:
                raise InvalidRequest(
                    f"{self.where} cannot restore {item.key!r}: its payload is a {item.payload_format} "
                    "(restore it into a Redis)",
                    param="payload_format",
                )
            kind, value = decode_canonical(item.payload)
            ttl_s = None if item.pttl_ms is None else item.pttl_ms / 1000
            if kind == "string":
                assert isinstance(value, bytes)
                if replace:
                    await self._store.set(item.key, value, ttl_s=ttl_s)
                elif not await self._store.set_if_absent(item.key, value, ttl_s=ttl_s):
                    raise Conflict(f"legacy key {item.key!r} already exists in {self.where}", param="key")
            elif kind == "hash":
                assert isinstance(value, dict)
                await self._restore_hash(item.key, value, ttl_s, replace)
            else:
                raise InvalidRequest(f"{self.where} has no {kind} type ({item.key!r})", param="type")

    async def _restore_hash(
        self, key: str, value: dict[bytes, bytes], ttl_s: float | None, replace: bool
    ) -> None:
        if await self._store.exists(key):
            if not replace:
                raise Conflict(f"legacy key {key!r} already exists in {self.where}", param="key")
            await self._store.delete(key)
        for raw_field, raw in value.items():
            try:
                amount = parse_float(raw, "hash field")
            except ValueError:
                raise InvalidRequest(
                    f"{self.where} can only restore numeric hash fields ({key!r})", param="type"
                ) from None
            await self._store.hincr(key, decode_key(raw_field), amount, ttl_s=ttl_s)

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return await self._store.delete(*only_voice_keys(keys))

    async def aclose(self) -> None:
        await self._store.aclose()
