"""S3ObjectStorage: MinIO, SeaweedFS or AWS S3.

Two paths. Objects (put, get, head, delete, list) go over aiohttp with our own SigV4 signing
(``s3_http``, ``sigv4``): botocore's ~2.5 ms of CPU per request made bulk copies crawl. The control
plane (bucket, lifecycle, presigned URLs, ping) stays on boto3, which is blocking, so those calls run
on a small dedicated thread pool (not the loop's default executor, which other code shares): a slow
S3 cannot starve unrelated ``to_thread`` work. Both paths report errors the same way (``_error``).

Failure policy: short connect/read timeouts and two attempts, so a dead server costs about a second
and surfaces as ``StoreUnavailable`` (with the endpoint, password masked) that callers degrade on.
Nothing is cached about the server's health; a call reconnects when its connection is gone, so the
store recovers on its own as soon as the server is back.

Addressing is path-style by default (``http://host/bucket/key``): MinIO and SeaweedFS need it, and it
works on AWS too; ``addressing_style="virtual"`` puts the bucket in the host name instead. Lifecycle:
see ``ensure_bucket``.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import functools
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from voxshift.core.masking import mask_url
from voxshift.errors import ConfigError, InvalidRequest, NotFound, StoreUnavailable, VoxshiftError
from voxshift.stores.objects import s3_http, signing
from voxshift.stores.objects.base import (
    DEFAULT_PAGE_SIZE,
    V2_LIFECYCLE,
    BucketReport,
    LifecycleRule,
    ObjectInfo,
)
from voxshift.stores.objects.keys import (
    encode_metadata,
    validate_bucket,
    validate_content_type,
    validate_metadata,
)

log = logging.getLogger("voxshift.stores.objects")

T = TypeVar("T")
RULE_ID_PREFIX = "voxshift-"
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_AUTH = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_NO_CREDENTIALS = (
    "no S3 credentials: set VOXSHIFT_STORAGE_ACCESS_KEY and VOXSHIFT_STORAGE_SECRET_KEY "
    "(or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
)
_NO_LIFECYCLE = frozenset({"NoSuchLifecycleConfiguration"})
# What S3 look-alikes answer when they do not implement bucket lifecycle (besides a 501).
_REFUSALS = frozenset({"NotImplemented", "MalformedXML", "InvalidRequest", "InvalidArgument"})
SEAWEEDFS_NOTE = (
    "SeaweedFS keeps the lifecycle rules (GetBucketLifecycleConfiguration returns them) but `weed server` "
    "does not delete anything by itself: expiry runs only in the s3_lifecycle job of `weed admin` + "
    "`weed worker`; without them temp/ and audio/ objects stay until deleted"
)


class S3ObjectStorage:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        lifecycle: Sequence[LifecycleRule] = V2_LIFECYCLE,
        addressing_style: str = "path",
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 10.0,
        max_attempts: int = 2,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_workers: int = 8,
        max_connections: int = 32,
    ) -> None:
        self.bucket = validate_bucket(bucket)
        self.region = region
        self.endpoint_url = endpoint_url
        self._where = mask_url(endpoint_url or f"https://s3.{region}.amazonaws.com")
        self._lifecycle = tuple(lifecycle)
        self._page_size = max(1, min(page_size, DEFAULT_PAGE_SIZE))
        config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_workers,
            # We send Content-MD5 ourselves; the newer CRC trailers are not understood by every
            # MinIO/SeaweedFS release still in service.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="voxshift-s3")
        self._http = s3_http.S3Http(
            endpoint_url or f"https://s3.{region}.amazonaws.com",
            self.bucket,
            region=region,
            virtual_host=addressing_style == "virtual",
            # The chain boto3 already resolved for the client: explicit keys, AWS_* variables, ~/.aws.
            credentials=session.get_credentials(),
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_attempts=max_attempts,
            max_connections=max_connections,
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"S3ObjectStorage(bucket={self.bucket!r}, endpoint={self._where!r})"

    # --- plumbing ---------------------------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, **kwargs))
        except botocore.exceptions.ClientError as exc:
            raise self._client_error(exc, kwargs.get("Key")) from None
        except botocore.exceptions.NoCredentialsError:
            raise ConfigError(_NO_CREDENTIALS) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._unreachable(str(exc)) from None
        except RuntimeError:
            if self._closed:  # the pool refuses work after aclose()
                raise StoreUnavailable("object storage client is closed") from None
            raise

    async def _send(
        self,
        method: str,
        key: str | None,
        *,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> s3_http.Reply:
        """A data-path request for ``key`` (None: the bucket), failures mapped as ``_call`` maps them."""
        path = self._http.key_path(key) if key is not None else self._http.bucket_path
        try:
            return await self._http.request(method, path, params=params, headers=headers, body=body)
        except s3_http.S3Error as exc:
            raise self._error(exc.code, exc.status, exc.message, key) from None
        except s3_http.NoCredentials:
            raise ConfigError(_NO_CREDENTIALS) from None
        except s3_http.Unreachable as exc:
            raise self._unreachable(str(exc)) from None
        except s3_http.ClientClosed:
            raise StoreUnavailable("object storage client is closed") from None

    def _unreachable(self, detail: str) -> StoreUnavailable:
        # Connection refused/reset, timeouts, DNS: the server is not there right now. The client's
        # text may repeat the endpoint URL, so it is masked like ours.
        return StoreUnavailable(f"object storage at {self._where} is unreachable: {mask_url(detail)}")

    async def _call_tolerating(
        self, codes: frozenset[str], fn: Callable[..., dict[str, Any]], /, **kwargs: Any
    ) -> tuple[dict[str, Any], str | None]:
        """Like ``_call`` but an error whose code is in ``codes`` (or a 501) comes back as its text."""

        def run() -> tuple[dict[str, Any], str | None]:
            try:
                return fn(**kwargs), None
            except botocore.exceptions.ClientError as exc:
                error = exc.response.get("Error", {})
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if error.get("Code") in codes or status == 501:
                    return {}, f"{error.get('Code') or status}: {error.get('Message') or 'no message'}"
                raise

        return await self._call(run)

    def _client_error(self, exc: botocore.exceptions.ClientError, key: str | None) -> VoxshiftError:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return self._error(str(error.get("Code", "")), int(status or 0), error.get("Message"), key)

    def _error(self, code: str, status: int, message: str | None, key: str | None) -> VoxshiftError:
        detail = f"{code or status}: {message or 'no message'}"
        if code == "NoSuchBucket":
            return StoreUnavailable(
                f"bucket {self.bucket!r} does not exist at {self._where}; run ensure_bucket() first",
                code="bucket_missing",
            )
        if code in _NOT_FOUND or status == 404:
            return NotFound(f"object {key!r} not found in bucket {self.bucket!r}", param="key")
        if code in _AUTH or status in (401, 403):
            return StoreUnavailable(
                f"object storage at {self._where} refused our credentials ({detail}); check "
                "VOXSHIFT_STORAGE_ACCESS_KEY / VOXSHIFT_STORAGE_SECRET_KEY",
                code="store_auth_failed",
            )
        if status >= 500 or code in s3_http.BUSY_CODES:
            return StoreUnavailable(f"object storage at {self._where} failed ({detail})")
        return InvalidRequest(f"object storage refused the request ({detail})", param="key")

    # --- objects ----------------------------------------------------------------------------------
    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        body = bytes(data)
        meta = validate_metadata(metadata)
        digest = hashlib.md5(body, usedforsecurity=False)
        headers = {
            "Content-Type": validate_content_type(content_type),
            "Content-MD5": base64.b64encode(digest.digest()).decode("ascii"),
        }
        # The headers boto3 sent for Metadata=encode_metadata(meta): objects read the same either way.
        headers.update({f"x-amz-meta-{name}": value for name, value in encode_metadata(meta).items()})
        reply = await self._send("PUT", _check_key(key), headers=headers, body=body)
        return ObjectInfo(
            key=key,
            size=len(body),
            etag=reply.headers.get("ETag", "").strip('"') or digest.hexdigest(),
            last_modified=s3_http.server_date(reply),
            content_type=content_type,
            metadata=meta,
        )

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        reply = await self._send("GET", _check_key(key))
        return reply.body, s3_http.object_info(key, reply, size=len(reply.body))

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            reply = await self._send("HEAD", _check_key(key))
        except NotFound:
            return None
        return s3_http.object_info(key, reply, size=int(reply.headers.get("Content-Length") or 0))

    async def delete(self, key: str) -> bool:
        # S3 answers 204 whether or not the key existed, so ask first to report honestly.
        existed = await self.head(key) is not None
        await self._send("DELETE", _check_key(key))
        return existed

    async def list(self, prefix: str = "", *, page_size: int | None = None) -> AsyncIterator[ObjectInfo]:
        size = max(1, min(page_size or self._page_size, DEFAULT_PAGE_SIZE))
        token: str | None = None
        while True:
            params = [
                ("list-type", "2"),
                ("prefix", prefix),
                ("max-keys", str(size)),
                ("encoding-type", "url"),
            ]
            if token:
                params.append(("continuation-token", token))
            items, token = s3_http.parse_list((await self._send("GET", None, params=params)).body)
            for item in items:
                yield item
            if not token:
                return

    async def signed_url(self, key: str, expires_s: int) -> str:
        url: str = await self._call(
            self._client.generate_presigned_url,
            ClientMethod="get_object",
            Params={"Bucket": self.bucket, "Key": _check_key(key)},
            ExpiresIn=signing.check_expires_s(expires_s),
        )
        return url

    # --- bucket -----------------------------------------------------------------------------------
    async def ensure_bucket(self) -> BucketReport:
        """Create the bucket when missing, then make sure our lifecycle rules are on it.

        Rules are identified by ID (``voxshift-<prefix>``); rules someone else put on the bucket are
        kept. When the server refuses lifecycle configuration (some S3 look-alikes answer
        NotImplemented), the bucket is still usable: the report says ``lifecycle_applied=False`` and
        why, and a warning is logged, because the seed's retention then is not enforced.
        """
        created = await self._create_if_missing()
        if not self._lifecycle:
            return BucketReport(self.bucket, created, False, (), "no lifecycle rules requested")
        current, refused = await self._raw_rules()
        mine = [_rule_document(rule) for rule in self._lifecycle]
        server = ""
        if refused is None and [r for r in current if _ours(r)] != mine:
            response, refused = await self._call_tolerating(
                _REFUSALS,
                self._client.put_bucket_lifecycle_configuration,
                Bucket=self.bucket,
                LifecycleConfiguration={"Rules": [r for r in current if not _ours(r)] + mine},
            )
            server = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", "")
        if refused is not None:
            note = f"the server refused lifecycle configuration ({refused}); objects will not expire"
            log.warning("bucket %s at %s: %s", self.bucket, self._where, note)
            return BucketReport(self.bucket, created, False, (), note)
        rules = tuple(await self.lifecycle_rules())
        if not server:
            server = await self._server_name()
        if "seaweedfs" not in server.lower():
            return BucketReport(self.bucket, created, True, rules)
        log.warning("bucket %s at %s: %s", self.bucket, self._where, SEAWEEDFS_NOTE)
        return BucketReport(self.bucket, created, True, rules, SEAWEEDFS_NOTE)

    async def _create_if_missing(self) -> bool:
        try:
            await self._call(self._client.head_bucket, Bucket=self.bucket)
            return False
        except NotFound:
            pass
        extra: dict[str, Any] = {}
        if self.region != "us-east-1":  # AWS refuses an explicit us-east-1 constraint
            extra["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        # Another worker may create it between our HEAD and CREATE; that is success too.
        _, raced = await self._call_tolerating(
            frozenset({"BucketAlreadyOwnedByYou"}), self._client.create_bucket, Bucket=self.bucket, **extra
        )
        return raced is None

    async def _raw_rules(self) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """The bucket's rule documents ([] when it has none) and, if the server refuses the call, why."""
        response, refused = await self._call_tolerating(
            _REFUSALS | _NO_LIFECYCLE, self._client.get_bucket_lifecycle_configuration, Bucket=self.bucket
        )
        if refused is not None and refused.split(":")[0] in _NO_LIFECYCLE:
            return [], None
        rules: builtins.list[dict[str, Any]] = response.get("Rules", [])
        return rules, refused

    async def lifecycle_rules(self) -> builtins.list[LifecycleRule]:
        out = []
        for rule in (await self._raw_rules())[0]:
            days = rule.get("Expiration", {}).get("Days")
            if rule.get("Status") != "Enabled" or not days:
                continue
            where = rule.get("Filter", {})
            prefix = where.get("Prefix", where.get("And", {}).get("Prefix", rule.get("Prefix", "")))
            out.append(LifecycleRule(prefix, int(days)))
        return out

    async def _server_name(self) -> str:
        response = await self._call(self._client.head_bucket, Bucket=self.bucket)
        return str(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", ""))

    async def ping(self) -> None:
        try:
            await self._call(self._client.head_bucket, Bucket=self.bucket)
        except NotFound:
            raise StoreUnavailable(
                f"bucket {self.bucket!r} does not exist at {self._where}; run ensure_bucket() first",
                code="bucket_missing",
            ) from None

    async def aclose(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()
        await self._http.aclose()


def _rule_document(rule: LifecycleRule) -> dict[str, Any]:
    return {
        "ID": f"{RULE_ID_PREFIX}{rule.prefix.strip('/') or 'all'}",
        "Filter": {"Prefix": rule.prefix},
        "Status": "Enabled",
        "Expiration": {"Days": rule.days},
    }


def _ours(rule: Mapping[str, Any]) -> bool:
    return str(rule.get("ID", "")).startswith(RULE_ID_PREFIX)


def _check_key(key: str) -> str:
    try:
        size = len(key.encode("utf-8")) if isinstance(key, str) else 0
    except UnicodeEncodeError:  # lone surrogates cannot go into a URL
        size = 0
    if not 1 <= size <= 1024:
        raise InvalidRequest("object key must be 1-1024 bytes of text", param="key")
    return key
