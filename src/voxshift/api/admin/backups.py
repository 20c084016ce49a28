"""/admin/v1/backups: the legacy's backups (list, create, verify) through the same BackupService as
`voxshift backup`. Restoring stays a console operation (`voxshift backup restore ID --yes`): it
writes into an empty legacy, which an operator prepares by hand, not from a browser."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from voxshift.api.admin.auth import Operator, Viewer
from voxshift.api.admin.models import CHANGE, READ, FreeForm, errors
from voxshift.api.deps import runtime
from voxshift.services.sunset.backup import open_backups

router = APIRouter(tags=["admin: backups"])
BackupId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


@router.get("/backups", response_model=list[FreeForm], responses=READ)
async def list_backups(request: Request, _: Viewer) -> list[dict[str, Any]]:
    """Every completed backup, oldest first: id, created, counts, bytes, and its last verification
    (as `voxshift backup list --json`)."""
    async with open_backups(runtime(request).settings) as service:
        return await service.list()


@router.post("/backups", response_model=FreeForm, status_code=201, responses=CHANGE)
async def create_backup(request: Request, _: Operator) -> dict[str, Any]:
    """Back up every legacy voice key (type, value, TTL), voice object and settings row into the v2
    bucket under `backups/{id}/`; answers the manifest's summary. A large legacy takes a while:
    `voxshift backup create` shows progress."""
    async with open_backups(runtime(request).settings) as service:
        return (await service.create()).summary()


@router.post("/backups/{backup_id}/verify", response_model=FreeForm, responses=errors(400, 403, 404, 409))
async def verify_backup(request: Request, backup_id: BackupId, _: Operator) -> dict[str, Any]:
    """Re-read every item of a backup and check its sha256 (`ok`, `problems`); the outcome is
    recorded, and a verified backup newer than the last legacy write unlocks `data_migration`."""
    async with open_backups(runtime(request).settings) as service:
        return await service.verify(backup_id)
