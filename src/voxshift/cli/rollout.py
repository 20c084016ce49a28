"""`voxshift rollout ...`: the seed's phases as a controller that runs itself (issue 11).

Every `voxshift serve` runs the controller loop and one of them (the lease holder) evaluates the
criteria each interval, promotes, and rolls back. These commands read and steer the same stored
state from anywhere: each change takes a fencing token newer than the leader's, is written with
compare-and-set, applied to the flags (audited with who and why), recorded in the rollout history
and sent to the webhooks. ``--dry-run`` shows the transition and changes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxshift.cli.common import State, fail, run, table
from voxshift.cli.flags_format import default_actor, require_reason, usage
from voxshift.errors import InvalidRequest

if TYPE_CHECKING:
    from voxshift.core.rollout.machine import Transition
    from voxshift.services.rollout.controller import Command, Outcome

rollout_app = typer.Typer(
    help="The rollout controller: the plan, its status, and start/pause/resume/promote/rollback/abort.",
    no_args_is_help=True,
)

Reason = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (goes to the audit log and history).")
]
Actor = Annotated[str | None, typer.Option(help="Who is changing it (default: cli:<your user name>).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the transition; change nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


@rollout_app.command("plan")
def plan_command(
    ctx: typer.Context,
    check: Annotated[
        Path | None, typer.Option("--check", help="Validate this plan file instead of printing the default.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Print the built-in plan (the seed's schedule) as TOML, or validate a plan file (exit 2 with
    one line naming the field when it is wrong)."""
    from voxshift.core.rollout.plan import DEFAULT_PLAN_TOML, default_plan, plan_to_dict
    from voxshift.services.wiring.rollout import read_plan

    if check is None:
        if as_json:
            typer.echo(json.dumps(plan_to_dict(default_plan()), indent=2))
        else:
            typer.echo(DEFAULT_PLAN_TOML.rstrip())
        return
    try:
        plan = read_plan(check)
    except InvalidRequest as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(plan_to_dict(plan), indent=2))
        return
    phases = ", ".join(p.name for p in plan.phases)
    typer.echo(f"{check}: ok ({len(plan.phases)} phases: {phases})")


@rollout_app.command("status")
def status_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Where the rollout is: state, phase, step, percentages, features, rollbacks, the criteria of
    the current step with value, threshold, samples and verdict, and which replica leads."""
    settings = _state(ctx).settings()

    async def go() -> dict[str, Any]:
        from voxshift.services.wiring.rollout import open_rollout

        async with open_rollout(settings, notify=False) as controller:
            return await controller.status()

    status = run(go())
    if as_json:
        typer.echo(json.dumps(status, indent=2, sort_keys=True))
        return
    typer.echo(format_status(status))


def format_status(s: dict[str, Any]) -> str:
    pct = s["percentages"]
    lines = [
        f"state       {s['state']}" + (f" ({s['reason']})" if s.get("reason") else ""),
        f"phase       {s['phase'] or '-'}"
        + (f"  step {s['step'] + 1}/{s['steps']}" if s.get("phase") else "")
        + f"  of {', '.join(s['plan']['phases'])}",
        f"traffic     STT {pct['stt']}%  TTS {pct['tts']}%  features: {', '.join(s['features']) or '-'}",
        f"rollbacks   {s['rollbacks']} of at most {s['max_rollbacks']}",
        f"since       {s.get('since_iso') or '-'}"
        + (
            f"  ({s['elapsed_s']:.0f}s of min {s['min_duration_s']:.0f}s)"
            if s.get("elapsed_s") is not None
            else ""
        ),
        f"leader      {s['leader']['holder'] if s.get('leader') else '- (no controller running)'}",
    ]
    if s.get("approval_required"):
        lines.append(f"approval    {'given' if s['approved'] else 'waiting for `voxshift rollout promote`'}")
    if s["criteria"]:
        rows = [
            [
                c["metric"] + (f"[{c['operation']}]" if c.get("operation") else ""),
                _num(c.get("value")),
                ("<= " if c.get("bound") == "max" else ">= ") + _num(c.get("threshold")),
                f"{c['samples']}/{c.get('min_samples', '?')}",
                c["verdict"] + (" (dry run)" if c.get("dry_run") else ""),
            ]
            for c in s["criteria"]
        ]
        lines += ["", table(["criterion", "value", "threshold", "samples", "verdict"], rows)]
    return "\n".join(lines)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _change(
    ctx: typer.Context,
    name: Command,
    reason: str | None,
    actor: str | None,
    dry_run: bool,
    *,
    force: bool = False,
    plan_file: Path | None = None,
    as_json: bool = False,
) -> None:
    settings = _state(ctx).settings()
    why = require_reason(reason, dry_run)
    who = actor or default_actor()
    plan = None
    if plan_file is not None:
        from voxshift.services.wiring.rollout import read_plan

        try:
            plan = read_plan(plan_file)
        except InvalidRequest as exc:
            fail(exc)

    async def go() -> Outcome:
        from voxshift.services.wiring.rollout import open_rollout

        async with open_rollout(settings, notify=not dry_run) as controller:
            return await controller.command(
                name, actor=who, reason=why, force=force, dry_run=dry_run, plan=plan
            )

    outcome = run(go())
    t = outcome.transition
    if as_json:
        typer.echo(json.dumps(outcome.to_json(), indent=2, sort_keys=True))
        return
    if t is None:
        typer.echo(
            f"nothing to do: the rollout is {outcome.state.state}"
            + (" and already approved" if name == "promote" else "")
        )
        return
    typer.echo(("would " if outcome.dry_run else "") + describe(t))


def describe(t: Transition) -> str:
    a = t.after.target
    return (
        f"{t.kind}: {t.before.state} -> {t.after.state} (phase {t.after.phase}, step {t.after.step}; "
        f"STT {a.stt}% TTS {a.tts}%{'' if a.enabled else ', kill switch off'}; "
        f"features: {', '.join(sorted(a.features)) or '-'}): {t.reason}"
    )


@rollout_app.command("start")
def start_command(
    ctx: typer.Context,
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="A TOML plan (default: VOXSHIFT_ROLLOUT_PLAN or the seed's)."),
    ] = None,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (scripts).")] = False,
    as_json: AsJson = False,
) -> None:
    """Start the rollout at the plan's first phase: the flags switch to its percentages and
    features, and the controller (in every `voxshift serve`) takes it from there."""
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            usage("start changes live traffic: confirm with --yes (no terminal to ask on)")
        if not typer.confirm("Start the rollout now? Users will be routed to voice_v2 by the plan"):
            raise typer.Exit(1)
    _change(ctx, "start", reason or "rollout started", actor, dry_run, plan_file=plan_file, as_json=as_json)


@rollout_app.command("pause")
def pause_command(
    ctx: typer.Context,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Hold the current phase: no promotion until resumed (rollbacks on failure still happen)."""
    _change(ctx, "pause", reason, actor, dry_run, as_json=as_json)


@rollout_app.command("resume")
def resume_command(
    ctx: typer.Context,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    force: Annotated[bool, typer.Option("--force", help="Resume a halted rollout (needs --reason).")] = False,
    as_json: AsJson = False,
) -> None:
    """Continue a paused rollout, or retry the phase that was rolled back (from its first step)."""
    _change(ctx, "resume", reason, actor, dry_run, force=force, as_json=as_json)


@rollout_app.command("promote")
def promote_command(
    ctx: typer.Context,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    force: Annotated[
        bool, typer.Option("--force", help="Move to the next step now, whatever the criteria say.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Approve promotion out of the current phase (it happens at the next interval once every
    criterion passes), or with --force move on now."""
    _change(ctx, "promote", reason, actor, dry_run, force=force, as_json=as_json)


@rollout_app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Roll back now as the plan's on_failure says (counts as a rollback event)."""
    _change(ctx, "rollback", reason, actor, dry_run, as_json=as_json)


@rollout_app.command("abort")
def abort_command(
    ctx: typer.Context,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Stop the rollout for good: every user back to legacy (0 %, features off)."""
    _change(ctx, "abort", reason, actor, dry_run, as_json=as_json)


@rollout_app.command("history")
def history_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many transitions.")] = 50,
    as_json: AsJson = False,
) -> None:
    """The rollout history table: every transition with its reason and the numbers behind it."""
    settings = _state(ctx).settings()

    async def go() -> list[dict[str, Any]]:
        from voxshift.services.wiring.rollout import rollout_history

        return await rollout_history(settings, limit)

    rows = run(go())
    if as_json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    if not rows:
        typer.echo("no rollout transitions yet")
        return
    out = [
        [
            str(r["at"])[:19],
            str((r.get("metrics") or {}).get("kind", "")),
            f"{r.get('from_phase') or '-'} -> {r['to_phase']}",
            f"{r['percentage']}%",
            r["actor"],
            (r.get("reason") or "")[:80],
        ]
        for r in rows
    ]
    typer.echo(table(["at", "kind", "phase", "pct", "actor", "reason"], out))
