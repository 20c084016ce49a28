"""`voxshift feedback add|stats`: rate an answered request by its id, and the ratings per system.

The same service as ``POST /v1/feedback``, over the same stores as the servers: the request ids they
remembered (state store) and the feedback table (settings database). Bad input (a rating outside
1..5, an unknown or expired id, a second rating of one request) is one line and exit code 2.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxshift.cli.common import State, run, table
from voxshift.errors import InvalidRequest

if TYPE_CHECKING:  # the database and state store stacks load only when a command runs
    from voxshift.services.feedback.service import RatingSummary, StoredFeedback

feedback_app = typer.Typer(
    help="User feedback per request: rate a request by its X-Voxshift-Request-Id; mean ratings per system.",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def parse_rating(text: str) -> int:
    """RATING as typed; checked here rather than by typer so that a bad one is one line, not a usage
    screen (the range is the service's check, shared with the API)."""
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidRequest(f"rating must be an integer from 1 to 5, got {text!r}", param="rating") from None


@feedback_app.command("add")
def add_command(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The X-Voxshift-Request-Id of the answer rated.")],
    rating: Annotated[str, typer.Argument(help="1 (bad) to 5 (excellent).")],
    comment: Annotated[str | None, typer.Option(help="Why (at most 2000 characters).")] = None,
    as_json: AsJson = False,
) -> None:
    """File a rating of one answered voice request (once per request)."""
    state: State = ctx.obj
    settings = state.settings()

    async def go() -> StoredFeedback:
        stars = parse_rating(rating)
        from voxshift.services.wiring.control import open_feedback

        async with open_feedback(settings) as service:
            return await service.add(request_id, stars, comment)

    stored = run(go())
    if as_json:
        typer.echo(json.dumps(stored.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"feedback {stored.id}: {stored.rating}/5 for {stored.request_id} "
        f"({stored.operation} answered by {stored.system})"
    )


@feedback_app.command("stats")
def stats_command(
    ctx: typer.Context,
    hours: Annotated[int, typer.Option(min=1, max=24 * 366, help="Window: the last N hours.")] = 24,
    as_json: AsJson = False,
) -> None:
    """Mean rating, count and 95 % confidence interval per system and operation."""
    state: State = ctx.obj
    settings = state.settings()

    async def go() -> list[RatingSummary]:
        from voxshift.services.wiring.control import open_feedback

        async with open_feedback(settings) as service:
            return await service.stats(hours)

    summaries = run(go())
    if as_json:
        out: dict[str, Any] = {"hours": hours, "ratings": [s.to_dict() for s in summaries]}
        typer.echo(json.dumps(out, indent=2))
        return
    if not summaries:
        typer.echo(f"no ratings in the last {hours} h")
        return
    rows = [
        [
            s.system,
            s.operation,
            str(s.count),
            _fmt(s.mean),
            "-" if s.low is None or s.high is None else f"{s.low:.2f} .. {s.high:.2f}",
        ]
        for s in summaries
    ]
    typer.echo(table(["system", "op", "ratings", "mean", "95% interval"], rows))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
