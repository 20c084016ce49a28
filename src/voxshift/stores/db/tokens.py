"""The admin tokens table: hashes in, plain records out (the secrets never reach this module).

Like the other repositories: one transaction per method, frozen records, InvalidRequest naming the
parameter, database constraints as the backstop (one live token per name through the UNIQUE
``active_name`` column, see ``models.AdminTokenRow``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from voxshift.errors import Conflict, InvalidRequest
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import check_limit
from voxshift.stores.db.models import TOKEN_ROLES, AdminTokenRow, utcnow


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _record(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        role=row.role,
        token_hash=row.token_hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class TokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, role: str, token_hash: str) -> TokenRecord:
        """A live token; Conflict when a live token already has this name."""
        if role not in TOKEN_ROLES:
            raise InvalidRequest(f"role must be viewer or operator, got {role!r}", param="role")
        if len(token_hash) != 64:
            raise InvalidRequest("token_hash must be a sha256 hex digest", param="token_hash")
        now = utcnow()
        values = {
            "name": name,
            "active_name": name,
            "role": role,
            "token_hash": token_hash,
            "created_at": now,
        }
        try:
            async with self.db.begin() as conn:
                new_id = await conn.scalar(insert(AdminTokenRow).values(**values).returning(AdminTokenRow.id))
        except IntegrityError:
            raise Conflict(
                f"a live token named {name!r} exists already; revoke it first or pick another name",
                param="name",
            ) from None
        assert new_id is not None
        return TokenRecord(int(new_id), name, role, token_hash, now, None, None)

    async def by_hash(self, token_hash: str) -> TokenRecord | None:
        async with self.db.begin() as conn:
            stmt = select(AdminTokenRow.__table__).where(AdminTokenRow.token_hash == token_hash)
            row = (await conn.execute(stmt)).first()
        return None if row is None else _record(row)

    async def list(self, *, limit: int = 1000) -> list[TokenRecord]:
        """Every token, live and revoked, oldest first."""
        t = AdminTokenRow
        stmt = select(t.__table__).order_by(t.created_at, t.id).limit(check_limit(limit))
        async with self.db.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_record(r) for r in rows]

    async def revoke(self, name: str) -> tuple[TokenRecord | None, bool]:
        """(the token, whether this call revoked it). (None, False): no token ever had this name;
        (record, False): every token of this name was revoked already (the newest is returned)."""
        t = AdminTokenRow
        now = utcnow()
        async with self.db.begin() as conn:
            result = await conn.execute(
                update(t)
                .where(t.active_name == name)
                .values(active_name=None, revoked_at=now)
                .returning(*t.__table__.c)
            )
            row = result.first()
            if row is not None:
                return _record(row), True
            stmt = select(t.__table__).where(t.name == name).order_by(t.id.desc()).limit(1)
            old = (await conn.execute(stmt)).first()
        return (None if old is None else _record(old)), False

    async def touch(self, token_id: int, at: datetime | None = None) -> None:
        """Record a use (callers throttle this to about once a minute per token)."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(AdminTokenRow).where(AdminTokenRow.id == token_id).values(last_used_at=at or utcnow())
            )
