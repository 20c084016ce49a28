"""The SQL behind :class:`SqliteStateStore`: plain functions run on the store's one worker thread.

Every function takes a cursor and ``now`` (wall-clock seconds: several processes share the file, so
a monotonic clock would not mean the same thing in each). Write functions assume the caller has
opened a ``BEGIN IMMEDIATE`` transaction, which takes the write lock up front: a read-then-write
under a deferred transaction could fail with SQLITE_BUSY on the lock upgrade, and the busy handler
does not retry that case.

Keys, fields and channels are stored as BLOBs (UTF-8 with surrogateescape) so that a prefix scan is
a byte-range query on the primary key and any key a caller can name round-trips exactly.
"""

from __future__ import annotations

import sqlite3

from voxshift.stores.state.base import (
    Op,
    OpResult,
    check_int64,
    decode_key,
    encode_key,
    format_float,
    is_int_amount,
    parse_float,
    parse_int,
    ttl_ms,
)

STRING, HASH = 0, 1
SWEEP_BATCH = 5000  # rows per sweep step, so a sweep never holds the write lock for long

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kv (
        key BLOB PRIMARY KEY, kind INTEGER NOT NULL, value BLOB, expires_at REAL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS hash_field (
        key BLOB NOT NULL, field BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (key, field)
    ) WITHOUT ROWID""",
    # AUTOINCREMENT: ids are never reused after pruning, so "id > last seen" stays correct.
    """CREATE TABLE IF NOT EXISTS message (
        id INTEGER PRIMARY KEY AUTOINCREMENT, channel BLOB NOT NULL, payload BLOB NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS message_channel ON message (channel, id)",
    "CREATE INDEX IF NOT EXISTS message_created_at ON message (created_at)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB)",
)

Row = tuple[int, bytes | None, float | None]


def wrong_type() -> ValueError:
    return ValueError("WRONGTYPE Operation against a key holding the wrong kind of value")


def expiry(now: float, ttl_s: float | None) -> float | None:
    return None if ttl_s is None else now + ttl_ms(ttl_s) / 1000


def _live(cur: sqlite3.Cursor, key: bytes, now: float) -> Row | None:
    """The row if it is live; inside a write transaction an expired row is dropped on the way."""
    row: Row | None = cur.execute("SELECT kind, value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
    if row is not None and row[2] is not None and row[2] <= now:
        if not cur.connection.in_transaction:
            return None
        _drop(cur, key, row[0])
        return None
    return row


def _drop(cur: sqlite3.Cursor, key: bytes, kind: int) -> None:
    cur.execute("DELETE FROM kv WHERE key = ?", (key,))
    if kind == HASH:
        cur.execute("DELETE FROM hash_field WHERE key = ?", (key,))


def _put_string(cur: sqlite3.Cursor, key: bytes, value: bytes, expires_at: float | None) -> None:
    old = cur.execute("SELECT kind FROM kv WHERE key = ?", (key,)).fetchone()
    if old is not None and old[0] == HASH:
        cur.execute("DELETE FROM hash_field WHERE key = ?", (key,))
    cur.execute(
        "INSERT OR REPLACE INTO kv (key, kind, value, expires_at) VALUES (?, ?, ?, ?)",
        (key, STRING, value, expires_at),
    )


def get(cur: sqlite3.Cursor, now: float, key: str) -> bytes | None:
    row = _live(cur, encode_key(key), now)
    if row is None:
        return None
    if row[0] != STRING or row[1] is None:
        raise wrong_type()
    return bytes(row[1])


def set_(cur: sqlite3.Cursor, now: float, key: str, value: bytes, ttl_s: float | None) -> None:
    _put_string(cur, encode_key(key), bytes(value), expiry(now, ttl_s))


def set_if_absent(cur: sqlite3.Cursor, now: float, key: str, value: bytes, ttl_s: float | None) -> bool:
    raw = encode_key(key)
    if _live(cur, raw, now) is not None:
        return False
    _put_string(cur, raw, bytes(value), expiry(now, ttl_s))
    return True


def compare_and_set(
    cur: sqlite3.Cursor, now: float, key: str, expected: bytes | None, new: bytes, ttl_s: float | None
) -> bool:
    raw = encode_key(key)
    row = _live(cur, raw, now)
    if row is not None and row[0] != STRING:
        raise wrong_type()
    current = None if row is None or row[1] is None else bytes(row[1])
    if current != expected:
        return False
    _put_string(cur, raw, bytes(new), expiry(now, ttl_s))
    return True


def delete(cur: sqlite3.Cursor, now: float, keys: tuple[str, ...]) -> int:
    deleted = 0
    for key in dict.fromkeys(keys):  # Redis DEL counts a key named twice once
        raw = encode_key(key)
        row = _live(cur, raw, now)
        if row is not None:
            _drop(cur, raw, row[0])
            deleted += 1
    return deleted


def incr(cur: sqlite3.Cursor, now: float, key: str, amount: float, ttl_s: float | None) -> int:
    if not is_int_amount(amount):
        raise ValueError(f"incr amount must be an int, got {amount!r}")
    raw = encode_key(key)
    row = _live(cur, raw, now)
    if row is not None and (row[0] != STRING or row[1] is None):
        raise wrong_type()
    current = 0 if row is None or row[1] is None else parse_int(bytes(row[1]))
    value = check_int64(current + int(amount))
    expires_at = expiry(now, ttl_s) if ttl_s is not None else (row[2] if row is not None else None)
    cur.execute(
        "INSERT OR REPLACE INTO kv (key, kind, value, expires_at) VALUES (?, ?, ?, ?)",
        (raw, STRING, str(value).encode(), expires_at),
    )
    return value


def hincr(
    cur: sqlite3.Cursor, now: float, key: str, field: str, amount: float, ttl_s: float | None
) -> int | float:
    raw, raw_field = encode_key(key), encode_key(field)
    row = _live(cur, raw, now)
    if row is not None and row[0] != HASH:
        raise wrong_type()
    old = cur.execute("SELECT value FROM hash_field WHERE key = ? AND field = ?", (raw, raw_field)).fetchone()
    result: int | float
    if is_int_amount(amount):
        current = 0 if old is None else parse_int(bytes(old[0]), "hash value")
        result = check_int64(current + int(amount))
        stored = str(result).encode()
    else:
        current_f = 0.0 if old is None else parse_float(bytes(old[0]), "hash value")
        stored = format_float(current_f + float(amount))
        result = float(stored)
    expires_at = expiry(now, ttl_s) if ttl_s is not None else (row[2] if row is not None else None)
    cur.execute(
        "INSERT OR REPLACE INTO kv (key, kind, value, expires_at) VALUES (?, ?, NULL, ?)",
        (raw, HASH, expires_at),
    )
    cur.execute(
        "INSERT OR REPLACE INTO hash_field (key, field, value) VALUES (?, ?, ?)", (raw, raw_field, stored)
    )
    return result


def hgetall(cur: sqlite3.Cursor, now: float, key: str) -> dict[str, bytes]:
    raw = encode_key(key)
    row = _live(cur, raw, now)
    if row is None:
        return {}
    if row[0] != HASH:
        raise wrong_type()
    rows = cur.execute("SELECT field, value FROM hash_field WHERE key = ?", (raw,)).fetchall()
    return {decode_key(bytes(f)): bytes(v) for f, v in rows}


def expire(cur: sqlite3.Cursor, now: float, key: str, ttl_s: float) -> bool:
    raw = encode_key(key)
    ms = ttl_ms(ttl_s)
    if _live(cur, raw, now) is None:
        return False
    cur.execute("UPDATE kv SET expires_at = ? WHERE key = ?", (now + ms / 1000, raw))
    return True


def ttl(cur: sqlite3.Cursor, now: float, key: str) -> float | None:
    row = _live(cur, encode_key(key), now)
    return None if row is None or row[2] is None else max(0.0, row[2] - now)


def exists(cur: sqlite3.Cursor, now: float, key: str) -> bool:
    return _live(cur, encode_key(key), now) is not None


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string above every string that starts with ``prefix`` (None: no bound)."""
    stem = prefix.rstrip(b"\xff")
    return stem[:-1] + bytes([stem[-1] + 1]) if stem else None


def scan_page(
    cur: sqlite3.Cursor, now: float, prefix: bytes, after: bytes | None, limit: int
) -> tuple[list[bytes], bytes | None]:
    """Up to ``limit`` keys in key order after ``after``: (the live ones, where the next page
    starts or None at the end). Keyset paging keeps every page a short read, so a big scan never
    holds a snapshot open or blocks writers."""
    end = prefix_end(prefix)
    lower_sql, lower = ("key > ?", after) if after is not None else ("key >= ?", prefix)
    sql = f"SELECT key, expires_at FROM kv WHERE {lower_sql}"
    params: list[object] = [lower]
    if end is not None:
        sql += " AND key < ?"
        params.append(end)
    rows = cur.execute(sql + " ORDER BY key LIMIT ?", (*params, limit)).fetchall()
    live = [bytes(k) for k, exp in rows if exp is None or exp > now]
    # Expired rows still move the cursor on; they are just not reported.
    return live, (bytes(rows[-1][0]) if len(rows) == limit else None)


def execute(cur: sqlite3.Cursor, now: float, ops: list[Op]) -> list[OpResult]:
    results: list[OpResult] = []
    for op in ops:
        if op.name == "get":
            results.append(get(cur, now, op.key))
        elif op.name == "set":
            if op.value is None:
                raise ValueError(f"set {op.key!r}: value is required")
            set_(cur, now, op.key, op.value, op.ttl_s)
            results.append(None)
        elif op.name == "delete":
            results.append(delete(cur, now, (op.key,)))
        elif op.name == "incr":
            results.append(incr(cur, now, op.key, op.amount, op.ttl_s))
        elif op.name == "hincr":
            if op.field is None:
                raise ValueError(f"hincr {op.key!r}: field is required")
            results.append(hincr(cur, now, op.key, op.field, op.amount, op.ttl_s))
        elif op.name == "hgetall":
            results.append(hgetall(cur, now, op.key))
        elif op.name == "expire":
            if op.ttl_s is None:
                raise ValueError(f"expire {op.key!r}: ttl_s is required")
            results.append(expire(cur, now, op.key, op.ttl_s))
        else:
            raise ValueError(f"unknown batch operation {op.name!r}")
    return results


def publish(cur: sqlite3.Cursor, now: float, channel: str, message: bytes) -> None:
    cur.execute(
        "INSERT INTO message (channel, payload, created_at) VALUES (?, ?, ?)",
        (encode_key(channel), bytes(message), now),
    )


def last_message_id(cur: sqlite3.Cursor, now: float) -> int:
    row = cur.execute("SELECT COALESCE(MAX(id), 0) FROM message").fetchone()
    return int(row[0])


def poll(cur: sqlite3.Cursor, now: float, channel: str, after_id: int) -> list[tuple[int, bytes]]:
    rows = cur.execute(
        "SELECT id, payload FROM message WHERE channel = ? AND id > ? ORDER BY id LIMIT 1000",
        (encode_key(channel), after_id),
    ).fetchall()
    return [(int(i), bytes(p)) for i, p in rows]


def sweep(cur: sqlite3.Cursor, now: float, message_retention_s: float) -> int:
    """Delete up to SWEEP_BATCH expired keys and every message older than the retention."""
    rows = cur.execute(
        "SELECT key, kind FROM kv WHERE expires_at <= ? LIMIT ?", (now, SWEEP_BATCH)
    ).fetchall()
    for key, kind in rows:
        _drop(cur, bytes(key), int(kind))
    cur.execute("DELETE FROM message WHERE created_at < ?", (now - message_retention_s,))
    return len(rows)


def ping(cur: sqlite3.Cursor, now: float) -> None:
    # A real write: opening the file can succeed on a read-only file or a full disk.
    cur.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('ping', ?)", (repr(now).encode(),))
