"""`voxshift agents ...`: per-agent voice settings in the settings database.

Every write is validated against the legacy VoiceSettings schema (strictly: unknown fields are
errors) before anything is stored, so a bad value exits 2 with one line naming the field and the
stored document is untouched. Writes go through AgentSettingsService, which also refreshes the
settings cache the running servers read (the state store), and use the version read at the start
as an optimistic lock: two operators editing one agent cannot silently overwrite each other.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from voxshift.cli.common import State, fail, read_bounded, run, table
from voxshift.core.agent_settings import set_path, validate_agent_id
from voxshift.errors import EXIT_FAILURE, EXIT_USAGE, InvalidRequest, VoxshiftError
from voxshift.schemas.agent_settings import StoredAgentSettings, validate_agent_settings

if TYPE_CHECKING:  # the database and cache stacks load only when a command runs
    from voxshift.services.agents.service import AgentSettingsService

agents_app = typer.Typer(
    help="Per-agent voice settings (the legacy VoiceSettings schema: enabled, intent detection, "
    "limits, cache, providers with their STT/TTS configs).",
    no_args_is_help=True,
)
PAGE = 500


@asynccontextmanager
async def open_service(state: State) -> AsyncIterator[AgentSettingsService]:
    """The service over the configured stores; cache trouble is reported once, by _warn_cache."""
    from voxshift.services.wiring.control import open_agent_settings

    async with open_agent_settings(state.settings()) as service:
        yield service


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _warn_cache(service: AgentSettingsService) -> None:
    if service.cache_failures:
        typer.echo(
            f"warning: the settings cache could not be refreshed ({service.last_cache_error}); running "
            f"servers may use the previous settings for up to {service.ttl_s:.0f} s",
            err=True,
        )


@agents_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every agent with stored voice settings."""
    state: State = ctx.obj

    async def go() -> list[StoredAgentSettings]:
        out: list[StoredAgentSettings] = []
        async with open_service(state) as service:
            after: str | None = None
            while True:
                page = await service.list(after=after, limit=PAGE)
                out += page
                if len(page) < PAGE:
                    return out
                after = page[-1].agent_id

    records = run(go())
    if as_json:
        typer.echo(_dumps([r.to_json() for r in records]))
        return
    if not records:
        typer.echo("no agents have voice settings", err=True)
        return
    rows = [
        [
            r.agent_id,
            str(r.version),
            "yes" if r.settings.enabled else "no",
            ",".join(p.provider for p in sorted(r.settings.providers, key=lambda p: p.priority)) or "-",
            r.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.updated_by or "-",
        ]
        for r in records
    ]
    typer.echo(table(["agent", "version", "enabled", "providers", "updated (UTC)", "by"], rows))


@agents_app.command("show")
def show_command(
    ctx: typer.Context, agent_id: Annotated[str, typer.Argument(help="The agent's id.")]
) -> None:
    """Print one agent's voice settings as JSON (from the database, not the cache)."""
    state: State = ctx.obj
    _check_id(agent_id)

    async def go() -> StoredAgentSettings:
        async with open_service(state) as service:
            return await service.require(agent_id, fresh=True)

    typer.echo(_dumps(run(go()).to_json()))


@agents_app.command("set")
def set_command(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    file: Annotated[
        str | None,
        typer.Option(
            "--file", "-f", help="A JSON settings document that replaces the stored one ('-' = stdin)."
        ),
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="FIELD.PATH=VALUE, e.g. enabled=true or providers[0].tts_config.speed=1.25; VALUE is "
            "JSON when it parses as JSON, else a string (quote it as '\"123\"' to force a string). "
            "Repeatable; applied after --file.",
        ),
    ] = None,
    expected_version: Annotated[
        int | None,
        typer.Option(
            help="Only write if the stored version is this (0 = create only). Default: the "
            "version read when the command starts."
        ),
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Who is changing it (default: your user name).")] = None,
) -> None:
    """Create or change an agent's voice settings (validated before anything is stored)."""
    state: State = ctx.obj
    _check_id(agent_id)
    if file is None and not assignments:
        _usage("nothing to set: give --file JSON and/or --set FIELD=VALUE")
    document = _read_document(file) if file is not None else None
    who = actor or _default_actor()

    async def go() -> tuple[StoredAgentSettings, AgentSettingsService]:
        async with open_service(state) as service:
            current = await service.get(agent_id, fresh=True)
            base = document if document is not None else (current.settings.to_json() if current else {})
            for assignment in assignments or []:
                base = _assign(base, assignment)
            try:
                validated = validate_agent_settings(base)
            except InvalidRequest as exc:
                raise InvalidRequest(f"invalid voice settings: {exc.message}", param=exc.param) from None
            expected = expected_version
            if expected is None:
                expected = current.version if current else 0
            saved = await service.put(agent_id, validated, expected_version=expected, actor=who)
            return saved, service

    saved, service = run(go())
    verb = "created" if saved.version == 1 else "updated"
    typer.echo(f"{verb} voice settings of agent {saved.agent_id!r}: version {saved.version}")
    _warn_cache(service)


@agents_app.command("delete")
def delete_command(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be deleted; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an agent's voice settings (the agent then gets the defaults: voice disabled)."""
    state: State = ctx.obj
    _check_id(agent_id)

    async def go() -> tuple[StoredAgentSettings, bool, AgentSettingsService]:
        async with open_service(state) as service:
            current = await service.require(agent_id, fresh=True)
            if dry_run:
                return current, False, service
            if not yes and not _confirm(current):
                typer.echo("not confirmed; nothing deleted", err=True)
                raise typer.Exit(EXIT_FAILURE)
            await service.delete(agent_id, expected_version=current.version)
            return current, True, service

    current, deleted, service = run(go())
    summary = f"agent {agent_id!r} (version {current.version}, {len(current.settings.providers)} provider(s))"
    if deleted:
        typer.echo(f"deleted voice settings of {summary}")
        _warn_cache(service)
    else:
        typer.echo(f"dry run: would delete voice settings of {summary}")


# --- helpers --------------------------------------------------------------------------------------
def _check_id(agent_id: str) -> None:
    """The stores' own check (core.ids via validate_agent_id), run before any store is opened so a
    refused id (blank, too long) exits 2 with one line and nothing stored."""
    try:
        validate_agent_id(agent_id)
    except InvalidRequest as exc:
        fail(exc)


# A voice settings document is a few KB. The bound keeps `--file - < /dev/zero`, an endless pipe or
# a huge file from being read into memory until the kernel kills the process.
MAX_DOCUMENT_BYTES = 1024 * 1024


def _read_document(file: str) -> dict[str, Any]:
    name = "stdin" if file == "-" else file
    source = sys.stdin.buffer if file == "-" else Path(file)
    try:
        raw = read_bounded(source, MAX_DOCUMENT_BYTES + 1, f"--file {name}")
    except VoxshiftError as exc:
        fail(exc)
    if len(raw) > MAX_DOCUMENT_BYTES:
        _usage(f"--file {name}: larger than the {MAX_DOCUMENT_BYTES >> 20} MiB limit of a settings file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _usage(f"--file {name}: cannot read it ({exc})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        _usage(f"--file {name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    if not isinstance(data, dict):
        _usage(f"--file {name}: expected a JSON object of voice settings, got {type(data).__name__}")
    return data


def _assign(document: dict[str, Any], assignment: str) -> dict[str, Any]:
    path, sep, raw = assignment.partition("=")
    if not sep or not path.strip():
        raise InvalidRequest(f"--set {assignment!r}: expected FIELD.PATH=VALUE", param="--set")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare word such as nova or ru-RU
    return set_path(document, path.strip(), value)


def _confirm(current: StoredAgentSettings) -> bool:
    if not sys.stdin.isatty():
        _usage(f"refusing to delete agent {current.agent_id!r} without --yes (no terminal to ask on)")
    return typer.confirm(
        f"Delete the voice settings of agent {current.agent_id!r} (version {current.version})?", default=False
    )


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)
