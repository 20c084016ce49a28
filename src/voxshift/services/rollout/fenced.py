"""A state document guarded by fencing tokens: a stale leader cannot overwrite a newer writer.

The stored bytes are ``b"{fence}\\n"`` followed by the caller's value, where ``fence`` is the token
of the last writer. A write compares the exact stored bytes (compare-and-set) and refuses a token
older than the stored fence, so once a newer token has written (or claimed the document) every
older token is out for good. The protocol leaders and the CLI follow is in
:mod:`voxshift.services.rollout.lease`.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxshift.errors import VersionConflict, VoxshiftError
from voxshift.services.rollout.lease import take_token
from voxshift.stores.state import StateStore


@dataclass(frozen=True)
class Stored:
    """One read of the document: ``value`` None when nothing was written yet (``fence`` 0, or the
    token of a leader that claimed it); ``raw`` is the exact stored bytes, the expected value of
    the next compare-and-set."""

    value: bytes | None
    fence: int
    raw: bytes | None


class StaleLeader(VersionConflict):
    """A write under a token older than the one that last wrote the document. Re-take a token
    (``Lease.refence`` or ``take_token``), re-read and continue from what is stored."""

    code = "stale_leader"

    def __init__(self, key: str, token: int, fence: int) -> None:
        super().__init__(f"{key}: token {token} is older than the stored fence {fence}; re-read and re-fence")
        self.token = token
        self.fence = fence


class FencedDocument:
    """The document at ``key`` in ``store``; tokens come from the fence counter of ``fence_name``."""

    def __init__(self, store: StateStore, key: str, *, fence_name: str = "rollout") -> None:
        self.store = store
        self.key = key
        self.fence_name = fence_name

    def __repr__(self) -> str:
        return f"FencedDocument({self.key!r})"

    async def next_token(self) -> int:
        """A one-shot token for an operator's write (the CLI); newer than every leader's so far."""
        return await take_token(self.store, self.fence_name)

    async def read(self) -> Stored:
        raw = await self.store.get(self.key)
        if raw is None:
            return Stored(None, 0, None)
        header, sep, value = raw.partition(b"\n")
        if not sep or not header.isdigit():
            raise VoxshiftError(
                f"state document {self.key!r} is not a fenced document (no fence header)",
                code="corrupt_state",
            )
        return Stored(value or None, int(header), raw)

    async def write(self, value: bytes, *, token: int, expected: Stored) -> bool:
        """Store ``value`` under ``token`` if nothing changed since ``expected`` was read.

        True: written. False: the document changed since ``expected`` (re-read, re-decide).
        Raises :class:`StaleLeader` when a newer token has written it.
        """
        _check_token(token)
        if not value:
            raise ValueError("an empty value cannot be written: it reads back as no document")
        if expected.fence > token:
            raise StaleLeader(self.key, token, expected.fence)
        if await self.store.compare_and_set(self.key, expected.raw, _header(token) + value):
            return True
        current = await self.read()
        if current.fence > token:
            raise StaleLeader(self.key, token, current.fence)
        return False

    async def claim(self, token: int) -> Stored:
        """Stamp the document with ``token`` without changing its value, and return it as stored.

        A new leader does this before acting: until it writes, a stale leader's token may still
        match the stored fence. A document never written is claimed too (a bare fence, read back
        as value None), so not even the first write can come from a stale leader.
        Raises StaleLeader when a newer token already wrote.
        """
        _check_token(token)
        while True:
            current = await self.read()
            if current.fence > token:
                raise StaleLeader(self.key, token, current.fence)
            if current.fence == token:
                return current
            raw = _header(token) + (current.value or b"")
            if await self.store.compare_and_set(self.key, current.raw, raw):
                return Stored(current.value, token, raw)


def _check_token(token: int) -> None:
    if token < 1:
        raise ValueError(f"fencing tokens start at 1, got {token}")


def _header(token: int) -> bytes:
    return b"%d\n" % token
