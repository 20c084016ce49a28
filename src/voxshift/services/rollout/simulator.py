"""The whole migration in minutes (issue 11 §6): synthetic users through the real MigrationRouter
while the RolloutController runs a plan on a compressed clock, with faults injected on voice_v2.

:class:`Simulation` opens the stack (:mod:`.sim_stack`), starts the rollout, sends open-loop
Poisson traffic at ``rps`` real requests a second, and wakes every ``tick_s`` real seconds to
flush the metrics (unless a flush loop of its own runs, ``flush_s``), run one controller wake-up
(:meth:`RolloutController.run_once`, exactly what `serve` runs), switch faults on and off, let a
simulated operator resume after a rollback (``auto_resume_s``) and record a timeline of what the
flags said. It ends when the rollout needs a person (completed, halted, aborted, rolled back
without auto-resume, paused) or at a time limit, and returns a :class:`SimulationResult`.

Simulated time (the plan's durations, metric buckets, transitions, ratings) runs ``time_scale``
times faster than real time; request latencies are real. So a fault's effect reaches the metrics
``latency x time_scale`` simulated seconds late: the slack a fault-to-rollback bound allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voxshift.config import Settings, load_settings
from voxshift.core.rollout.machine import RolloutState
from voxshift.core.rollout.plan import Plan
from voxshift.core.vocabulary import OPERATIONS
from voxshift.errors import MigrationFailed, VoxshiftError
from voxshift.services.rollout.sim_faults import FaultPlan, SimClock
from voxshift.services.rollout.sim_report import (
    FaultRecord,
    Progress,
    RequestRecord,
    Sample,
    SimulationResult,
    TransitionRecord,
    build_result,
    progress_of,
)
from voxshift.services.rollout.sim_stack import SimStack, open_stack
from voxshift.services.rollout.sim_traffic import (
    EN_PHRASES,
    FAULT_RATINGS,
    LEGACY_RATINGS,
    RU_PHRASES,
    V2_RATINGS,
    Population,
    rating,
)

OPERATOR = "simulated-operator"
END_STATES = ("completed", "halted", "aborted")


@dataclass(frozen=True)
class SimulationConfig:
    plan: Plan
    time_scale: float
    fast: bool = True
    users: int = 2000
    agents: int = 40
    rps: float = 200.0  # real requests a second (open loop, Poisson arrivals)
    stt_share: float = 0.6
    feedback_share: float = 0.05  # share of answers that get a rating
    faults: tuple[FaultPlan, ...] = ()
    seed: int = 1
    v2_budget_s: float | None = None  # real seconds; default 1.5 fast, 20 with real engines
    tick_s: float | None = None  # real seconds; default a fifth of the interval (min 20 ms)
    flush_s: float | None = None  # None: flush right before each controller wake-up
    auto_resume_s: float | None = None  # a person resumes this long (simulated) after a rollback
    max_sim_s: float | None = None  # default: 3x the plan's minimum durations
    max_real_s: float | None = None
    concurrency: int = 512  # requests in flight at most; arrivals past it are shed and counted
    data_dir: Path | None = None
    state_url: str | None = None
    progress_every_s: float = 0.5

    @property
    def budget_s(self) -> float:
        # Fast engines answer in ~0.2 s, so 1.5 s leaves room for a latency fault to show as latency
        # (not as timeouts) while a hang still turns into fallbacks quickly.
        return self.v2_budget_s if self.v2_budget_s is not None else 1.5 if self.fast else 20.0

    @property
    def tick(self) -> float:
        if self.tick_s is not None:
            return self.tick_s
        return max(0.02, self.plan.interval_s / self.time_scale / 5)


@dataclass
class _Counters:
    served: dict[tuple[str, str], int] = field(default_factory=dict)  # (system, op) -> answered
    fallbacks: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # both systems failed
    ratings: dict[str, int] = field(default_factory=dict)
    shed: int = 0

    def bump(self, table: dict[Any, int], key: Any) -> None:
        table[key] = table.get(key, 0) + 1


class Simulation:
    def __init__(
        self,
        config: SimulationConfig,
        base: Settings | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        on_request: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self.config = config
        self.base = base or load_settings(None)
        self.on_progress = on_progress
        self.on_request = on_request
        self.rng = random.Random(config.seed)
        self.population = Population(config.users, config.agents, random.Random(config.seed))
        self.clock = SimClock(config.time_scale)
        self.stack: SimStack | None = None
        self.counters = _Counters()
        self.transitions: dict[int, TransitionRecord] = {}
        self.timeline: list[Sample] = []
        self.evaluation_times: list[float] = []  # simulated seconds since the start
        self.fault_records: list[FaultRecord] = []
        self._fault_started: list[float | None] = [None] * len(config.faults)
        self._inflight: set[asyncio.Task[None]] = set()
        self._traffic: asyncio.Task[None] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._last_progress = 0.0
        self.state = RolloutState()
        self.ended: str | None = None
        self.unexpected: str | None = None  # the first exception a request raised that is no error of ours

    # --- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> SimStack:
        if self.config.data_dir is not None:
            data_dir = self.config.data_dir
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="voxshift-sim-")
            data_dir = Path(self._tmp.name)
        self.stack = await open_stack(
            self.base,
            data_dir,
            self.config.plan,
            self.clock,
            fast=self.config.fast,
            seed=self.config.seed,
            v2_budget_s=self.config.budget_s,
            tick_s=self.config.tick,
            flush_s=self.config.flush_s,
            state_url=self.config.state_url,
        )
        return self.stack

    async def aclose(self) -> None:
        await self.stop_traffic()
        if self.stack is not None:
            await self.stack.aclose()
            self.stack = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> Simulation:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def s(self) -> SimStack:
        if self.stack is None:
            raise RuntimeError("the simulation is not open")
        return self.stack

    # --- the run --------------------------------------------------------------------------------
    async def run(self) -> SimulationResult:
        """Start the rollout and the traffic, drive until the rollout needs a person or time is up."""
        if self.stack is None:
            await self.open()
        cfg = self.config
        limit_sim = cfg.max_sim_s if cfg.max_sim_s is not None else 3 * _plan_length(cfg.plan)
        self.clock.reset()  # nothing is recorded before the start
        real_started = time.monotonic()
        await self.command("start", "simulated rollout started")
        self.start_traffic()
        try:
            while self.ended is None:
                await self.step()
                if self.ended is not None:
                    break
                if self.clock.elapsed() >= limit_sim:
                    self.ended = f"simulated time limit ({limit_sim:.0f}s) reached"
                elif cfg.max_real_s is not None and time.monotonic() - real_started >= cfg.max_real_s:
                    self.ended = f"real time limit ({cfg.max_real_s:.0f}s) reached"
                else:
                    await asyncio.sleep(cfg.tick)
        finally:
            await self.stop_traffic()
        await self.s.metrics.flush()
        return await self.result(time.monotonic() - real_started)

    async def step(self) -> None:
        """One wake-up: flush (when no flush loop runs), the controller's run_once, then observe."""
        if self.config.flush_s is None:
            await self.s.metrics.flush()
        evaluations = self.s.controller.evaluations
        try:
            transition = await self.s.controller.run_once()
        except VoxshiftError as exc:  # a store hiccup: `serve`'s loop logs it and retries next tick
            self.s.controller.last_error = exc.message
            transition = None
        if self.s.controller.evaluations > evaluations:
            self.evaluation_times.append(round(self.clock.elapsed(), 3))
        if transition is not None:
            self._record(transition.after)
        await self.observe()

    async def command(self, name: Any, reason: str, **kwargs: Any) -> None:
        outcome = await self.s.controller.command(
            name, actor=OPERATOR, reason=reason, plan=self.config.plan if name == "start" else None, **kwargs
        )
        self._record(outcome.state)

    async def observe(self) -> None:
        state, _ = await self.s.controller.read()
        self.state = state
        self._record(state)
        now = self.clock()
        t = now - self.clock.start
        plans = self.s.flags.config.plans
        stt, tts = (plans[op][1] if plans[op][0] and self.s.flags.config.enabled else 0 for op in OPERATIONS)
        phase = _phase_name(self.config.plan, state.phase)
        self.timeline.append(
            Sample(round(t, 3), state.state, phase, stt, tts, self.s.faults.active is not None)
        )
        self._schedule_faults(state, now)
        if state.state == "rolled_back" and self.config.auto_resume_s is not None:
            if now - state.entered >= self.config.auto_resume_s:
                await self.command("resume", "simulated operator retries the phase")
        elif state.state in END_STATES:
            self.ended = state.state
        elif state.state == "rolled_back":
            self.ended = "rolled_back: waiting for a person"
        elif state.state == "paused":
            self.ended = "paused: waiting for a person"
        if self.on_progress is not None and (
            self.ended is not None or time.monotonic() - self._last_progress >= self.config.progress_every_s
        ):
            self._last_progress = time.monotonic()
            self.on_progress(await progress_of(self, state, stt, tts))

    def _record(self, state: RolloutState) -> None:
        if state.seq <= 0 or state.seq in self.transitions or not state.event:
            return
        event = state.event
        at = float(event.get("at", 0.0))
        self.transitions[state.seq] = TransitionRecord(
            seq=state.seq,
            t=round(at - self.clock.start, 3),
            kind=str(event.get("kind")),
            actor=str(event.get("actor")),
            from_phase=_phase_name(self.config.plan, int(event.get("from_phase", -1))),
            phase=_phase_name(self.config.plan, state.phase),
            state=state.state,
            stt=state.target.stt,
            tts=state.target.tts,
            rollbacks=state.rollbacks,
            reason=state.reason,
            numbers=dict(event.get("numbers") or {}),
        )

    def _schedule_faults(self, state: RolloutState, now: float) -> None:
        for i, fp in enumerate(self.config.faults):
            started = self._fault_started[i]
            if started is None:
                if fp.phase is not None:
                    if _phase_name(self.config.plan, state.phase) != fp.phase or state.state != "running":
                        continue
                    due = state.since + fp.delay_s
                else:
                    due = self.clock.start + (fp.at_s or 0.0)
                if now >= due:
                    self._fault_started[i] = now
                    self.s.faults.active = fp.spec
                    self.fault_records.append(
                        FaultRecord(fp.spec.kind, fp.spec.describe(), now - self.clock.start)
                    )
            elif fp.for_s is not None and now - started >= fp.for_s and self.s.faults.active is fp.spec:
                self.s.faults.active = None
                self.fault_records[-1].ended_t = now - self.clock.start

    # --- traffic --------------------------------------------------------------------------------
    def start_traffic(self) -> None:
        if self._traffic is None or self._traffic.done():
            self._traffic = asyncio.create_task(self._arrivals(), name="voxshift-sim-traffic")

    async def stop_traffic(self) -> None:
        task, self._traffic = self._traffic, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight:
            # Let what was sent finish (a hang ends at the v2 budget), so its metrics are recorded.
            await asyncio.wait(set(self._inflight), timeout=self.config.budget_s + 5.0)
            for task_ in set(self._inflight):
                task_.cancel()

    async def _arrivals(self) -> None:
        rps = self.config.rps
        due = time.monotonic()
        while True:
            due += self.rng.expovariate(rps)
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # fell a second behind (a busy loop): do not burst to catch up
                due = time.monotonic()
            if len(self._inflight) >= self.config.concurrency:
                self.counters.shed += 1
                continue
            task = asyncio.create_task(self._one())
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _one(self) -> None:
        user = self.population.pick(self.rng)
        op = "stt" if self.rng.random() < self.config.stt_share else "tts"
        issued = time.monotonic()
        system: str | None = None
        fallback = False
        try:
            if op == "stt":
                clip = self.s.stt_clips[int(self.rng.random() * len(self.s.stt_clips))]
                routed: Any = await self.s.router.transcribe_audio(
                    clip, language="en", user_id=user.user_id, agent_id=user.agent_id, filename="voice.wav"
                )
            else:
                english = user.language == "en"
                phrases = EN_PHRASES if english else RU_PHRASES
                text = phrases[min(len(phrases) - 1, int(self.rng.paretovariate(1.2)) - 1)]
                routed = await self.s.router.synthesize_speech(
                    text,
                    language="en" if english else "ru",
                    user_id=user.user_id,
                    agent_id=user.agent_id,
                    format="wav" if self.config.fast else "mp3",
                )
            system, fallback = routed.system_used, routed.fallback
            self.counters.bump(self.counters.served, (system, op))
            if fallback:
                self.counters.bump(self.counters.fallbacks, op)
        except (MigrationFailed, VoxshiftError):
            self.counters.bump(self.counters.failures, op)  # both systems failed the user
        except Exception as exc:  # a bug: counted and kept, never an unretrieved task exception
            self.counters.bump(self.counters.failures, op)
            self.unexpected = self.unexpected or f"{type(exc).__name__}: {exc}"
        if self.on_request is not None:
            self.on_request(RequestRecord(user.user_id, op, system, fallback, issued, time.monotonic()))
        if system is not None and self.rng.random() < self.config.feedback_share:
            await self._rate(user.user_id, user.agent_id, op, system, fallback)

    async def _rate(self, user_id: str, agent_id: str, op: str, system: str, fallback: bool) -> None:
        faulty = self.s.faults.active is not None and (system == "voice_v2" or fallback)
        weights = FAULT_RATINGS if faulty else V2_RATINGS if system == "voice_v2" else LEGACY_RATINGS
        with contextlib.suppress(VoxshiftError):  # a lost rating is a lost rating, as in production
            await self.s.feedback.store.add(
                user_id=user_id,
                agent_id=agent_id,
                operation=op,
                system=system,
                rating=rating(self.rng, weights),
                at=datetime.fromtimestamp(self.clock(), UTC),
            )
            self.counters.bump(self.counters.ratings, system)

    # --- the outcome ----------------------------------------------------------------------------
    async def result(self, real_elapsed_s: float) -> SimulationResult:
        return await build_result(self, real_elapsed_s)


def _phase_name(plan: Plan, index: int) -> str | None:
    return plan.phases[index].name if 0 <= index < len(plan.phases) else None


def _plan_length(plan: Plan) -> float:
    return sum(p.min_duration_s for p in plan.phases)
