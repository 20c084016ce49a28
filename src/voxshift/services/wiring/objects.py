"""What the HTTP layer needs of object storage, so that api/ never reaches into stores/: the store
type a signed URL is served from, and the embedded store's signed-URL scheme (its path prefix, its
check, its key).
"""

from __future__ import annotations

from collections.abc import Callable

from voxshift.config import Settings
from voxshift.stores.objects import ObjectStorage, resolve_signing_key
from voxshift.stores.objects.signing import URL_PREFIX, verify

__all__ = ["URL_PREFIX", "ObjectStorage", "StorageLookup", "signing_key", "verify_signed_url"]

# bucket -> the store serving it here, or None for a bucket this process does not serve.
StorageLookup = Callable[[str], ObjectStorage | None]


def verify_signed_url(
    signing_key: bytes, bucket: str, key: str, expires: str | None, sig: str | None, now: float
) -> None:
    """Raise ``Forbidden`` unless (bucket, key, expires, sig) is a valid, unexpired signed URL."""
    verify(signing_key, bucket, key, expires, sig, now)


def signing_key(settings: Settings) -> bytes:
    """``VOXSHIFT_SIGNING_KEY`` when set, else the key generated once in ``<data_dir>/signing.key``."""
    return resolve_signing_key(settings)
