"""`voxshift db ...`: the settings database's schema (Alembic revisions).

Embedded SQLite upgrades itself whenever voxshift opens it; a PostgreSQL database is only ever
changed by `voxshift db upgrade`, run by an operator (the server refuses to start on an old schema
and says so). Both commands honour --config and VOXSHIFT_DATABASE_URL through the usual Settings.
"""

from __future__ import annotations

from typing import Annotated

import typer

from voxshift.cli.common import State, run
from voxshift.core.masking import mask_url
from voxshift.errors import EXIT_FAILURE

db_app = typer.Typer(
    help="The settings database (VOXSHIFT_DATABASE_URL: embedded SQLite by default, PostgreSQL in "
    "production): show and upgrade its schema revision.",
    no_args_is_help=True,
)


def database_url(ctx: typer.Context) -> str:
    state: State = ctx.obj
    return state.settings().resolved_database_url


@db_app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Bring the schema to the newest revision this voxshift knows (idempotent)."""
    from voxshift.services.wiring.database import upgrade_schema

    url = database_url(ctx)
    before, after = run(upgrade_schema(url))
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
    from voxshift.services.wiring.database import schema_revision

    url = database_url(ctx)
    revision = run(schema_revision(url))
    current, head = revision.current, revision.head
    where = mask_url(url)
    if revision.at_head:
        typer.echo(f"{current} (head) in {where}")
        return
    if revision.unknown:
        typer.echo(f"{current} in {where}; unknown to this voxshift (head {head}): written by a newer one")
    else:
        shown = current or "none (empty database)"
        typer.echo(f"{shown} in {where}; not at head {head}: run `voxshift db upgrade`")
    if check:
        raise typer.Exit(EXIT_FAILURE)
