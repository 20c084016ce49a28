"""`voxshift sunset validate [--json]`: legacy vs v2, item by item, after the data migration.

Exit codes: 0 clean; 1 something missing, changed or extra (or a store down). The outcome is
recorded in the sunset state either way: ``infrastructure_cleanup`` needs the last one clean.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxshift.cli.common import State, run, table
from voxshift.cli.flags_format import default_actor
from voxshift.errors import EXIT_FAILURE

if TYPE_CHECKING:
    from voxshift.services.sunset.validate_report import ValidationReport

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
PROBLEMS = ("missing", "changed", "extra")


class _Bar:
    """Items checked per step, redrawn in place on a terminal; nothing at all off one (a log or a
    pipe gets the result only)."""

    def __init__(self) -> None:
        self.items = 0
        self.step = ""
        self._last = 0.0

    def __call__(self, step: str, items: int, size: int) -> None:
        self.items += items
        now = time.monotonic()
        if step == self.step and now - self._last < 0.1:
            return
        self.step, self._last = step, now
        sys.stderr.write(f"\r\x1b[2Kvalidating {step}: {self.items} items checked")
        sys.stderr.flush()

    def close(self) -> None:
        if self.items:
            sys.stderr.write("\n")


def validate_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Compare every migrated item's sha256 on both sides; name what is missing, changed or extra."""
    obj = ctx.find_root().obj
    settings = (obj if isinstance(obj, State) else State()).settings()
    bar = _Bar() if sys.stderr.isatty() else None

    async def go() -> ValidationReport:
        from voxshift.services.sunset.validate import validate
        from voxshift.services.sunset.validate_report import noop

        try:
            return await validate(settings, progress=bar or noop, actor=default_actor())
        finally:
            if bar is not None:
                bar.close()

    report = run(go())
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print(report.to_json())
    if not report.clean:
        raise typer.Exit(EXIT_FAILURE)


def _print(doc: dict[str, Any]) -> None:
    rows = [
        [name, str(c["legacy"]), str(c["v2"]), str(c["migrated"]), *(str(len(c[p])) for p in PROBLEMS)]
        for name, c in doc["categories"].items()
    ]
    typer.echo(table(["category", "legacy", "v2", "migrated", *PROBLEMS], rows))
    for name, c in doc["categories"].items():
        for kind in PROBLEMS:
            for item in c[kind]:
                typer.echo(f"{kind} {name} {item['key']}: {item['reason']}")
    typer.echo(("clean" if doc["clean"] else "NOT clean") + f" (checked at {doc['checked_at']})")
