"""`voxshift sunset plan | run PHASE | status`: the seed's sunset phases behind their guards.

A refused phase exits 1 with every reason and changes nothing; ``--dry-run`` says what would
happen; ``infrastructure_cleanup`` asks a person (``--yes`` for scripts).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxshift.cli.common import State, run, table
from voxshift.cli.flags_format import default_actor, require_reason, usage
from voxshift.core.sunset.phases import PHASES

if TYPE_CHECKING:
    from voxshift.services.sunset.phases import PhaseOutcome

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _settings(ctx: typer.Context) -> Any:
    obj = ctx.find_root().obj
    return (obj if isinstance(obj, State) else State()).settings()


def plan_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The three phases in order, each with its status and what stands in its way."""
    settings = _settings(ctx)

    async def go() -> list[dict[str, Any]]:
        from voxshift.services.sunset.open import open_sunset

        async with open_sunset(settings) as (sunset, _):
            return await sunset.plan()

    phases = run(go())
    if as_json:
        typer.echo(json.dumps(phases, indent=2))
        return
    rows = [[p["phase"], p["status"], "; ".join(p["refusals"]) or "ready"] for p in phases]
    typer.echo(table(["phase", "status", "guards"], rows))


def status_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The stored sunset state: each phase's status, when and by whom, and the last validation."""
    settings = _settings(ctx)

    async def go() -> dict[str, Any]:
        from voxshift.services.sunset.open import open_sunset

        async with open_sunset(settings) as (sunset, legacy):
            return await sunset.status(legacy.describe())

    status = run(go())
    if as_json:
        typer.echo(json.dumps(status, indent=2, sort_keys=True, default=str))
        return
    rows = [
        [p, s.get("status", "not_started"), str(s.get("actor", "")), str(s.get("reason", ""))[:60]]
        for p, s in status["phases"].items()
    ]
    typer.echo(table(["phase", "status", "by", "reason"], rows))
    typer.echo(f"legacy read-only: {'yes' if status['legacy_read_only'] else 'no'}")


def run_command(
    ctx: typer.Context,
    phase: Annotated[str, typer.Argument(help="read_only, data_migration or infrastructure_cleanup.")],
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (goes to the audit log).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the guards and show; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm without asking (scripts).")] = False,
    as_json: AsJson = False,
) -> None:
    """Run one phase once its guards hold; a refusal exits 1 naming every reason."""
    if phase not in PHASES:
        usage(f"unknown phase {phase!r}; one of: {', '.join(PHASES)}")
    settings = _settings(ctx)
    why = require_reason(reason, dry_run)
    confirmed = yes
    if phase == "infrastructure_cleanup" and not yes and not dry_run:
        if not sys.stdin.isatty():
            usage(
                "infrastructure_cleanup deletes the legacy's data: confirm with --yes (no terminal to ask on)"
            )
        confirmed = typer.confirm("Delete the legacy's voice keys and objects for good?")

    async def go() -> PhaseOutcome:
        from voxshift.services.sunset.cleanup import cleanup
        from voxshift.services.sunset.open import open_sunset

        async with open_sunset(settings) as (sunset, legacy):

            async def work(dry: bool) -> dict[str, Any]:
                if phase == "infrastructure_cleanup":
                    return await cleanup(legacy, dry_run=dry)
                return await data_migration(settings, dry)

            return await sunset.run(
                phase,
                actor=default_actor(),
                reason=why,
                dry_run=dry_run,
                confirmed=confirmed,
                work=work,
            )

    outcome = run(go())
    if as_json:
        typer.echo(json.dumps(outcome.to_json(), indent=2, sort_keys=True, default=str))
        return
    verb = "would complete" if outcome.dry_run else "completed"
    extra = ", ".join(f"{k}={v}" for k, v in outcome.details.items())
    typer.echo(f"{phase}: {verb}" + (f" ({extra})" if extra else ""))


async def data_migration(settings: Any, dry_run: bool) -> dict[str, Any]:
    """The data_migration phase's work: the journaled migration (resumable; see `sunset migrate`)."""
    from voxshift.services.sunset.migrate import migrate

    result = await migrate(settings, dry_run=dry_run)
    return result.to_json()


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
    app.command("status")(status_command)
    app.command("run")(run_command)
