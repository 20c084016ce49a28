"""`voxshift flags ...`: the voice v2 rollout flags (kill switch, features, percentages, lists).

Every command works on the configured state store and settings database (the same ones the servers
use), so a change applies on every running server within about 1 s: they follow the state store and
fall back to the database. Writes are audited in the database (who, when, old, new, why): ``--reason``
is required for ``set`` and ``kill``. ``kill`` asks for no confirmation: it is the safe direction, and
it still works while the database is down (without its audit row; the command says so). Anything that
sends more traffic to v2 is refused while the database is down.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from voxshift.cli.common import State, fail, run
from voxshift.cli.flags_format import (
    change_record,
    config_table,
    decisions_record,
    default_actor,
    history_table,
    parse_feature,
    parse_percentage,
    report,
    require_reason,
    usage,
)
from voxshift.core.flags import ANONYMOUS_POLICIES, FlagConfig, Operation, explain
from voxshift.errors import InvalidRequest, StoreUnavailable

if TYPE_CHECKING:  # the database and state store stacks load only when a command runs
    from voxshift.services.flags.service import FeatureFlags
    from voxshift.services.wiring.control import FlagChange

flags_app = typer.Typer(
    help="Voice v2 rollout flags: show, set, kill, allow/deny lists, explain a user's routing, history.",
    no_args_is_help=True,
)

Reason = Annotated[str | None, typer.Option("--reason", "-r", help="Why (goes to the audit log).")]
Actor = Annotated[str | None, typer.Option(help="Who is changing it (default: cli:<your user name>).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@asynccontextmanager
async def open_flags(state: State) -> AsyncIterator[FeatureFlags]:
    """The flag service over the configured stores; a database that is down is one warning (the
    kill switch must still work), anything else that fails is one error."""
    from voxshift.services.wiring.control import open_flags as open_configured

    def database_down(exc: StoreUnavailable) -> None:
        typer.echo(f"warning: {exc.message}; using the state store alone", err=True)

    async with open_configured(state.settings(), on_database_down=database_down) as flags:
        yield flags


async def _read(state: State) -> tuple[FlagConfig, str, list[str]]:
    async with open_flags(state) as flags:
        await flags.load(read_only=True)  # a read writes nothing, not even a repair
        return flags.config, flags.source, flags.env_disagreement


async def _write(
    state: State, change: Callable[[FlagConfig], FlagConfig], actor: str, reason: str, dry_run: bool
) -> tuple[FlagConfig, FlagConfig, list[str]]:
    """(before, after, warnings)."""
    async with open_flags(state) as flags:
        before = await flags.load(read_only=True)
        if dry_run:
            return before, change(before), []
        after = await flags.update(change, actor=actor, reason=reason)
        outcome = flags.last_write
        warnings = []
        if outcome is not None and outcome.config is after and after.version != before.version:
            if not outcome.audited:
                warnings.append("the settings database is down: this change has no audit row")
            if not outcome.stored:
                warnings.append(
                    "the state store is down: servers pick the change up from the database within about 5 s"
                )
        return before, after, warnings


@flags_app.command("show")
def show_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Print the current flag config (from the state store, else the database, else the environment)."""
    config, source, disagreement = run(_read(ctx.obj))
    if as_json:
        typer.echo(json.dumps({**config.to_json(), "source": source}, ensure_ascii=False, indent=2))
        return
    typer.echo(config_table(config, source))
    if disagreement:
        typer.echo(
            "note: the VOICE_V2_* environment differs (environment -> stored): "
            f"{'; '.join(disagreement)}; the stored config wins",
            err=True,
        )


@flags_app.command("set")
def set_command(
    ctx: typer.Context,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="The kill switch (--disabled = all legacy).")
    ] = None,
    percentage: Annotated[str | None, typer.Option(help="Rollout % for both stt and tts.")] = None,
    stt_percentage: Annotated[str | None, typer.Option(help="Rollout % for stt.")] = None,
    tts_percentage: Annotated[str | None, typer.Option(help="Rollout % for tts.")] = None,
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--feature",
            help="NAME=true|false (stt_enabled, tts_enabled, langgraph_integration, "
            "caching_enabled, or stt/tts/langgraph/caching); repeatable.",
        ),
    ] = None,
    anonymous: Annotated[
        str | None, typer.Option(help="Requests without a user id: legacy, v2 or bucket (the seed's).")
    ] = None,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
) -> None:
    """Change the flags (validated before anything is stored)."""
    steps: list[Callable[[FlagConfig], FlagConfig]] = []
    if enabled is not None:
        steps.append(partial(replace, enabled=enabled))
    by_op: list[tuple[Operation | None, str | None]] = [
        (None, percentage),
        ("stt", stt_percentage),
        ("tts", tts_percentage),
    ]
    for op, raw in by_op:  # both first, so --percentage 10 --stt-percentage 20 means what it says
        if raw is not None:
            pct = parse_percentage(raw, f"--{op}-percentage" if op else "--percentage")
            steps.append(partial(FlagConfig.with_percentage, operation=op, percentage=pct))
    for assignment in features or []:
        name, on = parse_feature(assignment)
        steps.append(partial(FlagConfig.with_feature, name=name, on=on))
    if anonymous is not None:
        if anonymous not in ANONYMOUS_POLICIES:
            usage(f"--anonymous: must be legacy, v2 or bucket, got {anonymous!r}")
        steps.append(partial(replace, anonymous=anonymous))
    if not steps:
        usage("nothing to set: give --enabled/--disabled, --percentage, --feature or --anonymous")
    why = require_reason(reason, dry_run)

    def change(config: FlagConfig) -> FlagConfig:
        for step in steps:
            config = step(config)
        return config

    report(*run(_write(ctx.obj, change, actor or default_actor(), why, dry_run)), dry_run)


@flags_app.command("kill")
def kill_command(
    ctx: typer.Context, reason: Reason = None, actor: Actor = None, dry_run: DryRun = False
) -> None:
    """Kill switch: send every request to legacy, on every server within about 1 s. No confirmation:
    it is the safe direction."""
    why = require_reason(reason, dry_run)
    before, after, warnings = run(_write(ctx.obj, FlagConfig.killed, actor or default_actor(), why, dry_run))
    if not before.enabled:
        typer.echo(f"voice v2 is already disabled (version {before.version}); nothing changed")
    elif dry_run:
        typer.echo(
            f"dry run: would disable voice v2 (now enabled, version {before.version}); nothing changed"
        )
    else:
        typer.echo(
            f"voice v2 disabled (kill switch) at version {after.version}; servers apply it within about 1 s"
        )
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def _listing(
    ctx: typer.Context,
    listing: str,
    user_id: str | None,
    agent: str | None,
    remove: bool,
    reason: str | None,
    actor: str | None,
    dry_run: bool,
) -> None:
    if (user_id is None) == (agent is None):
        usage(f"give exactly one of USER or --agent ID to {listing}")
    what = f"user {user_id!r}" if user_id is not None else f"agent {agent!r}"

    def change(config: FlagConfig) -> FlagConfig:
        return config.with_listed(listing, user_id=user_id, agent_id=agent, remove=remove)  # type: ignore[arg-type]

    try:
        change(FlagConfig())  # validate the id before opening anything
    except InvalidRequest as exc:
        fail(exc)
    why = reason or f"{'remove' if remove else 'add'} {what} {'from' if remove else 'to'} the {listing} list"
    report(*run(_write(ctx.obj, change, actor or default_actor(), why, dry_run)), dry_run)


UserArg = Annotated[str | None, typer.Argument(help="The user id.")]
AgentOpt = Annotated[str | None, typer.Option("--agent", help="An agent id instead of a user id.")]
RemoveOpt = Annotated[bool, typer.Option("--remove", help="Take the id off the list.")]


@flags_app.command("allow")
def allow_command(
    ctx: typer.Context,
    user_id: UserArg = None,
    agent: AgentOpt = None,
    remove: RemoveOpt = False,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
) -> None:
    """Force v2 for a user or an agent (still subject to the kill switch, feature flags and deny lists)."""
    _listing(ctx, "allow", user_id, agent, remove, reason, actor, dry_run)


@flags_app.command("deny")
def deny_command(
    ctx: typer.Context,
    user_id: UserArg = None,
    agent: AgentOpt = None,
    remove: RemoveOpt = False,
    reason: Reason = None,
    actor: Actor = None,
    dry_run: DryRun = False,
) -> None:
    """Force legacy for a user or an agent (beats any allow)."""
    _listing(ctx, "deny", user_id, agent, remove, reason, actor, dry_run)


@flags_app.command("explain")
def explain_command(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The user id ('' for an anonymous request).")],
    agent: AgentOpt = None,
    as_json: AsJson = False,
) -> None:
    """Per operation: v2 or legacy, and why (with the user's bucket and the rollout percentage)."""
    config, source, _ = run(_read(ctx.obj))
    if as_json:
        typer.echo(json.dumps(decisions_record(config, user_id, agent), ensure_ascii=False, indent=2))
        return
    typer.echo(f"flag config version {config.version} (from the {source})")
    for line in explain(config, user_id, agent):
        typer.echo(line)


@flags_app.command("history")
def history_command(
    ctx: typer.Context,
    limit: Annotated[str, typer.Option(help="How many changes, newest first.")] = "20",
    as_json: AsJson = False,
) -> None:
    """The audit log of flag changes (from the settings database)."""
    if not re.fullmatch(r"\d{1,5}", limit.strip()) or int(limit) < 1:
        usage(f"--limit: must be an integer from 1 to 10000, got {limit!r}")
    from voxshift.services.wiring.control import flag_history

    state: State = ctx.obj
    changes: list[FlagChange] = run(flag_history(state.settings(), int(limit)))
    if as_json:
        typer.echo(json.dumps([change_record(c) for c in changes], ensure_ascii=False, indent=2))
        return
    if not changes:
        typer.echo("no flag changes recorded", err=True)
        return
    typer.echo(history_table(changes))
