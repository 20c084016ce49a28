"""Object storage: open a bucket-bound store from ``VOXSHIFT_STORAGE_URL``.

Accepted URLs:

* ``file:///absolute/path`` - the embedded store (``LocalObjectStorage``), buckets are folders
  under the path. The default, ``file://<data_dir>/objects``.
* ``s3://[bucket]?endpoint=http://host:port&region=us-east-1`` - MinIO, SeaweedFS or AWS
  (``S3ObjectStorage``). ``endpoint`` is optional (AWS when absent), ``region`` defaults to
  us-east-1, ``addressing=path|virtual`` defaults to path. The bucket in the URL host is optional and
  only informative: the ``bucket`` argument always wins, because one URL serves two buckets (v2's
  ``voice-v2-files`` and the legacy ``voice-files``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

from voxshift.config import Settings
from voxshift.core.masking import mask_url
from voxshift.errors import ConfigError
from voxshift.stores.objects.base import (
    V2_LIFECYCLE,
    BucketReport,
    LifecycleRule,
    ObjectInfo,
    ObjectStorage,
)
from voxshift.stores.objects.local import LocalObjectStorage
from voxshift.stores.objects.signing import key_bytes, load_or_create_signing_key, load_signing_key

log = logging.getLogger("voxshift.stores.objects")

__all__ = [
    "V2_LIFECYCLE",
    "BucketReport",
    "LifecycleRule",
    "LocalObjectStorage",
    "ObjectInfo",
    "ObjectStorage",
    "load_or_create_signing_key",
    "load_signing_key",
    "open_from_settings",
    "open_object_storage",
    "resolve_signing_key",
]

_ALLOWED = "expected file:///absolute/path or s3://[bucket]?endpoint=http://host:port&region=us-east-1"
_S3_PARAMS = {"endpoint", "region", "addressing"}


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"invalid configuration: VOXSHIFT_STORAGE_URL={mask_url(url)!r}: {why}; {_ALLOWED}")


def _secret(value: str | SecretStr | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def open_object_storage(
    url: str,
    bucket: str,
    *,
    access_key: str | SecretStr | None = None,
    secret_key: str | SecretStr | None = None,
    signing_key: bytes | str | SecretStr | None = None,
    lifecycle: Sequence[LifecycleRule] = V2_LIFECYCLE,
    public_base_url: str = "",
) -> ObjectStorage:
    """A store bound to ``bucket``. Raises ``ConfigError`` (one line) for a URL it cannot use.

    ``signing_key`` is required for ``file://`` (it signs the local URLs; see
    ``resolve_signing_key``) and ignored for S3, which presigns with the access key.
    ``lifecycle`` defaults to the v2 rules; pass ``()`` for a bucket whose retention is not ours
    (the legacy ``voice-files``), so ``ensure_bucket`` leaves its configuration alone.
    Credentials left as None fall back to boto3's chain (``AWS_ACCESS_KEY_ID`` etc.).
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise _bad(url, "a file URL has no host, query or fragment")
        root = Path(unquote(parts.path))
        if not parts.path or not root.is_absolute():
            raise _bad(url, "the path must be absolute (three slashes: file:///...)")
        if signing_key is None:
            raise ConfigError(
                "the local object store needs a signing key for its URLs: set VOXSHIFT_SIGNING_KEY or "
                "use resolve_signing_key(settings) to load the generated one from the data dir"
            )
        raw = _secret(signing_key) if not isinstance(signing_key, bytes) else signing_key
        assert raw is not None
        return LocalObjectStorage(
            root, bucket, signing_key=key_bytes(raw), lifecycle=lifecycle, public_base_url=public_base_url
        )
    if parts.scheme == "s3":
        return _open_s3(url, parts.netloc, parts.query, bucket, access_key, secret_key, lifecycle)
    raise _bad(url, f"unsupported scheme {parts.scheme or '(none)'!r}")


def _open_s3(
    url: str,
    host_bucket: str,
    query: str,
    bucket: str,
    access_key: str | SecretStr | None,
    secret_key: str | SecretStr | None,
    lifecycle: Sequence[LifecycleRule],
) -> ObjectStorage:
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _bad(url, "the query string is malformed") from None
    unknown = sorted(set(params) - _S3_PARAMS)
    if unknown:
        raise _bad(url, f"unknown parameter(s) {', '.join(unknown)} (allowed: endpoint, region, addressing)")
    if any(len(values) > 1 for values in params.values()):
        raise _bad(url, "each parameter may appear once")
    endpoint = params.get("endpoint", [None])[0] or None
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname or ep.path not in ("", "/"):
            raise _bad(url, f"endpoint {mask_url(endpoint)!r} must be http(s)://host[:port] without a path")
        try:
            ep.port  # noqa: B018 - a bad port raises here rather than inside boto3 later
        except ValueError:
            raise _bad(url, "the endpoint port is not a number from 1 to 65535") from None
    region = params.get("region", ["us-east-1"])[0] or "us-east-1"
    addressing = params.get("addressing", ["path"])[0]
    if addressing not in ("path", "virtual"):
        raise _bad(url, "addressing must be path or virtual")
    if host_bucket and host_bucket != bucket:
        log.info("VOXSHIFT_STORAGE_URL names bucket %r; using %r as asked by the caller", host_bucket, bucket)
    from voxshift.stores.objects.s3 import S3ObjectStorage  # boto3 loads only when S3 is configured

    return S3ObjectStorage(
        bucket,
        endpoint_url=endpoint.rstrip("/") if endpoint else None,
        region=region,
        access_key=_secret(access_key),
        secret_key=_secret(secret_key),
        lifecycle=lifecycle,
        addressing_style=addressing,
    )


def resolve_signing_key(settings: Settings) -> bytes:
    """``VOXSHIFT_SIGNING_KEY`` when set, else the key generated once in ``<data_dir>/signing.key``."""
    if settings.signing_key is not None:
        return key_bytes(settings.signing_key.get_secret_value())
    return load_or_create_signing_key(settings.data_dir)


def open_from_settings(
    settings: Settings,
    bucket: str | None = None,
    *,
    lifecycle: Sequence[LifecycleRule] = V2_LIFECYCLE,
    public_base_url: str = "",
) -> ObjectStorage:
    """The store for ``bucket`` (default ``VOICE_V2_MINIO_BUCKET``) as the settings configure it."""
    url = settings.resolved_storage_url
    return open_object_storage(
        url,
        bucket or settings.voice_v2_minio_bucket,
        access_key=settings.storage_access_key,
        secret_key=settings.storage_secret_key,
        signing_key=resolve_signing_key(settings) if url.startswith("file:") else None,
        lifecycle=lifecycle,
        public_base_url=public_base_url,
    )
