"""What `voxshift flags ...` reads from the command line and prints back: option parsing, the config
and history tables, change reports and the JSON records.

Kept apart from :mod:`voxshift.cli.flags` so the commands read as what they do (open the flags,
change, report) while the wording lives here. Nothing here opens a store: the history rows arrive
already read, which keeps the database stack out of the CLI's import time.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from voxshift.cli.common import table
from voxshift.core.flag_config import stored_diff
from voxshift.core.flags import ANONYMOUS_KEY, OPERATIONS, FlagConfig, bucket, decide, diff, feature_name
from voxshift.errors import EXIT_USAGE, InvalidRequest

if TYPE_CHECKING:
    from voxshift.services.wiring.control import FlagChange

_PERCENT_RE = re.compile(r"\s*\d{1,3}\s*")
_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


# --- parsing ---------------------------------------------------------------------------------------
def parse_percentage(raw: str, option: str) -> int:
    if not _PERCENT_RE.fullmatch(raw) or int(raw) > 100:
        usage(f"{option}: must be an integer from 0 to 100, got {raw!r}")
    return int(raw)


def parse_feature(assignment: str) -> tuple[str, bool]:
    name, sep, value = assignment.partition("=")
    if not sep or value.strip().lower() not in _TRUE | _FALSE:
        usage(f"--feature {assignment!r}: expected NAME=true|false")
    try:
        return feature_name(name.strip()), value.strip().lower() in _TRUE
    except InvalidRequest as exc:
        usage(f"--feature {assignment!r}: {exc.message}")


def require_reason(reason: str | None, dry_run: bool) -> str:
    if reason is None or not reason.strip():
        if dry_run:
            return "dry run"
        usage("--reason is required: say why (it goes to the audit log)")
    return reason.strip()


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


# --- output ----------------------------------------------------------------------------------------
def report(before: FlagConfig, after: FlagConfig, warnings: list[str], dry_run: bool) -> None:
    changes = diff(before, after)
    if not changes:
        typer.echo(f"no change (version {before.version})")
        return
    if dry_run:
        typer.echo(f"dry run: would change version {before.version}:")
    else:
        typer.echo(f"flags now at version {after.version}; running servers apply it within about 1 s:")
    for line in changes:
        typer.echo(f"  {line}")
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def config_table(config: FlagConfig, source: str) -> str:
    version = (
        f"{config.version} (from the {source})" if config.version else "0 (not stored yet: from VOICE_V2_*)"
    )
    rows = [
        ["version", version],
        ["enabled", "yes" if config.enabled else "no (kill switch: everything goes to legacy)"],
        ["features", " ".join(f"{k}={'on' if v else 'off'}" for k, v in config.features.to_json().items())],
        *[[f"rollout {op}", f"{config.percentages[op]}%"] for op in OPERATIONS],
        *[[f"salt {op}", repr(config.salt[op])] for op in OPERATIONS if config.salt[op]],
        ["anonymous", config.anonymous],
        ["allow users", ", ".join(sorted(config.allow_users)) or "-"],
        ["allow agents", ", ".join(sorted(config.allow_agents)) or "-"],
        ["deny users", ", ".join(sorted(config.deny_users)) or "-"],
        ["deny agents", ", ".join(sorted(config.deny_agents)) or "-"],
    ]
    if config.legacy_read_only:  # the sunset's read_only phase
        rows.append(["legacy", "read-only (the legacy writes nothing)"])
    return table(["flag", "value"], rows)


def decisions_record(config: FlagConfig, user_id: str, agent: str | None) -> dict[str, Any]:
    """``explain --json``: per operation the decision, with the bucket even when it did not decide."""
    decisions: dict[str, Any] = {}
    for op in OPERATIONS:
        d = decide(config, op, user_id, agent)
        decisions[op] = {
            "system": d.system,
            "reason": d.reason,
            "bucket": bucket(user_id or ANONYMOUS_KEY, config.salt[op]),
            "percentage": config.percentages[op],
        }
    return {"user_id": user_id, "agent_id": agent, "version": config.version, "decisions": decisions}


def history_table(changes: Sequence[FlagChange]) -> str:
    rows = [
        [
            c.changed_at.strftime("%Y-%m-%d %H:%M:%S"),
            str((c.new_value or {}).get("version", "?")),
            c.actor,
            "; ".join(stored_diff(c.old_value, c.new_value)) or "-",
            c.reason or "-",
        ]
        for c in changes
    ]
    return table(["when (UTC)", "version", "actor", "change", "reason"], rows)


def change_record(change: FlagChange) -> dict[str, Any]:
    return {
        "id": change.id,
        "changed_at": change.changed_at.isoformat(),
        "actor": change.actor,
        "reason": change.reason,
        "old": change.old_value,
        "new": change.new_value,
        "changes": stored_diff(change.old_value, change.new_value),
    }
