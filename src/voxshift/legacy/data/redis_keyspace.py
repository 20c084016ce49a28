"""The legacy keyspace on a real Redis: raw bytes, SCAN, DUMP/RESTORE, one pipeline per batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.exceptions as rex
from redis.asyncio import Redis

from voxshift.core.legacy_layout import KEY_PREFIXES, decode_canonical, value_digest
from voxshift.core.masking import mask_url
from voxshift.errors import Conflict, StoreUnavailable
from voxshift.legacy.data.keyspace import CANONICAL, REDIS_DUMP, KeyExport, only_voice_keys
from voxshift.stores.state.base import decode_key, encode_key

# One script reads a whole page of keys: type, TTL (and DUMP) and the plain value of each come from
# the same instant, so a digest always describes the payload next to it (a separate GET could see a
# newer value). One command per page, not one per key: packing a command costs the client more than
# Redis spends reading a small key. A missing key answers false (nil in the reply).
_READ_TEMPLATE = """
local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  if t == 'none' then out[i] = false else
    local v
    if t == 'string' then v = redis.call('GET', k)
    elseif t == 'hash' then v = redis.call('HGETALL', k)
    elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
    elseif t == 'set' then v = redis.call('SMEMBERS', k)
    else v = {} end
    out[i] = {t, redis.call('PTTL', k), %s}
  end
end
return out
"""
_EXPORT_LUA = _READ_TEMPLATE % "redis.call('DUMP', k), v"  # the backup: payload and value
READ_LUA = _READ_TEMPLATE % "v"  # the migration: the value only


def plain_value(kind: str, raw: Any) -> object | None:
    """A scripted read's value in ``value_digest``'s terms; None for a type the script does not read."""
    if kind == "string":
        return bytes(raw)
    if kind == "hash":
        return {bytes(raw[i]): bytes(raw[i + 1]) for i in range(0, len(raw), 2)}
    if kind == "zset":
        return [(bytes(raw[i]), bytes(raw[i + 1])) for i in range(0, len(raw), 2)]
    if kind in ("list", "set"):
        return [bytes(i) for i in raw]
    return None


def _glob_escape(prefix: str) -> bytes:
    raw = encode_key(prefix)
    for special in (b"\\", b"*", b"?", b"[", b"]"):
        raw = raw.replace(special, b"\\" + special)
    return raw + b"*"


def _value(kind: str, raw: Any, dump: bytes) -> tuple[str, object]:
    """The value in ``value_digest``'s terms; a type the script does not read is identified by its DUMP."""
    value = plain_value(kind, raw)
    return ("string", b"dump:" + dump) if value is None else (kind, value)


class RedisKeyspace:
    """``LegacyKeyspace`` over redis-py's asyncio client (no response decoding: values are bytes)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.where = f"redis {mask_url(url)}"
        self._redis: Redis = Redis.from_url(
            url, decode_responses=False, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._export = self._redis.register_script(_EXPORT_LUA)

    def __repr__(self) -> str:
        return f"RedisKeyspace({self.where})"

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"legacy {self.where} failed ({type(exc).__name__}: {exc})")

    async def scan(
        self, match_prefixes: Sequence[str] = KEY_PREFIXES, *, count: int = 500
    ) -> AsyncIterator[str]:
        for prefix in match_prefixes:
            cursor: int = 0
            seen: set[bytes] = set()  # SCAN may return a key twice while the table rehashes
            while True:
                try:
                    cursor, page = await self._redis.scan(cursor, match=_glob_escape(prefix), count=count)
                except (rex.ConnectionError, rex.TimeoutError) as exc:
                    raise self._unavailable(exc) from exc
                for item in page:
                    raw = item if isinstance(item, bytes) else encode_key(item)
                    if raw not in seen:
                        seen.add(raw)
                        yield decode_key(raw)
                if cursor == 0:
                    break

    async def export(self, keys: Sequence[str]) -> list[KeyExport | None]:
        if not keys:
            return []
        try:
            replies = await self._export(keys=[encode_key(k) for k in keys])
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        out: list[KeyExport | None] = []
        for key, reply in zip(keys, replies, strict=True):
            if reply is None:
                out.append(None)
                continue
            kind = bytes(reply[0]).decode("ascii")
            pttl = int(reply[1])
            dump = bytes(reply[2])
            digest_kind, value = _value(kind, reply[3], dump)
            out.append(
                KeyExport(
                    key=key,
                    type=kind,
                    payload=dump,
                    payload_format=REDIS_DUMP,
                    pttl_ms=pttl if pttl > 0 else None,
                    sha256=value_digest(digest_kind, value),
                )
            )
        return out

    async def restore(self, items: Sequence[KeyExport], *, replace: bool = False) -> None:
        if not items:
            return
        only_voice_keys([i.key for i in items])
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for item in items:
                    self._queue_restore(pipe, item, replace)
                replies = await pipe.execute(raise_on_error=False)
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        for item, reply in zip(items, replies, strict=True):
            if isinstance(reply, rex.ResponseError):
                if "BUSYKEY" in str(reply) or "exists" in str(reply):
                    raise Conflict(f"legacy key {item.key!r} already exists in {self.where}", param="key")
                raise StoreUnavailable(f"legacy {self.where} refused to restore {item.key!r}: {reply}")
            if isinstance(reply, Exception):
                raise self._unavailable(reply)
            if reply is False or reply == 0:
                raise Conflict(f"legacy key {item.key!r} already exists in {self.where}", param="key")

    def _queue_restore(self, pipe: Any, item: KeyExport, replace: bool) -> None:
        key = encode_key(item.key)
        ttl = item.pttl_ms or 0  # RESTORE's 0 = no expiry
        if item.payload_format == REDIS_DUMP:
            pipe.restore(key, ttl, item.payload, replace=replace)
            return
        if item.payload_format != CANONICAL:
            raise ValueError(f"unknown payload format {item.payload_format!r}")
        # A value exported from the embedded store: rebuilt by a script, atomically (see below).
        kind, value = decode_canonical(item.payload)
        args: list[Any] = [key, ttl, kind, b"1" if replace else b"0"]
        if kind == "string":
            assert isinstance(value, bytes)
            args.append(value)
        elif kind == "hash":
            assert isinstance(value, dict)
            for f, v in value.items():
                args += [f, v]
        elif kind == "zset":
            assert isinstance(value, list)
            for member, score in value:
                args += [repr(score).encode(), member]
        else:
            assert isinstance(value, list)
            args += value
        pipe.eval(_RESTORE_CANONICAL_LUA, 1, *args)

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        raw = [encode_key(k) for k in only_voice_keys(keys)]
        try:
            return int(await self._redis.unlink(*raw))
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            raise self._unavailable(exc) from exc

    async def aclose(self) -> None:
        await self._redis.aclose()


# Atomic: the existence check and the write happen together, like RESTORE without REPLACE.
_RESTORE_CANONICAL_LUA = """
local k, ttl, kind, replace = KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3]
if redis.call('EXISTS', k) == 1 then
  if replace ~= '1' then return 0 end
  redis.call('DEL', k)
end
if kind == 'string' then redis.call('SET', k, ARGV[4])
elseif kind == 'hash' then redis.call('HSET', k, unpack(ARGV, 4))
elseif kind == 'zset' then redis.call('ZADD', k, unpack(ARGV, 4))
elseif kind == 'list' then redis.call('RPUSH', k, unpack(ARGV, 4))
elseif kind == 'set' then redis.call('SADD', k, unpack(ARGV, 4))
end
if ttl > 0 then redis.call('PEXPIRE', k, ttl) end
return 1
"""
