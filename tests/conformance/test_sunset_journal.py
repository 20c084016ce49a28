"""The sunset journal on SQLite (a tmp file) and a real PostgreSQL server: the driver-level SQL it
writes and looks up with must mean the same thing on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voxshift.stores.db.engine import Database
from voxshift.stores.db.journal import JournalEntry, SunsetJournal

ODD_KEYS = [
    "stt_cache:0f" + "a" * 30,
    "tts_response_cache:agent_агент_поддержки:42:1767225600",
    "voice_metrics:agent_🤖.bot:7:stt",
    "voice_daily_stats:" + "ж" * 115 + ":2026-01-02",
    "voice/agent 1/user+2/2026/01/02/03/0e6f3b1e-5f0a-4d7e-9c3b-1a2b3c4d5e6f.ogg",
    'it\'s "quoted" and ; semicolons',
]


@pytest.fixture
def journal(db: Database) -> SunsetJournal:
    return SunsetJournal(db)


async def test_rows_round_trip_with_every_field_and_odd_keys(journal: SunsetJournal) -> None:
    assert not await journal.has_rows("redis")
    before = datetime.now(UTC)
    detail = {"verdict": "converted", "findings": [{"path": "tts.voice", "reason": "ё — not mapped"}]}
    entries = [
        JournalEntry("redis", key, "migrated", f"why {i}", f"v2:{key}", f"{i:064x}", 100 + i, None)
        for i, key in enumerate(ODD_KEYS)
    ]
    entries.append(
        JournalEntry("settings", "agent_a", "skipped", "schema-invalid", None, "ab" * 32, 7, detail)
    )
    await journal.record(entries)

    assert await journal.has_rows("redis") and await journal.has_rows("settings")
    assert not await journal.has_rows("s3")
    got = await journal.done("redis", [*ODD_KEYS, "stt_cache:missing"])
    assert set(got) == set(ODD_KEYS)
    for i, key in enumerate(ODD_KEYS):
        row = got[key]
        assert (row.outcome, row.reason, row.v2_key, row.sha256, row.bytes, row.detail) == (
            "migrated",
            f"why {i}",
            f"v2:{key}",
            f"{i:064x}",
            100 + i,
            None,
        )
        assert row.at is not None and row.at.tzinfo is not None
        assert before - timedelta(seconds=5) <= row.at <= datetime.now(UTC) + timedelta(seconds=5)
    settings = await journal.get("settings", "agent_a")
    assert settings is not None and settings.detail == detail
    assert await journal.outcomes("redis", [*ODD_KEYS[:2], "nope"]) == dict.fromkeys(ODD_KEYS[:2], "migrated")
    # The same key under another store is another item.
    assert await journal.outcomes("s3", ODD_KEYS) == {}


async def test_the_first_outcome_recorded_stays(journal: SunsetJournal) -> None:
    await journal.record([JournalEntry("redis", "stt_cache:x", "expired", "ttl ran out")])
    # A resumed run records the item again (and twice in one batch): the first row wins, no error.
    await journal.record(
        [
            JournalEntry("redis", "stt_cache:x", "migrated", "later"),
            JournalEntry("redis", "stt_cache:y", "skipped", "first"),
            JournalEntry("redis", "stt_cache:y", "migrated", "same batch, later"),
        ]
    )
    assert await journal.outcomes("redis", ["stt_cache:x", "stt_cache:y"]) == {
        "stt_cache:x": "expired",
        "stt_cache:y": "skipped",
    }
    assert (await journal.summary())["redis"] == {
        "expired": {"items": 1, "bytes": 0},
        "skipped": {"items": 1, "bytes": 0},
    }


async def test_large_batches_and_lookups_span_several_statements(journal: SunsetJournal) -> None:
    keys = [f"voice_rate_limit:agent:{i}" for i in range(2345)]  # > one INSERT chunk, > one IN chunk
    await journal.record(
        [JournalEntry("redis", k, "skipped", "ephemeral", bytes=i) for i, k in enumerate(keys)]
    )
    outcomes = await journal.outcomes("redis", keys[::-1])
    assert len(outcomes) == 2345 and set(outcomes.values()) == {"skipped"}
    listed = [entry.key async for entry in journal.entries(page=1000)]  # keyset pages, in the db's order
    assert len(listed) == 2345 and set(listed) == set(keys)
    assert (await journal.summary())["redis"]["skipped"] == {"items": 2345, "bytes": sum(range(2345))}
