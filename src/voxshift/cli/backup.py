"""`voxshift backup create | verify ID | restore ID --yes | list`: backups of the legacy's voice data.

Exit codes: 0 done (``verify``: every item intact); 1 refused or failed (a corrupt backup, a
non-empty restore target, a store down); 2 bad input (an id that is not one, ``restore`` without
``--yes`` and no terminal to ask on).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxshift.cli.common import State, fail, run, table
from voxshift.errors import EXIT_FAILURE, InvalidRequest

if TYPE_CHECKING:
    from voxshift.services.sunset.backup import BackupService

backup_app = typer.Typer(
    help="Backups of the legacy's voice data (keys, objects, settings rows) into the v2 bucket.",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
BackupId = Annotated[str, typer.Argument(help="A backup id, as `voxshift backup list` shows it.")]
ProgressFn = Callable[[str, int, int], None]


@contextmanager
def _progress(enabled: bool) -> Iterator[ProgressFn]:
    """A live bar with counts and bytes per category on a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield lambda kind, items, size: None
        return
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[items]} items"))
    with Progress(
        *columns, DownloadColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(kind: str, items: int, size: int) -> None:
            if kind not in tasks:
                tasks[kind] = bar.add_task(kind, total=None, items=0)
            task = tasks[kind]
            done = bar.tasks[task].fields["items"]
            bar.update(task, advance=size, items=done + items)

        yield update


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _counts(counts: dict[str, int], sizes: dict[str, int]) -> str:
    return ", ".join(f"{counts[k]} {k} ({_human(sizes[k])})" for k in counts)


def _with_service(state: State, work: Callable[[BackupService], Any]) -> Any:
    settings = state.settings()

    async def go() -> Any:
        from voxshift.services.sunset.backup import open_backups

        async with open_backups(settings) as service:
            return await work(service)

    return run(go())


@backup_app.command("create")
def create_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Back up every legacy voice key, voice object and settings row; prints the new backup's id."""
    with _progress(not as_json) as progress:
        manifest = _with_service(ctx.obj, lambda s: s.create(progress))
    if as_json:
        typer.echo(json.dumps(manifest.summary(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"backup {manifest.id}: {_counts(manifest.counts, manifest.bytes)}")
    if manifest.expired_during_backup:
        typer.echo(f"{manifest.expired_during_backup} key(s) expired while being read (not in the backup)")


@backup_app.command("verify")
def verify_command(ctx: typer.Context, backup_id: BackupId, as_json: AsJson = False) -> None:
    """Re-read every item of a backup and check its sha256; exit 1 when anything is missing or changed."""
    with _progress(not as_json) as progress:
        report = _with_service(ctx.obj, lambda s: s.verify(backup_id, progress))
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    elif report["ok"]:
        checked = report["checked"]
        typer.echo(f"backup {backup_id} is intact: " + ", ".join(f"{v} {k}" for k, v in checked.items()))
    else:
        for line in report["problems"]:
            typer.echo(f"problem: {line}", err=True)
        typer.echo(f"error: backup {backup_id} has {report['problem_count']} problem(s)", err=True)
    if not report["ok"]:
        raise typer.Exit(EXIT_FAILURE)


@backup_app.command("restore")
def restore_command(
    ctx: typer.Context,
    backup_id: BackupId,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore even into a legacy that holds voice data (overwrites it)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be restored; change nothing.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Put a backup's keys (with their TTL left at backup time) and objects back into an empty legacy."""
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            fail(InvalidRequest("restore writes into the legacy stores: pass --yes (no terminal to ask on)"))
        if not typer.confirm(f"Restore backup {backup_id} into the legacy stores?"):
            fail(InvalidRequest("restore not confirmed"))
    with _progress(not as_json) as progress:
        report = _with_service(
            ctx.obj, lambda s: s.restore(backup_id, force=force, dry_run=dry_run, progress=progress)
        )
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    verb = "would restore" if dry_run else "restored"
    shown = {k: report.counts[k] for k in ("keys", "objects")}
    typer.echo(f"{verb} {backup_id}: {_counts(shown, report.bytes)}")
    for kind, why in report.not_restored.items():
        typer.echo(f"not restored: {kind}: {why}")


@backup_app.command("list")
def list_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every completed backup, oldest first: id, created, counts, bytes, last verification."""
    rows = _with_service(ctx.obj, lambda s: s.list())
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no backups")
        return
    body = [
        [
            r["id"],
            r["created_at"],
            *(f"{r['counts'][k]} ({_human(r['bytes'][k])})" for k in ("keys", "objects", "settings")),
            "-"
            if r["verified_at"] is None
            else f"{r['verified_at']} ({'ok' if r['verified_ok'] else 'FAILED'})",
        ]
        for r in rows
    ]
    typer.echo(table(["id", "created", "keys", "objects", "settings", "verified"], body))
