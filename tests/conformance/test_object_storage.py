"""ObjectStorage conformance: the same behaviour from the local store and from a real S3 (SeaweedFS).

Every test gets a fresh bucket. The S3 half runs against ``weed server -s3`` started once per session
by ``tests/fixtures/s3_server.py``; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.fixtures.s3_server import SeaweedS3
from voxshift.api.objects import objects_router
from voxshift.errors import ConfigError, InvalidRequest, NotFound, StoreUnavailable
from voxshift.stores.objects import (
    V2_LIFECYCLE,
    LifecycleRule,
    LocalObjectStorage,
    ObjectStorage,
    open_object_storage,
)
from voxshift.stores.objects.keys import decode_metadata, encode_metadata
from voxshift.stores.objects.s3 import SEAWEEDFS_NOTE, S3ObjectStorage
from voxshift.stores.objects.signing import signed_path

SIGNING_KEY = b"conformance-signing-key-0123456789"
META = {
    "agent-id": "agent_привет_ab12",
    "user-id": "u:42@team.example",
    "original-filename": "голосовое сообщение.ogg",
    "text_length": "17",
    "padded": "  spaces around  ",
    "looks-encoded": "=?UTF-8?B?not really?=",
    "multi-line": "первая\nвторая",
}
# Keys S3 must see exactly as written: every character here means something in a URL or a form.
AWKWARD_KEYS = (
    "audio/агент 7+1 100%/2026/01/02/голосовое сообщение + ответ на 50% (черновик) #3?.ogg",
    "temp/a+b c%20d%2Fe#f?g=h&i;j,k'l!m*n(o)p~q$r@s:t[u]v{w}x|y^z`_-.é€😀",
    "temp/ leading and trailing spaces /x ",
    "temp/+",
)


class Backend:
    """Makes stores for one backend and removes every bucket it made at teardown."""

    def __init__(self, kind: str, root: Path, server: SeaweedS3 | None) -> None:
        self.kind = kind
        self.root = root
        self.server = server
        self.stores: list[ObjectStorage] = []

    @property
    def url(self) -> str:
        return self.server.storage_url() if self.server else f"file://{self.root}"

    def make(
        self, bucket: str | None = None, lifecycle: Sequence[LifecycleRule] = V2_LIFECYCLE
    ) -> ObjectStorage:
        store = open_object_storage(
            self.url,
            bucket or f"t-{uuid.uuid4().hex[:12]}",
            access_key=self.server.access_key if self.server else None,
            secret_key=self.server.secret_key if self.server else None,
            signing_key=SIGNING_KEY,
            lifecycle=lifecycle,
        )
        self.stores.append(store)
        return store

    async def ready(self, bucket: str | None = None) -> ObjectStorage:
        store = self.make(bucket)
        await store.ensure_bucket()
        return store

    def bucket_names(self) -> set[str]:
        if self.server:
            return {b["Name"] for b in self.server.client().list_buckets().get("Buckets", [])}
        return {p.name for p in self.root.iterdir()} if self.root.exists() else set()

    def cleanup(self) -> None:
        for store in self.stores:
            asyncio.run(store.aclose())
            if self.server and self.server.process is not None:
                client = self.server.client()
                with contextlib.suppress(client.exceptions.ClientError):  # never created
                    client.delete_bucket(Bucket=store.bucket)  # SeaweedFS deletes non-empty buckets


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    made = Backend(request.param, tmp_path / "objects", server)
    yield made
    made.cleanup()


async def fetch(backend: Backend, store: ObjectStorage, url: str) -> httpx.Response:
    """GET a signed URL the way a client would: S3's over the network, local through the API router."""
    if backend.kind == "s3":
        async with httpx.AsyncClient() as client:
            return await client.get(url)
    app = FastAPI()
    app.include_router(objects_router(lambda b: store if b == store.bucket else None, SIGNING_KEY))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://voxshift.test") as client:
        return await client.get(url)


async def gather_limited(jobs: Sequence[Callable[[], Awaitable[object]]], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


# --- objects ------------------------------------------------------------------------------------


async def test_put_get_head_round_trip(backend: Backend) -> None:
    store = await backend.ready()
    body = os.urandom(100_000) + bytes(1000)
    key = "audio/agent_привет_ab12/2026/01/02/" + hashlib.sha256(body).hexdigest() + ".ogg"

    put = await store.put(key, body, "audio/ogg", META)
    got, info = await store.get(key)
    head = await store.head(key)

    assert got == body
    assert head is not None
    for seen in (put, info, head):
        assert seen.key == key
        assert seen.size == len(body)
        assert seen.etag == hashlib.md5(body).hexdigest()
        assert seen.content_type == "audio/ogg"
        assert dict(seen.metadata) == META
        assert seen.last_modified.tzinfo is not None
        assert seen.last_modified.utcoffset() == timedelta(0)


async def test_overwrite_replaces_body_type_and_metadata(backend: Backend) -> None:
    store = await backend.ready()
    await store.put("temp/x.wav", b"first", "audio/wav", {"a": "1"})
    await store.put("temp/x.wav", b"second version", "audio/flac", {"b": "два"})
    body, info = await store.get("temp/x.wav")
    assert (body, info.content_type, dict(info.metadata)) == (b"second version", "audio/flac", {"b": "два"})


async def test_empty_body_round_trips(backend: Backend) -> None:
    store = await backend.ready()
    await store.put("temp/empty.ogg", b"", "audio/ogg")
    body, info = await store.get("temp/empty.ogg")
    assert (body, info.size, info.metadata) == (b"", 0, {})


async def test_missing_object(backend: Backend) -> None:
    store = await backend.ready()
    with pytest.raises(NotFound):
        await store.get("audio/nobody/2026/01/01/missing.mp3")
    assert await store.head("audio/nobody/2026/01/01/missing.mp3") is None


async def test_delete_is_idempotent(backend: Backend) -> None:
    store = await backend.ready()
    await store.put("audio/a/2026/01/01/k.mp3", b"x", "audio/mpeg")
    assert await store.delete("audio/a/2026/01/01/k.mp3") is True
    assert await store.delete("audio/a/2026/01/01/k.mp3") is False
    assert await store.delete("never/existed.mp3") is False
    with pytest.raises(NotFound):
        await store.get("audio/a/2026/01/01/k.mp3")


async def test_awkward_keys_round_trip(backend: Backend) -> None:
    store = await backend.ready()
    assert len(AWKWARD_KEYS[0]) >= 80 and len(AWKWARD_KEYS[1]) >= 60
    long_key = AWKWARD_KEYS[0].replace("(черновик)", "(черновик, вторая попытка + 25%, ещё раз)")
    assert 110 <= len(long_key) <= 120
    keys = (*AWKWARD_KEYS, long_key)
    for n, key in enumerate(keys):
        await store.put(key, f"body {n}".encode(), "audio/ogg", {"n": str(n)})
    for n, key in enumerate(keys):
        body, info = await store.get(key)
        head = await store.head(key)
        assert (body, info.key, dict(info.metadata)) == (f"body {n}".encode(), key, {"n": str(n)})
        assert head is not None and head.size == len(body)
    assert {i.key async for i in store.list()} == set(keys)
    assert [i.key async for i in store.list("temp/a+b c%20d%2Fe#f?")] == [AWKWARD_KEYS[1]]
    assert [i.key async for i in store.list("audio/агент 7+1 100%/", page_size=1)] == sorted(
        [AWKWARD_KEYS[0], long_key], key=lambda k: k.encode()
    )
    url = await store.signed_url(long_key, 60)
    fetched = await fetch(backend, store, url)
    assert (fetched.status_code, fetched.content) == (200, f"body {len(keys) - 1}".encode())
    for key in keys:
        assert await store.delete(key) is True
        assert await store.head(key) is None
    assert [i async for i in store.list()] == []


async def test_list_by_prefix_pages_through_everything(backend: Backend) -> None:
    store = await backend.ready()
    wanted = sorted(f"audio/agent:7@x.y/2026/01/{n % 3 + 1:02d}/{n:04d}.mp3" for n in range(57))
    others = ["audio/agent:8/2026/01/01/0000.mp3", "audio-x/0.mp3", "temp/2026/01/01/t.wav", "a.mp3"]
    await gather_limited([lambda k=k: store.put(k, k.encode(), "audio/mpeg") for k in wanted + others])

    listed = [info async for info in store.list("audio/agent:7@x.y/", page_size=10)]

    assert [info.key for info in listed] == wanted
    assert all(info.size == len(info.key.encode()) for info in listed)
    assert all(info.etag == hashlib.md5(info.key.encode()).hexdigest() for info in listed)
    assert all(info.content_type is None and not info.metadata for info in listed)
    assert len([i async for i in store.list("audio/", page_size=7)]) == len(wanted) + 1
    assert [i.key async for i in store.list("audio/agent:7@x.y/2026/01/0")][:1] == wanted[:1]
    assert len([i async for i in store.list()]) == len(wanted) + len(others)
    assert [i async for i in store.list("nothing-here/")] == []


async def test_list_more_than_one_s3_page(backend: Backend) -> None:
    store = await backend.ready()
    keys = [f"temp/2026/02/03/{n:05d}.wav" for n in range(1001)]
    await gather_limited([lambda k=k: store.put(k, b"", "audio/wav") for k in keys], limit=32)
    assert [info.key async for info in store.list("temp/")] == keys  # default page: 1000


# --- buckets and lifecycle ------------------------------------------------------------------------


async def test_ensure_bucket_creates_a_missing_bucket_once(backend: Backend) -> None:
    store = backend.make()
    assert store.bucket not in backend.bucket_names()
    with pytest.raises(StoreUnavailable) as missing:
        await store.ping()
    assert missing.value.code == "bucket_missing"
    with pytest.raises(StoreUnavailable) as no_write:
        await store.put("temp/a.wav", b"x", "audio/wav")
    assert no_write.value.code == "bucket_missing"
    assert store.bucket not in backend.bucket_names()  # a write never creates the bucket on its own

    first = await store.ensure_bucket()
    second = await store.ensure_bucket()

    assert (first.created, second.created) == (True, False)
    assert first.lifecycle_applied and second.lifecycle_applied
    assert set(first.rules) == set(second.rules) == set(V2_LIFECYCLE)
    assert set(await store.lifecycle_rules()) == set(V2_LIFECYCLE)
    assert store.bucket in backend.bucket_names()
    await store.ping()


async def test_lifecycle_rules_are_on_the_bucket(backend: Backend) -> None:
    store = backend.make()
    report = await store.ensure_bucket()
    assert sorted(await store.lifecycle_rules(), key=lambda r: r.prefix) == [
        LifecycleRule("audio/", 30),
        LifecycleRule("temp/", 1),
    ]
    if backend.kind == "s3":
        # SeaweedFS 4.x accepts and returns the rules but only its admin+worker pair executes them.
        assert report.note == SEAWEEDFS_NOTE
        assert backend.server is not None
        lifecycle = backend.server.client().get_bucket_lifecycle_configuration(Bucket=store.bucket)
        days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in lifecycle["Rules"]}
        assert days == {"temp/": 1, "audio/": 30}


async def test_store_without_rules_leaves_lifecycle_alone(backend: Backend) -> None:
    store = backend.make(lifecycle=())
    report = await store.ensure_bucket()
    assert report.created
    assert await store.lifecycle_rules() == []


async def test_v2_store_never_creates_or_writes_the_legacy_bucket(backend: Backend) -> None:
    # The session's S3 server is shared: another module's legacy may have created `voice-files`
    # already. Then it must come out of this test exactly as it went in.
    before = backend.bucket_names()
    legacy = backend.make("voice-files") if "voice-files" in before else None
    legacy_before = [(i.key, i.size, i.etag) async for i in legacy.list()] if legacy else None
    store = backend.make("voice-v2-files")
    await store.ensure_bucket()
    await store.put("audio/_/2026/01/01/a.mp3", b"x", "audio/mpeg", {"agent-id": "Ω"})
    await store.get("audio/_/2026/01/01/a.mp3")
    [i async for i in store.list()]
    await store.signed_url("audio/_/2026/01/01/a.mp3", 60)
    await store.delete("audio/_/2026/01/01/a.mp3")
    after = backend.bucket_names()
    assert after - before == ({"voice-v2-files"} - before)
    if legacy is None:
        assert "voice-files" not in after
    else:
        assert [(i.key, i.size, i.etag) async for i in legacy.list()] == legacy_before


# --- signed URLs --------------------------------------------------------------------------------


async def test_signed_url_is_fetchable_and_tampering_is_refused(backend: Backend) -> None:
    store = await backend.ready()
    key = "audio/bot%2Fone/2026/03/04/ab.ogg"  # a literal "%2F", as keys.py encodes a "/" in an agent id
    await store.put(key, b"OggS-bytes", "audio/ogg")
    other = "audio/bot%2Fone/2026/03/04/cd.ogg"
    await store.put(other, b"other", "audio/ogg")
    url = await store.signed_url(key, 300)

    ok = await fetch(backend, store, url)
    assert ok.status_code == 200
    assert ok.content == b"OggS-bytes"
    assert ok.headers["content-type"] == "audio/ogg"

    for tampered in (
        url.replace("ab.ogg", "cd.ogg"),  # another object with the same signature
        _bump_param(url, "expires" if backend.kind == "local" else "X-Amz-Expires"),
        _flip_last_hex(url, "sig" if backend.kind == "local" else "X-Amz-Signature"),
    ):
        refused = await fetch(backend, store, tampered)
        assert refused.status_code == 403, tampered


async def test_expired_signed_url_is_refused(backend: Backend) -> None:
    store = await backend.ready()
    await store.put("temp/e.wav", b"RIFF", "audio/wav")
    if backend.kind == "local":
        url = signed_path(SIGNING_KEY, store.bucket, "temp/e.wav", int(datetime.now(UTC).timestamp()) - 1)
    else:
        url = await store.signed_url("temp/e.wav", 1)
        await asyncio.sleep(2.1)  # S3 takes the expiry from the signed X-Amz-Date; nothing to inject
    refused = await fetch(backend, store, url)
    assert refused.status_code == 403


def _bump_param(url: str, name: str) -> str:
    digits = url.partition(f"{name}=")[2].split("&")[0]
    return url.replace(f"{name}={digits}", f"{name}={int(digits) + 1}")


def _flip_last_hex(url: str, name: str) -> str:
    value = url.split(f"{name}=")[1].split("&")[0]
    flipped = value[:-1] + ("0" if value[-1] != "0" else "1")
    return url.replace(f"{name}={value}", f"{name}={flipped}")


# --- S3 only: a dead server ---------------------------------------------------------------------


async def test_dead_s3_fails_fast_and_recovers_by_itself(s3_server: SeaweedS3) -> None:
    store = open_object_storage(
        s3_server.storage_url(),
        f"t-{uuid.uuid4().hex[:12]}",
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    await store.ensure_bucket()
    await store.put("audio/a/before.mp3", b"before", "audio/mpeg")
    s3_server.stop()
    try:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get("audio/a/before.mp3"),
            lambda: store.put("audio/a/during.mp3", b"x", "audio/mpeg"),
            lambda: store.head("audio/a/before.mp3"),
            lambda: store.delete("audio/a/before.mp3"),
            lambda: store.ensure_bucket(),
            store.ping,
            lambda: anext(aiter(store.list("audio/"))),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailable) as down:
                await call()
            assert s3_server.endpoint_url in down.value.message
            assert down.value.status == 503
    finally:
        s3_server.start()  # same ports, same data dir
    assert (await store.get("audio/a/before.mp3"))[0] == b"before"  # the same store object, no reconnect
    await store.put("audio/a/after.mp3", b"after", "audio/mpeg")
    await store.ping()
    await store.aclose()
    s3_server.client().delete_bucket(Bucket=store.bucket)


def _s3_store(server: SeaweedS3, bucket: str | None = None, **overrides: str) -> S3ObjectStorage:
    options = {"access_key": server.access_key, "secret_key": server.secret_key, **overrides}
    return S3ObjectStorage(
        bucket or f"t-{uuid.uuid4().hex[:12]}", endpoint_url=server.endpoint_url, lifecycle=(), **options
    )


async def test_s3_objects_are_the_same_through_boto3_either_way(s3_server: SeaweedS3) -> None:
    # The data path has its own HTTP client and signer; objects written before it (by boto3, as the
    # store used to) and after it must not differ in key, type, metadata or ETag.
    store = _s3_store(s3_server)
    await store.ensure_bucket()
    client = s3_server.client()
    ours, theirs = AWKWARD_KEYS[0], AWKWARD_KEYS[1]
    try:
        put = await store.put(ours, b"written by aiohttp", "audio/ogg", META)
        head = client.head_object(Bucket=store.bucket, Key=ours)
        assert head["ContentType"] == "audio/ogg" and head["ETag"].strip('"') == put.etag
        assert decode_metadata(head["Metadata"]) == META
        assert client.get_object(Bucket=store.bucket, Key=ours)["Body"].read() == b"written by aiohttp"

        body = b"written by boto3"
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        client.put_object(
            Bucket=store.bucket,
            Key=theirs,
            Body=body,
            ContentType="audio/wav",
            ContentMD5=md5,
            Metadata=encode_metadata(META),
        )
        got, info = await store.get(theirs)
        assert (got, info.content_type, dict(info.metadata)) == (body, "audio/wav", META)
        assert info.etag == hashlib.md5(body).hexdigest()
        listed = {i.key: i for i in [i async for i in store.list()]}
        boto_listed = client.list_objects_v2(Bucket=store.bucket)["Contents"]
        assert set(listed) == {item["Key"] for item in boto_listed} == {ours, theirs}
        for item in boto_listed:
            mine = listed[item["Key"]]
            assert (mine.size, mine.etag) == (item["Size"], item["ETag"].strip('"'))
            assert mine.last_modified == item["LastModified"]
    finally:
        await store.aclose()
        client.delete_bucket(Bucket=store.bucket)


async def test_s3_wrong_or_missing_credentials(
    s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    good = _s3_store(s3_server)
    await good.ensure_bucket()
    await good.put("temp/x", b"x", "audio/wav")
    wrong = _s3_store(s3_server, good.bucket, secret_key="not-the-secret")
    for call in (
        lambda: wrong.get("temp/x"),
        lambda: wrong.head("temp/x"),
        lambda: wrong.put("temp/y", b"y", "audio/wav"),
        lambda: wrong.delete("temp/x"),
        lambda: anext(aiter(wrong.list())),
        wrong.ping,
    ):
        with pytest.raises(StoreUnavailable) as refused:
            await call()
        assert refused.value.code == "store_auth_failed"
        assert refused.value.message.startswith(f"object storage at {s3_server.endpoint_url} refused our")
        assert refused.value.message.endswith(
            "check VOXSHIFT_STORAGE_ACCESS_KEY / VOXSHIFT_STORAGE_SECRET_KEY"
        )

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    nobody = _s3_store(s3_server, good.bucket, access_key="", secret_key="")
    for call in (lambda: nobody.get("temp/x"), lambda: nobody.put("temp/y", b"y", "audio/wav"), nobody.ping):
        with pytest.raises(ConfigError, match=r"^no S3 credentials: set VOXSHIFT_STORAGE_ACCESS_KEY"):
            await call()

    # ... and, as with boto3 before, the standard AWS variables are the fallback.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    from_env = _s3_store(s3_server, good.bucket, access_key="", secret_key="")
    assert (await from_env.get("temp/x"))[0] == b"x"
    with pytest.raises(InvalidRequest):
        await from_env.get("temp/lone \udc80 surrogate")
    for store in (good, wrong, nobody, from_env):
        await store.aclose()
    s3_server.client().delete_bucket(Bucket=good.bucket)


def test_s3_store_serves_one_event_loop_after_another(
    s3_server: SeaweedS3, caplog: pytest.LogCaptureFixture
) -> None:
    # A CLI may call asyncio.run more than once with the same store; each loop gets its own
    # connections, and the ones of a finished loop are dropped without complaint.
    store = _s3_store(s3_server)
    asyncio.run(store.ensure_bucket())
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            asyncio.run(store.put(f"temp/{n}", b"x" * n, "audio/wav"))
            assert asyncio.run(store.head(f"temp/{n}")) is not None
        assert len(asyncio.run(_keys(store))) == 3
        asyncio.run(store.aclose())
        gc.collect()
    assert not [r for r in caplog.records if "nclosed" in r.getMessage()], caplog.text
    with pytest.raises(StoreUnavailable, match="closed"):
        asyncio.run(store.get("temp/1"))
    s3_server.client().delete_bucket(Bucket=store.bucket)


async def _keys(store: ObjectStorage) -> list[str]:
    return [i.key async for i in store.list()]


# --- local only: lifecycle sweep, path safety, crash leftovers -----------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStorage:
    return LocalObjectStorage(tmp_path / "objects", "voice-v2-files", signing_key=SIGNING_KEY)


async def test_local_sweep_applies_the_lifecycle_rules(local: LocalObjectStorage) -> None:
    await local.ensure_bucket()
    for key in ("temp/2026/01/01/t.wav", "audio/a/2026/01/01/x.mp3", "keep/forever.mp3"):
        await local.put(key, b"x", "audio/wav")
    now = datetime.now(UTC)

    assert await local.sweep(now + timedelta(hours=23)) == 0
    assert await local.sweep(now + timedelta(days=1, seconds=1)) == 1
    assert await local.head("temp/2026/01/01/t.wav") is None
    assert await local.sweep(now + timedelta(days=29)) == 0
    assert await local.sweep(now + timedelta(days=30, seconds=1)) == 1
    assert [i.key async for i in local.list()] == ["keep/forever.mp3"]
    assert not (local.bucket_dir / "temp").exists()  # emptied folders are pruned


async def test_local_crash_leftovers_are_invisible_and_swept(local: LocalObjectStorage) -> None:
    await local.ensure_bucket()
    await local.put("audio/a/ok.mp3", b"complete", "audio/mpeg")
    folder = local.bucket_dir / "audio" / "a"
    (folder / "torn.mp3").write_bytes(b"data whose sidecar never landed")
    (folder / ".vxtmp.ok.mp3.abc123").write_bytes(b"half a write")
    (folder / "ok.mp3").write_bytes(b"changed behind the sidecar's back")

    assert await local.head("audio/a/torn.mp3") is None
    with pytest.raises(NotFound):
        await local.get("audio/a/ok.mp3")  # size/MD5 no longer match its commit record
    assert [i.key async for i in local.list()] == []

    hours_ago = datetime.now(UTC).timestamp() - 7200
    for name in ("torn.mp3", ".vxtmp.ok.mp3.abc123"):
        os.utime(folder / name, (hours_ago, hours_ago))
    await local.sweep()
    assert not (folder / "torn.mp3").exists()
    assert not (folder / ".vxtmp.ok.mp3.abc123").exists()
