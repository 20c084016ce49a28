"""Signed URLs for the local object store: HMAC-SHA256 over (bucket, key, expiry).

A URL is ``/v2/objects/{bucket}/{key}?expires=<unix seconds>&sig=<hex>``. The expiry is inside the
signed message, so changing it (or the bucket, or one character of the key) invalidates the
signature; the comparison is constant-time. Fields are length-prefixed rather than joined with a
separator because keys may contain any character.

Also the signing-key file: generated once per data dir, 0600, shared by every worker process that
uses that data dir so a URL signed by one is accepted by another.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from urllib.parse import quote

from voxshift.errors import ConfigError, Forbidden, InvalidRequest

log = logging.getLogger("voxshift.stores.objects")

URL_PREFIX = "/v2/objects"
SIGNING_KEY_FILE = "signing.key"
MAX_EXPIRES_S = 7 * 86400  # the same ceiling as S3 SigV4 presigned URLs
# How far a signer's clock may run ahead of the verifier's before a URL counts as over-long.
CLOCK_SKEW_S = 60
_DOMAIN = b"voxshift-object-url-v1"
_SIG_RE = re.compile(r"^[0-9a-f]{64}$")
_MIN_KEY_BYTES = 16


def _field(value: str | int) -> bytes:
    raw = str(value).encode("utf-8")
    return str(len(raw)).encode("ascii") + b":" + raw


def signature(signing_key: bytes, bucket: str, key: str, expires: int) -> str:
    message = _DOMAIN + _field(bucket) + _field(key) + _field(expires)
    return hmac.new(signing_key, message, hashlib.sha256).hexdigest()


def signed_path(signing_key: bytes, bucket: str, key: str, expires: int) -> str:
    """The URL path + query for (bucket, key) valid until the unix time ``expires``."""
    sig = signature(signing_key, bucket, key, expires)
    # quote() keeps "/" so the key reads naturally; everything else (incl. a literal "%") is escaped
    # once and decoded once by the server's path parsing.
    return f"{URL_PREFIX}/{quote(bucket, safe='')}/{quote(key, safe='/')}?expires={expires}&sig={sig}"


def verify(
    signing_key: bytes, bucket: str, key: str, expires: str | None, sig: str | None, now: float
) -> None:
    """Raise ``Forbidden`` unless ``sig`` signs (bucket, key, expires) and ``expires`` is in the future
    but at most ``MAX_EXPIRES_S`` (+ ``CLOCK_SKEW_S``) away.

    The signature is checked before the expiry so a forged URL never learns whether its time was valid.
    The lifetime bound holds even for a correctly signed URL: the signers never issue longer ones
    (``check_expires_s``), so one that reaches further was minted outside them (a leaked key, a
    hand-made link) and must not stay valid for years.
    """
    if expires is None or sig is None:
        raise Forbidden("this URL is not signed: expected expires and sig parameters", code="unsigned_url")
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12 or not _SIG_RE.fullmatch(sig):
        raise Forbidden("the URL signature does not match", code="signature_mismatch")
    expected = signature(signing_key, bucket, key, int(expires))
    if not hmac.compare_digest(expected, sig):
        raise Forbidden("the URL signature does not match", code="signature_mismatch")
    if int(expires) <= now:
        raise Forbidden("this signed URL has expired; ask for a new one", code="url_expired")
    if int(expires) > now + MAX_EXPIRES_S + CLOCK_SKEW_S:
        raise Forbidden(
            f"this signed URL claims to stay valid longer than the maximum of {MAX_EXPIRES_S} s "
            f"({MAX_EXPIRES_S // 86400} days); ask for a new one",
            code="url_lifetime_exceeded",
        )


def check_expires_s(expires_s: int) -> int:
    if isinstance(expires_s, bool) or not isinstance(expires_s, int) or not 1 <= expires_s <= MAX_EXPIRES_S:
        raise InvalidRequest(f"expires_s must be 1..{MAX_EXPIRES_S} seconds", param="expires_s")
    return expires_s


def load_signing_key(data_dir: Path) -> bytes:
    """Alias of ``load_or_create_signing_key`` (the name ``services/backends.py`` imports)."""
    return load_or_create_signing_key(data_dir)


def load_or_create_signing_key(data_dir: Path) -> bytes:
    """The key in ``<data_dir>/signing.key``, created (32 random bytes, hex, mode 0600) when absent.

    Creation is atomic and race-free between processes: the key is written to a private temp file and
    hard-linked into place, which fails if another process got there first (then we read theirs).
    """
    path = data_dir / SIGNING_KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{SIGNING_KEY_FILE}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the signing key file {path}: {exc.strerror or exc}") from None
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the signing key file {path}: {exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Anyone who can read it can mint URLs for every object; say so rather than silently chmod.
        log.warning("signing key file %s is readable by group/others; chmod 600 it", path)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"signing key file {path} must hold hex digits; delete it to regenerate") from None
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigError(f"signing key file {path} is too short (need >= {_MIN_KEY_BYTES} bytes)")
    return key


def key_bytes(secret: str | bytes) -> bytes:
    """A configured key (``VOXSHIFT_SIGNING_KEY``) as HMAC key bytes; refuses trivially short ones."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(raw) < _MIN_KEY_BYTES:
        raise ConfigError(f"VOXSHIFT_SIGNING_KEY must be at least {_MIN_KEY_BYTES} bytes long")
    return raw
