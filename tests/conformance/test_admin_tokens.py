"""The admin tokens table and TokenService on SQLite and a real PostgreSQL: hashes only, one live
token per name, idempotent revoke, the lookup cache and the once-a-minute use stamp."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from voxshift.errors import Conflict, InvalidRequest, NotFound, StoreUnavailable
from voxshift.services.tokens.service import TokenService, Unauthorized, hash_token
from voxshift.stores.db.engine import Database
from voxshift.stores.db.tokens import TokenRepository


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_only_the_hash_is_stored_and_names_are_unique_among_live_tokens(db: Database) -> None:
    tokens = TokenService(TokenRepository(db))
    secret, _ = await tokens.create("ci-bot", "operator")
    assert secret.startswith("vxs_") and len(secret) == 4 + 43
    async with db.begin() as conn:
        rows = (await conn.execute(text("SELECT name, role, token_hash FROM admin_tokens"))).all()
    assert [tuple(r) for r in rows] == [("ci-bot", "operator", hash_token(secret))]
    assert secret not in repr(rows)
    with pytest.raises(Conflict, match="live token named 'ci-bot' exists"):
        await tokens.create("ci-bot", "viewer")
    assert (await tokens.authenticate(secret)).actor == "token:ci-bot"

    revoked, now = await tokens.revoke("ci-bot")
    assert now is True and revoked.revoked_at is not None
    again, now = await tokens.revoke("ci-bot")
    assert now is False and again.revoked_at == revoked.revoked_at
    # A revoked name can be issued again, with a new secret.
    secret2, _ = await tokens.create("ci-bot", "viewer")
    assert secret2 != secret
    listed = await tokens.list()
    assert [(r.name, r.role, r.revoked_at is None) for r in listed] == [
        ("ci-bot", "operator", False),
        ("ci-bot", "viewer", True),
    ]
    with pytest.raises(NotFound):
        await tokens.revoke("never-issued")


@pytest.mark.parametrize(
    ("name", "role"),
    [("", "viewer"), ("a b", "viewer"), ("x" * 65, "viewer"), ("env", "viewer"), ("ok", "admin")],
)
async def test_bad_names_and_roles_are_refused_before_anything_is_stored(
    db: Database, name: str, role: str
) -> None:
    tokens = TokenService(TokenRepository(db))
    with pytest.raises(InvalidRequest):
        await tokens.create(name, role)
    assert await tokens.list() == []


async def test_lookups_are_cached_briefly_and_the_use_is_stamped_once_a_minute(db: Database) -> None:
    clock = Clock()
    repo = TokenRepository(db)
    issuer = TokenService(repo)
    server = TokenService(repo, clock=clock, cache_s=5.0)
    secret, _ = await issuer.create("dash", "viewer")
    assert (await server.authenticate(secret)).role == "viewer"
    first = (await repo.list())[0].last_used_at
    assert first is not None
    clock.now += 30
    await server.authenticate(secret)
    assert (await repo.list())[0].last_used_at == first  # not per request
    clock.now += 31
    await server.authenticate(secret)
    assert (await repo.list())[0].last_used_at > first  # type: ignore[operator]

    await issuer.revoke("dash")  # another process revokes: this one still has it cached ...
    await server.authenticate(secret)
    clock.now += 5.1  # ... for at most cache_s
    with pytest.raises(Unauthorized):
        await server.authenticate(secret)
    for wrong in (None, "", "vxs_nope", "x" * 5000):
        with pytest.raises(Unauthorized):
            await server.authenticate(wrong)


async def test_the_environment_token_is_an_operator_named_env_without_a_database() -> None:
    tokens = TokenService(None, env_token="bootstrap-secret-0123456789")
    principal = await tokens.authenticate("bootstrap-secret-0123456789")
    assert (principal.name, principal.role, principal.actor) == ("env", "operator", "token:env")


class FlakyRepo:
    """A TokenRepository whose database can be switched off."""

    def __init__(self, repo: TokenRepository) -> None:
        self.repo = repo
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.repo, name)
        if not self.down:
            return attr

        async def refused(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable("database is unavailable: connection refused")

        return refused


async def test_a_database_outage_keeps_recently_seen_tokens_working_for_a_while(db: Database) -> None:
    clock = Clock()
    flaky = FlakyRepo(TokenRepository(db))
    server = TokenService(flaky, clock=clock)
    secret, _ = await TokenService(TokenRepository(db)).create("ops", "operator")
    never_seen, _ = await TokenService(TokenRepository(db)).create("late", "viewer")
    assert (await server.authenticate(secret)).name == "ops"
    flaky.down = True
    clock.now += 60  # past the cache and the touch interval: both would hit the database
    assert (await server.authenticate(secret)).name == "ops"  # the stale answer, the use not recorded
    with pytest.raises(StoreUnavailable):
        await server.authenticate(never_seen)  # nothing to fall back on: 503, not a 401
    clock.now += 300
    with pytest.raises(StoreUnavailable):
        await server.authenticate(secret)  # too old to trust
    flaky.down = False
    assert (await server.authenticate(secret)).role == "operator"
