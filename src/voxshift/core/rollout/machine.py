"""The rollout state machine: where the migration is, and what moves it.

``pending → running(phase, step) → paused → rolled_back → halted → completed`` (+ ``aborted``).
Every function here is pure: it takes the plan, the current :class:`RolloutState`, ``now`` and
what was measured, and returns a :class:`Transition` (or None). The controller service stores the
new state, applies its :class:`Target` to the feature flags, writes the history row and sends the
webhooks; this module decides.

Rules (issue 11 §2, Argo Rollouts' steps/analysis/abort, judged on voice traffic):

* ``tick`` (each interval, by the leader): a failed criterion that is not ``dry_run`` - in the
  step's window or in the recent window - or v2's breakers open longer than ``breaker_open``
  rolls back, from ``running`` and from ``paused`` alike (a pause freezes promotion, never safety).
  In ``running``: when the step's minimum duration has passed and every criterion passes, the
  rollout moves to the next step, the next phase (once approved, when the phase asks for approval)
  or ``completed``. Still undecided long after the minimum (``max_duration``, default twice the
  minimum): pause and say which criteria lack samples; never promote on ``pending``. The kill switch
  turned off by a person while running: pause (the controller never overrides a person's kill).
* A rollback applies ``on_failure`` (``previous``: the level before; ``zero``: 0 %; ``kill``: the
  kill switch) and turns off the features the failed phase added. It counts; past
  ``max_rollbacks`` the rollout is ``halted``. After a rollback it waits for a person: ``resume``
  retries the phase from its first step (``--force`` and a reason when halted).
* Operator commands: ``start``, ``pause``, ``resume``, ``promote`` (approval, or ``force`` to move
  on regardless of the criteria), ``rollback``, ``abort`` (everyone back to legacy, terminal).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from voxshift.core.rollout.criteria import overall
from voxshift.core.rollout.plan import Plan
from voxshift.core.rollout.state import (
    ACTIVE,
    CONTROLLER,
    STATES,
    CriterionLike,
    Evaluation,
    RolloutRefused,
    RolloutState,
    StateName,
    Target,
    Transition,
    TransitionKind,
)
from voxshift.core.vocabulary import FEATURES

__all__ = [
    "ACTIVE",
    "CONTROLLER",
    "STATES",
    "CriterionLike",
    "Evaluation",
    "RolloutRefused",
    "RolloutState",
    "StateName",
    "Target",
    "Transition",
    "TransitionKind",
    "abort",
    "applied",
    "failure_target",
    "pause",
    "promote",
    "resume",
    "rollback",
    "start",
    "step_target",
    "tick",
]


# --- targets -------------------------------------------------------------------------------------


def step_target(plan: Plan, phase: int, step: int) -> Target:
    p = plan.phases[phase]
    s = p.steps[step]
    return Target(True, s.stt_percentage, s.tts_percentage, frozenset(p.features))


def failure_target(plan: Plan, state: RolloutState) -> Target:
    """Where ``on_failure`` sends the rollout from ``state``: the features the failed phase added are
    off in every case; the percentages go to the level before (``previous``), to 0 (``zero``), or
    the kill switch goes off (``kill``, percentages kept for when it is turned back on)."""
    before_features: frozenset[str] = (
        frozenset(plan.phases[state.phase - 1].features) if state.phase > 0 else frozenset()
    )
    if state.step > 0:  # the percentages of the step before
        before = step_target(plan, state.phase, state.step - 1)
    elif state.phase > 0:
        prev = plan.phases[state.phase - 1]
        before = step_target(plan, state.phase - 1, len(prev.steps) - 1)
    else:
        before = Target(True, 0, 0, frozenset())
    # Even from a later step of the phase (whose level before already had them): the failure may be
    # the new features meeting more traffic, and `resume` turns them back on with the phase's step 0.
    features = before_features
    if plan.on_failure == "previous":
        return replace(before, features=features)
    if plan.on_failure == "zero":
        return Target(True, 0, 0, features)
    return Target(False, before.stt, before.tts, features)


# --- the interval tick ---------------------------------------------------------------------------


def tick(plan: Plan, state: RolloutState, now: float, ev: Evaluation) -> Transition | None:
    """The controller's decision for this interval, or None (nothing changes)."""
    if state.state not in ACTIVE or not 0 <= state.phase < len(plan.phases):
        return None
    failed = _failures(ev)
    breaker_limit = plan.breaker_open
    if ev.breakers_open_s >= breaker_limit:
        failed.insert(0, f"v2 breakers open for {ev.breakers_open_s:.0f}s (limit {breaker_limit:.0f}s)")
    if failed:
        return _rollback(plan, state, now, CONTROLLER, "; ".join(failed), ev.numbers())
    if state.state != "running":
        return None
    if ev.killed:
        return _go(
            state,
            "pause",
            now,
            CONTROLLER,
            "the kill switch was turned off by a person",
            ev.numbers(),
            state="paused",
        )
    phase = plan.phases[state.phase]
    step = phase.steps[state.step]
    elapsed = now - state.since
    verdict = overall(ev.results)
    if elapsed >= step.min_duration_s and verdict == "pass":
        return _advance(plan, state, now, CONTROLLER, "every criterion passed", ev.numbers())
    if verdict == "pending" and now - max(state.since, state.resumed) >= phase.max_duration_for(step):
        # Too few samples, or enough but an interval that still straddles the threshold: say which.
        waiting = [
            f"{_label(r)} ({r.samples}/{r.min_samples} samples)"
            if r.samples < r.min_samples
            else f"{_label(r)} (undecided: {r.detail or 'the interval straddles the threshold'})"
            for r in ev.results
            if r.verdict == "pending" and not r.dry_run
        ]
        reason = f"criteria still pending {_dur(elapsed)} into the step: " + ", ".join(waiting)
        return _go(state, "pause", now, CONTROLLER, reason, ev.numbers(), state="paused")
    return None


def _failures(ev: Evaluation) -> list[str]:
    out: list[str] = []
    for where, results in (("", ev.results), ("last interval: ", ev.recent)):
        out.extend(
            f"{where}{r.detail or _label(r)}" for r in results if r.verdict == "fail" and not r.dry_run
        )
    return out


def _label(r: CriterionLike) -> str:
    return f"{r.metric}[{r.operation}]" if r.operation else r.metric


def _dur(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _advance(
    plan: Plan,
    state: RolloutState,
    now: float,
    actor: str,
    reason: str,
    numbers: dict[str, Any],
    *,
    force: bool = False,
) -> Transition | None:
    phase = plan.phases[state.phase]
    if state.step + 1 < len(phase.steps):
        nxt = state.step + 1
        return _go(
            state,
            "step_up",
            now,
            actor,
            reason,
            numbers,
            state="running",
            step=nxt,
            since=now,
            resumed=now,
            target=step_target(plan, state.phase, nxt),
        )
    if phase.approval and not (state.approved or force):
        return None  # waits for `voxshift rollout promote`; status says so
    if state.phase + 1 < len(plan.phases):
        nxt = state.phase + 1
        return _go(
            state,
            "promote",
            now,
            actor,
            reason,
            numbers,
            state="running",
            phase=nxt,
            step=0,
            since=now,
            resumed=now,
            approved=False,
            target=step_target(plan, nxt, 0),
        )
    return _go(state, "complete", now, actor, reason, numbers, state="completed")


def _rollback(
    plan: Plan, state: RolloutState, now: float, actor: str, reason: str, numbers: dict[str, Any]
) -> Transition:
    rollbacks = state.rollbacks + 1
    halted = rollbacks > plan.max_rollbacks
    kind: TransitionKind = "halt" if halted else "rollback"
    if halted:
        reason = f"{reason} (rollback {rollbacks} > max_rollbacks {plan.max_rollbacks}: halted)"
    return _go(
        state,
        kind,
        now,
        actor,
        reason,
        numbers,
        state="halted" if halted else "rolled_back",
        rollbacks=rollbacks,
        approved=False,
        target=failure_target(plan, state),
    )


def _go(
    cur: RolloutState,
    kind: TransitionKind,
    now: float,
    actor: str,
    reason: str,
    numbers: dict[str, Any],
    /,
    **changes: Any,
) -> Transition:
    seq = cur.seq + 1
    after = replace(cur, entered=now, seq=seq, reason=reason, **changes)
    event = {
        "seq": seq,
        "kind": kind,
        "at": now,
        "actor": actor,
        "reason": reason,
        "from_state": cur.state,
        "from_phase": cur.phase,
        "from_step": cur.step,
        "numbers": numbers,
    }
    after = replace(after, event=event)
    return Transition(seq, kind, now, actor, reason, cur, after, numbers)


# --- operator commands ---------------------------------------------------------------------------


def start(plan: Plan, state: RolloutState, now: float, actor: str, reason: str, digest: str) -> Transition:
    if state.state not in ("pending", "aborted", "completed"):
        raise RolloutRefused(f"a rollout is already {state.state}; abort it first to start over")
    fresh = RolloutState(seq=state.seq, applied=state.applied)
    moved = _go(
        fresh,
        "start",
        now,
        actor,
        reason or "rollout started",
        {},
        state="running",
        phase=0,
        step=0,
        since=now,
        resumed=now,
        started=now,
        plan_digest=digest,
        target=step_target(plan, 0, 0),
    )
    # The history row says where it came from (a new start after `aborted` or `completed`).
    event = {
        **moved.after.event,
        "from_state": state.state,
        "from_phase": state.phase,
        "from_step": state.step,
    }
    return replace(moved, before=state, after=replace(moved.after, event=event))


def pause(state: RolloutState, now: float, actor: str, reason: str) -> Transition:
    if state.state != "running":
        raise RolloutRefused(f"only a running rollout can be paused; it is {state.state}")
    return _go(state, "pause", now, actor, reason, {}, state="paused")


def resume(
    plan: Plan,
    state: RolloutState,
    now: float,
    actor: str,
    reason: str,
    *,
    force: bool = False,
    killed: bool = False,
) -> Transition:
    if state.state == "paused":
        if killed and state.target.enabled:
            # Resuming leaves the flags as they are, so the next interval would pause again: the
            # person who threw the kill switch turns it back on, deliberately, first.
            raise RolloutRefused(
                "the kill switch is on (v2 disabled by a person): turn it back on first "
                "(voxshift flags set --enabled --reason ...), then resume"
            )
        return _go(state, "resume", now, actor, reason, {}, state="running", resumed=now)
    if state.state == "halted" and not (force and reason.strip()):
        raise RolloutRefused(
            f"the rollout halted after {state.rollbacks} rollbacks; resuming needs --force and a reason"
        )
    if state.state in ("rolled_back", "halted"):
        # Retry the failed phase from its first step with a fresh window.
        return _go(
            state,
            "resume",
            now,
            actor,
            reason,
            {},
            state="running",
            step=0,
            since=now,
            resumed=now,
            target=step_target(plan, state.phase, 0),
        )
    raise RolloutRefused(f"nothing to resume: the rollout is {state.state}")


def promote(
    plan: Plan, state: RolloutState, now: float, actor: str, reason: str, *, force: bool = False
) -> Transition | None:
    """Approve promotion out of the current phase (the controller promotes at its next interval
    once the criteria pass), or with ``force`` move on now whatever the criteria say."""
    if state.state not in ACTIVE:
        raise RolloutRefused(f"only a running or paused rollout can be promoted; it is {state.state}")
    if force:
        # Not recorded as an approval: a forced step-up inside an approval phase leaves the end of
        # the phase waiting for one, and the transition's `before` is the state as it was.
        moved = _advance(plan, state, now, actor, reason, {"forced": True}, force=True)
        assert moved is not None
        return moved
    if state.approved:
        return None
    return _go(state, "approve", now, actor, reason, {}, approved=True)


def rollback(plan: Plan, state: RolloutState, now: float, actor: str, reason: str) -> Transition:
    if state.state not in ACTIVE:
        raise RolloutRefused(f"only a running or paused rollout can be rolled back; it is {state.state}")
    return _rollback(plan, state, now, actor, reason, {"manual": True})


def abort(state: RolloutState, now: float, actor: str, reason: str) -> Transition:
    """Stop for good: every user back to legacy (0 %, features off); ``start`` may begin again."""
    if state.state in ("pending", "aborted"):
        raise RolloutRefused(f"nothing to abort: the rollout is {state.state}")
    return _go(
        state, "abort", now, actor, reason, {}, state="aborted", target=Target(True, 0, 0, frozenset())
    )


def applied(state: RolloutState) -> RolloutState:
    """The state once its transitions' side effects are done."""
    return replace(state, applied=state.seq)


def all_features() -> tuple[str, ...]:
    return FEATURES
