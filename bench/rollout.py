"""Rollout controller benchmark: run with ``.venv/bin/python bench/rollout.py [--redis URL]``.

In one run (issue 11 §7):

1. **Fault drills at real time** (time scale 1): a rollout holds a 50 % phase (both operations, a
   2 s interval, ``on_failure = "zero"``) while the simulator sends ~150 requests/s through the
   real MigrationRouter (fast engines), metrics flushed every second and the controller waking
   every second, as in `serve`. 20 times: after 1-3 s of healthy traffic (a random point in the
   evaluation cycle) v2 gets +800 ms on every answer; timed from that onset to the first request
   *issued* afterwards by a user of the v2 cohort that the flags sent to legacy (not a fallback),
   and to the moment the flags said the lower percentage. Then the fault is lifted and a simulated
   operator resumes the phase. Figures: p50/p99 in seconds and as a ratio to the interval. Goal:
   fault to rollback <= interval + 2 s.
2. **Evaluation cost**: ``measure()`` (three traffic windows and the feedback window, read from the
   real store) plus ``machine.tick`` on the seed's pilot phase, with 1k, 10k and 100k requests
   recorded in the step's one-hour window. It reads aggregates, so it should stay flat. Goal:
   <= 5 ms at every size; the 100k/1k ratio shows the flatness.

Embedded SQLite stores by default; ``--redis URL`` puts the state store on Redis. Human-readable
lines first; the last line is one JSON object with every figure (plain numbers; goals as 0/1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "src"))

from voxshift.config import Settings  # noqa: E402
from voxshift.core.rollout import machine  # noqa: E402
from voxshift.core.rollout.machine import RolloutState, step_target  # noqa: E402
from voxshift.core.rollout.plan import default_plan, plan_from_toml  # noqa: E402
from voxshift.services.metrics.recorder import MigrationMetrics  # noqa: E402
from voxshift.services.rollout.evaluate import measure  # noqa: E402
from voxshift.services.rollout.sim_faults import FaultSpec  # noqa: E402
from voxshift.services.rollout.sim_report import RequestRecord  # noqa: E402
from voxshift.services.rollout.simulator import Simulation, SimulationConfig  # noqa: E402
from voxshift.services.wiring.backends import open_backends  # noqa: E402
from voxshift.services.wiring.control import build_feedback  # noqa: E402

DRILLS = 20
INTERVAL = "2s"
DRILL_PLAN = f"""
interval = "{INTERVAL}"
max_rollbacks = 1000
on_failure = "zero"
[[phases]]
name = "pilot"
percentage = 50
features = ["stt_enabled", "tts_enabled"]
min_duration = "1d"
[[phases.criteria]]
metric = "latency_p95_ms"
max = 500
min_samples = 20
[[phases.criteria]]
metric = "error_rate"
max = 0.05
min_samples = 20
"""
SIZES = (1_000, 10_000, 100_000)
EVAL_REPEATS = 40


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- 1. fault drills --------------------------------------------------------------------------------
class Drill:
    """Watches every answered request for the first one a v2-cohort user got from legacy."""

    def __init__(self) -> None:
        self.onset: float | None = None
        self.cohort: dict[str, set[str]] = {}
        self.first_legacy: float | None = None

    def on_request(self, r: RequestRecord) -> None:
        if self.onset is None or r.issued < self.onset or r.system != "legacy" or r.fallback:
            return
        if r.user_id in self.cohort.get(r.operation, set()):
            delay = r.issued - self.onset
            self.first_legacy = delay if self.first_legacy is None else min(self.first_legacy, delay)


async def drills_section(state_url: str | None) -> dict[str, float]:
    plan = plan_from_toml(DRILL_PLAN)
    drill = Drill()
    config = SimulationConfig(
        plan=plan,
        time_scale=1.0,
        fast=True,
        rps=150.0,
        feedback_share=0.0,
        tick_s=1.0,  # the controller's own default wake-up in `serve`
        flush_s=1.0,  # VOXSHIFT_METRICS_FLUSH_INTERVAL_S's default: the flush loop runs on its own
        auto_resume_s=0.5,
        max_real_s=3600.0,
        state_url=state_url,
        seed=7,
    )
    rng = random.Random(11)
    to_legacy: list[float] = []
    to_flags: list[float] = []
    async with Simulation(config, Settings(), on_request=drill.on_request) as sim:
        runner = asyncio.create_task(sim.run())
        try:
            for i in range(DRILLS):
                while sim.state.state != "running":  # wait for the operator's resume
                    await asyncio.sleep(0.02)
                await asyncio.sleep(1.0 + 2.0 * rng.random())
                flags = sim.s.flags
                drill.cohort = {
                    op: {
                        u.user_id
                        for u in sim.population.users
                        if flags.decide(op, u.user_id, u.agent_id).use_v2
                    }
                    for op in ("stt", "tts")
                }
                drill.first_legacy = None
                drill.onset = time.monotonic()
                sim.s.faults.active = FaultSpec("latency", latency_ms=800.0)
                flags_at: float | None = None
                while drill.first_legacy is None or flags_at is None:
                    if flags_at is None and flags.config.percentages["stt"] < 50:
                        flags_at = time.monotonic() - drill.onset
                    if time.monotonic() - drill.onset > 60:
                        raise RuntimeError(f"drill {i}: no rollback within 60 s ({sim.state.reason})")
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.5)  # a request issued earlier may finish later: keep the first
                sim.s.faults.active = None
                drill.onset = None
                to_legacy.append(drill.first_legacy)
                to_flags.append(flags_at)
                print(
                    f"drill {i + 1:2d}: flags lowered after {flags_at:.2f}s, "
                    f"first cohort request to legacy after {drill.first_legacy:.2f}s"
                )
        finally:
            sim.ended = "bench done"
            await runner
    interval = plan.interval_s
    p50, p99 = statistics.median(to_legacy), pct(to_legacy, 0.99)
    print(
        f"fault -> first request to legacy: p50 {p50:.2f}s p99 {p99:.2f}s "
        f"(interval {interval:g}s, goal <= {interval + 2:g}s)"
    )
    return {
        "drills": float(len(to_legacy)),
        "interval_s": interval,
        "fault_to_legacy_p50_s": round(p50, 3),
        "fault_to_legacy_p99_s": round(p99, 3),
        "fault_to_legacy_p50_intervals": round(p50 / interval, 3),
        "fault_to_legacy_p99_intervals": round(p99 / interval, 3),
        "fault_to_flags_p50_s": round(statistics.median(to_flags), 3),
        "fault_to_flags_p99_s": round(pct(to_flags, 0.99), 3),
        "fault_to_legacy_goal_met": float(p99 <= interval + 2.0),
    }


# --- 2. evaluation cost ---------------------------------------------------------------------------
async def evaluation_section(tmp: Path, state_url: str | None) -> dict[str, float]:
    settings = Settings(data_dir=tmp, state_url=state_url)
    backends = await open_backends(settings, check=True)
    plan = default_plan()
    # Aligned to the 10 s buckets, so that every request recorded in the hour is in its window.
    since = float(int(time.time() - 3600) // 60 * 60)
    now = since + 3600
    pilot = plan.index("pilot")
    state = RolloutState(
        state="running",
        phase=pilot,
        since=since,
        resumed=since,
        started=now - 8 * 86400,
        entered=since,
        seq=2,
        applied=2,
        target=step_target(plan, pilot, 0),
    )
    when = [since]
    metrics = MigrationMetrics.from_settings(backends.state, settings, clock=lambda: when[0])
    feedback = build_feedback(settings, backends.v2_state, backends.database)
    feedback.clock = lambda: now
    rng = random.Random(3)
    for i in range(300):  # ratings in the window: the feedback criteria read one SQL aggregate
        await feedback.store.add(
            user_id=f"user-{i}", operation="stt", system="voice_v2" if i % 2 else "legacy",
            rating=rng.choice((3, 4, 5, 5)), at=datetime.fromtimestamp(since + i * 10, UTC),
        )  # fmt: skip
    figures: dict[str, float] = {}
    recorded = 0
    try:
        for size in SIZES:
            while recorded < size:  # spread over the hour, both operations, both systems
                when[0] = since + rng.random() * 3599
                op = "stt" if recorded % 5 < 3 else "tts"
                system = "voice_v2" if recorded % 2 else "legacy"
                metrics.record_operation(op, system, rng.lognormvariate(5.3, 0.4), rng.random() > 0.002)
                recorded += 1
                if recorded % 20_000 == 0:
                    await metrics.flush()
            await metrics.flush()
            when[0] = now
            # A fresh reader per size, as a replica that just took the lease: its first evaluation
            # reads every slot of the window (cold); later ones, one interval apart as the leader's
            # are, read only the slots settled since plus the recent tail (warm).
            clock = [now]
            reader = MigrationMetrics.from_settings(backends.state, settings, clock=lambda c=clock: c[0])
            started = time.perf_counter()
            ev = await measure(plan, state, now, reader, feedback)
            cold = (time.perf_counter() - started) * 1000
            timings: list[float] = []
            for i in range(1, EVAL_REPEATS + 1):
                clock[0] = at = now + i * plan.interval_s
                started = time.perf_counter()
                ev = await measure(plan, state, at, reader, feedback)
                machine.tick(plan, state, at, ev)
                timings.append((time.perf_counter() - started) * 1000)
            window = await MigrationMetrics.from_settings(
                backends.state, settings, clock=lambda: now
            ).traffic(since, now)
            assert window.requests == size, (window.requests, size)
            figures[f"eval_{size // 1000}k_cold_ms"] = round(cold, 3)
            p50, p99 = statistics.median(timings), pct(timings, 0.99)
            print(f"evaluation with {size:>7,} requests in the window: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            figures[f"eval_{size // 1000}k_p50_ms"] = round(p50, 3)
            figures[f"eval_{size // 1000}k_p99_ms"] = round(p99, 3)
    finally:
        await backends.aclose()
    figures["eval_100k_over_1k_ratio"] = round(figures["eval_100k_p50_ms"] / figures["eval_1k_p50_ms"], 3)
    figures["eval_goal_met"] = float(all(figures[f"eval_{s // 1000}k_p50_ms"] <= 5.0 for s in SIZES))
    return figures


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", help="a Redis URL for the state store (default: embedded SQLite)")
    args = parser.parse_args()
    figures: dict[str, Any] = {"redis": float(args.redis is not None)}
    with tempfile.TemporaryDirectory(prefix="voxshift-bench-") as tmp:
        figures |= asyncio.run(evaluation_section(Path(tmp), args.redis))
    figures |= asyncio.run(drills_section(args.redis))
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
