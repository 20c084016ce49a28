"""`voxshift regression`: the seed's performance-regression check on stored metrics, and its rollback."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from voxshift.cli.common import State, run, table


def regression_command(
    ctx: typer.Context,
    hours: Annotated[int, typer.Option(min=1, max=168, help="Window: the last N hour buckets.")] = 2,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="On a regression, roll the operation back (audited).")
    ] = False,
    action: Annotated[
        str, typer.Option(help="percentage_0 (that operation to 0 %) or kill (the global kill switch).")
    ] = "percentage_0",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what --rollback would do; change nothing.")
    ] = False,
    actor: Annotated[str, typer.Option(help="Who is acting, for the audit log.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare voice_v2 with legacy (1.2x latency, 1.5x errors, with significance); optionally roll back.

    Exit code 0: no regression; 3: a regression was found (rolled back with --rollback).
    """
    if action not in ("percentage_0", "kill"):
        typer.echo(f"error: --action must be percentage_0 or kill, got {action!r}", err=True)
        raise typer.Exit(2)
    chosen: Literal["percentage_0", "kill"] = "kill" if action == "kill" else "percentage_0"
    state: State = ctx.obj
    settings = state.settings()

    async def go() -> dict[str, object]:
        from voxshift.services.wiring.control import open_regression

        async with open_regression(settings, rollback=rollback and not dry_run) as service:
            report = await service.check(
                hours=hours, rollback=rollback, dry_run=dry_run, action=chosen, actor=actor
            )
            return report.to_dict()

    out = run(go())
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    else:
        verdicts = out["verdicts"]
        assert isinstance(verdicts, dict)
        rows = []
        for op, verdict in verdicts.items():
            numbers = verdict["numbers"]
            rows.append(
                [
                    op,
                    verdict["status"],
                    _fmt(numbers.get("latency_ratio")),
                    _fmt(numbers.get("error_ratio")),
                    str(numbers.get("v2_requests", 0)),
                    str(numbers.get("legacy_requests", 0)),
                    "; ".join(verdict["reasons"]),
                ]
            )
        typer.echo(table(["op", "verdict", "latency x", "errors x", "v2 n", "legacy n", "why"], rows))
        if out.get("rolled_back"):
            typer.echo(f"rolled back ({out['action']}): {', '.join(out['rolled_back'])}")  # type: ignore[arg-type]
        if out.get("would_roll_back"):
            typer.echo(f"dry run: would roll back ({chosen}): {', '.join(out['would_roll_back'])}")  # type: ignore[arg-type]
    if out["regression"]:
        raise typer.Exit(3)


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"
