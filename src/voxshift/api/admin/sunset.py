"""/admin/v1/sunset: the legacy sunset's status, plan, migration report, validation and phases,
through services/sunset exactly as `voxshift sunset` runs them (each request opens the sunset's
stores and checks them first, so a phase never half-happens on a store that is down)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from voxshift.api.admin.auth import Operator, Viewer
from voxshift.api.admin.models import CHANGE, READ, FreeForm, SunsetResolved, SunsetRunBody, errors
from voxshift.api.deps import runtime
from voxshift.errors import InvalidRequest
from voxshift.services.sunset.cleanup import cleanup
from voxshift.services.sunset.migrate import migrate, open_journal, resolve
from voxshift.services.sunset.migrate import report as journal_report
from voxshift.services.sunset.open import open_sunset
from voxshift.services.sunset.validate import validate as run_validate

router = APIRouter(tags=["admin: sunset"])


@router.get("/sunset", response_model=FreeForm, responses=READ)
async def status(request: Request, _: Viewer) -> dict[str, Any]:
    """The stored sunset state (as `voxshift sunset status --json`): each phase's status, by whom
    and why, the last validation, the legacy's description, read-only flag, last legacy write."""
    async with open_sunset(runtime(request).settings) as (sunset, legacy):
        return await sunset.status(legacy.describe())


@router.get("/sunset/plan", response_model=list[FreeForm], responses=READ)
async def plan(request: Request, _: Viewer) -> list[dict[str, Any]]:
    """The phases in order, each with its status and what stands in its way (`refusals`)."""
    async with open_sunset(runtime(request).settings) as (sunset, _legacy):
        return await sunset.plan()


@router.get("/sunset/report", response_model=FreeForm, responses=READ)
async def report(request: Request, _: Viewer) -> dict[str, Any]:
    """Every item the data migration handled, with its outcome, and a summary per store."""
    async with open_journal(runtime(request).settings) as journal:
        return await journal_report(journal)


@router.get("/sunset/resolve", response_model=SunsetResolved, responses=errors(400, 404))
async def resolve_key(
    request: Request, _: Viewer, key: Annotated[str, Query(min_length=1, max_length=1024)]
) -> dict[str, Any]:
    """Where a legacy item went (as `voxshift sunset resolve LEGACY_KEY`); 404 when the migration
    did not carry it over."""
    async with open_journal(runtime(request).settings) as journal:
        entry = await resolve(journal, key)
    assert entry.v2_key is not None  # resolve() answers only entries that have one
    return {"legacy_key": key, "store": entry.store, "v2_key": entry.v2_key, "outcome": entry.outcome}


@router.post("/sunset/validate", response_model=FreeForm, responses=CHANGE)
async def validate(request: Request, who: Operator) -> dict[str, Any]:
    """Compare every migrated item on both sides and record the outcome in the sunset state
    (`clean`, and per category what is missing, changed or extra)."""
    result = await run_validate(runtime(request).settings, actor=who.actor)
    return result.to_json()


@router.post("/sunset/run/{phase}", response_model=FreeForm, responses=CHANGE)
async def run_phase(
    request: Request,
    phase: Literal["read_only", "data_migration", "infrastructure_cleanup"],
    body: SunsetRunBody,
    who: Operator,
) -> dict[str, Any]:
    """Run one phase once its guards hold (409 naming every refusal). A real run needs
    `confirm: true` (the CLI's --yes) and a reason; `dry_run` checks and changes nothing."""
    if not body.dry_run and not body.confirm:
        raise InvalidRequest(
            f"{phase} changes the legacy for good: send confirm=true (or dry_run=true to look first)",
            param="confirm",
        )
    reason = body.reason.strip() if body.reason else ""
    if not reason:
        if not body.dry_run:
            raise InvalidRequest("reason is required: say why (it goes to the audit trail)", param="reason")
        reason = "dry run"
    settings = runtime(request).settings
    async with open_sunset(settings) as (sunset, legacy):

        async def work(dry: bool) -> dict[str, Any]:
            if phase == "infrastructure_cleanup":
                return await cleanup(legacy, dry_run=dry)
            return (await migrate(settings, dry_run=dry)).to_json()

        outcome = await sunset.run(
            phase, actor=who.actor, reason=reason, dry_run=body.dry_run, confirmed=body.confirm, work=work
        )
    return outcome.to_json()
