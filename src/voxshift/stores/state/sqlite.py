"""SqliteStateStore: the embedded default, one SQLite file shared by every process on the host.

All SQL runs on one worker thread per store (the event loop never blocks on the file). The file is
in WAL mode so readers never wait for the writer; every read-modify-write (incr, CAS, batches) is a
``BEGIN IMMEDIATE`` transaction, which is what makes them atomic across processes, with
``busy_timeout`` queueing concurrent writers instead of failing them.

Pub/sub crosses processes through an append-only ``message`` table that subscribers poll; a publish
in this process also wakes local subscribers at once. Old messages and expired keys are deleted by
a sweep that piggybacks on writes every ``sweep_interval_s``; reads never rely on it (an expired row
is filtered out of every read, and replaced on write).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from voxshift.errors import StoreUnavailable
from voxshift.stores.state import sqlite_ops as sql
from voxshift.stores.state.base import (
    Batch,
    Op,
    OpResult,
    Subscription,
    decode_key,
    encode_key,
    ops_of,
    wait_for_event,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[sqlite3.Cursor, float], T]


class _Db:
    """The connection and everything that touches it; only ever used from the worker thread."""

    def __init__(
        self, path: str, url: str, busy_timeout_s: float, sweep_interval_s: float, retention_s: float
    ) -> None:
        self.path = path
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        self.sweep_interval_s = sweep_interval_s
        self.retention_s = retention_s
        self.conn: sqlite3.Connection | None = None
        self.last_sweep = time.monotonic()

    def open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, the module must not add its own.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable against process crashes in WAL mode; only an OS crash can lose the
            # last commits, which is fine for cache and counters.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in sql.SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        return conn

    def run(self, work: Work[T], write: bool, *, may_sweep: bool = True) -> T:
        try:
            conn = self.conn or self.open()
            cur = conn.cursor()
            if not write:
                return work(cur, time.time())
            cur.execute("BEGIN IMMEDIATE")
            try:
                result = work(cur, time.time())
                cur.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.rollback()
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise
        except (sqlite3.DatabaseError, OSError) as exc:
            # Locked past busy_timeout, unreadable, read-only, disk full or gone: the next call
            # starts from a fresh connection in case the file was replaced.
            self.close()
            raise StoreUnavailable(f"state store {self.url} unavailable: {exc}") from exc
        if may_sweep and time.monotonic() - self.last_sweep >= self.sweep_interval_s:
            self.sweep_quietly()
        return result

    def sweep_quietly(self) -> None:
        self.last_sweep = time.monotonic()
        try:
            self.run(partial(sql.sweep, message_retention_s=self.retention_s), True, may_sweep=False)
        except StoreUnavailable as exc:  # the op that triggered it already succeeded
            log.debug("sqlite state sweep skipped: %s", exc)

    def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.close()


class SqliteStateStore:
    """The StateStore protocol on one SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_s: float = 5.0,
        poll_interval_s: float = 0.1,
        sweep_interval_s: float = 30.0,
        message_retention_s: float = 60.0,
    ) -> None:
        self.path = os.fspath(path)
        self.url = f"sqlite:///{self.path}"
        self.poll_interval_s = poll_interval_s
        self._db = _Db(self.path, self.url, busy_timeout_s, sweep_interval_s, message_retention_s)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voxshift-state-sqlite")
        self._subscriptions: set[SqliteSubscription] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStateStore({self.url!r})"

    async def _run(self, work: Work[T], *, write: bool) -> T:
        if self._closed:
            raise StoreUnavailable(f"state store {self.url} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._db.run, work, write)

    async def get(self, key: str) -> bytes | None:
        return await self._run(partial(sql.get, key=key), write=False)

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        await self._run(partial(sql.set_, key=key, value=value, ttl_s=ttl_s), write=True)

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float | None = None) -> bool:
        return await self._run(partial(sql.set_if_absent, key=key, value=value, ttl_s=ttl_s), write=True)

    async def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes, ttl_s: float | None = None
    ) -> bool:
        work = partial(sql.compare_and_set, key=key, expected=expected, new=new, ttl_s=ttl_s)
        return await self._run(work, write=True)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return await self._run(partial(sql.delete, keys=keys), write=True)

    async def incr(self, key: str, amount: int = 1, ttl_s: float | None = None) -> int:
        return await self._run(partial(sql.incr, key=key, amount=amount, ttl_s=ttl_s), write=True)

    async def hincr(self, key: str, field: str, amount: float = 1, ttl_s: float | None = None) -> float:
        work = partial(sql.hincr, key=key, field=field, amount=amount, ttl_s=ttl_s)
        return await self._run(work, write=True)

    async def hgetall(self, key: str) -> dict[str, bytes]:
        return await self._run(partial(sql.hgetall, key=key), write=False)

    async def expire(self, key: str, ttl_s: float) -> bool:
        return await self._run(partial(sql.expire, key=key, ttl_s=ttl_s), write=True)

    async def ttl(self, key: str) -> float | None:
        return await self._run(partial(sql.ttl, key=key), write=False)

    async def exists(self, key: str) -> bool:
        return await self._run(partial(sql.exists, key=key), write=False)

    async def scan(self, prefix: str, *, count: int = 500) -> AsyncIterator[str]:
        raw = encode_key(prefix)
        after: bytes | None = None
        while True:
            page = partial(sql.scan_page, prefix=raw, after=after, limit=max(1, count))
            live, after = await self._run(page, write=False)
            for key in live:
                yield decode_key(key)
            if after is None:
                return

    async def execute(self, batch: Batch | Sequence[Op]) -> list[OpResult]:
        ops = ops_of(batch)
        if not ops:
            return []
        # One transaction: the batch is all-or-nothing here (Redis applies ops up to a failing one).
        return await self._run(partial(sql.execute, ops=ops), write=True)

    async def publish(self, channel: str, message: bytes) -> None:
        await self._run(partial(sql.publish, channel=channel, message=message), write=True)
        for sub in list(self._subscriptions):
            if sub.channel == channel:
                sub.wake()

    def subscribe(self, channel: str) -> SqliteSubscription:
        return SqliteSubscription(self, channel)

    async def ping(self) -> None:
        await self._run(sql.ping, write=True)

    async def sweep(self) -> int:
        """Delete expired keys and old messages now; how many keys went."""
        work = partial(sql.sweep, message_retention_s=self._db.retention_s)
        return await self._run(work, write=True)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            sub.wake()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=False)


class SqliteSubscription(Subscription):
    """Polls the message table every ``poll_interval_s``; woken early by publishes in this process."""

    def __init__(self, store: SqliteStateStore, channel: str) -> None:
        super().__init__(channel)
        self._store = store
        self._last_id = 0
        self._pending: collections.deque[bytes] = collections.deque()
        self._event: asyncio.Event | None = None
        self._closed = False

    def wake(self) -> None:
        if self._event is not None:
            self._event.set()

    async def start(self) -> None:
        self._event = asyncio.Event()
        self._last_id = await self._store._run(sql.last_message_id, write=False)
        self._store._subscriptions.add(self)

    async def get(self, timeout: float | None = None) -> bytes | None:
        if self._event is None:
            raise RuntimeError("subscription not started: use `async with store.subscribe(...)`")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._closed or self._store._closed:
                return None
            # Clear before polling: a wake-up that lands during the poll then shortens the wait.
            self._event.clear()
            rows = await self._store._run(
                partial(sql.poll, channel=self.channel, after_id=self._last_id), write=False
            )
            if rows:
                self._last_id = rows[-1][0]
                self._pending.extend(payload for _, payload in rows)
                continue
            wait = self._store.poll_interval_s
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    return None
            await wait_for_event(self._event, wait)

    async def aclose(self) -> None:
        self._closed = True
        self._store._subscriptions.discard(self)
        self.wake()
