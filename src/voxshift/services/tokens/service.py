"""TokenService: issue, list, revoke and check the admin API's bearer tokens.

A token is ``vxs_`` + 32 random bytes (url-safe base64). Only its sha256 is stored: with that much
entropy a plain hash cannot be brute-forced, and a lookup by hash needs no per-row salt. The secret
is shown once, by :meth:`TokenService.create`.

:meth:`TokenService.authenticate` runs on every admin request, so it caches what it found for
``cache_s`` (a revoke therefore takes effect within that many seconds on every server) and records
``last_used_at`` at most once a minute per token, not per request. The optional bootstrap secret
(``VOXSHIFT_ADMIN_TOKEN``) is an operator named ``env`` that never touches the database.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from voxshift.errors import InvalidRequest, NotFound, StoreUnavailable, VoxshiftError

log = logging.getLogger(__name__)

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
PREFIX = "vxs_"
ENV_NAME = "env"  # the bootstrap token's name; reserved
NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
CACHE_S = 5.0
TOUCH_EVERY_S = 60.0
STALE_OK_S = 300.0  # a cached token still answers this long while the database is down
_CACHE_SIZE = 256
_MAX_SECRET = 512  # longer than any token we issue: refused without hashing megabytes


class Unauthorized(VoxshiftError):
    """No credentials, or credentials nobody issued (or that were revoked)."""

    status = 401
    error_type = "authentication_error"
    code = "invalid_token"
    exit_code = 2

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class TokenRecordLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def token_hash(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def last_used_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...


class TokenRepo(Protocol):
    """stores.db.tokens.TokenRepository."""

    async def create(self, name: str, role: str, token_hash: str) -> Any: ...
    async def by_hash(self, token_hash: str) -> Any: ...
    async def list(self, *, limit: int = 1000) -> Any: ...
    async def revoke(self, name: str) -> tuple[Any, bool]: ...
    async def touch(self, token_id: int, at: datetime | None = None) -> None: ...


@dataclass(frozen=True)
class Principal:
    """Who is calling the admin API."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        """What the audit trail records (flag audit, rollout history, sunset)."""
        return f"token:{self.name}"

    @property
    def can_change(self) -> bool:
        return self.role == "operator"


def token_view(record: TokenRecordLike) -> dict[str, Any]:
    """A token as `tokens list --json` shows it: never the secret, never the hash."""

    def iso(at: datetime | None) -> str | None:
        return None if at is None else at.isoformat()

    return {
        "name": record.name,
        "role": record.role,
        "created_at": iso(record.created_at),
        "last_used_at": iso(record.last_used_at),
        "revoked_at": iso(record.revoked_at),
        "active": record.revoked_at is None,
    }


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidRequest(
            f"token name must be 1-64 characters of A-Z a-z 0-9 . _ @ -, got {name!r}", param="name"
        )
    if name == ENV_NAME:
        raise InvalidRequest(
            f"token name {ENV_NAME!r} is reserved for VOXSHIFT_ADMIN_TOKEN; pick another", param="name"
        )
    return name


def check_role(role: object) -> Role:
    if role == "viewer":
        return "viewer"
    if role == "operator":
        return "operator"
    raise InvalidRequest(f"role must be viewer or operator, got {role!r}", param="role")


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


@dataclass
class _Cached:
    principal: Principal | None  # None: revoked (cached so that a revoked token is cheap too)
    token_id: int
    fetched: float


class TokenService:
    def __init__(
        self,
        repo: TokenRepo | None,
        *,
        env_token: str | None = None,
        cache_s: float = CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.env_token = env_token
        self.cache_s = cache_s
        self.clock = clock
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._touched: dict[int, float] = {}
        self._outage = False

    # --- administration (the CLI) -----------------------------------------------------------------
    async def create(self, name: object, role: object) -> tuple[str, TokenRecordLike]:
        """(the secret - shown once, never stored - and the stored record)."""
        checked_name, checked_role = check_name(name), check_role(role)
        secret = new_secret()
        record = await self._repo().create(checked_name, checked_role, hash_token(secret))
        return secret, record

    async def list(self) -> list[TokenRecordLike]:
        return list(await self._repo().list())

    async def revoke(self, name: object) -> tuple[TokenRecordLike, bool]:
        """(the token, whether this call revoked it: False means it was revoked already)."""
        record, revoked = await self._repo().revoke(check_name(name))
        if record is None:
            raise NotFound(f"no token named {name!r}", param="name")
        self._cache.clear()  # this process at least sees the revoke at once
        return record, revoked

    def _repo(self) -> TokenRepo:
        if self.repo is None:
            raise StoreUnavailable("admin tokens need the settings database")
        return self.repo

    # --- every admin request ----------------------------------------------------------------------
    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthorized("missing bearer token: send Authorization: Bearer <admin token>")
        if len(secret) > _MAX_SECRET:
            raise Unauthorized("invalid or revoked admin token")
        if self.env_token is not None and hmac.compare_digest(
            secret.encode("utf-8", "surrogatepass"), self.env_token.encode()
        ):
            return Principal(ENV_NAME, "operator")
        digest = hash_token(secret)
        now = self.clock()
        cached = self._cache.get(digest)
        if cached is None or now - cached.fetched > self.cache_s:
            try:
                cached = await self._fetch(digest, now)
            except StoreUnavailable as exc:
                if cached is None or now - cached.fetched > STALE_OK_S:
                    raise
                if not self._outage:  # once per outage, not once per request
                    log.warning(
                        "admin token lookups use cached answers while the database is down: %s", exc.message
                    )
                self._outage = True
            else:
                self._outage = False
        if cached is None or cached.principal is None:
            raise Unauthorized("invalid or revoked admin token")
        await self._touch(cached.token_id, now)
        return cached.principal

    async def _fetch(self, digest: str, now: float) -> _Cached | None:
        record = await self._repo().by_hash(digest)
        # The index found the row by hash; compare once more in constant time, as a password check would.
        if record is None or not hmac.compare_digest(record.token_hash, digest):
            return None
        principal = Principal(record.name, check_role(record.role)) if record.revoked_at is None else None
        entry = _Cached(principal, record.id, now)
        self._cache[digest] = entry
        self._cache.move_to_end(digest)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        if record.last_used_at is not None and principal is not None:
            # Another process recorded a use recently: no need to write again this minute.
            age = time.time() - record.last_used_at.timestamp()
            if age < TOUCH_EVERY_S:
                self._touched.setdefault(record.id, now - age)
        return entry

    async def _touch(self, token_id: int, now: float) -> None:
        last = self._touched.get(token_id)
        if last is not None and now - last < TOUCH_EVERY_S:
            return
        self._touched[token_id] = now
        try:
            await self._repo().touch(token_id)
        except StoreUnavailable as exc:  # bookkeeping only: the request goes on
            log.warning("could not record an admin token's use: %s", exc.message)
