"""RolloutController: the seed's four phases run themselves (issue 11 §2, §3).

Every ``voxshift serve`` runs :meth:`RolloutController.start`; one replica - the holder of the
lease - acts, the others wait to take over. The state lives in one fenced document in the v2 state
store (``voice_v2:rollout:state``), the plan it runs under in ``voice_v2:rollout:plan:{digest}``,
the leader's last evaluation in ``voice_v2:rollout:evaluation``.

A transition is stored first (the fenced compare-and-set decides whether it happened at all), and
its effects - the flags, the history row, the webhook - are applied after, then marked done
(``applied``). A leader that dies in between leaves the transition stored and its effects pending;
whoever holds the lease next finishes them. The history row is written once per ``seq`` (checked
against the newest row), so no transition is lost or recorded twice.

Operators (the CLI, the admin API) change the state with a one-shot token newer than the leader's:
the leader's next write then fails as stale, it re-fences and re-reads, and carries on from what the
operator wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from voxshift.core.flags import FlagConfig
from voxshift.core.rollout import machine
from voxshift.core.rollout.machine import ACTIVE, CONTROLLER, RolloutState, Transition
from voxshift.core.rollout.plan import Plan, plan_digest, plan_from_toml, plan_to_dict, plan_to_toml
from voxshift.errors import StoreUnavailable, VersionConflict
from voxshift.services.rollout.effects import apply_target, history_row, iso, phase_name, webhook_event
from voxshift.services.rollout.evaluate import (
    BreakerSource,
    BreakerWatch,
    FeedbackSource,
    TrafficSource,
    measure,
)
from voxshift.services.rollout.fenced import FencedDocument, StaleLeader, Stored
from voxshift.services.rollout.lease import Lease, default_holder
from voxshift.stores.state import StateStore

log = logging.getLogger("voxshift.rollout")

STATE_KEY = "rollout:state"
PLAN_KEY = "rollout:plan:"  # + digest: immutable, so two starts never overwrite each other's plan
EVALUATION_KEY = "rollout:evaluation"
LEASE_NAME = "rollout"
_WRITE_ATTEMPTS = 8
Command = Literal["start", "pause", "resume", "promote", "rollback", "abort"]
COMMANDS: tuple[Command, ...] = ("start", "pause", "resume", "promote", "rollback", "abort")


class FlagTarget(Protocol):
    """FeatureFlags: the live config and an audited, retried update."""

    @property
    def config(self) -> FlagConfig: ...

    async def update(
        self, change: Callable[[FlagConfig], FlagConfig] | FlagConfig, *, actor: str, reason: str
    ) -> FlagConfig: ...


class HistoryLog(Protocol):
    """RolloutHistoryRepository (the ``rollout_history`` table)."""

    async def append(
        self,
        *,
        to_phase: str,
        percentage: int,
        actor: str,
        from_phase: str | None = None,
        reason: str | None = None,
        metrics: Any = None,
        at: datetime | None = None,
        seq: int | None = None,
    ) -> Any: ...

    async def latest(self) -> Any: ...


class Notifier(Protocol):
    def notify(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What a command did (or, with ``dry_run``, would do)."""

    transition: Transition | None
    state: RolloutState
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return self.transition is not None and not self.dry_run

    def to_json(self) -> dict[str, Any]:
        t = self.transition
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "state": self.state.state,
            "transition": None if t is None else t.to_json(),
        }


class RolloutController:
    def __init__(
        self,
        store: StateStore,
        flags: FlagTarget,
        *,
        default_plan: Plan,
        traffic: TrafficSource | None = None,
        feedback: FeedbackSource | None = None,
        history: HistoryLog | None = None,
        notifier: Notifier | None = None,
        breakers: BreakerSource | None = None,
        lease_s: float = 10.0,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
        tick_s: float | None = None,
    ) -> None:
        self.store = store  # the v2 (namespaced) view
        self.flags = flags
        self.default_plan = default_plan
        self.traffic = traffic
        self.feedback = feedback
        self.history = history
        self.notifier = notifier
        self.breakers = BreakerWatch(breakers)
        self.clock = clock
        self.doc = FencedDocument(store, STATE_KEY, fence_name=LEASE_NAME)
        self.lease = Lease(store, LEASE_NAME, holder=holder or default_holder(), ttl_s=lease_s)
        # How often the loop wakes: to renew the lease in time and to start an evaluation close to
        # when it is due (an evaluation runs once per plan interval).
        self.tick_s = tick_s if tick_s is not None else min(1.0, self.lease.renew_interval_s)
        self.evaluations = 0
        self.transitions = 0
        self.last_error: str | None = None
        self._last_eval: float | None = None
        self._last_eval_seq = -1
        self._plans: dict[str, Plan] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # --- reading ----------------------------------------------------------------------------------
    async def read(self) -> tuple[RolloutState, Stored]:
        return state_of(await self.doc.read())

    async def plan_for(self, state: RolloutState) -> Plan:
        """The plan the rollout was started with (stored by digest); the default before a start."""
        digest = state.plan_digest
        if not digest:
            return self.default_plan
        cached = self._plans.get(digest)
        if cached is not None:
            return cached
        raw = await self.store.get(PLAN_KEY + digest)
        if raw is None:
            raise StoreUnavailable(f"the rollout plan {digest} is missing from the state store")
        plan = plan_from_toml(raw.decode())
        self._plans[digest] = plan
        return plan

    async def status(self) -> dict[str, Any]:
        """``voxshift rollout status --json``: the stored state, the plan position, the leader, the
        live flags, and the criteria (the leader's last evaluation of this step, else evaluated now)."""
        state, _ = await self.read()
        plan = await self.plan_for(state)
        now = self.clock()
        criteria: list[dict[str, Any]] = []
        evaluated_at: float | None = None
        snapshot = await self._read_evaluation()
        if snapshot is not None and snapshot.get("seq") == state.seq:
            criteria, evaluated_at = snapshot["criteria"], snapshot["at"]
        elif state.state in ACTIVE and self.traffic is not None:
            ev = await measure(plan, state, now, self.traffic, self.feedback)
            criteria, evaluated_at = [r.to_dict() for r in ev.results], now
        holder = await self.lease.holder_info()
        config = self.flags.config
        phase = plan.phases[state.phase] if 0 <= state.phase < len(plan.phases) else None
        step = phase.steps[state.step] if phase is not None else None
        return {
            "state": state.state,
            "phase": phase.name if phase else None,
            "phase_index": state.phase if phase else None,
            "step": state.step,
            "steps": len(phase.steps) if phase else 0,
            "percentages": {"stt": state.target.stt, "tts": state.target.tts},
            "features": sorted(state.target.features),
            "enabled": state.target.enabled,
            "rollbacks": state.rollbacks,
            "max_rollbacks": plan.max_rollbacks,
            "since": state.since or None,
            "since_iso": iso(state.since),
            "elapsed_s": round(now - state.since, 3) if state.state in ACTIVE else None,
            "min_duration_s": step.min_duration_s if step else None,
            "approval_required": bool(phase and phase.approval),
            "approved": state.approved,
            "reason": state.reason,
            "seq": state.seq,
            "applied": state.applied,
            "criteria": criteria,
            "evaluated_at": evaluated_at,
            "leader": {"holder": holder[0], "token": holder[1]} if holder else None,
            "flags": {
                "enabled": config.enabled,
                "percentages": config.percentages.to_json(),
                "features": config.features.to_json(),
                "version": config.version,
            },
            "plan": {
                "digest": state.plan_digest or plan_digest(plan),
                "phases": [p.name for p in plan.phases],
                "interval_s": plan.interval_s,
            },
        }

    # --- operator commands ------------------------------------------------------------------------
    async def command(
        self,
        name: Command,
        *,
        actor: str,
        reason: str,
        force: bool = False,
        dry_run: bool = False,
        plan: Plan | None = None,
    ) -> Outcome:
        """Run one operator command against the stored state (compare-and-set, retried when the
        leader wrote in between). ``dry_run`` decides and returns without storing anything."""
        for _ in range(_WRITE_ATTEMPTS):
            state, stored = await self.read()
            now = self.clock()
            current_plan = plan if name == "start" and plan is not None else await self.plan_for(state)
            transition: Transition | None
            if name == "start":
                transition = machine.start(current_plan, state, now, actor, reason, plan_digest(current_plan))
            elif name == "pause":
                transition = machine.pause(state, now, actor, reason)
            elif name == "resume":
                transition = machine.resume(
                    current_plan, state, now, actor, reason, force=force, killed=not self.flags.config.enabled
                )
            elif name == "promote":
                transition = machine.promote(current_plan, state, now, actor, reason, force=force)
            elif name == "rollback":
                transition = machine.rollback(current_plan, state, now, actor, reason)
            else:
                transition = machine.abort(state, now, actor, reason)
            if transition is None or dry_run:
                return Outcome(transition, state, dry_run)
            if name == "start":
                await self.store.set(
                    PLAN_KEY + transition.after.plan_digest, plan_to_toml(current_plan).encode()
                )
                self._plans[transition.after.plan_digest] = current_plan
            token = await self.doc.next_token()
            try:
                written = await self.doc.write(transition.after.dumps(), token=token, expected=stored)
            except StaleLeader:
                continue
            if written:
                self.transitions += 1
                done = await self._finish(current_plan, transition.after, token)
                return Outcome(transition, done)
        raise VersionConflict("the rollout state kept changing; re-read it and retry")

    # --- the leader's loop ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="voxshift-rollout-controller")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.lease.release()

    @property
    def leading(self) -> bool:
        return self.lease.grant is not None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
                self.last_error = None
            except Exception as exc:  # the loop outlives a store outage; the next tick retries
                if str(exc) != self.last_error:
                    log.warning("rollout controller: %s", exc)
                self.last_error = str(exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_s):
                    await self._stopping.wait()

    async def run_once(self) -> Transition | None:
        """One wake-up: hold the lease, finish pending effects, evaluate when an interval is due."""
        grant = await self.lease.acquire()
        if grant is None:
            self._last_eval = None  # a follower: the next leader evaluates afresh
            return None
        for _ in range(2):
            try:
                return await self._lead(grant.token)
            except StaleLeader:
                # An operator (or a newer leader) wrote after us: take a newer token, re-read, go on.
                regrant = await self.lease.refence()
                if regrant is None:
                    return None
                grant = regrant
        return None

    async def _lead(self, token: int) -> Transition | None:
        # claim() returns the document as stored: no second read of it each wake-up.
        state, stored = state_of(await self.doc.claim(token))
        plan = await self.plan_for(state)
        if state.pending_apply:
            state = await self._finish(plan, state, token)
            state, stored = await self.read()
        if state.state not in ACTIVE or self.traffic is None:
            return None
        now = self.clock()
        due = self._last_eval is None or now - self._last_eval >= plan.interval_s
        if not due and state.seq == self._last_eval_seq:
            return None
        self._last_eval, self._last_eval_seq = now, state.seq
        flush = getattr(self.traffic, "flush", None)
        if flush is not None:
            # This replica's own last second goes in now rather than at its next flush: a fault is
            # seen up to one flush interval sooner (other replicas flush every second anyway).
            await flush()
        ev = await measure(
            plan,
            state,
            now,
            self.traffic,
            self.feedback,
            breakers=self.breakers,
            killed=not self.flags.config.enabled,
        )
        self.evaluations += 1
        await self._write_evaluation(plan, state, now, ev.numbers())
        transition = machine.tick(plan, state, now, ev)
        if transition is None:
            return None
        if not await self.doc.write(transition.after.dumps(), token=token, expected=stored):
            return None  # changed under us: re-read at the next wake-up
        self.transitions += 1
        log.warning(
            "rollout %s: %s %s -> %s %s step %d, STT %d%% TTS %d%% (%s)",
            transition.kind,
            state.state,
            phase_name(plan, state.phase),
            transition.after.state,
            phase_name(plan, transition.after.phase),
            transition.after.step + 1,
            transition.after.target.stt,
            transition.after.target.tts,
            transition.reason,
        )
        await self._finish(plan, transition.after, token)
        return transition

    # --- effects of a stored transition (the outbox) ----------------------------------------------
    async def _finish(self, plan: Plan, state: RolloutState, token: int) -> RolloutState:
        if not state.pending_apply:
            return state
        event = state.event
        actor = str(event.get("actor") or CONTROLLER)
        kind = str(event.get("kind") or "transition")
        reason = f"rollout {kind}: {state.reason}"[:2000]
        await self.flags.update(
            apply_target(
                state.target, keep_killed=actor == CONTROLLER and kind != "rollback" and kind != "halt"
            ),
            actor=actor if actor.startswith("rollout") else f"{actor} (rollout)",
            reason=reason,
        )
        await self._record_history(plan, state)
        if self.notifier is not None:
            self.notifier.notify(webhook_event(plan, state))
        done = machine.applied(state)
        for _ in range(_WRITE_ATTEMPTS):
            current, stored = await self.read()
            if current.seq != state.seq or current.applied >= state.seq:
                return current  # someone moved on (or finished it): theirs is the newer word
            try:
                if await self.doc.write(
                    replace(current, applied=state.seq).dumps(), token=token, expected=stored
                ):
                    return replace(current, applied=state.seq)
            except StaleLeader:
                token = await self.doc.next_token()
        return done

    async def _record_history(self, plan: Plan, state: RolloutState) -> None:
        if self.history is None:
            return
        latest = await self.history.latest()
        metrics = getattr(latest, "metrics", None)
        if isinstance(metrics, Mapping) and metrics.get("seq") == state.seq:
            return  # written before the previous leader died
        await self.history.append(**history_row(plan, state))

    async def _write_evaluation(
        self, plan: Plan, state: RolloutState, now: float, numbers: dict[str, Any]
    ) -> None:
        doc = {"at": now, "seq": state.seq, **numbers}
        ttl = max(60.0, 10 * plan.interval_s)
        with contextlib.suppress(StoreUnavailable):
            await self.store.set(EVALUATION_KEY, json.dumps(doc, separators=(",", ":")).encode(), ttl)

    async def _read_evaluation(self) -> dict[str, Any] | None:
        raw = await self.store.get(EVALUATION_KEY)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    # --- history ----------------------------------------------------------------------------------
    async def plan_document(self) -> dict[str, Any]:
        state, _ = await self.read()
        return plan_to_dict(await self.plan_for(state))


def state_of(stored: Stored) -> tuple[RolloutState, Stored]:
    """The rollout state in a read of its document (pending when nothing is stored yet)."""
    return (RolloutState.loads(stored.value) if stored.value else RolloutState()), stored
