"""`voxshift sunset migrate | report | resolve`: the data migration off the legacy and its journal.

Exit codes: 0 done; 1 refused or failed (a store down, ``resolve`` of a key the migration did not
carry over); 2 bad input (``--rate`` not positive).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from voxshift.cli.common import State, fail, run, table
from voxshift.cli.sunset_phases import register
from voxshift.cli.sunset_validate import validate_command
from voxshift.errors import EXIT_FAILURE, InvalidRequest, NotFound

sunset_app = typer.Typer(
    help="The legacy sunset: the data migration, its report and the legacy key -> v2 key map.",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ProgressFn = Callable[[str, int, int], None]


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.0f} B"


class _Progress:
    """Counts, bytes and an ETA: redrawn in place on a terminal, one plain line per batch otherwise
    (at most one a second, so a log stays readable)."""

    def __init__(self, total: tuple[int, int] | None, tty: bool) -> None:
        self.total = total
        self.tty = tty
        self.items = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, store: str, items: int, size: int) -> None:
        self.items += items
        self.bytes += size
        now = time.monotonic()
        if not self.tty and now - self._last < 1.0:
            return
        self._last = now
        line = f"{store}: {self.items} items, {_human(self.bytes)}"
        if self.total is not None and self.items:
            rate = self.items / max(now - self.started, 1e-6)
            left = max(self.total[0] - self.items, 0) / rate
            line += f" of {self.total[0]} items, {_human(self.total[1])} objects; ETA {left:.0f} s"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.items:
            sys.stderr.write("\n")


def migrate_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Classify every item, write nothing.")] = False,
    rate: Annotated[
        float | None, typer.Option("--rate", help="At most N legacy item reads per second.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Migrate settings, voice objects, cache entries and metrics to v2; resumable, idempotent."""
    if rate is not None and rate <= 0:
        fail(InvalidRequest("--rate must be a positive number of items per second", param="rate"))
    settings = _state(ctx).settings()
    tty = sys.stderr.isatty()

    async def go() -> Any:
        from voxshift.services.sunset.migrate import estimate, migrate

        progress = _Progress(await estimate(settings) if tty else None, tty)
        try:
            return await migrate(settings, dry_run=dry_run, rate=rate, progress=progress)
        finally:
            progress.close()

    result = run(go())
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    rows = [
        [store, outcome, str(slot["items"]), _human(slot["bytes"])]
        for store, outcomes in sorted(result.counts.items())
        for outcome, slot in sorted(outcomes.items())
    ]
    what = "would be (dry run)" if dry_run else "done"
    typer.echo(table(["store", "outcome", "items", "bytes"], rows) if rows else "nothing to migrate")
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"{what} in {result.seconds:.1f} s")


def report_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every item the migration handled: its outcome, the reason, its v2 key; and a summary."""
    settings = _state(ctx).settings()

    async def go() -> dict[str, Any]:
        from voxshift.services.sunset.migrate import open_journal, report

        async with open_journal(settings) as journal:
            return await report(journal)

    doc = run(go())
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    rows = [
        [store, outcome, str(slot["items"]), _human(slot["bytes"])]
        for store, outcomes in sorted(doc["summary"].items())
        for outcome, slot in sorted(outcomes.items())
    ]
    typer.echo(table(["store", "outcome", "items", "bytes"], rows) if rows else "no migration has run")
    for item in doc["items"]:
        if item["outcome"] == "skipped":
            typer.echo(f"skipped {item['store']} {item['key']}: {item['reason']}")


def resolve_command(
    ctx: typer.Context,
    legacy_key: Annotated[
        str, typer.Argument(help="A legacy object (or key) name, e.g. voice/agent/user/...")
    ],
) -> None:
    """Print the v2 key a legacy item was migrated to (exit 1 when it was not)."""
    settings = _state(ctx).settings()

    async def go() -> str | None:
        from voxshift.services.sunset.migrate import open_journal, resolve

        async with open_journal(settings) as journal:
            try:
                return (await resolve(journal, legacy_key)).v2_key
            except NotFound as exc:  # a well-formed question with no answer: refused, not bad input
                typer.echo(f"error: {exc.message}", err=True)
                return None

    v2_key = run(go())
    if v2_key is None:
        raise typer.Exit(EXIT_FAILURE)
    typer.echo(v2_key)


sunset_app.command("migrate")(migrate_command)
sunset_app.command("report")(report_command)
sunset_app.command("resolve")(resolve_command)
sunset_app.command("validate")(validate_command)

# plan / status / run PHASE: the phases behind their guards.
register(sunset_app)
