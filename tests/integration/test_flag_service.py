"""FeatureFlags on real stores: the SQLite and Redis state stores, the SQLite and PostgreSQL settings
databases. Persistence, audit rows, initialisation from the environment, CAS between writers,
outages (last known config kept, only rollbacks without the audit trail), repair of a flushed
store, in-process propagation to a second instance and its OpenFeature provider."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from openfeature import api
from openfeature.event import EventDetails, ProviderEvent

from tests.fixtures.redis_server import RedisServer, free_port
from voxshift.core.agent_settings import VersionConflict
from voxshift.core.flags import Features, FlagConfig, PerOperation
from voxshift.errors import StoreUnavailable
from voxshift.services.flags.openfeature import VoxshiftFlagProvider
from voxshift.services.flags.service import INIT_REASON, SYSTEM_ACTOR, FeatureFlags
from voxshift.services.flags.store import CHANNEL, CONFIG_KEY, DB_CHECK_EVERY, DB_KEY
from voxshift.stores.db.engine import Database
from voxshift.stores.db.repositories import FlagAuditRepository, FlagConfigRepository
from voxshift.stores.state import NamespacedStore, StateStore, open_state_store

ENV = FlagConfig(enabled=True, features=Features(True, True), percentages=PerOperation(10, 10))
WAIT_S = 10.0  # generous bound for "eventually"; latency itself is measured in the propagation test


@dataclass
class Stores:
    raw: StateStore
    store: NamespacedStore
    db: Database
    redis: RedisServer | None
    made: list[FeatureFlags] = field(default_factory=list)

    @property
    def repo(self) -> FlagConfigRepository:
        return FlagConfigRepository(self.db)

    def flags(self, initial: FlagConfig = ENV, *, repo: FlagConfigRepository | None = None) -> FeatureFlags:
        flags = FeatureFlags(self.store, repo or self.repo, initial, poll_interval_s=0.05)
        self.made.append(flags)
        return flags

    async def stored(self) -> FlagConfig | None:
        raw = await self.store.get(CONFIG_KEY)
        return None if raw is None else FlagConfig.from_json(raw)

    async def audit(self) -> list[object]:
        return list(await FlagAuditRepository(self.db).list_recent(key=DB_KEY))


@pytest.fixture(params=["sqlite", "redis"])
def state_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="function")
async def stores(state_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    redis = request.getfixturevalue("clean_redis") if state_kind == "redis" else None
    url = redis.url if redis is not None else f"sqlite:///{tmp_path / 'state.db'}"
    raw = open_state_store(url)
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'settings.db'}")
    out = Stores(raw, NamespacedStore(raw, "voice_v2"), db, redis)
    yield out
    for flags in out.made:
        await flags.stop()
    if redis is not None and not redis.running:
        redis.restart()
    await raw.aclose()
    await db.aclose()


def dead_database() -> Database:
    """A PostgreSQL URL nobody listens on: every query raises StoreUnavailable at once."""
    return Database(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/voxshift")


async def eventually(check: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# --- start-up and persistence ---------------------------------------------------------------------
async def test_first_start_stores_the_environments_config_with_an_audit_row(stores: Stores) -> None:
    before = datetime.now(UTC)
    flags = stores.flags()
    config = await flags.start()
    assert config.same_rules(ENV) and config.version == 1
    assert flags.source == "environment" and flags.env_disagreement == []
    assert await stores.stored() == config
    row = await stores.repo.get(DB_KEY)
    assert row is not None and FlagConfig.from_json(row.value) == config and row.version == 1
    (change,) = await FlagAuditRepository(stores.db).list_recent(key=DB_KEY)
    assert (change.actor, change.reason, change.old_value) == (SYSTEM_ACTOR, INIT_REASON, None)
    assert change.new_value == config.to_json() and change.changed_at >= before


async def test_runtime_changes_survive_a_restart_and_env_disagreement_is_logged(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    first = stores.flags()
    await first.start()
    await first.set_percentage("stt", 40, actor="ops@acme", reason="phase 2")
    await first.stop()
    other_env = FlagConfig(enabled=False, percentages=PerOperation(5, 5))
    with caplog.at_level(logging.WARNING, logger="voxshift.services.flags.service"):
        second = stores.flags(other_env)
        config = await second.start()
    assert config.version == 2 and config.percentages == PerOperation(40, 10) and config.enabled
    assert second.source == "state store"
    assert "percentages.stt: 5 -> 40" in second.env_disagreement
    assert "enabled: false -> true" in second.env_disagreement
    assert any("VOICE_V2_* environment differs" in r.getMessage() for r in caplog.records)


async def test_every_change_is_audited_who_when_old_new_why(stores: Stores) -> None:
    flags = stores.flags()
    await flags.start()
    t0 = datetime.now(UTC)
    v2 = await flags.set_percentage(None, 25, actor="alice", reason="ramp to 25%")
    v3 = await flags.deny(agent_id="agent_ru", actor="bob", reason="Russian TTS regressions")
    v4 = await flags.kill(actor="oncall", reason="incident 4711")
    changes = await FlagAuditRepository(stores.db).list_recent(key=DB_KEY)
    assert [(c.actor, c.reason) for c in changes[:3]] == [
        ("oncall", "incident 4711"),
        ("bob", "Russian TTS regressions"),
        ("alice", "ramp to 25%"),
    ]
    assert [FlagConfig.from_json(c.new_value) for c in changes[:3]] == [v4, v3, v2]
    assert [FlagConfig.from_json(c.old_value).version for c in changes[:3]] == [3, 2, 1]
    assert all(c.changed_at >= t0 for c in changes[:3])
    assert flags.last_write is not None and flags.last_write.audited and flags.last_write.stored
    # a change that changes nothing writes nothing
    assert await flags.kill(actor="oncall", reason="again") == v4
    assert len(await FlagAuditRepository(stores.db).list_recent(key=DB_KEY)) == 4


async def test_postgresql_database_works_the_same(stores: Stores, postgres_url: str) -> None:
    db = await Database.open(postgres_url, allow_upgrade=True)
    try:
        flags = stores.flags(repo=FlagConfigRepository(db))
        await flags.start()
        await flags.allow("vip", actor="pm", reason="beta tester")
        changes = await FlagAuditRepository(db).list_recent(key=DB_KEY)
        assert [c.actor for c in changes] == ["pm", SYSTEM_ACTOR]
        await flags.stop()
    finally:
        await db.aclose()


# --- concurrent writers ---------------------------------------------------------------------------
async def test_a_stale_snapshot_loses_the_cas_and_nothing_is_overwritten(stores: Stores) -> None:
    a, b = stores.flags(), stores.flags()
    await a.start(watch=False)
    await b.start(watch=False)
    snap = await a.storage.read()  # A reads ...
    assert snap.newest is not None
    await b.set_percentage("tts", 50, actor="b", reason="b first")  # ... B writes ...
    with pytest.raises(VersionConflict):  # ... A's write based on the old read must fail
        await a.storage.write(
            snap, snap.newest.with_percentage("stt", 0), actor="a", reason="x", require_audit=True
        )
    # Through update() the same race is retried on top of B's change instead of failing.
    result = await a.set_percentage("stt", 0, actor="a", reason="a second")
    assert result.percentages == PerOperation(0, 50) and result.version == 3
    # A whole config replacing a version that is no longer current is refused.
    with pytest.raises(VersionConflict):
        await b.update(replace_version(ENV, 2), actor="b", reason="stale form")


def replace_version(config: FlagConfig, version: int) -> FlagConfig:
    return FlagConfig.from_json({**config.to_json(), "version": version})


async def test_concurrent_writers_lose_no_change(stores: Stores) -> None:
    a, b = stores.flags(), stores.flags()
    await a.start(watch=False)
    await b.start(watch=False)
    writes = [a.allow(f"a{i}", actor="a", reason="r") for i in range(6)]
    writes += [b.deny(f"b{i}", actor="b", reason="r") for i in range(6)]
    await asyncio.gather(*writes)
    final = await stores.stored()
    assert final is not None and final.version == 13
    assert final.allow_users == {f"a{i}" for i in range(6)}
    assert final.deny_users == {f"b{i}" for i in range(6)}
    assert a.conflicts + b.conflicts > 0  # they really raced
    assert len(await stores.audit()) == 13
    row = await stores.repo.get(DB_KEY)
    assert row is not None and FlagConfig.from_json(row.value) == final


# --- propagation in one process -------------------------------------------------------------------
async def test_a_change_reaches_another_instance_and_its_openfeature_provider(stores: Stores) -> None:
    writer, reader = stores.flags(), stores.flags()
    await writer.start()
    await reader.start()
    provider = VoxshiftFlagProvider(reader)
    api.set_provider_and_wait(provider, domain="flags-it")
    events: list[EventDetails] = []
    api.get_client(domain="flags-it").add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
    try:
        await writer.kill(actor="oncall", reason="drill")
        await eventually(lambda: not reader.config.enabled, "the kill switch on the reader")
        assert reader.decide("stt", "anyone").reason == "kill_switch"
        await eventually(lambda: events, "the OpenFeature event")
        assert api.get_client(domain="flags-it").get_boolean_value("voice_v2.enabled", True) is False
        # The sunset's read_only phase reaches an external legacy the same way.
        client = api.get_client(domain="flags-it")
        assert client.get_boolean_value("voice_v2.legacy.read_only", True) is False
        await writer.update(lambda c: c.with_legacy_read_only(True), actor="sunset", reason="read_only phase")
        await eventually(lambda: reader.config.legacy_read_only, "legacy read-only on the reader")
        assert client.get_boolean_value("voice_v2.legacy.read_only", False) is True
    finally:
        api.clear_providers()


async def test_a_published_message_alone_is_enough(stores: Stores) -> None:
    reader = FeatureFlags(stores.store, stores.repo, ENV, poll_interval_s=3600)  # no poll in time
    stores.made.append(reader)
    await reader.start()
    await asyncio.sleep(0.2)  # let the subscription start: only messages after it are seen
    newer = reader.config.with_percentage("stt", 77)
    await stores.store.publish(CHANNEL, FlagConfig.from_json({**newer.to_json(), "version": 9}).dumps())
    await eventually(lambda: reader.config.version == 9, "the published config")
    await stores.store.publish(CHANNEL, b"not json")  # ignored, logged
    await stores.store.publish(CHANNEL, replace_version(ENV, 3).dumps())  # older: ignored
    await asyncio.sleep(0.2)
    assert reader.config.percentages.stt == 77


# --- outages and repair ---------------------------------------------------------------------------
async def test_database_down_keeps_the_config_and_allows_only_rollbacks(stores: Stores) -> None:
    healthy = stores.flags()
    await healthy.start()
    await healthy.set_percentage(None, 30, actor="ops", reason="ramp")
    dead = dead_database()
    try:
        flags = stores.flags(FlagConfig(), repo=FlagConfigRepository(dead))
        config = await flags.start()
        assert config.percentages == PerOperation(30, 30)  # the state store had it
        with pytest.raises(StoreUnavailable, match="only a rollback"):
            await flags.set_percentage(None, 50, actor="ops", reason="ramp more")
        lowered = await flags.set_percentage("stt", 5, actor="oncall", reason="errors up")
        assert flags.last_write is not None and not flags.last_write.audited and flags.last_write.stored
        assert (await stores.stored()) == lowered
        await eventually(lambda: healthy.config == lowered, "the unaudited rollback on a healthy replica")
        # The next audited write starts from the newest copy (the store's), and repairs the database.
        after = await healthy.allow("vip", actor="ops", reason="vip")
        assert after.percentages == PerOperation(5, 30) and after.version == lowered.version + 1
        row = await stores.repo.get(DB_KEY)
        assert row is not None and FlagConfig.from_json(row.value) == after
    finally:
        await dead.aclose()


@pytest.mark.parametrize("state_kind", ["redis"])  # a server that can go down
async def test_redis_down_keeps_the_last_known_config_then_repairs_the_store(stores: Stores) -> None:
    assert stores.redis is not None
    reader, writer = stores.flags(), stores.flags()
    await reader.start()
    await writer.start()
    known = reader.config
    stores.redis.stop()
    await asyncio.sleep(0.2)  # several failed polls
    assert reader.config == known and reader.decide("stt", "u").reason in ("in_cohort", "out_of_cohort")
    # With the store down a change goes to the database (audited) and replicas read it from there.
    killed = await writer.kill(actor="oncall", reason="redis is down and so is v2")
    assert writer.last_write is not None and writer.last_write.audited and not writer.last_write.stored
    await eventually(lambda: reader.config == killed, "the kill switch through the database")
    # Both stores down: serving goes on, writes are refused.
    dead_db = dead_database()
    try:
        orphan = stores.flags(repo=FlagConfigRepository(dead_db))
        assert (await orphan.start()).same_rules(ENV)  # never stored: the environment's config
        with pytest.raises(StoreUnavailable):
            await orphan.kill(actor="x", reason="y")
    finally:
        await dead_db.aclose()
    # Redis comes back empty (no persistence): the replicas put the newest config back.
    stores.redis.restart()
    for _ in range(int(WAIT_S / 0.05)):
        if await _stored_or_none(stores) == killed:
            break
        await asyncio.sleep(0.05)
    assert await stores.stored() == killed


async def _stored_or_none(stores: Stores) -> FlagConfig | None:
    try:
        return await stores.stored()
    except StoreUnavailable:
        return None


async def test_a_flushed_or_garbled_store_is_repaired_from_memory_and_the_database(stores: Stores) -> None:
    flags = stores.flags()
    await flags.start(watch=False)
    current = await flags.set_percentage("tts", 60, actor="ops", reason="ramp")
    await stores.store.delete(CONFIG_KEY)
    assert (await flags.refresh()) == current
    assert await stores.stored() == current
    await stores.store.set(CONFIG_KEY, b'{"percentages": {"stt": 999}}')
    assert (await flags.refresh()) == current
    assert await stores.stored() == current
    # A change that only reached the database (the store was unreachable for its writer) is found
    # by the periodic database check, and copied to the store.
    newer = FlagConfig.from_json({**current.killed().to_json(), "version": current.version + 1})
    row = await stores.repo.get(DB_KEY)
    assert row is not None
    await stores.repo.put(DB_KEY, newer.to_json(), expected_version=row.version, actor="x", reason="db only")
    for _ in range(DB_CHECK_EVERY):
        await flags.refresh()
    assert flags.config == newer and await stores.stored() == newer


async def test_a_store_behind_the_database_is_repaired_at_start(stores: Stores) -> None:
    first = stores.flags()
    await first.start(watch=False)
    changed = await first.set_percentage("stt", 70, actor="ops", reason="ramp")
    await stores.store.delete(CONFIG_KEY)
    second = stores.flags(FlagConfig())
    assert await second.start(watch=False) == changed
    assert second.source == "database"
    assert await stores.stored() == changed
