"""`voxshift simulate`: the whole migration in minutes on a compressed clock (issue 11 §6).

Prints a live view while it runs (a redrawn panel on a terminal; plain lines every few seconds
otherwise, on stderr with --json) and then the summary: the transitions with their reasons, the
requests per system, the faults and how fast the controller answered them, and the success report.
Exit 0 when the rollout completed or stopped where a person must decide (the simulation ran);
a bad option or plan is one line and exit 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxshift.cli.common import State, run, table
from voxshift.errors import InvalidRequest

if TYPE_CHECKING:
    from voxshift.services.rollout.sim_report import Progress, SimulationResult

PLAIN_EVERY_S = 2.0


def simulate_command(
    ctx: typer.Context,
    time_scale: Annotated[
        float,
        typer.Option("--time-scale", help="Simulated seconds per real second (3600: an hour a second)."),
    ] = 3600.0,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="A rollout plan (TOML); default: the seed's schedule.")
    ] = None,
    fast: Annotated[
        bool,
        typer.Option("--fast", help="In-process engines with sampled latencies instead of the real models."),
    ] = False,
    users: Annotated[int, typer.Option(help="Synthetic users.", min=1, max=1_000_000)] = 2000,
    rps: Annotated[
        float | None, typer.Option(help="Real requests a second (default 100 with --fast, 2 otherwise).")
    ] = None,
    fault: Annotated[str | None, typer.Option(help="Inject a v2 fault: latency, errors or hang.")] = None,
    fault_at: Annotated[
        str | None,
        typer.Option(
            help="When: a phase (pilot), a phase and a delay (pilot+1h), or a time into the run (2d)."
        ),
    ] = None,
    fault_for: Annotated[
        str | None, typer.Option(help="How long the fault lasts (default: to the end).")
    ] = None,
    fault_ms: Annotated[float, typer.Option(help="latency: milliseconds added to every v2 answer.")] = 800.0,
    fault_rate: Annotated[float, typer.Option(help="errors: share of v2 calls that fail.")] = 0.2,
    auto_resume: Annotated[
        str | None, typer.Option(help="A simulated person resumes this long after each rollback (e.g. 1h).")
    ] = None,
    feedback_share: Annotated[float, typer.Option(help="Share of answers users rate.", min=0, max=1)] = 0.05,
    max_time: Annotated[
        str | None, typer.Option(help="Stop after this much simulated time (default: 3x the plan).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (users, traffic, faults).")] = 1,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep the stores here (default: a temporary dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Simulate the rollout: synthetic users through the real router while the controller runs."""
    from voxshift.core.rollout.plan import default_plan, parse_duration
    from voxshift.services.rollout.sim_faults import FaultPlan, FaultSpec, fault_kind, parse_fault_at
    from voxshift.services.rollout.simulator import Simulation, SimulationConfig
    from voxshift.services.wiring.rollout import read_plan

    state: State = ctx.obj
    settings = state.settings()

    def config() -> SimulationConfig:
        if not time_scale > 0:
            raise InvalidRequest("--time-scale must be a positive number", param="time_scale")
        plan = read_plan(plan_file) if plan_file is not None else default_plan()
        faults: tuple[FaultPlan, ...] = ()
        if fault is not None:
            spec = FaultSpec(fault_kind(fault), latency_ms=fault_ms, error_rate=fault_rate)
            names = tuple(p.name for p in plan.phases)
            at_s, phase, delay = parse_fault_at(fault_at or (names[1] if len(names) > 1 else "0s"), names)
            lasts = parse_duration(fault_for, "fault_for") if fault_for else None
            faults = (FaultPlan(spec, at_s=at_s, phase=phase, delay_s=delay, for_s=lasts),)
        elif fault_at or fault_for:
            raise InvalidRequest("--fault-at and --fault-for need --fault", param="fault")
        return SimulationConfig(
            plan=plan,
            time_scale=time_scale,
            fast=fast,
            users=users,
            rps=rps if rps is not None else 100.0 if fast else 2.0,
            feedback_share=feedback_share,
            faults=faults,
            seed=seed,
            auto_resume_s=parse_duration(auto_resume, "auto_resume") if auto_resume else None,
            max_sim_s=parse_duration(max_time, "max_time") if max_time else None,
            data_dir=data_dir,
        )

    async def go() -> SimulationResult:
        cfg = config()
        view = LiveView(cfg.plan.interval_s, as_json=as_json)
        try:
            async with Simulation(cfg, settings, on_progress=view.update) as sim:
                return await sim.run()
        finally:
            view.close()

    result = run(go())
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
    else:
        typer.echo(summary(result))


class LiveView:
    """A redrawn panel on a terminal (rich), else one plain line every few seconds."""

    def __init__(self, interval_s: float, *, as_json: bool) -> None:
        self.interval_s = interval_s
        self.stream = sys.stderr if as_json else sys.stdout
        self.live: Any = None
        self._last_plain = 0.0
        if not as_json and sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(refresh_per_second=4, transient=True)
            self.live.start()

    def update(self, p: Progress) -> None:
        if self.live is not None:
            self.live.update(self._panel(p))
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_S or p.state not in ("running",):
            self._last_plain = now
            print(self._line(p), file=self.stream, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _line(self, p: Progress) -> str:
        failing = [c[0] for c in p.criteria if c[1] == "fail"]
        passing = sum(1 for c in p.criteria if c[1] == "pass")
        return (
            f"[{_dur(p.t)} sim, {p.real_s:.0f}s real] {p.state} {p.phase or '-'} "
            f"stt {p.stt}% tts {p.tts}% | v2 err {_pct(p.v2_error_rate)} p95 {_ms(p.v2_p95_ms)} | "
            f"legacy err {_pct(p.legacy_error_rate)} p95 {_ms(p.legacy_p95_ms)} | "
            f"criteria {passing}/{len(p.criteria)} pass{' FAIL ' + ','.join(failing) if failing else ''} | "
            f"rollbacks {p.rollbacks} | {p.requests} requests{' | fault: ' + p.fault if p.fault else ''}"
        )

    def _panel(self, p: Progress) -> Any:
        from rich.table import Table

        grid = Table(title=f"voxshift simulate - {_dur(p.t)} simulated, {p.real_s:.0f}s real", expand=False)
        grid.add_column("")
        grid.add_column("")
        grid.add_row("state", f"{p.state}  phase {p.phase or '-'} step {p.step + 1}  rollbacks {p.rollbacks}")
        grid.add_row("v2 share", f"STT {p.stt}%  TTS {p.tts}%")
        grid.add_row(
            f"last {_dur(p.window_s)}",
            f"v2 errors {_pct(p.v2_error_rate)} p95 {_ms(p.v2_p95_ms)}   "
            f"legacy errors {_pct(p.legacy_error_rate)} p95 {_ms(p.legacy_p95_ms)}",
        )
        grid.add_row("requests", str(p.requests))
        grid.add_row("fault", p.fault or "none")
        for label, verdict, value in p.criteria:
            colour = {"pass": "green", "fail": "red"}.get(verdict.split()[0], "yellow")
            grid.add_row(label, f"[{colour}]{verdict}[/{colour}] {value}")
        if p.reason:
            grid.add_row("reason", p.reason[:160])
        return grid


def summary(r: SimulationResult) -> str:
    lines = [
        f"simulation ended: {r.ended}",
        f"final state: {r.state} (phase {r.phase or '-'}), rollbacks {r.rollbacks}",
        f"phases reached: {', '.join(r.phases_reached) or 'none'}",
        f"simulated {_dur(r.sim_elapsed_s)} in {r.real_elapsed_s:.1f}s real (x{r.time_scale:g}), "
        f"{r.evaluations} evaluations",
        "",
        "transitions:",
        table(
            ["at", "kind", "phase", "state", "stt/tts", "by", "reason"],
            [
                [_dur(t.t), t.kind, t.phase or "-", t.state, f"{t.stt}/{t.tts}", t.actor, t.reason[:120]]
                for t in r.transitions
            ],
        ),
        "",
        "requests:",
        table(
            ["system", "stt", "tts"],
            [[s, str(ops.get("stt", 0)), str(ops.get("tts", 0))] for s, ops in r.served.items()]
            + [["fallbacks", str(r.fallbacks.get("stt", 0)), str(r.fallbacks.get("tts", 0))]]
            + [["failed", str(r.failures.get("stt", 0)), str(r.failures.get("tts", 0))]],
        ),
        f"ratings: {', '.join(f'{k} {v}' for k, v in r.ratings.items()) or 'none'}; shed {r.shed}",
    ]
    for fault, reaction in zip(r.faults, r.fault_to_rollback_s(), strict=True):
        ended = f", ended at {_dur(fault.ended_t)}" if fault.ended_t is not None else ""
        answered = f"rolled back {_dur(reaction)} later" if reaction is not None else "no rollback"
        lines.append(f"fault: {fault.description} from {_dur(fault.onset_t)}{ended}: {answered}")
    if r.report is not None:
        lines += ["", "success report:"]
        rows = [*r.report.get("technical", []), *r.report.get("business", [])]
        lines.append(
            table(
                ["metric", "target", "value", "samples", "verdict"],
                [
                    [
                        str(row.get("metric")),
                        str(row.get("target")),
                        "-"
                        if row.get("value") is None
                        else f"{row['value']:.4g} {row.get('unit', '')}".strip(),
                        "-" if row.get("samples") is None else str(row["samples"]),
                        str(row.get("verdict")),
                    ]
                    for row in rows
                ],
            )
        )
    return "\n".join(lines)


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}ms"
