"""What a rollout simulation records and returns: its timeline, transitions and faults, the live
progress figures, and the closing result (with the success report when it can be measured)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from voxshift.core.rollout.window import SYSTEM_LEGACY, SYSTEM_V2, TrafficWindow
from voxshift.core.stats import WindowStats
from voxshift.errors import VoxshiftError

if TYPE_CHECKING:
    from voxshift.core.rollout.machine import RolloutState
    from voxshift.services.rollout.simulator import Simulation

ROLLBACK_KINDS = ("rollback", "halt")


@dataclass(frozen=True)
class Sample:
    """What the flags said at one wake-up (simulated seconds since the start)."""

    t: float
    state: str
    phase: str | None
    stt: int  # percentages in force (0 when the feature or the kill switch is off)
    tts: int
    fault: bool


@dataclass(frozen=True)
class TransitionRecord:
    seq: int
    t: float  # simulated seconds since the start
    kind: str
    actor: str
    from_phase: str | None
    phase: str | None
    state: str
    stt: int
    tts: int
    rollbacks: int
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultRecord:
    kind: str
    description: str
    onset_t: float
    ended_t: float | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One request as a user saw it (``issued`` and ``done`` on the monotonic clock, real)."""

    user_id: str
    operation: str
    system: str | None  # None: both systems failed
    fallback: bool
    issued: float
    done: float


@dataclass(frozen=True)
class Progress:
    t: float  # simulated seconds
    real_s: float
    state: str
    phase: str | None
    step: int
    stt: int
    tts: int
    rollbacks: int
    fault: str | None
    requests: int
    window_s: float  # the figures below are over this many simulated seconds, up to now
    # Per system: error rate (fallbacks count for v2) and p95 in ms.
    v2_error_rate: float | None
    legacy_error_rate: float | None
    v2_p95_ms: float | None
    legacy_p95_ms: float | None
    criteria: list[tuple[str, str, str]]  # (label, verdict, value shown)
    reason: str


@dataclass
class SimulationResult:
    ended: str
    state: str
    phase: str | None
    rollbacks: int
    reason: str
    phases_reached: list[str]
    transitions: list[TransitionRecord]
    timeline: list[Sample]
    faults: list[FaultRecord]
    served: dict[str, dict[str, int]]  # system -> operation -> answered requests
    fallbacks: dict[str, int]
    failures: dict[str, int]
    ratings: dict[str, int]
    shed: int
    evaluations: int
    sim_elapsed_s: float
    real_elapsed_s: float
    time_scale: float
    interval_s: float
    evaluation_times: list[float] = field(default_factory=list)  # when the controller evaluated
    report: dict[str, Any] | None = None

    def rollbacks_after(self, t: float) -> list[TransitionRecord]:
        return [tr for tr in self.transitions if tr.kind in ROLLBACK_KINDS and tr.t >= t]

    def fault_to_rollback_s(self) -> list[float | None]:
        """Per fault, simulated seconds from its onset to the first rollback (or halt) after it."""
        out: list[float | None] = []
        for fault in self.faults:
            after = self.rollbacks_after(fault.onset_t)
            out.append(round(after[0].t - fault.onset_t, 3) if after else None)
        return out

    def to_dict(self, *, timeline: bool = False) -> dict[str, Any]:
        doc = asdict(self)
        if not timeline:
            doc.pop("timeline")
            doc.pop("evaluation_times")
        doc["fault_to_rollback_s"] = self.fault_to_rollback_s()
        return doc


def _rate(stats: WindowStats) -> float | None:
    return stats.errors / stats.requests if stats.requests else None


def _merged(window: TrafficWindow, system: str) -> WindowStats:
    out = WindowStats()
    for op_window in window.operations.values():
        out.merge(op_window.v2 if system == SYSTEM_V2 else op_window.legacy)
    return out


def _shown(value: Any, metric: str) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    if metric.endswith("_ms"):
        return f"{value:.0f} ms"
    if metric.endswith("_rate"):
        return f"{value:.2%}"
    return f"{value:.2f}"


async def progress_of(sim: Simulation, state: RolloutState, stt: int, tts: int) -> Progress:
    stack = sim.s
    now = sim.clock()
    v2 = legacy = WindowStats()
    # One interval, or two real seconds when an interval is shorter than that (nothing to show).
    span = max(sim.config.plan.interval_s, 2.0 * sim.clock.scale)
    try:
        window = await stack.metrics.traffic(now - span, now)
        v2, legacy = _merged(window, SYSTEM_V2), _merged(window, SYSTEM_LEGACY)
    except VoxshiftError:
        pass
    criteria: list[tuple[str, str, str]] = []
    try:
        status = await stack.controller.status()
        for c in status.get("criteria") or []:
            label = f"{c['metric']}[{c['operation']}]" if c.get("operation") else str(c["metric"])
            verdict = str(c["verdict"]) + (" (dry run)" if c.get("dry_run") else "")
            criteria.append((label, verdict, _shown(c.get("value"), str(c["metric"]))))
    except VoxshiftError:
        pass
    served = sum(sim.counters.served.values()) + sum(sim.counters.failures.values())
    fault = stack.faults.active
    return Progress(
        t=round(now - sim.clock.start, 1),
        real_s=round(sim.clock.real(now - sim.clock.start), 2),
        state=state.state,
        phase=sim.config.plan.phases[state.phase].name
        if 0 <= state.phase < len(sim.config.plan.phases)
        else None,
        step=state.step,
        stt=stt,
        tts=tts,
        rollbacks=state.rollbacks,
        fault=fault.describe() if fault is not None else None,
        requests=served,
        window_s=span,
        v2_error_rate=_rate(v2),
        legacy_error_rate=_rate(legacy),
        v2_p95_ms=v2.latency.percentile(0.95),
        legacy_p95_ms=legacy.latency.percentile(0.95),
        criteria=criteria,
        reason=state.reason,
    )


async def build_result(sim: Simulation, real_elapsed_s: float) -> SimulationResult:
    transitions = sorted(sim.transitions.values(), key=lambda tr: tr.seq)
    reached: list[str] = []
    for tr in transitions:
        if tr.state == "running" and tr.phase is not None and tr.phase not in reached:
            reached.append(tr.phase)
    state = sim.state
    served: dict[str, dict[str, int]] = {}
    for (system, op), n in sorted(sim.counters.served.items()):
        served.setdefault(system, {})[op] = n
    plan = sim.config.plan
    return SimulationResult(
        ended=sim.ended or "stopped",
        state=state.state,
        phase=plan.phases[state.phase].name if 0 <= state.phase < len(plan.phases) else None,
        rollbacks=state.rollbacks,
        reason=state.reason,
        phases_reached=reached,
        transitions=transitions,
        timeline=sim.timeline,
        faults=sim.fault_records,
        served=served,
        fallbacks=dict(sim.counters.fallbacks),
        failures=dict(sim.counters.failures),
        ratings=dict(sim.counters.ratings),
        shed=sim.counters.shed,
        evaluations=sim.s.controller.evaluations,
        sim_elapsed_s=round(sim.clock.elapsed(), 3),
        real_elapsed_s=round(real_elapsed_s, 3),
        time_scale=sim.config.time_scale,
        interval_s=plan.interval_s,
        evaluation_times=sim.evaluation_times,
        report=await _success_report(sim),
    )


async def _success_report(sim: Simulation) -> dict[str, Any] | None:
    """The success report (`voxshift report`) over the simulated run, when it can be measured."""
    try:
        from voxshift.services.rollout.report import MAX_REPORT_HOURS, RolloutView, measure_report
    except ImportError:  # the report lands with its own change; the summary stands without it
        return None
    stack = sim.s
    view = RolloutView(
        settings=stack.settings,
        state=stack.backends.state,
        v2_state=stack.backends.v2_state,
        database=stack.backends.database,
        flags=stack.flags,
        metrics=stack.metrics,
        feedback=stack.feedback,
        history=stack.history,
    )
    hours = max(1, min(MAX_REPORT_HOURS, math.ceil(sim.clock.elapsed() / 3600)))
    try:
        return await measure_report(view, hours, clock=sim.clock)
    except (VoxshiftError, OSError, ValueError, KeyError, TypeError):
        return None
