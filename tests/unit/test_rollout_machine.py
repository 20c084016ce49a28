"""The pure rollout state machine (issue 11 §2): every transition's resulting state, exactly.

Plans are built by hand from the dataclasses (the seed's schedule: canary 1 % STT, pilot 10 %
STT+TTS, beta 30 % + caching, production 30 → 50 → 75 → 100 % + langgraph); criteria results are a
tiny frozen fake of ``CriterionLike``. No clock, no store: ``now`` is a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from voxshift.core.rollout.machine import (
    CONTROLLER,
    STATES,
    Evaluation,
    RolloutRefused,
    RolloutState,
    Target,
    Transition,
    abort,
    applied,
    failure_target,
    pause,
    promote,
    resume,
    rollback,
    start,
    step_target,
    tick,
)
from voxshift.core.rollout.plan import Criterion, OnFailure, Phase, Plan, Step
from voxshift.core.vocabulary import FeatureName
from voxshift.errors import InvalidRequest

DAY = 86400.0
T0 = 1_000_000.0  # the rollout starts here
INTERVAL = 60.0


@dataclass(frozen=True)
class FakeResult:
    """What the machine reads of a criterion's verdict (the ``CriterionLike`` protocol)."""

    metric: str = "error_rate"
    verdict: str = "pass"
    operation: str | None = None
    dry_run: bool = False
    detail: str = ""
    samples: int = 500
    min_samples: int = 200

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "operation": self.operation, "verdict": self.verdict}


PASS = FakeResult(verdict="pass")
PENDING = FakeResult(metric="user_feedback", verdict="pending", samples=12, min_samples=100)
FAIL = FakeResult(verdict="fail", detail="error_rate 4.1% > 2%")

STT: frozenset[FeatureName] = frozenset({"stt_enabled"})
STT_TTS: frozenset[FeatureName] = STT | {"tts_enabled"}
BETA_FEATURES: frozenset[FeatureName] = STT_TTS | {"caching_enabled"}
ALL_FEATURES: frozenset[FeatureName] = BETA_FEATURES | {"langgraph_integration"}


def _criteria(error_max: float, p95_max: float) -> tuple[Criterion, ...]:
    return (
        Criterion("error_rate", error_max, "max"),
        Criterion("latency_p95_ms", p95_max, "max"),
        Criterion("latency_ratio_vs_legacy", 1.2, "max"),
    )


CANARY = Phase("canary", (Step(1, 0, 3 * DAY),), STT, _criteria(0.02, 2000))
PILOT = Phase("pilot", (Step(10, 10, 5 * DAY),), STT_TTS, _criteria(0.01, 1500))
BETA = Phase("beta", (Step(30, 30, 7 * DAY),), BETA_FEATURES, _criteria(0.005, 1000))
PRODUCTION = Phase(
    "production",
    (Step(30, 30, 2 * DAY), Step(50, 50, 3 * DAY), Step(75, 75, 4 * DAY), Step(100, 100, 5 * DAY)),
    ALL_FEATURES,
    _criteria(0.001, 800),
)


def make_plan(
    on_failure: OnFailure = "previous",
    *,
    max_rollbacks: int = 2,
    breaker_open_s: float | None = None,
    phases: tuple[Phase, ...] = (CANARY, PILOT, BETA, PRODUCTION),
) -> Plan:
    return Plan(INTERVAL, max_rollbacks, on_failure, phases, breaker_open_s)


PLAN = make_plan()


def at(
    phase: int,
    step: int = 0,
    *,
    state: str = "running",
    plan: Plan = PLAN,
    since: float = T0,
    seq: int = 5,
    rollbacks: int = 0,
    approved: bool = False,
) -> RolloutState:
    """A rollout sitting in ``phase``/``step`` since ``since`` with that step's target applied."""
    return RolloutState(
        state=state,  # type: ignore[arg-type]
        phase=phase,
        step=step,
        since=since,
        entered=since,
        resumed=since,
        started=T0,
        rollbacks=rollbacks,
        approved=approved,
        seq=seq,
        applied=seq,
        target=step_target(plan, phase, step),
        reason="earlier",
        plan_digest="d1",
    )


def ev(*results: FakeResult, recent: tuple[FakeResult, ...] = (), **kw: Any) -> Evaluation:
    return Evaluation(results=results, recent=recent, **kw)


def event_of(t: Transition, **numbers_etc: Any) -> dict[str, Any]:
    """The event dict the transition must carry."""
    doc = {
        "seq": t.seq,
        "kind": t.kind,
        "at": t.at,
        "actor": t.actor,
        "reason": t.reason,
        "from_state": t.before.state,
        "from_phase": t.before.phase,
        "from_step": t.before.step,
        "numbers": t.numbers,
    }
    doc.update(numbers_etc)
    return doc


def check_event(t: Transition, before: RolloutState) -> None:
    """Every transition: one more seq, ``entered`` = now, the reason on the state, and the event."""
    assert t.after.seq == before.seq + 1 == t.seq
    assert t.after.entered == t.at
    assert t.after.reason == t.reason
    assert t.after.event == {
        "seq": before.seq + 1,
        "kind": t.kind,
        "at": t.at,
        "actor": t.actor,
        "reason": t.reason,
        "from_state": before.state,
        "from_phase": before.phase,
        "from_step": before.step,
        "numbers": t.numbers,
    }
    assert t.before == before
    assert t.after.pending_apply


# --- start ---------------------------------------------------------------------------------------


def test_start_from_pending_runs_phase_0_step_0_with_its_target() -> None:
    before = RolloutState()
    t = start(PLAN, before, T0, "alice", "go", "digest-1")
    assert t.kind == "start"
    assert t.after == RolloutState(
        state="running",
        phase=0,
        step=0,
        since=T0,
        entered=T0,
        resumed=T0,
        started=T0,
        rollbacks=0,
        approved=False,
        seq=1,
        applied=0,
        target=Target(True, 1, 0, STT),
        reason="go",
        plan_digest="digest-1",
        event={
            "seq": 1,
            "kind": "start",
            "at": T0,
            "actor": "alice",
            "reason": "go",
            "from_state": "pending",
            "from_phase": -1,
            "from_step": 0,
            "numbers": {},
        },
    )
    check_event(t, before)


def test_start_without_a_reason_says_so() -> None:
    assert start(PLAN, RolloutState(), T0, "alice", "", "d").after.reason == "rollout started"


@pytest.mark.parametrize("state", ["running", "paused", "rolled_back", "halted"])
def test_start_is_refused_while_a_rollout_is_under_way(state: str) -> None:
    with pytest.raises(RolloutRefused) as info:
        start(PLAN, at(1, state=state), T0 + 10, "alice", "again", "d")
    assert info.value.exit_code == 1
    assert info.value.status == 409
    assert info.value.code == "rollout_refused"
    assert state in info.value.message


# --- tick: promotion -----------------------------------------------------------------------------


def test_no_promotion_before_the_minimum_duration_even_when_everything_passes() -> None:
    assert tick(PLAN, at(0), T0 + 3 * DAY - 1, ev(PASS, PASS)) is None


def test_promotion_once_the_minimum_duration_passed_and_every_criterion_passes() -> None:
    before = at(0)
    now = T0 + 3 * DAY
    t = tick(PLAN, before, now, ev(PASS, PASS))
    assert t is not None
    assert t.kind == "promote"
    assert t.actor == CONTROLLER
    assert t.reason == "every criterion passed"
    assert (t.after.state, t.after.phase, t.after.step) == ("running", 1, 0)
    assert (t.after.since, t.after.resumed, t.after.started) == (now, now, T0)
    assert t.after.target == Target(True, 10, 10, STT_TTS)
    assert t.after.rollbacks == 0
    assert not t.after.approved
    assert t.numbers == {
        "criteria": [PASS.to_dict(), PASS.to_dict()],
        "recent": [],
        "breakers_open_s": 0.0,
    }
    check_event(t, before)


def test_no_criteria_at_all_promotes_on_the_minimum_duration() -> None:
    t = tick(PLAN, at(0), T0 + 3 * DAY, ev())
    assert t is not None and t.kind == "promote"


def test_pending_never_promotes() -> None:
    for now in (T0 + 3 * DAY, T0 + 6 * DAY - 1):  # past the minimum, before max_duration
        assert tick(PLAN, at(0), now, ev(PASS, PENDING)) is None


def test_a_pending_dry_run_criterion_does_not_hold_promotion() -> None:
    dry_pending = replace(PENDING, dry_run=True)
    t = tick(PLAN, at(0), T0 + 3 * DAY, ev(PASS, dry_pending))
    assert t is not None and t.kind == "promote"
    # ... nor does it, alone, ever pause the rollout as "pending"
    t = tick(PLAN, at(0), T0 + 100 * DAY, ev(PASS, dry_pending))
    assert t is not None and t.kind == "promote"


def test_a_failed_dry_run_criterion_never_acts() -> None:
    dry_fail = replace(FAIL, dry_run=True)
    # not a rollback, in the step's window or the last interval ...
    assert tick(PLAN, at(0), T0 + 60, ev(PASS, dry_fail, recent=(dry_fail,))) is None
    assert tick(PLAN, at(0, state="paused"), T0 + 60, ev(dry_fail, recent=(dry_fail,))) is None
    # ... and not a veto on promotion either
    t = tick(PLAN, at(0), T0 + 3 * DAY, ev(PASS, dry_fail, recent=(dry_fail,)))
    assert t is not None and t.kind == "promote"
    assert t.numbers["criteria"] == [PASS.to_dict(), dry_fail.to_dict()]


def test_steps_within_a_phase_step_up_with_a_fresh_window() -> None:
    before = at(3, 0, since=T0 + 20 * DAY)
    now = T0 + 22 * DAY
    t = tick(PLAN, before, now, ev(PASS))
    assert t is not None
    assert t.kind == "step_up"
    assert (t.after.state, t.after.phase, t.after.step) == ("running", 3, 1)
    assert (t.after.since, t.after.resumed) == (now, now)
    assert t.after.target == Target(True, 50, 50, ALL_FEATURES)
    check_event(t, before)
    # the next step's own minimum counts from its own start
    assert tick(PLAN, t.after, now + 3 * DAY - 1, ev(PASS)) is None
    t2 = tick(PLAN, t.after, now + 3 * DAY, ev(PASS))
    assert t2 is not None and t2.kind == "step_up" and t2.after.step == 2
    assert t2.after.target == Target(True, 75, 75, ALL_FEATURES)


def test_the_last_step_of_the_last_phase_completes() -> None:
    before = at(3, 3)
    now = T0 + 5 * DAY
    t = tick(PLAN, before, now, ev(PASS))
    assert t is not None
    assert t.kind == "complete"
    assert (t.after.state, t.after.phase, t.after.step) == ("completed", 3, 3)
    assert t.after.target == Target(True, 100, 100, ALL_FEATURES)
    assert t.after.since == before.since  # the step's window is not restarted
    check_event(t, before)
    # completed is terminal for the controller
    assert tick(PLAN, t.after, now + DAY, ev(FAIL)) is None


def test_a_whole_healthy_rollout_runs_itself_to_completed() -> None:
    state = start(PLAN, RolloutState(), T0, "alice", "go", "d").after
    now = T0
    kinds = []
    while state.state == "running":
        now += INTERVAL * 60  # hourly ticks
        t = tick(PLAN, state, now, ev(PASS, PASS))
        if t is not None:
            kinds.append(t.kind)
            state = t.after
    assert kinds == ["promote", "promote", "promote", "step_up", "step_up", "step_up", "complete"]
    assert state.state == "completed"
    assert state.seq == 8
    assert now - T0 == (3 + 5 + 7 + 14) * DAY


# --- tick: approval ------------------------------------------------------------------------------

GATED_PILOT = replace(PILOT, approval=True)
GATED = make_plan(phases=(CANARY, GATED_PILOT, BETA))


def test_an_approval_phase_waits_for_promote_then_promotes_on_the_next_tick() -> None:
    state = at(1, plan=GATED)
    after_min = T0 + 5 * DAY
    assert tick(GATED, state, after_min, ev(PASS)) is None  # criteria pass, approval missing
    assert tick(GATED, state, after_min + 30 * DAY, ev(PASS)) is None  # never pauses as pending

    t = promote(GATED, state, after_min + 10, "bob", "looks good")
    assert t is not None
    assert t.kind == "approve"
    assert t.after == replace(
        state,
        approved=True,
        entered=after_min + 10,
        seq=state.seq + 1,
        reason="looks good",
        event=t.after.event,
    )
    assert t.numbers == {}
    check_event(t, state)
    approved = t.after
    # approving twice changes nothing
    assert promote(GATED, approved, after_min + 20, "bob", "again") is None

    t = tick(GATED, approved, after_min + 60, ev(PASS))
    assert t is not None
    assert t.kind == "promote"
    assert (t.after.state, t.after.phase, t.after.step) == ("running", 2, 0)
    assert t.after.target == Target(True, 30, 30, BETA_FEATURES)
    assert not t.after.approved  # the next phase's approval is its own


def test_approval_given_early_still_waits_for_the_criteria_and_the_minimum() -> None:
    state = promote(GATED, at(1, plan=GATED), T0 + 60, "bob", "ok").after  # type: ignore[union-attr]
    assert state.approved
    assert tick(GATED, state, T0 + 5 * DAY - 1, ev(PASS)) is None
    assert tick(GATED, state, T0 + 5 * DAY, ev(PASS, PENDING)) is None
    t = tick(GATED, state, T0 + 5 * DAY, ev(PASS))
    assert t is not None and t.kind == "promote"


def test_a_rollback_withdraws_the_approval() -> None:
    state = promote(GATED, at(1, plan=GATED), T0 + 60, "bob", "ok").after  # type: ignore[union-attr]
    t = tick(GATED, state, T0 + 120, ev(FAIL))
    assert t is not None and t.kind == "rollback"
    assert not t.after.approved


def test_promote_force_moves_on_at_once_whatever_the_criteria() -> None:
    before = at(0)
    now = T0 + 60  # long before the minimum
    t = promote(PLAN, before, now, "carol", "ship it", force=True)
    assert t is not None
    assert t.kind == "promote"
    assert t.actor == "carol"
    assert t.numbers == {"forced": True}
    assert (t.after.state, t.after.phase, t.after.step, t.after.since) == ("running", 1, 0, now)
    assert t.after.target == Target(True, 10, 10, STT_TTS)
    assert not t.after.approved
    check_event(t, before)


def test_promote_force_from_paused_and_through_an_approval_phase() -> None:
    t = promote(GATED, at(1, plan=GATED, state="paused"), T0 + 60, "carol", "ship", force=True)
    assert t is not None
    assert (t.kind, t.after.state, t.after.phase) == ("promote", "running", 2)
    last = promote(PLAN, at(3, 3), T0 + 60, "carol", "done", force=True)
    assert last is not None
    assert (last.kind, last.after.state) == ("complete", "completed")


def test_a_forced_step_up_is_not_an_approval_of_the_phase() -> None:
    gated_prod = make_plan(phases=(replace(PRODUCTION, approval=True),))
    t = promote(gated_prod, at(0, 0, plan=gated_prod), T0 + 60, "carol", "faster", force=True)
    assert t is not None
    assert (t.kind, t.after.step) == ("step_up", 1)
    assert not t.after.approved
    # ... so the end of the phase still waits for a person
    last = at(0, 3, plan=gated_prod)
    assert tick(gated_prod, replace(last, approved=t.after.approved), T0 + 5 * DAY, ev(PASS)) is None


@pytest.mark.parametrize("state", ["pending", "rolled_back", "halted", "completed", "aborted"])
def test_promote_is_refused_unless_running_or_paused(state: str) -> None:
    for force in (False, True):
        with pytest.raises(RolloutRefused):
            promote(PLAN, at(1, state=state), T0, "bob", "x", force=force)


# --- tick: pending too long, the kill switch, paused -----------------------------------------------


def test_pending_with_enough_samples_pauses_saying_the_interval_is_undecided() -> None:
    straddling = FakeResult(verdict="pending", samples=300, detail="error rate 1.5% (95% CI 0.6%-3.4%) vs 2%")
    now = T0 + 6 * DAY
    t = tick(PLAN, at(0), now, ev(straddling))
    assert t is not None and t.kind == "pause"
    assert t.reason == (
        "criteria still pending 6.0d into the step: "
        "error_rate (undecided: error rate 1.5% (95% CI 0.6%-3.4%) vs 2%)"
    )


def test_pending_past_max_duration_pauses_naming_the_metrics_and_their_samples() -> None:
    tts_pending = FakeResult(metric="latency_p95_ms", operation="tts", verdict="pending", samples=3)
    dry_pending = FakeResult(metric="cache_hit_rate", verdict="pending", dry_run=True, samples=0)
    before = at(0)
    assert CANARY.max_duration_for(CANARY.steps[0]) == 6 * DAY  # default: twice the step's minimum
    e = ev(PASS, PENDING, tts_pending, dry_pending)
    assert tick(PLAN, before, T0 + 6 * DAY - 1, e) is None
    now = T0 + 6 * DAY
    t = tick(PLAN, before, now, e)
    assert t is not None
    assert t.kind == "pause"
    assert t.actor == CONTROLLER
    assert t.reason == (
        "criteria still pending 6.0d into the step: "
        "user_feedback (12/100 samples), latency_p95_ms[tts] (3/200 samples)"
    )
    assert t.after == replace(
        before, state="paused", entered=now, seq=before.seq + 1, reason=t.reason, event=t.after.event
    )
    check_event(t, before)
    # paused: never promotes, even when everything passes later
    assert tick(PLAN, t.after, now + 30 * DAY, ev(PASS)) is None


def test_an_explicit_max_duration_is_used() -> None:
    quick = make_plan(phases=(replace(CANARY, max_duration_s=4 * DAY), PILOT))
    assert tick(quick, at(0, plan=quick), T0 + 4 * DAY - 1, ev(PENDING)) is None
    t = tick(quick, at(0, plan=quick), T0 + 4 * DAY, ev(PENDING))
    assert t is not None and t.kind == "pause"
    assert t.reason == "criteria still pending 4.0d into the step: user_feedback (12/100 samples)"


def test_resume_restarts_the_pending_clock_but_not_the_step_window() -> None:
    paused = tick(PLAN, at(0), T0 + 6 * DAY, ev(PENDING)).after  # type: ignore[union-attr]
    r = resume(PLAN, paused, T0 + 7 * DAY, "dave", "more traffic now")
    assert r.kind == "resume"
    assert r.after == replace(
        paused,
        state="running",
        resumed=T0 + 7 * DAY,
        entered=T0 + 7 * DAY,
        seq=paused.seq + 1,
        reason="more traffic now",
        event=r.after.event,
    )
    assert r.after.since == T0  # the criteria keep reading the whole step
    check_event(r, paused)
    assert tick(PLAN, r.after, T0 + 13 * DAY - 1, ev(PENDING)) is None
    again = tick(PLAN, r.after, T0 + 13 * DAY, ev(PENDING))
    assert again is not None and again.kind == "pause"
    assert again.reason.startswith("criteria still pending 13.0d into the step: ")
    t = tick(PLAN, r.after, T0 + 8 * DAY, ev(PASS))
    assert t is not None and t.kind == "promote"


def test_a_kill_switch_turned_off_by_a_person_pauses_the_running_rollout() -> None:
    before = at(1)
    now = T0 + 60
    t = tick(PLAN, before, now, ev(PASS, killed=True))
    assert t is not None
    assert t.kind == "pause"
    assert t.reason == "the kill switch was turned off by a person"
    assert t.after == replace(
        before, state="paused", entered=now, seq=before.seq + 1, reason=t.reason, event=t.after.event
    )
    assert t.after.target == before.target  # the controller never overrides the person's kill
    check_event(t, before)
    assert tick(PLAN, t.after, now + 60, ev(PASS, killed=True)) is None  # paused stays paused
    # even with everything passing past the minimum, a killed rollout does not promote
    t = tick(PLAN, before, T0 + 5 * DAY, ev(PASS, killed=True))
    assert t is not None and t.kind == "pause"


def test_paused_still_rolls_back_on_failure_but_never_promotes() -> None:
    paused = at(2, state="paused")
    assert tick(PLAN, paused, T0 + 30 * DAY, ev(PASS)) is None
    assert tick(PLAN, paused, T0 + 30 * DAY, ev(PENDING)) is None
    t = tick(PLAN, paused, T0 + 60, ev(PASS, recent=(FAIL,)))
    assert t is not None
    assert (t.kind, t.after.state, t.after.rollbacks) == ("rollback", "rolled_back", 1)
    assert t.after.target == Target(True, 10, 10, STT_TTS)
    check_event(t, paused)


@pytest.mark.parametrize("state", ["pending", "rolled_back", "halted", "completed", "aborted"])
def test_tick_does_nothing_outside_running_and_paused(state: str) -> None:
    e = ev(FAIL, recent=(FAIL,), breakers_open_s=1e9, killed=True)
    assert tick(PLAN, at(1, state=state), T0 + 30 * DAY, e) is None
    assert tick(PLAN, RolloutState(state=state), T0, e) is None  # type: ignore[arg-type]


def test_pause_and_resume_by_a_person() -> None:
    before = at(1)
    t = pause(before, T0 + 60, "erin", "holiday")
    assert t.kind == "pause"
    assert t.after == replace(
        before, state="paused", entered=T0 + 60, seq=before.seq + 1, reason="holiday", event=t.after.event
    )
    check_event(t, before)
    with pytest.raises(RolloutRefused):
        pause(t.after, T0 + 61, "erin", "twice")
    with pytest.raises(RolloutRefused):
        resume(PLAN, before, T0 + 61, "erin", "not paused")
    r = resume(PLAN, t.after, T0 + 120, "erin", "back")
    assert (r.after.state, r.after.phase, r.after.step, r.after.since) == ("running", 1, 0, T0)
    assert r.after.target == before.target
    for state in ("pending", "completed", "aborted"):
        with pytest.raises(RolloutRefused):
            resume(PLAN, at(1, state=state), T0, "erin", "x", force=True)


def test_a_paused_rollout_does_not_resume_under_a_person_s_kill_switch() -> None:
    paused = pause(at(1), T0 + 60, "erin", "incident").after
    with pytest.raises(RolloutRefused, match=r"kill switch is on.*turn it back on first"):
        resume(PLAN, paused, T0 + 120, "erin", "back", killed=True)
    assert resume(PLAN, paused, T0 + 120, "erin", "back", killed=False).after.state == "running"
    # A rollback whose on_failure threw the switch is resumed by re-applying the phase's target.
    rolled = at(1, state="rolled_back")
    assert resume(PLAN, rolled, T0 + 120, "erin", "retry", killed=True).after.state == "running"


# --- tick: rollback ------------------------------------------------------------------------------


def test_a_failure_on_the_step_window_rolls_back() -> None:
    before = at(1)
    now = T0 + 60
    t = tick(PLAN, before, now, ev(PASS, FAIL))
    assert t is not None
    assert t.kind == "rollback"
    assert t.actor == CONTROLLER
    assert t.reason == "error_rate 4.1% > 2%"
    assert t.after == replace(
        before,
        state="rolled_back",
        rollbacks=1,
        approved=False,
        entered=now,
        seq=before.seq + 1,
        reason=t.reason,
        target=Target(True, 1, 0, STT),
        event=t.after.event,
    )
    assert t.numbers["criteria"] == [PASS.to_dict(), FAIL.to_dict()]
    check_event(t, before)


def test_a_failure_in_the_last_interval_rolls_back_at_once() -> None:
    no_detail = FakeResult(metric="latency_p95_ms", operation="stt", verdict="fail")
    # days of healthy traffic in the step's window; the last interval fails
    t = tick(PLAN, at(1), T0 + 4 * DAY, ev(PASS, PASS, recent=(PASS, no_detail)))
    assert t is not None
    assert (t.kind, t.after.state) == ("rollback", "rolled_back")
    assert t.reason == "last interval: latency_p95_ms[stt]"
    assert t.numbers["recent"] == [PASS.to_dict(), no_detail.to_dict()]


def test_a_failure_wins_over_promotion_and_over_the_kill_switch() -> None:
    t = tick(PLAN, at(0), T0 + 3 * DAY, ev(PASS, recent=(FAIL,), killed=True))
    assert t is not None and t.kind == "rollback"


def test_the_reason_names_every_failure() -> None:
    other = FakeResult(metric="latency_p95_ms", verdict="fail", detail="p95 2300 ms > 2000 ms")
    t = tick(PLAN, at(0), T0 + 60, ev(FAIL, other, recent=(FAIL,), breakers_open_s=61))
    assert t is not None
    assert t.reason == (
        "v2 breakers open for 61s (limit 60s); error_rate 4.1% > 2%; p95 2300 ms > 2000 ms; "
        "last interval: error_rate 4.1% > 2%"
    )
    assert t.numbers["breakers_open_s"] == 61.0


def test_breakers_open_for_one_interval_roll_back() -> None:
    assert tick(PLAN, at(1), T0 + 60, ev(PASS, breakers_open_s=INTERVAL - 0.001)) is None
    t = tick(PLAN, at(1), T0 + 60, ev(PASS, breakers_open_s=INTERVAL))
    assert t is not None
    assert (t.kind, t.after.state, t.after.rollbacks) == ("rollback", "rolled_back", 1)
    assert t.reason == "v2 breakers open for 60s (limit 60s)"
    assert t.after.target == Target(True, 1, 0, STT)


def test_an_explicit_breaker_limit_is_used() -> None:
    patient = make_plan(breaker_open_s=300)
    assert tick(patient, at(1, plan=patient), T0 + 60, ev(PASS, breakers_open_s=299.9)) is None
    t = tick(patient, at(1, plan=patient), T0 + 60, ev(PASS, breakers_open_s=300))
    assert t is not None and t.kind == "rollback"
    assert t.reason == "v2 breakers open for 300s (limit 300s)"


# The phase's features are off after a rollback in every case (issue 11 §2), from any step.
ROLLBACK_TARGETS = [
    # phase 0: nothing before it
    ("previous", 0, 0, Target(True, 0, 0, frozenset())),
    ("zero", 0, 0, Target(True, 0, 0, frozenset())),
    ("kill", 0, 0, Target(False, 0, 0, frozenset())),
    # phase 2 (beta, 30 % + caching) step 0: pilot's last level, caching off
    ("previous", 2, 0, Target(True, 10, 10, STT_TTS)),
    ("zero", 2, 0, Target(True, 0, 0, STT_TTS)),
    ("kill", 2, 0, Target(False, 10, 10, STT_TTS)),
    # phase 3 (production + langgraph) step 2 (75 %): step 1's 50 %, langgraph off
    ("previous", 3, 2, Target(True, 50, 50, BETA_FEATURES)),
    ("zero", 3, 2, Target(True, 0, 0, BETA_FEATURES)),
    ("kill", 3, 2, Target(False, 50, 50, BETA_FEATURES)),
    # phase 3 step 0 (30 %): beta's 30 %, langgraph off
    ("previous", 3, 0, Target(True, 30, 30, BETA_FEATURES)),
]


@pytest.mark.parametrize(("on_failure", "phase", "step", "expected"), ROLLBACK_TARGETS)
def test_rollback_targets(on_failure: OnFailure, phase: int, step: int, expected: Target) -> None:
    plan = make_plan(on_failure)
    state = at(phase, step, plan=plan)
    assert failure_target(plan, state) == expected
    t = tick(plan, state, T0 + 60, ev(FAIL))
    assert t is not None
    assert (t.kind, t.after.state, t.after.phase, t.after.step) == ("rollback", "rolled_back", phase, step)
    assert t.after.target == expected
    # the percentage in force never rises on a rollback; the phase's new features are off
    assert t.after.target.stt <= state.target.stt and t.after.target.tts <= state.target.tts
    assert not t.after.target.features & (PLAN.phases[phase].features - _before_features(phase))


def _before_features(phase: int) -> frozenset[str]:
    return frozenset(PLAN.phases[phase - 1].features) if phase > 0 else frozenset()


def test_manual_rollback() -> None:
    before = at(3, 2)
    t = rollback(PLAN, before, T0 + 60, "frank", "customers complain")
    assert t.kind == "rollback"
    assert t.actor == "frank"
    assert t.numbers == {"manual": True}
    assert t.after == replace(
        before,
        state="rolled_back",
        rollbacks=1,
        entered=T0 + 60,
        seq=before.seq + 1,
        reason="customers complain",
        target=Target(True, 50, 50, BETA_FEATURES),
        event=t.after.event,
    )
    check_event(t, before)
    t2 = rollback(PLAN, at(3, 2, state="paused"), T0 + 60, "frank", "x")
    assert t2.after.state == "rolled_back"
    for state in ("pending", "rolled_back", "halted", "completed", "aborted"):
        with pytest.raises(RolloutRefused):
            rollback(PLAN, at(3, 2, state=state), T0 + 60, "frank", "x")


def test_rollbacks_count_and_the_one_past_max_rollbacks_halts() -> None:
    plan = make_plan(max_rollbacks=2)
    t1 = tick(plan, at(1, rollbacks=0), T0 + 60, ev(FAIL))
    t2 = tick(plan, at(1, rollbacks=1), T0 + 60, ev(FAIL))
    assert t1 is not None and t2 is not None
    assert (t1.kind, t1.after.state, t1.after.rollbacks) == ("rollback", "rolled_back", 1)
    assert (t2.kind, t2.after.state, t2.after.rollbacks) == ("rollback", "rolled_back", 2)
    before = at(1, rollbacks=2)
    t3 = tick(plan, before, T0 + 60, ev(FAIL))
    assert t3 is not None
    assert (t3.kind, t3.after.state, t3.after.rollbacks) == ("halt", "halted", 3)
    assert t3.reason == "error_rate 4.1% > 2% (rollback 3 > max_rollbacks 2: halted)"
    assert t3.after.target == Target(True, 1, 0, STT)  # on_failure still applies
    check_event(t3, before)
    # max_rollbacks = 0: the first rollback halts
    t0 = rollback(make_plan(max_rollbacks=0), at(1), T0, "frank", "x")
    assert (t0.kind, t0.after.state, t0.after.rollbacks) == ("halt", "halted", 1)


def test_resume_from_rolled_back_retries_the_phase_from_step_0() -> None:
    rolled = tick(PLAN, at(3, 2), T0 + 60, ev(FAIL)).after  # type: ignore[union-attr]
    assert rolled.target == Target(True, 50, 50, BETA_FEATURES)
    now = T0 + DAY
    r = resume(PLAN, rolled, now, "gina", "fixed the model")
    assert r.kind == "resume"
    assert r.after == replace(
        rolled,
        state="running",
        step=0,
        since=now,
        resumed=now,
        entered=now,
        seq=rolled.seq + 1,
        reason="fixed the model",
        target=Target(True, 30, 30, ALL_FEATURES),
        event=r.after.event,
    )
    assert r.after.rollbacks == 1  # kept: they count towards max_rollbacks
    check_event(r, rolled)


def test_resume_from_halted_needs_force_and_a_reason() -> None:
    halted = at(2, state="halted", rollbacks=3)
    halted = replace(halted, target=failure_target(PLAN, halted))
    with pytest.raises(RolloutRefused) as info:
        resume(PLAN, halted, T0 + DAY, "gina", "please")
    assert (info.value.exit_code, info.value.status) == (1, 409)
    with pytest.raises(RolloutRefused):
        resume(PLAN, halted, T0 + DAY, "gina", "  ", force=True)
    r = resume(PLAN, halted, T0 + DAY, "gina", "root cause fixed", force=True)
    assert (r.kind, r.after.state, r.after.phase, r.after.step) == ("resume", "running", 2, 0)
    assert (r.after.since, r.after.resumed) == (T0 + DAY, T0 + DAY)
    assert r.after.target == Target(True, 30, 30, BETA_FEATURES)
    assert r.after.rollbacks == 3
    check_event(r, halted)


def test_three_injected_failures_halt() -> None:
    """The simulator's scenario: max_rollbacks = 2, v2 fails three times in pilot."""
    plan = make_plan(max_rollbacks=2)
    state = start(plan, RolloutState(), T0, "sim", "go", "d").after
    now = T0 + 3 * DAY
    state = tick(plan, state, now, ev(PASS)).after  # type: ignore[union-attr]
    assert (state.phase, state.target) == (1, Target(True, 10, 10, STT_TTS))
    kinds = []
    highest_during_faults = 0
    for failure in range(1, 4):
        now += 3600
        assert tick(plan, state, now, ev(PASS)) is None  # healthy for a while
        now += INTERVAL
        t = tick(plan, state, now, ev(PASS, recent=(FAIL,)))  # fault
        assert t is not None
        kinds.append(t.kind)
        state = t.after
        assert state.rollbacks == failure
        assert state.target == Target(True, 1, 0, STT)
        highest_during_faults = max(highest_during_faults, state.target.stt, state.target.tts)
        # nothing moves on by itself after a rollback
        assert tick(plan, state, now + INTERVAL, ev(PASS)) is None
        if state.state == "rolled_back":
            state = resume(plan, state, now + 600, "oncall", f"retry {failure}").after
            assert (state.state, state.phase, state.target) == ("running", 1, Target(True, 10, 10, STT_TTS))
    assert kinds == ["rollback", "rollback", "halt"]
    assert state.state == "halted"
    assert highest_during_faults == 1
    assert state.seq == 1 + 1 + 3 + 2  # start, promote, three failures, two resumes
    with pytest.raises(RolloutRefused):
        resume(plan, state, now + 600, "oncall", "again")


# --- abort and starting over ---------------------------------------------------------------------


@pytest.mark.parametrize("state", ["running", "paused", "rolled_back", "halted", "completed"])
def test_abort_sends_everyone_back_to_legacy(state: str) -> None:
    before = at(3, 1, state=state)
    t = abort(before, T0 + 60, "hank", "stop")
    assert t.kind == "abort"
    assert t.after == replace(
        before,
        state="aborted",
        entered=T0 + 60,
        seq=before.seq + 1,
        reason="stop",
        target=Target(True, 0, 0, frozenset()),
        event=t.after.event,
    )
    check_event(t, before)


@pytest.mark.parametrize("state", ["pending", "aborted"])
def test_abort_is_refused_when_there_is_nothing_to_abort(state: str) -> None:
    with pytest.raises(RolloutRefused):
        abort(at(1, state=state), T0, "hank", "stop")


def test_start_again_after_abort_begins_afresh_and_seq_keeps_increasing() -> None:
    first = start(PLAN, RolloutState(), T0, "alice", "go", "d1").after
    rolled = tick(PLAN, first, T0 + 60, ev(FAIL)).after  # type: ignore[union-attr]
    aborted = abort(rolled, T0 + 120, "hank", "stop").after
    assert aborted.seq == 3
    t = start(PLAN, aborted, T0 + DAY, "alice", "second try", "d2")
    assert t.seq == 4
    assert t.after == RolloutState(
        state="running",
        phase=0,
        step=0,
        since=T0 + DAY,
        entered=T0 + DAY,
        resumed=T0 + DAY,
        started=T0 + DAY,
        rollbacks=0,
        approved=False,
        seq=4,
        applied=aborted.applied,
        target=Target(True, 1, 0, STT),
        reason="second try",
        plan_digest="d2",
        event=t.after.event,
    )
    # the history row says where it came from
    check_event(t, aborted)
    assert (t.after.event["from_state"], t.after.event["from_phase"]) == ("aborted", 0)


def test_start_again_after_completed() -> None:
    done = at(3, 3, state="completed", seq=9)
    t = start(PLAN, done, T0 + 30 * DAY, "alice", "next plan", "d3")
    assert (t.seq, t.after.state, t.after.phase, t.after.step) == (10, "running", 0, 0)
    check_event(t, done)


# --- the stored form -----------------------------------------------------------------------------


def test_rollout_state_round_trips_through_dumps_and_loads() -> None:
    t = tick(PLAN, at(3, 2, seq=41), T0 + 60, ev(PASS, FAIL, recent=(FAIL,), breakers_open_s=1.23456))
    assert t is not None
    state = replace(t.after, approved=True)
    raw = state.dumps()
    assert isinstance(raw, bytes)
    assert RolloutState.loads(raw) == state
    assert RolloutState.loads(raw.decode()) == state
    doc = json.loads(raw)
    assert doc["format"] == 1
    assert doc["target"] == {
        "enabled": True,
        "stt": 50,
        "tts": 50,
        "features": ["caching_enabled", "stt_enabled", "tts_enabled"],
    }
    assert doc["event"]["numbers"]["breakers_open_s"] == 1.235
    assert RolloutState.loads(RolloutState().dumps()) == RolloutState()
    assert applied(state).applied == state.seq and not applied(state).pending_apply


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b"42",
        b'"running"',
        b"{}",
        b'{"target": {"enabled": true, "stt": 1, "tts": 0, "features": []}, "nonsense": 1}',
        b'{"target": {"enabled": true}}',
        b'{"target": null}',
        b'{"target": {"enabled": true, "stt": 1, "tts": 0, "features": []}, "state": "flying"}',
    ],
)
def test_loads_of_garbage_is_an_invalid_request(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        RolloutState.loads(raw)


def test_loads_refuses_another_format() -> None:
    doc = json.loads(RolloutState().dumps())
    doc["format"] = 2
    with pytest.raises(InvalidRequest):
        RolloutState.loads(json.dumps(doc))


def test_every_state_name_is_known() -> None:
    assert STATES == ("pending", "running", "paused", "rolled_back", "halted", "completed", "aborted")


# --- the event of every kind of transition -------------------------------------------------------


def test_every_transition_kind_carries_its_event() -> None:
    s0 = RolloutState()
    seen: dict[str, Transition] = {}

    def take(t: Transition | None, before: RolloutState) -> RolloutState:
        assert t is not None
        check_event(t, before)
        assert t.after.event == event_of(t)
        seen[t.kind] = t
        return t.after

    gated = make_plan(phases=(CANARY, replace(PRODUCTION, approval=True)), max_rollbacks=1)
    s1 = take(start(gated, s0, T0, "alice", "go", "d"), s0)
    s2 = take(tick(gated, s1, T0 + 3 * DAY, ev(PASS)), s1)  # promote
    s3 = take(tick(gated, s2, T0 + 5 * DAY, ev(PASS)), s2)  # step_up
    s4 = take(pause(s3, T0 + 5 * DAY + 1, "bob", "hold"), s3)
    s5 = take(resume(gated, s4, T0 + 5 * DAY + 2, "bob", "go on"), s4)
    s6 = take(promote(gated, s5, T0 + 5 * DAY + 3, "bob", "approved"), s5)  # approve
    s7 = take(tick(gated, s6, T0 + 5 * DAY + 4, ev(FAIL)), s6)  # rollback
    s8 = take(resume(gated, s7, T0 + 6 * DAY, "bob", "retry"), s7)
    s9 = take(rollback(gated, s8, T0 + 6 * DAY + 1, "bob", "again"), s8)  # halt
    s10 = take(resume(gated, s9, T0 + 7 * DAY, "bob", "forced", force=True), s9)
    s11 = take(promote(gated, s10, T0 + 7 * DAY + 1, "bob", "skip", force=True), s10)  # step_up
    s12 = take(promote(gated, s11, T0 + 7 * DAY + 2, "bob", "skip", force=True), s11)
    s13 = take(promote(gated, s12, T0 + 7 * DAY + 3, "bob", "skip", force=True), s12)
    s14 = take(promote(gated, s13, T0 + 7 * DAY + 4, "bob", "skip", force=True), s13)  # complete
    s15 = take(abort(s14, T0 + 8 * DAY, "carol", "undo"), s14)
    assert set(seen) == {
        "start",
        "step_up",
        "promote",
        "complete",
        "rollback",
        "halt",
        "pause",
        "resume",
        "approve",
        "abort",
    }
    assert (s14.state, s15.state, s15.seq) == ("completed", "aborted", 15)
    assert seen["halt"].after.event["from_state"] == "running"
    assert seen["halt"].after.event["actor"] == "bob"
    assert seen["rollback"].after.event["from_phase"] == 1
    assert seen["rollback"].after.event["from_step"] == 1
    assert seen["rollback"].after.event["numbers"]["criteria"] == [FAIL.to_dict()]


def test_the_default_plan_starts_at_canary_and_rolls_production_back_a_step_without_langgraph() -> None:
    from voxshift.core.rollout import plan as plan_module

    default_plan = getattr(plan_module, "default_plan", None)
    if default_plan is None:
        pytest.skip("no default_plan() yet")
    plan: Plan = default_plan()
    first = start(plan, RolloutState(), T0, "alice", "go", "d").after
    assert first.target == Target(True, 1, 0, STT)
    last = len(plan.phases) - 1
    top = len(plan.phases[last].steps) - 1
    state = at(last, top, plan=plan)
    t = tick(plan, state, T0 + 60, ev(FAIL))
    assert t is not None and t.kind == "rollback"
    below = plan.phases[last].steps[top - 1]
    assert t.after.target == Target(
        True, below.stt_percentage, below.tts_percentage, frozenset(plan.phases[last - 1].features)
    )
    assert "langgraph_integration" not in t.after.target.features
