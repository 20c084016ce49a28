"""AWS Signature Version 4 for S3 requests, header form; pure computation, no I/O.

botocore spends ~2.5 ms of CPU on each request, most of it outside the signature itself; signing
here costs a few microseconds. The reference is botocore's ``S3SigV4Auth``: ``tests/unit/test_sigv4.py``
checks that both produce the same ``Authorization`` header.

S3 differs from the generic SigV4 rules in two ways that matter here: the path in the canonical
request is the URI-encoded path exactly as sent (no normalisation, no second encoding), and the
payload hash may be ``UNSIGNED-PAYLOAD`` (a PUT's integrity then rests on its Content-MD5).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Credentials(Protocol):
    """What is read from a key pair; botocore's ``ReadOnlyCredentials`` fits as it is."""

    @property
    def access_key(self) -> str: ...

    @property
    def secret_key(self) -> str: ...

    @property
    def token(self) -> str | None: ...


@dataclass(frozen=True)
class StaticCredentials:
    access_key: str
    secret_key: str
    token: str | None = None


def quote_path(path: str) -> str:
    """A key or path as S3 wants it on the wire and in the canonical request.

    Every UTF-8 byte except the unreserved ``A-Za-z0-9-_.~`` and ``/`` is percent-encoded: a key
    holding ``+``, ``%``, ``?``, ``#`` or a space must reach S3 as those characters, never as a
    query string or a fragment. Raises ``UnicodeEncodeError`` for lone surrogates.
    """
    return quote(path, safe="/~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """The query string, sorted by encoded name then value; send it exactly as returned."""
    pairs = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in params)
    return "&".join(f"{name}={value}" for name, value in pairs)


def amz_date(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


class Signer:
    """Signs S3 requests for one region; safe to share between threads and event loops."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        # The derived key depends on the secret, the day and the region only, so one entry serves
        # every request of a day: four HMACs saved per request.
        self._cached: tuple[str, str, bytes] | None = None

    def signing_key(self, secret_key: str, day: str) -> bytes:
        cached = self._cached
        if cached is not None and cached[0] == secret_key and cached[1] == day:
            return cached[2]
        key = _hmac(("AWS4" + secret_key).encode("utf-8"), day)
        for part in (self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        self._cached = (secret_key, day, key)
        return key

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        credentials: Credentials,
        when: datetime,
        payload_hash: str = UNSIGNED_PAYLOAD,
    ) -> dict[str, str]:
        """The headers to send: ``headers`` plus host, date, payload hash, token and Authorization.

        ``path`` is already URI-encoded (``quote_path``) and ``query`` already canonical
        (``canonical_query``), as they go on the wire. Every header in ``headers`` is signed, so pass
        only those S3 should vouch for (Content-Type, Content-MD5, x-amz-meta-*), not the HTTP
        client's own (User-Agent, Accept, Content-Length). ``when`` must be UTC.
        """
        stamp = amz_date(when)
        day = stamp[:8]
        out = {name.lower(): value for name, value in headers.items()}
        out["host"] = host
        out["x-amz-date"] = stamp
        out["x-amz-content-sha256"] = payload_hash
        if credentials.token:
            out["x-amz-security-token"] = credentials.token
        names = sorted(out)
        signed = ";".join(names)
        canonical = "\n".join(
            (
                method.upper(),
                path,
                query,
                "".join(f"{name}:{' '.join(out[name].split())}\n" for name in names),
                signed,
                payload_hash,
            )
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join((ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
        signature = hmac.new(
            self.signing_key(credentials.secret_key, day), to_sign.encode("utf-8"), hashlib.sha256
        ).hexdigest()
        out["authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return out


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
