"""One leader among the ``voxshift serve`` replicas: a lease with a fencing token in the state store.

Keys (in the store the caller passes, normally the ``voice_v2:`` view):

- ``{name}:lease`` holds ``b"{holder}|{token}"`` with a TTL of ``ttl_s`` (Redis ``SET NX PX``; a
  row with ``expires_at`` in the embedded SQLite file). An empty value is a released lease.
- ``{name}:fence`` is an INCR counter: every grant, every :meth:`Lease.refence` and every one-shot
  operator write (:func:`take_token`) takes the next number, so tokens only ever go up.

The protocol the controller and the CLI follow (the document side is
:class:`voxshift.services.rollout.fenced.FencedDocument`):

1. **Leader.** Every replica calls :meth:`Lease.acquire` each interval (it renews when already
   held, so one call does both). Holding a grant, it first *claims* the state document with its
   token (:meth:`FencedDocument.claim`): from then on a stale leader's write with an older token is
   refused. Before each evaluation it checks :attr:`Lease.grant` (None: stop acting, the lease may
   already be someone else's), reads the document and writes its changes with
   ``write(value, token=grant.token, expected=stored)``.
2. **CAS conflict** (``write`` returns False): someone changed the document since the read;
   re-read and evaluate again. Never retry the old value blindly.
3. **StaleLeader** (``write`` raises): a writer with a newer token got in, usually an operator's
   ``voxshift rollout pause``. A leader that still holds the lease calls :meth:`Lease.refence` for
   a fresh token, re-reads (the operator's change is now the state to continue from) and carries
   on; when ``refence`` returns None the lease is lost and the replica stops acting.
4. **Operator (CLI).** ``token = await take_token(store)``, read, apply the change, ``write`` with
   that token. On False or StaleLeader take a new token, re-read and re-apply: the leader may have
   just re-fenced past it, which is fine, the operator's change must land on the latest state.

A grant is trusted locally only until ``expires_at - safety_margin_s`` (see :attr:`Lease.grant`),
measured from *before* the store call that granted it, so the local view always ends before the
store's. Even when a paused process outlives that margin, the fencing token keeps its writes out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from voxshift.stores.state import StateStore

# A released lease: an empty value rather than a delete, because the store has no compare-and-delete
# and a plain DELETE could remove a lease someone else took a moment ago. Acquire treats it as free.
_RELEASED = b""
_RELEASED_TTL_S = 1.0
# Token 0 is never issued (INCR starts at 1): it marks a lease claimed but not yet numbered.
_PENDING_TOKEN = 0


@dataclass(frozen=True)
class LeaseGrant:
    """A held lease. ``token`` is the fencing token; ``expires_at`` is on the lease's clock."""

    holder: str
    token: int
    expires_at: float


def lease_key(name: str) -> str:
    return f"{name}:lease"


def fence_key(name: str) -> str:
    return f"{name}:fence"


def default_holder() -> str:
    """``hostname:pid:random``: unique per process even when a pid is reused after a restart."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def take_token(store: StateStore, name: str = "rollout") -> int:
    """The next fencing token of ``name``: higher than every token handed out before."""
    return await store.incr(fence_key(name))


def _encode(holder: str, token: int) -> bytes:
    return f"{holder}|{token}".encode()


def _decode(raw: bytes | None) -> tuple[str, int] | None:
    if not raw:
        return None
    holder, sep, token = raw.decode(errors="replace").rpartition("|")
    if not sep or not token.isdigit():
        return None  # not a lease value we wrote: nobody we know holds it
    return holder, int(token)


class Lease:
    """A named lease in ``store`` held by ``holder`` for ``ttl_s`` seconds at a time.

    Methods are serialised per instance (one lock), so a renew never races this holder's own
    acquire. Store errors (:class:`voxshift.errors.StoreUnavailable`) propagate; the local grant
    then simply runs out at its conservative expiry.
    """

    def __init__(
        self,
        store: StateStore,
        name: str = "rollout",
        *,
        holder: str,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        safety_margin_s: float | None = None,
    ) -> None:
        if not holder:
            raise ValueError("holder must be a non-empty id (see default_holder())")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        # A fifth of the lease: covers a write that leaves just before the local expiry and lands
        # after it, and clock-rate differences between this host and the store.
        self.safety_margin_s = ttl_s / 5 if safety_margin_s is None else safety_margin_s
        if not 0 <= self.safety_margin_s < ttl_s:
            raise ValueError("safety_margin_s must be at least 0 and less than ttl_s")
        self._clock = clock
        self._key = lease_key(name)
        self._grant: LeaseGrant | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, holder={self.holder!r}, ttl_s={self.ttl_s})"

    @property
    def renew_interval_s(self) -> float:
        """How often a holder should renew: three chances before the local grant runs out."""
        return (self.ttl_s - self.safety_margin_s) / 3

    @property
    def grant(self) -> LeaseGrant | None:
        """The current grant, or None once ``safety_margin_s`` before its expiry (or when lost)."""
        grant = self._grant
        if grant is None or self._clock() >= grant.expires_at - self.safety_margin_s:
            return None
        return grant

    async def acquire(self) -> LeaseGrant | None:
        """Take the lease when it is free, renew it when it is ours; None when another holds it."""
        async with self._lock:
            if self._grant is not None:
                renewed = await self._renew()
                if renewed is not None:
                    return renewed
            return await self._claim()

    async def renew(self) -> LeaseGrant | None:
        """Extend the lease for another ``ttl_s`` only if it is still ours; None when it is lost."""
        async with self._lock:
            return await self._renew()

    async def refence(self) -> LeaseGrant | None:
        """Keep the lease under a fresh (higher) token, e.g. after a StaleLeader; None when lost."""
        async with self._lock:
            grant = self._grant
            if grant is None:
                return None
            token = await take_token(self.store, self.name)
            started = self._clock()
            ok = await self.store.compare_and_set(
                self._key, _encode(self.holder, grant.token), _encode(self.holder, token), self.ttl_s
            )
            return self._granted(token, started) if ok else self._lost()

    async def release(self) -> None:
        """Give the lease up now (only if it is still ours) so another replica need not wait."""
        async with self._lock:
            grant, self._grant = self._grant, None
            if grant is not None:
                await self.store.compare_and_set(
                    self._key, _encode(self.holder, grant.token), _RELEASED, _RELEASED_TTL_S
                )

    async def holder_info(self) -> tuple[str, int] | None:
        """Who holds the lease and under which token, for status; token 0 while being taken."""
        return _decode(await self.store.get(self._key))

    # --- internals (called under the lock) -------------------------------------------------------
    async def _renew(self) -> LeaseGrant | None:
        grant = self._grant
        if grant is None:
            return None
        value = _encode(self.holder, grant.token)
        started = self._clock()
        ok = await self.store.compare_and_set(self._key, value, value, self.ttl_s)
        return self._granted(grant.token, started) if ok else self._lost()

    async def _claim(self) -> LeaseGrant | None:
        """Claim, then number: the token is taken only while the key already holds our claim, so a
        holder that stalls between the two can never end up with a token below a later holder's
        (numbering first would let an old token win a lease after a newer one was granted)."""
        current = await self.store.get(self._key)
        if current is not None and current != _RELEASED:
            return None
        pending = _encode(self.holder, _PENDING_TOKEN)
        started = self._clock()
        if current is None:
            claimed = await self.store.set_if_absent(self._key, pending, self.ttl_s)
        else:
            claimed = await self.store.compare_and_set(self._key, _RELEASED, pending, self.ttl_s)
        if not claimed:
            return None
        token = await take_token(self.store, self.name)
        ok = await self.store.compare_and_set(self._key, pending, _encode(self.holder, token), self.ttl_s)
        # The TTL was first set at the claim: the conservative expiry counts from there.
        return self._granted(token, started) if ok else self._lost()

    def _granted(self, token: int, started: float) -> LeaseGrant:
        self._grant = LeaseGrant(self.holder, token, started + self.ttl_s)
        return self._grant

    def _lost(self) -> LeaseGrant | None:
        self._grant = None
        return None
