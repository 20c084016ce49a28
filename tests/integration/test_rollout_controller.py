"""RolloutController on real stores (embedded SQLite and Redis state stores, a SQLite settings
database, the real FeatureFlags): transitions reach the flags, the history table and the webhooks;
operators steer it while a leader runs; a leader that dies half-way is finished by the next one
with nothing lost or written twice. Traffic comes from a scripted source, so the numbers that
decide each transition are exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from voxshift.core.flags import FlagConfig
from voxshift.core.rollout.machine import RolloutRefused, RolloutState
from voxshift.core.rollout.plan import Plan, plan_from_toml
from voxshift.core.rollout.window import FeedbackWindow, TrafficWindow
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.rollout.controller import STATE_KEY, RolloutController
from voxshift.stores.db.engine import Database
from voxshift.stores.db.repositories import (
    FlagAuditRepository,
    FlagConfigRepository,
    RolloutHistoryRepository,
)
from voxshift.stores.state import NamespacedStore, StateStore, open_state_store

PLAN = """
interval = "10s"
max_rollbacks = 1
on_failure = "previous"

[[phases]]
name = "canary"
stt_percentage = 10
tts_percentage = 0
features = ["stt_enabled"]
min_duration = "60s"
[[phases.criteria]]
metric = "error_rate"
max = 0.05
min_samples = 100

[[phases]]
name = "pilot"
percentage = 50
features = ["stt_enabled", "tts_enabled"]
min_duration = "60s"
[[phases.criteria]]
metric = "error_rate"
max = 0.05
min_samples = 100
"""


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedTraffic:
    """Requests as (time, operation, system, ms, ok), summed into windows like the metrics do."""

    records: list[tuple[float, str, str, float, bool]] = field(default_factory=list)
    reads: int = 0

    def add(self, at: float, n: int, *, op: str = "stt", system: str = "voice_v2", errors: int = 0) -> None:
        for i in range(n):
            self.records.append((at, op, system, 300.0, i >= errors))

    async def traffic(self, since: float, until: float | None = None) -> TrafficWindow:
        self.reads += 1
        end = until if until is not None else float("inf")
        out = TrafficWindow(since, end)
        for at, op, system, ms, ok in self.records:
            if since <= at < end:
                w = out[op]  # type: ignore[index]
                (w.v2 if system == "voice_v2" else w.legacy).add(ms, ok)
        return out


class NoFeedback:
    async def window(self, since: float, until: float | None = None) -> FeedbackWindow:
        return FeedbackWindow(since, until or since)


@dataclass
class Inbox:
    events: list[dict[str, Any]] = field(default_factory=list)

    def notify(self, event: dict[str, Any]) -> None:
        self.events.append(event)


@dataclass
class Rig:
    raw: StateStore
    store: NamespacedStore
    db: Database
    flags: FeatureFlags
    clock: Clock
    traffic: ScriptedTraffic
    inbox: Inbox
    plan: Plan
    made: list[RolloutController] = field(default_factory=list)

    def controller(self, holder: str, *, lease_s: float = 5.0) -> RolloutController:
        c = RolloutController(
            self.store,
            self.flags,
            default_plan=self.plan,
            traffic=self.traffic,
            feedback=NoFeedback(),
            history=RolloutHistoryRepository(self.db),
            notifier=self.inbox,
            lease_s=lease_s,
            holder=holder,
            clock=self.clock,
        )
        self.made.append(c)
        return c

    async def history(self) -> list[Any]:
        return await RolloutHistoryRepository(self.db).list(newest_first=False)


@pytest.fixture(params=["sqlite", "redis"])
def state_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="function")
async def rig(state_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    redis = request.getfixturevalue("clean_redis") if state_kind == "redis" else None
    raw = open_state_store(redis.url if redis is not None else f"sqlite:///{tmp_path / 'state.db'}")
    db = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'settings.db'}")
    store = NamespacedStore(raw, "voice_v2")
    flags = FeatureFlags(store, FlagConfigRepository(db), FlagConfig(), poll_interval_s=0.05)
    await flags.start(watch=False)
    out = Rig(raw, store, db, flags, Clock(), ScriptedTraffic(), Inbox(), plan_from_toml(PLAN))
    yield out
    for c in out.made:
        await c.stop()
    await flags.stop()
    await raw.aclose()
    await db.aclose()


async def test_start_applies_the_first_phase_everywhere(rig: Rig) -> None:
    cli = rig.controller("cli")
    outcome = await cli.command("start", actor="cli:alice", reason="go", plan=rig.plan)
    assert outcome.changed and outcome.state.state == "running"
    config = rig.flags.config
    assert config.enabled and config.percentages.to_json() == {"stt": 10, "tts": 0}
    assert config.features.stt_enabled and not config.features.tts_enabled
    history = await rig.history()
    assert [(h.from_phase, h.to_phase, h.percentage, h.actor) for h in history] == [
        (None, "canary", 10, "cli:alice")
    ]
    assert history[0].metrics["kind"] == "start" and history[0].metrics["seq"] == 1
    audit = await FlagAuditRepository(rig.db).list_recent()
    assert audit[0].actor == "cli:alice (rollout)" and "rollout start: go" in (audit[0].reason or "")
    assert [e["event"] for e in rig.inbox.events] == ["rollout.start"]
    assert "canary" in rig.inbox.events[0]["text"]
    with pytest.raises(RolloutRefused):
        await cli.command("start", actor="cli:alice", reason="again")


async def test_dry_run_changes_nothing(rig: Rig) -> None:
    outcome = await rig.controller("cli").command(
        "start", actor="a", reason="try", dry_run=True, plan=rig.plan
    )
    assert outcome.dry_run and outcome.transition is not None and outcome.transition.after.state == "running"
    assert await rig.store.get(STATE_KEY) is None
    assert not rig.flags.config.enabled and await rig.history() == []


async def test_healthy_traffic_promotes_then_completes(rig: Rig) -> None:
    leader = rig.controller("a")
    await leader.command("start", actor="ops", reason="go", plan=rig.plan)
    t0 = rig.clock.now
    rig.traffic.add(t0 + 1, 500)  # 0 errors in 500: the upper bound is far under 5 %
    rig.clock.now = t0 + 30
    assert await leader.run_once() is None  # passing, but the minimum duration is not over
    rig.clock.now = t0 + 61
    moved = await leader.run_once()
    assert moved is not None and moved.kind == "promote"
    assert rig.flags.config.percentages.to_json() == {"stt": 50, "tts": 50}
    assert rig.flags.config.features.tts_enabled
    t1 = rig.clock.now
    rig.traffic.add(t1 + 1, 500)
    rig.traffic.add(t1 + 1, 500, op="tts")
    rig.clock.now = t1 + 61
    done = await leader.run_once()
    assert done is not None and done.kind == "complete"
    state, _ = await leader.read()
    assert state.state == "completed" and state.applied == state.seq == 3
    kinds = [h.metrics["kind"] for h in await rig.history()]
    assert kinds == ["start", "promote", "complete"]
    promote = (await rig.history())[1]
    crit = promote.metrics["criteria"]
    assert crit[0]["metric"] == "error_rate" and crit[0]["samples"] == 500 and crit[0]["verdict"] == "pass"


async def test_failure_rolls_back_then_halts(rig: Rig) -> None:
    leader = rig.controller("a")
    await leader.command("start", actor="ops", reason="go", plan=rig.plan)
    t0 = rig.clock.now
    rig.traffic.add(t0 + 1, 500)
    rig.clock.now = t0 + 61
    await leader.run_once()  # -> pilot
    t1 = rig.clock.now
    rig.traffic.add(t1 + 1, 300, errors=60)  # 20 % errors: the lower bound is over 5 %
    rig.clock.now = t1 + 11
    back = await leader.run_once()
    assert back is not None and back.kind == "rollback" and back.after.state == "rolled_back"
    # on_failure previous: canary's level, and pilot's new feature (tts) off again.
    assert rig.flags.config.percentages.to_json() == {"stt": 10, "tts": 0}
    assert not rig.flags.config.features.tts_enabled
    row = (await rig.history())[-1]
    assert row.from_phase == "pilot" and row.metrics["rollbacks"] == 1
    assert row.metrics["criteria"][0]["verdict"] == "fail"
    # Waits for a person: nothing happens on its own.
    rig.clock.now += 100
    assert await leader.run_once() is None
    await rig.controller("cli").command("resume", actor="ops", reason="fixed the model")
    t2 = rig.clock.now
    assert rig.flags.config.percentages.to_json() == {"stt": 50, "tts": 50}
    rig.traffic.add(t2 + 1, 300, errors=60)
    rig.clock.now = t2 + 11
    halted = await leader.run_once()
    assert halted is not None and halted.kind == "halt" and halted.after.rollbacks == 2
    with pytest.raises(RolloutRefused, match="--force"):
        await rig.controller("cli").command("resume", actor="ops", reason="again")


async def test_operator_command_wins_over_a_running_leader(rig: Rig) -> None:
    leader = rig.controller("a")
    await leader.command("start", actor="ops", reason="go", plan=rig.plan)
    assert await leader.run_once() is None and leader.leading
    await rig.controller("cli").command("pause", actor="ops", reason="looking at a ticket")
    t0 = rig.clock.now
    rig.traffic.add(t0 + 1, 500)
    rig.clock.now = t0 + 61
    assert await leader.run_once() is None  # paused: never promotes
    assert await leader.run_once() is None
    state, _ = await leader.read()
    assert state.state == "paused" and state.phase == 0
    await rig.controller("cli").command("resume", actor="ops", reason="ticket closed")
    rig.clock.now += 1
    moved = await leader.run_once()
    assert moved is not None and moved.kind == "promote"


async def test_a_dead_leaders_transition_is_finished_once(rig: Rig) -> None:
    a = rig.controller("a", lease_s=0.5)
    await a.command("start", actor="ops", reason="go", plan=rig.plan)
    assert await a.run_once() is None and a.leading
    # `a` stores a promotion and dies before its effects: simulate by writing the next state
    # with its token and applying nothing.
    state, stored = await a.read()
    t0 = rig.clock.now
    rig.traffic.add(t0 + 1, 500)
    rig.clock.now = t0 + 61
    from voxshift.core.rollout import machine
    from voxshift.services.rollout.evaluate import measure

    ev = await measure(rig.plan, state, rig.clock.now, rig.traffic, NoFeedback())
    t = machine.tick(rig.plan, state, rig.clock.now, ev)
    assert t is not None and t.kind == "promote"
    grant = a.lease.grant
    assert grant is not None
    assert await a.doc.write(t.after.dumps(), token=grant.token, expected=stored)
    assert rig.flags.config.percentages.to_json() == {"stt": 10, "tts": 0}  # not applied yet
    b = rig.controller("b", lease_s=0.5)
    assert await b.run_once() is None and not b.leading  # a's lease still runs
    await asyncio.sleep(0.6)
    await b.run_once()
    assert b.leading
    assert rig.flags.config.percentages.to_json() == {"stt": 50, "tts": 50}
    final, _ = await b.read()
    assert final.applied == final.seq == 2
    await b.run_once()
    kinds = [h.metrics["kind"] for h in await rig.history()]
    assert kinds == ["start", "promote"]  # once, though two controllers saw it
    # The dead leader, back from a pause, cannot write over b.
    from voxshift.services.rollout.fenced import StaleLeader

    _, newest = await b.read()
    with pytest.raises(StaleLeader):
        await a.doc.write(RolloutState().dumps(), token=grant.token, expected=newest)
