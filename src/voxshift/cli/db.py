"""`voxshift db ...`: the settings database's schema (Alembic revisions).

Embedded SQLite upgrades itself whenever voxshift opens it; a PostgreSQL database is only ever
changed by `voxshift db upgrade`, run by an operator (the server refuses to start on an old schema
and says so). Both commands honour --config and VOXSHIFT_DATABASE_URL through the usual Settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer

from voxshift.cli.common import State, fail
from voxshift.config import mask_url
from voxshift.errors import EXIT_FAILURE, VoxshiftError

T = TypeVar("T")

db_app = typer.Typer(
    help="The settings database (VOXSHIFT_DATABASE_URL: embedded SQLite by default, PostgreSQL in "
    "production): show and upgrade its schema revision.",
    no_args_is_help=True,
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; a VoxshiftError becomes one line on stderr and its exit code."""
    try:
        return asyncio.run(coro)
    except VoxshiftError as exc:
        fail(exc)


def database_url(ctx: typer.Context) -> str:
    state: State = ctx.obj
    return state.settings().resolved_database_url


@db_app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Bring the schema to the newest revision this voxshift knows (idempotent)."""
    from voxshift.stores.db.engine import current_revision, head_revision, normalize_url, upgrade

    url = database_url(ctx)

    async def go() -> tuple[str | None, str]:
        normalize_url(url)  # a bad scheme fails before anything is touched
        before = await current_revision(url)
        if before == head_revision():
            return before, before
        return before, await upgrade(url)

    before, after = run(go())
    where = mask_url(url)
    if before == after:
        typer.echo(f"{where}: already at {after} (head)")
    else:
        typer.echo(f"{where}: upgraded {before or 'none (empty)'} -> {after}")


@db_app.command("current")
def current_command(
    ctx: typer.Context,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the schema is not at head (for deploy scripts).")
    ] = False,
) -> None:
    """Print the database's schema revision and whether it is the newest (head)."""
    from voxshift.stores.db.engine import current_revision, head_revision, known_revisions, normalize_url

    url = database_url(ctx)

    async def go() -> str | None:
        normalize_url(url)
        return await current_revision(url)

    current = run(go())
    head = head_revision()
    where = mask_url(url)
    if current == head:
        typer.echo(f"{current} (head) in {where}")
        return
    if current is not None and current not in known_revisions():
        typer.echo(f"{current} in {where}; unknown to this voxshift (head {head}): written by a newer one")
    else:
        shown = current or "none (empty database)"
        typer.echo(f"{shown} in {where}; not at head {head}: run `voxshift db upgrade`")
    if check:
        raise typer.Exit(EXIT_FAILURE)
