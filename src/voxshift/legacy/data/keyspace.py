"""LegacyKeyspace: read, export and restore the legacy voice keys, on a real Redis or the embedded store.

The legacy keeps its keys in Redis; the embedded ``reference`` legacy writes the same keys, un-namespaced,
into voxshift's state store (SQLite by default). Both are reached through this one protocol, so a backup
or a migration does not care which it talks to.

Safe on a production Redis: ``SCAN`` (never ``KEYS``) and pipelines of one atomic script per key. A key
may expire between the scan and the read; ``export`` then reports None for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from voxshift.core.legacy_layout import KEY_PREFIXES, is_voice_key

# Payload formats: what ``KeyExport.payload`` holds, so a restore knows whether it can read it.
REDIS_DUMP = "redis-dump"  # Redis DUMP serialization: every type, restored only by a Redis RESTORE
CANONICAL = "canonical"  # voxshift.core.legacy_layout.canonical_value: any store can restore it


@dataclass(frozen=True)
class KeyExport:
    """One key as it was when read: enough to put it back exactly, and to compare it across stores.

    ``sha256`` is the digest of the canonical VALUE (``core.legacy_layout.value_digest``), not of the
    payload, so the same value held by Redis and by the embedded store has the same digest.
    ``pttl_ms`` is the remaining time to live in milliseconds, None for a key without expiry.
    """

    key: str
    type: str
    payload: bytes
    payload_format: str
    pttl_ms: int | None
    sha256: str


@runtime_checkable
class LegacyKeyspace(Protocol):
    """The legacy voice keys of one store. ``scan`` never yields a key outside ``match_prefixes``."""

    where: str  # the store's kind and masked location, for messages

    def scan(self, match_prefixes: Sequence[str] = KEY_PREFIXES, *, count: int = 500) -> AsyncIterator[str]:
        """Every live key starting with one of the prefixes, a page at a time."""
        ...

    async def export(self, keys: Sequence[str]) -> list[KeyExport | None]:
        """Each key's export in order; None for a key that no longer exists (expired meanwhile)."""
        ...

    async def restore(self, items: Sequence[KeyExport], *, replace: bool = False) -> None:
        """Write the keys back with the value and the recorded remaining TTL.

        Without ``replace`` a key that already exists is not overwritten and the call raises
        ``Conflict`` naming it (the others are restored).
        """
        ...

    async def delete(self, keys: Sequence[str]) -> int:
        """Delete the keys (legacy voice keys only); return how many existed."""
        ...

    async def aclose(self) -> None: ...


def only_voice_keys(keys: Sequence[str]) -> list[str]:
    """The keys, refusing any that is not legacy voice data: a delete can never reach another key."""
    others = [k for k in keys if not is_voice_key(k)]
    if others:
        raise ValueError(f"not a legacy voice key: {others[0]!r}")
    return list(keys)
