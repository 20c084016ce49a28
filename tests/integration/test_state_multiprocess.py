"""The embedded SQLite state store shared by several OS processes (and handles) on one host.

Counters must stay exact under contention (BEGIN IMMEDIATE + busy_timeout), and a publish in one
process must reach a subscriber in another through the polled message table, well within 1 s.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import statistics
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from voxshift.errors import StoreUnavailable
from voxshift.stores.state import open_state_store
from voxshift.stores.state.sqlite import SqliteStateStore

PROCESSES = 4
INCREMENTS = 500
MESSAGES = 10


def _increment(url: str, start: Event) -> None:
    async def run() -> None:
        store = open_state_store(url)
        try:
            await store.ping()
            start.wait(30)  # every process is connected: now they contend
            for _ in range(INCREMENTS):
                await store.incr("counter")
        finally:
            await store.aclose()

    asyncio.run(run())


def _listen(url: str, ready: Event, received: Queue[tuple[bytes, float]]) -> None:
    async def run() -> None:
        store = open_state_store(url)
        try:
            async with store.subscribe("events") as sub:
                ready.set()
                for _ in range(MESSAGES):
                    message = await sub.get(timeout=30)
                    assert message is not None
                    received.put((message, time.time()))
        finally:
            await store.aclose()

    asyncio.run(run())


def test_four_processes_increment_one_counter_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_increment, args=(url, start)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    with sqlite3.connect(tmp_path / "state.db") as conn:
        (value,) = conn.execute("SELECT value FROM kv WHERE key = ?", (b"counter",)).fetchone()
    conn.close()
    assert value == str(PROCESSES * INCREMENTS).encode()


async def test_a_publish_reaches_a_subscriber_in_another_process_within_1s(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    received: Queue[tuple[bytes, float]] = ctx.Queue()
    proc = ctx.Process(target=_listen, args=(url, ready, received))
    proc.start()
    store = open_state_store(url)
    latencies: list[float] = []
    try:
        assert await asyncio.to_thread(ready.wait, 60), "the subscriber process never became ready"
        for i in range(MESSAGES):
            sent = time.time()
            await store.publish("events", b"m%d" % i)
            message, arrived = await asyncio.to_thread(received.get, True, 10)
            assert message == b"m%d" % i
            latencies.append(arrived - sent)
            await asyncio.sleep((i * 0.037) % 0.1)  # land at different points of the poll cycle
    finally:
        await store.aclose()
        await asyncio.to_thread(proc.join, 30)
        if proc.is_alive():
            proc.terminate()
    print(
        f"\ncross-process pub/sub latency over {MESSAGES} messages: "
        f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    assert proc.exitcode == 0
    assert max(latencies) < 1.0


# --- one file, several handles ---------------------------------------------------------------------


async def test_sqlite_ping_fails_when_the_file_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    for path in (tmp_path, tmp_path / "a_file" / "state.db"):
        store = open_state_store(f"sqlite:///{path}")
        with pytest.raises(StoreUnavailable) as info:
            await store.ping()
        assert str(path) in str(info.value) and info.value.status == 503
        await store.aclose()


async def test_sqlite_sweep_deletes_expired_rows_and_old_messages(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteStateStore(db, message_retention_s=0.1, sweep_interval_s=3600)
    try:
        for i in range(10):
            await store.set(f"k{i}", b"v", ttl_s=0.1)
        await store.hincr("h", "f", ttl_s=0.1)
        await store.set("keep", b"v")
        await store.publish("ch", b"old")
        await asyncio.sleep(0.3)
        assert await store.sweep() == 11
    finally:
        await store.aclose()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM kv").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM hash_field").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM message").fetchone() == (0,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


async def test_sqlite_sweeps_by_itself_and_two_handles_share_pubsub(tmp_path: Path) -> None:
    a = SqliteStateStore(tmp_path / "state.db", sweep_interval_s=0)
    b = SqliteStateStore(tmp_path / "state.db")
    try:
        await a.set("gone", b"v", ttl_s=0.1)
        await asyncio.sleep(0.2)
        await a.set("trigger", b"v")  # any write runs the overdue sweep
        async with b.subscribe("ch") as sub:
            await a.publish("ch", b"across connections")  # no in-process wake-up for b: it polls
            assert await sub.get(timeout=5) == b"across connections"
    finally:
        await a.aclose()
        await b.aclose()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("SELECT count(*) FROM kv").fetchone() == (1,)
    conn.close()
