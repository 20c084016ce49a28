"""`voxshift tokens create | list | revoke`: the admin API's bearer tokens.

The secret is printed once, by ``create``; the settings database keeps only its sha256. Bad input
(a bad name or role, a live token of that name already, revoking a name never issued) is one line
and exit code 2.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from voxshift.cli.common import State, run, table

if TYPE_CHECKING:
    from voxshift.services.tokens.service import TokenRecordLike

tokens_app = typer.Typer(
    help="Admin API bearer tokens (roles viewer and operator): create (shown once), list, revoke.",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


@tokens_app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="1-64 characters of A-Z a-z 0-9 . _ @ - (the audit's actor).")],
    role: Annotated[str, typer.Option("--role", help="viewer (read only) or operator (may change).")],
    as_json: AsJson = False,
) -> None:
    """Issue a token and print it once; only its hash is stored."""
    settings = _state(ctx).settings()

    async def go() -> tuple[str, TokenRecordLike]:
        from voxshift.services.tokens.open import open_tokens

        async with open_tokens(settings) as tokens:
            return await tokens.create(name, role)

    secret, record = run(go())
    if as_json:
        from voxshift.services.tokens.service import token_view

        typer.echo(json.dumps({**token_view(record), "token": secret}, indent=2))
        return
    typer.echo(secret)
    typer.echo(
        f"token {record.name!r} ({record.role}) created; it is shown only now: store it in a secret manager",
        err=True,
    )


@tokens_app.command("list")
def list_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every token, live and revoked (never the secret)."""
    settings = _state(ctx).settings()

    async def go() -> list[dict[str, Any]]:
        from voxshift.services.tokens.open import open_tokens
        from voxshift.services.tokens.service import token_view

        async with open_tokens(settings) as tokens:
            return [token_view(r) for r in await tokens.list()]

    rows = run(go())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no admin tokens; create one with `voxshift tokens create NAME --role operator`", err=True)
        return
    typer.echo(
        table(
            ["name", "role", "created (UTC)", "last used", "revoked"],
            [
                [
                    r["name"],
                    r["role"],
                    _when(r["created_at"]),
                    _when(r["last_used_at"]),
                    _when(r["revoked_at"]),
                ]
                for r in rows
            ],
        )
    )


@tokens_app.command("revoke")
def revoke_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]
) -> None:
    """Revoke a token: servers refuse it within a few seconds (their lookup cache)."""
    settings = _state(ctx).settings()

    async def go() -> tuple[TokenRecordLike, bool]:
        from voxshift.services.tokens.open import open_tokens

        async with open_tokens(settings) as tokens:
            return await tokens.revoke(name)

    record, revoked = run(go())
    if revoked:
        typer.echo(f"token {record.name!r} revoked; servers refuse it within a few seconds")
    else:
        at = record.revoked_at.isoformat() if record.revoked_at else None
        typer.echo(f"token {record.name!r} was already revoked ({_when(at)})")


def _when(iso: str | None) -> str:
    return "-" if not iso else iso[:19].replace("T", " ")
