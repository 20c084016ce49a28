"""RedisStateStore: the StateStore protocol on a real Redis server (redis-py asyncio).

Failure policy: a dead or unreachable Redis must cost a request at most a couple of seconds, not
hang it. Connect and socket timeouts are short, redis-py retries a failed command exactly once (on
a fresh connection, which is what makes the first call after a server restart succeed instead of
failing on a stale pooled socket), and every network-level failure becomes ``StoreUnavailable``
naming the masked URL. Redis replies that mean "not usable right now" (LOADING, READONLY, OOM,
MISCONF, auth) are StoreUnavailable too; any other error reply is a caller mistake: ValueError.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.exceptions as rex
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from voxshift.core.masking import mask_url
from voxshift.errors import StoreUnavailable
from voxshift.stores.state.base import (
    Batch,
    Op,
    OpResult,
    Subscription,
    decode_key,
    encode_key,
    is_int_amount,
    ops_of,
    ttl_ms,
)

T = TypeVar("T")

_NET_ERRORS = (rex.ConnectionError, rex.TimeoutError, OSError)
_NOT_SERVING = (rex.ReadOnlyError, rex.OutOfMemoryError, rex.NoPermissionError)
_NOT_SERVING_PREFIXES = ("MISCONF", "LOADING", "MASTERDOWN", "NOAUTH", "WRONGPASS", "BUSY")
_GLOB_SPECIALS = frozenset(b"*?[]\\")

# Compare-and-set in one atomic step; ARGV = has_expected ("0"/"1"), expected, new, px ("" = none).
_CAS_LUA = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
"""


def escape_glob(raw: bytes) -> bytes:
    """``raw`` as a literal inside a SCAN MATCH pattern (agent ids may contain ``*?[``)."""
    return b"".join(b"\\" + bytes([c]) if c in _GLOB_SPECIALS else bytes([c]) for c in raw)


class RedisStateStore:
    """The StateStore protocol on Redis; one pool per store, ``decode_responses=False``."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        max_connections: int = 64,
        reconnect_s: float = 10.0,
    ) -> None:
        self.url = mask_url(url)
        self.reconnect_s = reconnect_s
        self._pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            decode_responses=False,
            # Keys that came back from SCAN as surrogate-escaped str must encode to the same bytes.
            encoding_errors="surrogateescape",
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            max_connections=max_connections,
            timeout=timeout_s,  # waiting for a free pooled connection
        )
        self._client: Redis = Redis(connection_pool=self._pool)
        self._cas = self._client.register_script(_CAS_LUA)

    def __repr__(self) -> str:
        return f"RedisStateStore({self.url!r})"

    # --- error mapping -----------------------------------------------------------------------
    def translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, _NET_ERRORS + _NOT_SERVING) or (
            isinstance(exc, rex.ResponseError) and str(exc).startswith(_NOT_SERVING_PREFIXES)
        ):
            return StoreUnavailable(f"state store {self.url} unavailable: {exc}")
        if isinstance(exc, rex.ResponseError | rex.DataError):
            return ValueError(str(exc))
        return exc

    async def _do(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except Exception as exc:
            mapped = self.translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    # --- strings -----------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        value = await self._do(self._client.get(key))
        return None if value is None else _as_bytes(value)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        px = None if ttl_s is None else ttl_ms(ttl_s)
        await self._do(self._client.set(key, value, px=px))

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        px = None if ttl_s is None else ttl_ms(ttl_s)
        return bool(await self._do(self._client.set(key, value, px=px, nx=True)))

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, ttl_s: float | None = None
    ) -> bool:
        px = "" if ttl_s is None else str(ttl_ms(ttl_s))
        args = ["0" if expected is None else "1", expected or b"", new, px]
        return bool(await self._do(self._cas(keys=[key], args=args)))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._do(self._client.delete(*keys)))

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        if not is_int_amount(amount):
            raise ValueError(f"incr amount must be an int, got {amount!r}")
        if ttl_s is None:
            return int(await self._do(self._client.incrby(key, amount)))
        px = ttl_ms(ttl_s)
        replies = await self._do(self._atomic(lambda p: (p.incrby(key, amount), p.pexpire(key, px))))
        return int(replies[0])

    # --- hashes ------------------------------------------------------------------------------
    async def hincr(self, key: str, field: str, amount: float = 1, ttl_s: float | None = None) -> float:
        if ttl_s is None:
            result = await self._do(self._hincr(self._client, key, field, amount))
        else:
            px = ttl_ms(ttl_s)
            replies = await self._do(
                self._atomic(lambda p: (self._hincr(p, key, field, amount), p.pexpire(key, px)))
            )
            result = replies[0]
        return int(result) if is_int_amount(amount) else float(result)

    @staticmethod
    def _hincr(client: Any, key: str, field: str, amount: float) -> Any:
        if is_int_amount(amount):
            return client.hincrby(key, field, int(amount))
        return client.hincrbyfloat(key, field, float(amount))

    async def hgetall(self, key: str) -> dict[str, bytes]:
        raw = await self._do(self._client.hgetall(key))
        return {decode_key(_as_bytes(f)): _as_bytes(v) for f, v in raw.items()}

    # --- keys --------------------------------------------------------------------------------
    async def expire(self, key: str, ttl_s: float) -> bool:
        return bool(await self._do(self._client.pexpire(key, ttl_ms(ttl_s))))

    async def ttl(self, key: str) -> float | None:
        ms = int(await self._do(self._client.pttl(key)))
        return None if ms < 0 else ms / 1000  # -2: no key, -1: no expiry

    async def exists(self, key: str) -> bool:
        return int(await self._do(self._client.exists(key))) > 0

    async def scan(self, prefix: str, *, count: int = 500) -> AsyncIterator[str]:
        raw = encode_key(prefix)
        pattern = escape_glob(raw) + b"*"
        # SCAN may return a key twice while the keyspace is rehashing; the contract is "once".
        seen: set[bytes] = set()
        cursor: int = 0
        while True:
            cursor, keys = await self._do(self._client.scan(cursor=cursor, match=pattern, count=count))
            for key in map(_as_bytes, keys):
                if key.startswith(raw) and key not in seen:
                    seen.add(key)
                    yield decode_key(key)
            if int(cursor) == 0:
                return

    # --- batches -----------------------------------------------------------------------------
    async def execute(self, batch: Batch | Sequence[Op]) -> list[OpResult]:
        ops = ops_of(batch)
        if not ops:
            return []
        pipe = self._client.pipeline(transaction=False)
        plan: list[tuple[int, Callable[[Any], OpResult]]] = []  # (index of the reply, converter)
        sent = 0
        for op in ops:
            plan.append((sent, _queue(pipe, op)))
            sent += 1
            if op.ttl_s is not None and op.name in ("incr", "hincr"):
                pipe.pexpire(op.key, ttl_ms(op.ttl_s))
                sent += 1
        replies = await self._do(pipe.execute())
        return [convert(replies[index]) for index, convert in plan]

    async def _atomic(self, queue: Callable[[Any], object]) -> list[Any]:
        # MULTI/EXEC so a counter never exists without the TTL it was written with.
        pipe = self._client.pipeline(transaction=True)
        queue(pipe)
        return list(await pipe.execute())

    # --- pub/sub -----------------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> None:
        await self._do(self._client.publish(channel, message))

    def subscribe(self, channel: str) -> RedisSubscription:
        return RedisSubscription(self, channel)

    def pubsub(self) -> PubSub:
        return self._client.pubsub()

    # --- lifecycle ---------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._do(self._client.ping())

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._pool.aclose()


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _queue(pipe: Any, op: Op) -> Callable[[Any], OpResult]:
    """Queue ``op`` on ``pipe``; return how to turn its reply into the protocol's result."""
    if op.name == "get":
        pipe.get(op.key)
        return lambda r: None if r is None else _as_bytes(r)
    if op.name == "set":
        if op.value is None:
            raise ValueError(f"set {op.key!r}: value is required")
        pipe.set(op.key, op.value, px=None if op.ttl_s is None else ttl_ms(op.ttl_s))
        return lambda r: None
    if op.name == "delete":
        pipe.delete(op.key)
        return int
    if op.name == "incr":
        if not is_int_amount(op.amount):
            raise ValueError(f"incr amount must be an int, got {op.amount!r}")
        pipe.incrby(op.key, int(op.amount))
        return int
    if op.name == "hincr":
        if op.field is None:
            raise ValueError(f"hincr {op.key!r}: field is required")
        RedisStateStore._hincr(pipe, op.key, op.field, op.amount)
        return int if is_int_amount(op.amount) else float
    if op.name == "hgetall":
        pipe.hgetall(op.key)
        return lambda r: {decode_key(_as_bytes(f)): _as_bytes(v) for f, v in r.items()}
    if op.name == "expire":
        if op.ttl_s is None:
            raise ValueError(f"expire {op.key!r}: ttl_s is required")
        pipe.pexpire(op.key, ttl_ms(op.ttl_s))
        return bool
    raise ValueError(f"unknown batch operation {op.name!r}")


class RedisSubscription(Subscription):
    """One Redis pub/sub connection per subscription.

    When the connection drops, it reconnects and re-subscribes by itself (redis-py replays the
    SUBSCRIBE on connect), retrying for ``reconnect_s`` before giving up with StoreUnavailable.
    Messages published while it was disconnected are lost: Redis pub/sub keeps no history.
    """

    def __init__(self, store: RedisStateStore, channel: str) -> None:
        super().__init__(channel)
        self._store = store
        self._pubsub: PubSub | None = None

    async def start(self) -> None:
        self._pubsub = self._store.pubsub()
        try:
            await self._pubsub.subscribe(encode_key(self.channel))
            # Wait for the server's confirmation: only then is a publish guaranteed to reach us.
            while True:
                reply = await self._pubsub.get_message(timeout=self._store.reconnect_s)
                if reply is None:
                    raise rex.TimeoutError("no SUBSCRIBE confirmation")
                if reply["type"] == "subscribe":
                    return
        except Exception as exc:
            await self.aclose()
            mapped = self._store.translate(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def get(self, timeout: float | None = None) -> bytes | None:
        if self._pubsub is None:
            raise RuntimeError("subscription not started: use `async with store.subscribe(...)`")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
            if wait < 0:
                return None
            try:
                reply = await self._pubsub.get_message(timeout=wait)
            except _NET_ERRORS as exc:
                await self._reconnect(exc)
                continue
            if reply is not None and reply["type"] == "message":
                return _as_bytes(reply["data"])
            if deadline is not None and loop.time() >= deadline:
                return None

    async def _reconnect(self, error: BaseException) -> None:
        assert self._pubsub is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._store.reconnect_s
        delay = 0.05
        while True:
            try:
                await self._pubsub.connect()  # type: ignore[no-untyped-call]  # re-subscribes through redis-py's on_connect hook
                return
            except _NET_ERRORS as exc:
                error = exc
            if loop.time() + delay > give_up:
                raise StoreUnavailable(
                    f"state store {self._store.url} unavailable: subscription to {self.channel!r} lost: "
                    f"{error}"
                ) from error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def aclose(self) -> None:
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            with contextlib.suppress(*_NET_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
