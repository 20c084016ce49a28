"""The S3 data path (GET, PUT, HEAD, DELETE, list) over aiohttp, signed by ``sigv4``.

Why not boto3 here: botocore costs ~2.5 ms of CPU per request and a pool thread per request in
flight, which capped a GET+PUT copy of small objects at ~200 objects/s on two cores; the sunset
migration copies 10k of them. The control plane (bucket, lifecycle, presigned URLs) stays on boto3.

An ``aiohttp.ClientSession`` belongs to the event loop it was made in, but one store may serve several
loops over its life (tests, a CLI calling ``asyncio.run`` twice), so there is one session per loop,
made on first use. The session of a loop that has closed cannot be closed through it any more: it
is only marked closed (so aiohttp reports no leak) and its sockets go with the garbage collector.

Failure policy as with boto3 before: short connect/read timeouts, ``max_attempts`` tries in all for
connection errors and 5xx/busy answers (every request here is idempotent) with a short backoff, so a
refused connection costs well under a second and a silent server ``max_attempts`` timeouts.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import unquote_plus, urlsplit
from xml.etree import ElementTree

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from voxshift.stores.objects.base import ObjectInfo
from voxshift.stores.objects.keys import decode_metadata
from voxshift.stores.objects.sigv4 import Credentials, Signer, canonical_query, quote_path

BUSY_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized"}
)
_META = "x-amz-meta-"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class S3Error(Exception):
    """S3 answered with an error status; ``code`` is from the XML body, else the status as text."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code or status}: {message or 'no message'}")
        self.status = status
        self.code = code
        self.message = message


class Unreachable(Exception):
    """No answer at all: connection refused or reset, a timeout, DNS."""


class NoCredentials(Exception):
    pass


class CredentialSource(Protocol):
    """botocore's ``Credentials``: refreshable ones renew themselves when frozen."""

    def get_frozen_credentials(self) -> Credentials: ...


class ClientClosed(Exception):
    pass


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    raw_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class S3Http:
    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        *,
        region: str,
        virtual_host: bool,
        credentials: CredentialSource | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_attempts: int,
        max_connections: int,
    ) -> None:
        parts = urlsplit(endpoint_url)
        host = parts.netloc.rpartition("@")[2].lower()
        if parts.port is not None and _DEFAULT_PORTS.get(parts.scheme) == parts.port:
            host = host.rpartition(":")[0]  # what botocore signs and aiohttp sends as Host
        self.host = f"{bucket}.{host}" if virtual_host else host
        self._origin = f"{parts.scheme}://{self.host}"
        self._bucket_path = parts.path.rstrip("/") + ("" if virtual_host else "/" + quote_path(bucket))
        self._credentials = credentials
        self._signer = Signer(region)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._max_attempts = max(1, max_attempts)
        self._max_connections = max_connections
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        self._closed = False

    def key_path(self, key: str) -> str:
        return f"{self._bucket_path}/{quote_path(key)}"

    @property
    def bucket_path(self) -> str:
        return self._bucket_path or "/"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Iterable[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        """One request with retries; a 2xx reply, else ``S3Error`` / ``Unreachable``."""
        credentials = self._credentials.get_frozen_credentials() if self._credentials else None
        if credentials is None or not credentials.access_key or not credentials.secret_key:
            raise NoCredentials
        query = canonical_query(params)
        url = URL(self._origin + path + (f"?{query}" if query else ""), encoded=True)
        attempt = 1
        while True:
            signed = self._signer.sign(
                method, self.host, path, query, headers or {}, credentials, datetime.now(UTC)
            )
            try:
                reply = await self._send(method, url, signed, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt >= self._max_attempts:
                    raise Unreachable(_describe(exc, url)) from None
            else:
                if reply.status < 300:
                    return reply
                error = _error_of(reply)
                if attempt >= self._max_attempts or not (error.status >= 500 or error.code in BUSY_CODES):
                    raise error
            await asyncio.sleep(random.uniform(0.02, 0.1) * 2 ** (attempt - 1))
            attempt += 1

    async def _send(self, method: str, url: URL, headers: dict[str, str], body: bytes | None) -> Reply:
        session = await self._session()
        async with session.request(method, url, headers=headers, data=body, allow_redirects=False) as resp:
            data = await resp.read()
            return Reply(resp.status, resp.headers, resp.raw_headers, data)

    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is not None:
            return session
        if self._closed:
            raise ClientClosed
        session = self._sessions[loop] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            timeout=self._timeout,
            # Bytes as stored: an object saved with Content-Encoding: gzip must not come back inflated.
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
        )
        for owner in [other for other in self._sessions if other.is_closed()]:
            # Its loop is gone: close() only marks it closed (no I/O, nothing to wait for), which
            # keeps aiohttp from reporting an unclosed session when it is collected.
            await self._sessions.pop(owner).close()
        return session

    async def aclose(self) -> None:
        """Close this loop's session; other loops' sessions are closed without waiting on them."""
        self._closed = True
        current = asyncio.get_running_loop()
        sessions, self._sessions = self._sessions, {}
        for owner, session in sessions.items():
            if owner is current or owner.is_closed():
                await session.close()
            elif owner.is_running():  # a loop in another thread
                asyncio.run_coroutine_threadsafe(session.close(), owner)
            else:
                _abandon(session)


def _abandon(session: aiohttp.ClientSession) -> None:
    # A session of a live loop that is not running (an earlier loop kept open by a test runner):
    # its public close() returns an awaitable bound to that loop, which this loop cannot await.
    # The connector's synchronous half closes the sockets (their loop finishes the job if it ever
    # runs again) and marks it closed, so nothing is reported as leaked when it is collected.
    connector = session.connector
    session.detach()
    if connector is not None:
        connector._close()


def _describe(exc: BaseException, url: URL) -> str:
    # Worded as botocore worded these, which is what logs and alerts have seen so far.
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, unroutable, DNS
        what = "Could not connect to the endpoint URL"
    elif isinstance(exc, TimeoutError):
        what = f"{'Connect' if 'connect' in str(exc).lower() else 'Read'} timeout on endpoint URL"
    else:  # reset, closed mid-answer, a truncated body
        what = f"{str(exc) or type(exc).__name__} from endpoint URL"
    return f'{what}: "{url}"'


def _error_of(reply: Reply) -> S3Error:
    code = message = ""
    if reply.body:
        try:
            root = ElementTree.fromstring(reply.body)
        except ElementTree.ParseError:
            pass
        else:
            code = _find(root, "Code")
            message = _find(root, "Message")
    if not code:  # HEAD has no body; a proxy may answer with HTML: botocore then uses the status
        return S3Error(reply.status, str(reply.status), http.client.responses.get(reply.status, ""))
    return S3Error(reply.status, code, message)


def _find(root: ElementTree.Element, name: str) -> str:
    for element in root.iter():
        if element.tag == name or element.tag.endswith("}" + name):
            return element.text or ""
    return ""


def user_metadata(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The ``x-amz-meta-*`` headers by name without the prefix, decoded as Latin-1 like botocore."""
    out = {}
    for name, value in raw_headers:
        text = name.decode("latin-1")
        if text.lower().startswith(_META):
            out[text[len(_META) :]] = value.decode("latin-1").strip(" \t")
    return out


def object_info(key: str, reply: Reply, *, size: int) -> ObjectInfo:
    """What a GET or HEAD says about the object, read as boto3's response fields were before."""
    return ObjectInfo(
        key=key,
        size=size,
        etag=reply.headers.get("ETag", "").strip('"'),
        last_modified=_http_date(reply.headers.get("Last-Modified")) or server_date(reply),
        content_type=reply.headers.get("Content-Type") or "application/octet-stream",
        metadata=decode_metadata(user_metadata(reply.raw_headers)),
    )


def server_date(reply: Reply) -> datetime:
    # PutObject does not return Last-Modified; the server's Date header is the same clock, same second.
    return _http_date(reply.headers.get("Date")) or datetime.now(UTC).replace(microsecond=0)


def _http_date(header: str | None) -> datetime | None:
    if header:
        try:
            return _utc(email.utils.parsedate_to_datetime(header))
        except (TypeError, ValueError):
            pass
    return None


def parse_list(body: bytes) -> tuple[list[ObjectInfo], str | None]:
    """A ListObjectsV2 page: its objects and the continuation token (None on the last page)."""
    root = ElementTree.fromstring(body)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    # Asked for with encoding-type=url (keys may hold characters XML 1.0 cannot carry), as botocore
    # does; decoded only when the server says it encoded them.
    decode = unquote_plus if root.findtext(f"{ns}EncodingType") == "url" else str
    items = [
        ObjectInfo(
            key=decode(item.findtext(f"{ns}Key") or ""),
            size=int(item.findtext(f"{ns}Size") or 0),
            etag=(item.findtext(f"{ns}ETag") or "").strip('"'),
            last_modified=_utc(datetime.fromisoformat(item.findtext(f"{ns}LastModified") or "")),
        )
        for item in root.iterfind(f"{ns}Contents")
    ]
    token = root.findtext(f"{ns}NextContinuationToken")
    return items, (token or None) if root.findtext(f"{ns}IsTruncated") == "true" else None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
