"""The settings database, one suite for SQLite (a tmp file) and a real PostgreSQL server: the Alembic
schema, every repository, the constraints the database itself enforces, and the cached service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from tests.fixtures.postgres_server import PostgresServer
from tests.fixtures.redis_server import free_port
from voxshift.core.agent_settings import VersionConflict
from voxshift.errors import ConfigError, InvalidRequest, StoreUnavailable
from voxshift.schemas.agent_settings import validate_agent_settings
from voxshift.services.agents.service import AgentSettingsService, cache_key
from voxshift.stores.db.engine import (
    Database,
    current_revision,
    ensure_schema,
    head_revision,
    normalize_url,
    upgrade,
)
from voxshift.stores.db.history import Operation, System
from voxshift.stores.db.models import Base
from voxshift.stores.db.repositories import (
    AgentSettingsRepository,
    FeedbackRepository,
    FlagAuditRepository,
    FlagConfigRepository,
    RolloutHistoryRepository,
)
from voxshift.stores.state import NamespacedStore, StateStore, open_state_store

TABLES = {
    "admin_tokens",
    "agent_voice_settings",
    "flag_changes",
    "flag_config",
    "rollout_history",
    "user_feedback",
}
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ENABLED = validate_agent_settings({"enabled": True, "intent_keywords": ["голос", "voice"]})
ODD_IDS = [
    "agent_агент_поддержки_9f8e7d6c",
    "agent_ops:eu@acme.io_00ff00ff",
    "agent_🤖.bot_deadbeef",
    "agent_" + "ж" * 122,  # 128 characters
    "plain",
]


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


# --- schema ---------------------------------------------------------------------------------------
async def test_upgrade_from_empty_to_head_is_idempotent(db_url: str) -> None:
    assert await current_revision(db_url) is None
    assert await upgrade(db_url) == head_revision() == "0004_rollout_transition"
    assert await current_revision(db_url) == head_revision()
    assert await upgrade(db_url) == head_revision()
    database = Database(db_url)
    async with database.begin() as conn:
        assert await conn.run_sync(_tables) >= TABLES
    await database.aclose()


async def test_the_migration_creates_exactly_what_the_models_describe(db: Database) -> None:
    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    async with db.begin() as conn:
        assert await conn.run_sync(diff) == []


async def test_ensure_schema_upgrades_sqlite_and_refuses_an_old_postgresql(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        database = await Database.open(db_url)  # the default for embedded SQLite: upgrade
        await database.aclose()
        assert await current_revision(db_url) == head_revision()
        return
    with pytest.raises(ConfigError) as info:
        await Database.open(db_url)
    message = info.value.message
    assert "\n" not in message
    assert (
        "at revision none (empty), this voxshift needs 0004_rollout_transition: run `voxshift db upgrade`"
        in message
    )
    assert "pw-voxshift-test" not in message and "postgres:****@" in message
    assert await current_revision(db_url) is None  # nothing was touched
    await upgrade(db_url)
    assert await ensure_schema(db_url, allow_upgrade=False) == head_revision()


async def test_a_schema_from_a_newer_voxshift_is_refused_by_both(db: Database) -> None:
    async with db.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    for allow in (True, False):
        with pytest.raises(ConfigError, match="0099_future, which this voxshift does not know"):
            await ensure_schema(db.url, allow_upgrade=allow)
    with pytest.raises(ConfigError, match="upgraded by a newer voxshift"):
        await upgrade(db.url)


async def test_repositories_on_a_database_without_the_schema_say_what_to_run(db_url: str) -> None:
    database = Database(db_url)
    with pytest.raises(ConfigError, match=r"no voxshift schema .*run `voxshift db upgrade`"):
        await AgentSettingsRepository(database).get("a")
    await database.aclose()


# --- agent settings -------------------------------------------------------------------------------
async def test_agent_settings_crud_with_optimistic_versions(db: Database) -> None:
    repo = AgentSettingsRepository(db)
    assert await repo.get("a1") is None
    created = await repo.put("a1", ENABLED, expected_version=0, actor="alice")
    assert (created.version, created.updated_by, created.settings) == (1, "alice", ENABLED)
    assert created.created_at.tzinfo is not None and created.created_at == created.updated_at
    assert await repo.get("a1") == created

    changed = validate_agent_settings({"enabled": True, "cache_ttl_hours": 48})
    updated = await repo.put("a1", changed, expected_version=1, actor="bob")
    assert (updated.version, updated.updated_by, updated.created_at) == (2, "bob", created.created_at)
    assert updated.updated_at >= created.updated_at

    with pytest.raises(VersionConflict, match="is at version 2, not 1: someone else changed it"):
        await repo.put("a1", ENABLED, expected_version=1)
    with pytest.raises(VersionConflict, match=r"already has settings \(version 2\)"):
        await repo.put("a1", ENABLED, expected_version=0)
    with pytest.raises(VersionConflict, match="has no settings"):
        await repo.put("ghost", ENABLED, expected_version=3)
    assert (await repo.get("a1")) == updated  # the losers changed nothing

    assert (await repo.put("a1", ENABLED)).version == 3  # no expectation: last writer wins
    assert (await repo.put("a2", ENABLED)).version == 1

    with pytest.raises(VersionConflict):
        await repo.delete("a1", expected_version=2)
    assert await repo.delete("a1", expected_version=3) is True
    assert await repo.delete("a1") is False
    assert await repo.get("a1") is None
    assert [s.agent_id for s in await repo.list()] == ["a2"]


async def test_concurrent_writers_one_wins_the_version_the_rest_conflict(db: Database) -> None:
    repo = AgentSettingsRepository(db)
    await repo.put("hot", ENABLED, expected_version=0)
    results = await asyncio.gather(
        *(repo.put("hot", ENABLED, expected_version=1, actor=f"w{i}") for i in range(4)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, VersionConflict) for r in results if isinstance(r, BaseException))
    # Unconditional upserts of a new agent race on INSERT; every one lands, none is lost.
    await asyncio.gather(*(repo.put("fresh", ENABLED, actor=f"u{i}") for i in range(4)))
    stored = await repo.get("fresh")
    assert stored is not None and stored.version == 4


async def test_non_ascii_agent_ids_round_trip_and_page_in_order(db: Database) -> None:
    repo = AgentSettingsRepository(db)
    for agent_id in ODD_IDS:
        await repo.put(agent_id, ENABLED)
    for agent_id in ODD_IDS:
        stored = await repo.get(agent_id)
        assert stored is not None and stored.agent_id == agent_id
        assert stored.settings.intent_keywords == ["голос", "voice"]
    seen: list[str] = []
    after: str | None = None
    while page := await repo.list(after=after, limit=2):
        seen += [s.agent_id for s in page]
        after = page[-1].agent_id
    assert seen == sorted(ODD_IDS)  # code-point order on both backends (the test cluster is C.UTF-8)


# --- flags, rollout history, feedback -------------------------------------------------------------
async def test_flag_audit_records_json_values_and_lists_newest_first(db: Database) -> None:
    audit = FlagAuditRepository(db)
    values = [False, {"stt_enabled": True, "tts_enabled": False}, [1, "два", None], None, 30]
    for i, value in enumerate(values):
        key = "kill_switch" if i % 2 == 0 else "features"
        await audit.record(
            key, actor="ops", old_value=None, new_value=value, reason=f"#{i}", at=T0 + timedelta(minutes=i)
        )
    recent = await audit.list_recent(limit=3)
    assert [c.reason for c in recent] == ["#4", "#3", "#2"]
    assert [c.new_value for c in await audit.list_recent(limit=10)][::-1] == values
    assert [c.reason for c in await audit.list_recent(key="features")] == ["#3", "#1"]
    assert [c.reason for c in await audit.list_recent(since=T0 + timedelta(minutes=3))] == ["#4", "#3"]
    assert recent[0].changed_at == T0 + timedelta(minutes=4) and recent[0].changed_at.tzinfo is not None
    with pytest.raises(InvalidRequest, match="timezone-aware"):
        await audit.record("k", actor="ops", old_value=1, new_value=2, at=datetime(2026, 1, 1))


async def test_flag_config_is_compare_and_set_and_audited_in_one_transaction(db: Database) -> None:
    flags, audit = FlagConfigRepository(db), FlagAuditRepository(db)
    assert await flags.get("voice_v2") is None
    first = await flags.put("voice_v2", {"enabled": False}, expected_version=0, actor="ops", reason="init")
    second = await flags.put("voice_v2", {"enabled": True}, expected_version=1, actor="ops", reason="go")
    assert (first.version, second.version) == (1, 2)
    with pytest.raises(VersionConflict, match="at version 2, not 1"):
        await flags.put("voice_v2", {"enabled": False}, expected_version=1, actor="mallory")
    stored = await flags.get("voice_v2")
    assert stored is not None and (stored.value, stored.version) == ({"enabled": True}, 2)
    changes = await audit.list_recent(key="voice_v2")
    assert [(c.old_value, c.new_value, c.reason) for c in changes] == [
        ({"enabled": False}, {"enabled": True}, "go"),
        (None, {"enabled": False}, "init"),
    ]


async def test_rollout_history_keeps_the_seed_phases_in_order(db: Database) -> None:
    history = RolloutHistoryRepository(db)
    assert await history.latest() is None
    phases = [("canary", 1, 0.02), ("pilot", 10, 0.01), ("beta", 30, 0.005), ("production", 100, 0.001)]
    previous = None
    for i, (phase, pct, error_rate) in enumerate(phases):
        metrics = {"error_rate": error_rate, "latency_p95_ms": 2000 - 400 * i}
        at = T0 + timedelta(days=i)
        await history.append(
            from_phase=previous, to_phase=phase, percentage=pct, actor="ctl", metrics=metrics, at=at
        )
        previous = phase
    at = T0 + timedelta(days=9)
    await history.append(
        from_phase=previous, to_phase="beta", percentage=30, actor="ops", reason="rollback", at=at
    )
    events = await history.list(newest_first=False)
    assert [(e.from_phase, e.to_phase, e.percentage) for e in events] == [
        (None, "canary", 1),
        ("canary", "pilot", 10),
        ("pilot", "beta", 30),
        ("beta", "production", 100),
        ("production", "beta", 30),
    ]
    assert events[2].metrics == {"error_rate": 0.005, "latency_p95_ms": 1200}
    latest = await history.latest()
    assert latest is not None and latest.reason == "rollback"
    with pytest.raises(InvalidRequest) as info:
        await history.append(to_phase="x", percentage=101, actor="ops")
    assert info.value.param == "percentage"


async def test_one_controller_transition_is_one_history_row_however_many_finish_it(db: Database) -> None:
    history = RolloutHistoryRepository(db)
    at = T0 + timedelta(hours=1, microseconds=123456)
    row = {"from_phase": None, "to_phase": "canary", "percentage": 1, "actor": "ops", "at": at, "seq": 7}
    # An operator's command and the leader finish the same stored transition at the same moment.
    first, second = await asyncio.gather(history.append(**row), history.append(**row))
    assert first.id == second.id and first.seq == 7
    assert [(e.to_phase, e.seq) for e in await history.list()] == [("canary", 7)]
    # The same number at another time is another transition (a state store that started again);
    # rows written without a number are never constrained.
    await history.append(**(row | {"at": at + timedelta(days=1)}))
    await history.append(to_phase="beta", percentage=30, actor="ops", at=at)
    await history.append(to_phase="beta", percentage=30, actor="ops", at=at)
    assert len(await history.list()) == 4


async def test_feedback_filters_and_aggregates_per_system_and_operation(db: Database) -> None:
    feedback = FeedbackRepository(db)
    rows: list[tuple[str, System, Operation, int]] = [
        ("u1", "voice_v2", "stt", 5),
        ("u2", "voice_v2", "stt", 4),
        ("u1", "legacy", "stt", 3),
        ("u3", "voice_v2", "tts", 2),
        ("u1", "voice_v2", "stt", 1),
    ]
    for i, (user, system, op, rating) in enumerate(rows):
        await feedback.add(
            user_id=user,
            system=system,
            operation=op,
            rating=rating,
            agent_id="agent_é" if i < 4 else None,
            comment="отлично" if i == 0 else None,
            at=T0 + timedelta(hours=i),
        )
    window = await feedback.aggregate(since=T0, until=T0 + timedelta(hours=4))  # the last row is outside
    assert [(a.system, a.operation, a.count, a.mean_rating) for a in window] == [
        ("legacy", "stt", 1, 3.0),
        ("voice_v2", "stt", 2, 4.5),
        ("voice_v2", "tts", 1, 2.0),
    ]
    everything = await feedback.aggregate(since=T0 - timedelta(days=1))
    assert {(a.system, a.operation): a.count for a in everything}[("voice_v2", "stt")] == 3
    assert [f.rating for f in await feedback.list(user_id="u1")] == [1, 3, 5]
    assert len(await feedback.list(agent_id="agent_é")) == 4
    newest = await feedback.list(since=T0 + timedelta(hours=3), limit=1)
    assert newest[0].at == T0 + timedelta(hours=4)
    oldest = (await feedback.list())[-1]
    assert oldest.comment == "отлично" and oldest.at == T0
    moscow = timezone(timedelta(hours=3))  # the same instant in another zone lands in the same place
    await feedback.add(
        user_id="u9",
        system="legacy",
        operation="tts",
        rating=4,
        at=datetime(2026, 11, 20, 15, 30, tzinfo=moscow),
    )
    assert (await feedback.list(user_id="u9"))[0].at == T0 + timedelta(minutes=30)
    for bad in (0, 6, True):
        with pytest.raises(InvalidRequest) as info:
            await feedback.add(user_id="u", system="legacy", operation="stt", rating=bad)
        assert info.value.param == "rating"


async def test_feedback_rating_sums_are_one_aggregate_with_plain_numbers(db: Database) -> None:
    """count, sum and sum of squares per (system, operation) in [since, until): the rollout's mean
    rating and its interval; ints on both backends (PostgreSQL sums SMALLINT as BIGINT)."""
    feedback = FeedbackRepository(db)
    ratings: list[tuple[System, Operation, int, int]] = [
        ("voice_v2", "stt", 5, 0),
        ("voice_v2", "stt", 3, 1),
        ("legacy", "stt", 4, 2),
        ("voice_v2", "tts", 2, 3),
        ("voice_v2", "stt", 1, 4),  # at the end of the window: outside it
    ]
    for system, op, rating, hour in ratings:
        await feedback.add(
            user_id="u", system=system, operation=op, rating=rating, at=T0 + timedelta(hours=hour)
        )
    sums = await feedback.rating_sums(since=T0, until=T0 + timedelta(hours=4))
    assert {k: (v.count, v.total, v.total_sq) for k, v in sums.items()} == {
        ("voice_v2", "stt"): (2, 8, 34),
        ("legacy", "stt"): (1, 4, 16),
        ("voice_v2", "tts"): (1, 2, 4),
    }
    assert all(type(v.count) is int and type(v.total) is int for v in sums.values())
    assert await feedback.rating_sums(since=T0 + timedelta(days=1)) == {}


_FEEDBACK = {"user_id": "'u'", "operation": "'stt'", "system": "'legacy'", "rating": "3"}


@pytest.mark.parametrize(
    ("table", "columns", "constraint"),
    [
        ("user_feedback", {**_FEEDBACK, "rating": "6"}, "ck_user_feedback_rating_range"),
        ("user_feedback", {**_FEEDBACK, "rating": "0"}, "ck_user_feedback_rating_range"),
        ("user_feedback", {**_FEEDBACK, "operation": "'asr'"}, "ck_user_feedback_operation_known"),
        ("user_feedback", {**_FEEDBACK, "system": "'v3'"}, "ck_user_feedback_system_known"),
        ("rollout_history", {"to_phase": "'x'", "percentage": "101", "actor": "'a'"}, "percentage_range"),
        ("agent_voice_settings", {"agent_id": "'a'", "settings": "'{}'", "version": "0"}, "version_positive"),
    ],
)
async def test_the_database_enforces_its_check_constraints(
    db: Database, table: str, columns: dict[str, str], constraint: str
) -> None:
    stamps = {"user_feedback": ["at"], "rollout_history": ["at"]}.get(table, ["created_at", "updated_at"])
    columns = {**dict.fromkeys(stamps, "CURRENT_TIMESTAMP"), **columns}
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(columns.values())})"
    with pytest.raises(IntegrityError) as info:
        async with db.begin() as conn:
            await conn.execute(text(sql))
    assert "check constraint" in str(info.value).lower() and constraint in str(info.value)


async def test_a_raw_insert_within_the_constraints_is_accepted(db: Database) -> None:
    async with db.begin() as conn:  # the constraint tests above fail on the constraint, not the SQL
        await conn.execute(
            text(
                "INSERT INTO user_feedback (at, user_id, operation, system, rating) "
                "VALUES (CURRENT_TIMESTAMP, 'u', 'stt', 'legacy', 5)"
            )
        )
    assert [f.rating for f in await FeedbackRepository(db).list()] == [5]


# --- connection failures --------------------------------------------------------------------------
async def test_unreachable_and_misconfigured_databases_fail_with_one_masked_line(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    closed = f"postgresql+asyncpg://u:s3cret@127.0.0.1:{free_port()}/db"
    with pytest.raises(StoreUnavailable, match=r"cannot reach the database at .*u:\*\*\*\*@127\.0\.0\.1"):
        await current_revision(closed)
    wrong_pw = postgres_server.url.replace("pw-voxshift-test", "nope")
    with pytest.raises(ConfigError, match="password authentication failed") as info:
        await current_revision(wrong_pw)
    assert "nope" not in info.value.message and "VOXSHIFT_DATABASE_URL" in info.value.message
    with pytest.raises(ConfigError, match='database "no_such_db" does not exist'):
        await current_revision(postgres_server.url_for("no_such_db"))
    for bad in ("mysql://u:pw@h/db", "redis://h:6379/0", "not a url", "sqlite+aiosqlite:///:memory:"):
        with pytest.raises(ConfigError, match="VOXSHIFT_DATABASE_URL") as info:
            normalize_url(bad)
        assert "pw@" not in info.value.message
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create"):
        await upgrade(f"sqlite:///{blocker}/sub/x.db")


# --- the cached service ---------------------------------------------------------------------------
@pytest_asyncio.fixture(loop_scope="function")
async def cache(tmp_path: Path) -> AsyncIterator[StateStore]:
    raw = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield NamespacedStore(raw, "voice_v2")
    await raw.aclose()


async def test_service_reads_through_the_cache_and_writes_through_it(db: Database, cache: StateStore) -> None:
    repo = AgentSettingsRepository(db)
    service = AgentSettingsService(repo, cache, ttl_s=3600)
    agent = ODD_IDS[0]
    assert await service.get(agent) is None
    assert await cache.get(cache_key(agent)) is not None  # "no settings" is cached too
    assert (await service.effective(agent)).enabled is False  # the legacy default

    saved = await service.put(agent, {"enabled": True}, expected_version=0, actor="t")
    assert await service.get(agent) == saved  # the negative entry was replaced on write
    ttl = await cache.ttl(cache_key(agent))
    assert ttl is not None and 3500 < ttl <= 3600

    await repo.put(agent, ENABLED)  # behind the service's back: the cache still answers
    cached = await service.get(agent)
    assert cached is not None and cached.version == 1
    fresh = await service.get(agent, fresh=True)  # an admin read sees, and republishes, the truth
    assert fresh is not None and fresh.version == 2
    assert (await service.get(agent)) == fresh

    await service.delete(agent)
    assert await cache.get(cache_key(agent)) is None
    assert await service.get(agent) is None
    assert service.cache_failures == 0


async def test_a_reader_racing_a_writer_cannot_cache_the_old_version(db: Database, cache: StateStore) -> None:
    repo = AgentSettingsRepository(db)
    service = AgentSettingsService(repo, cache)
    old = await repo.put("race", ENABLED)
    new = await service.put("race", {"enabled": False})
    # The reader fetched `old` from the database before the write; its fill must not win.
    assert await cache.set_if_absent(cache_key("race"), b"stale", 60) is False
    assert (await service.get("race")) == new != old


async def test_an_unreadable_cache_entry_is_replaced_from_the_database(
    db: Database, cache: StateStore
) -> None:
    service = AgentSettingsService(AgentSettingsRepository(db), cache)
    saved = await service.put("x", ENABLED)
    for junk in (b"\xff not json", b'{"f": 99}', b'{"f": 1, "found": true, "agent_id": "y"}'):
        await cache.set(cache_key("x"), junk)
        assert await service.get("x") == saved
        assert await cache.get(cache_key("x")) != junk


async def test_service_degrades_to_the_database_when_the_cache_is_down(db: Database) -> None:
    down = open_state_store(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    service = AgentSettingsService(AgentSettingsRepository(db), NamespacedStore(down, "voice_v2"))
    try:
        saved = await service.put("agent_é", ENABLED, actor="t")
        assert await service.get("agent_é") == saved
        assert await service.delete("agent_é") is True
        assert await service.get("agent_é") is None
        assert service.cache_failures >= 4
    finally:
        await down.aclose()
