"""Signed URLs end to end: the local store's links served by a real uvicorn, S3's by SeaweedFS."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.fixtures.s3_server import SeaweedS3
from voxshift.api.errors import install_error_handlers
from voxshift.api.objects import objects_router
from voxshift.stores.objects import LocalObjectStorage, open_object_storage
from voxshift.stores.objects.keys import audio_object_key
from voxshift.stores.objects.signing import signed_path

KEY = b"integration-signing-key-0123456789"


@dataclass
class Served:
    base_url: str
    v2: LocalObjectStorage
    legacy: LocalObjectStorage


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("signed") / "objects"
    v2 = LocalObjectStorage(root, "voice-v2-files", signing_key=KEY)
    legacy = LocalObjectStorage(root, "voice-files", signing_key=KEY, lifecycle=())
    for store in (v2, legacy):
        asyncio.run(store.ensure_bucket())
    stores = {s.bucket: s for s in (v2, legacy)}
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(objects_router(stores.get, lambda: KEY))  # key read lazily, per request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", v2, legacy)
    finally:
        server.should_exit = True
        thread.join(10)


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


def expires_in(seconds: int) -> int:
    return int(datetime.now(UTC).timestamp()) + seconds


async def test_signed_url_serves_bytes_with_the_stored_type(served: Served) -> None:
    body = b"OggS" + bytes(range(256)) * 40
    key = audio_object_key("агент/1 100%", hashlib.sha256(body).hexdigest(), "ogg", datetime.now(UTC))
    await served.v2.put(key, body, "audio/ogg", {"agent-id": "агент/1 100%"})

    response = await get(served.base_url + await served.v2.signed_url(key, 60))

    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "audio/ogg"
    assert response.headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert 0 < int(response.headers["cache-control"].split("max-age=")[1]) <= 60


async def test_public_base_url_makes_absolute_links(tmp_path: Path) -> None:
    store = LocalObjectStorage(
        tmp_path, "voice-v2-files", signing_key=KEY, public_base_url="https://v.example/"
    )
    assert (await store.signed_url("temp/a.wav", 5)).startswith(
        "https://v.example/v2/objects/voice-v2-files/temp/a.wav?"
    )


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda u: u.replace("/one.wav", "/two.wav"), "signature_mismatch"),
        (lambda u: u.replace("voice-v2-files", "voice-files"), "signature_mismatch"),
        (lambda u: u.replace("expires=", "expires=1"), "signature_mismatch"),
        (lambda u: u[:-1] + ("a" if u[-1] != "a" else "b"), "signature_mismatch"),
        (lambda u: u.replace("sig=", "sig=zz"), "signature_mismatch"),
        (lambda u: u.split("?")[0], "unsigned_url"),
        (lambda u: u.split("&sig=")[0], "unsigned_url"),
    ],
)
async def test_tampered_urls_get_403_json(served: Served, mutate: Callable[[str], str], code: str) -> None:
    for key in ("temp/one.wav", "temp/two.wav"):
        await served.v2.put(key, b"RIFF", "audio/wav")
        await served.legacy.put(key, b"legacy RIFF", "audio/mpeg")
    url = served.base_url + await served.v2.signed_url("temp/one.wav", 60)
    assert (await get(url)).status_code == 200

    response = await get(mutate(url))

    assert response.status_code == 403
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("permission_error", code)
    assert b"RIFF" not in response.content


async def test_expired_url_gets_403(served: Served) -> None:
    await served.v2.put("temp/old.wav", b"RIFF", "audio/wav")
    url = served.base_url + signed_path(KEY, "voice-v2-files", "temp/old.wav", expires_in(-1))
    response = await get(url)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "url_expired"


async def test_url_signed_for_ten_years_gets_403(served: Served) -> None:
    await served.v2.put("temp/forever.wav", b"RIFF", "audio/wav")
    ten_years = expires_in(10 * 365 * 86400)
    url = served.base_url + signed_path(KEY, "voice-v2-files", "temp/forever.wav", ten_years)
    response = await get(url)
    assert response.status_code == 403 and b"RIFF" not in response.content
    assert response.json()["error"]["code"] == "url_lifetime_exceeded"


async def test_validly_signed_but_missing_gets_404_json(served: Served) -> None:
    missing = served.base_url + signed_path(KEY, "voice-v2-files", "temp/never.wav", expires_in(60))
    unknown_bucket = served.base_url + signed_path(KEY, "other-bucket", "temp/x.wav", expires_in(60))
    for url in (missing, unknown_bucket):
        response = await get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_stored_html_cannot_run_as_a_page(served: Served) -> None:
    await served.v2.put("temp/page.html", b"<script>alert(1)</script>", "text/html")
    response = await get(served.base_url + await served.v2.signed_url("temp/page.html", 60))
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_s3_presigned_url_is_real_and_tamper_proof(s3_server: SeaweedS3) -> None:
    store = open_object_storage(
        s3_server.storage_url(),
        "signed-url-test",
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    try:
        await store.ensure_bucket()
        key = audio_object_key("agent:7@x", "ab" * 32, "ogg", datetime.now(UTC))
        await store.put(key, b"OggS s3 bytes", "audio/ogg")
        await store.put(key.replace(".ogg", ".wav"), b"RIFF", "audio/wav")
        url = await store.signed_url(key, 120)
        assert url.startswith(s3_server.endpoint_url + "/signed-url-test/audio/")

        ok = await get(url)
        assert (ok.status_code, ok.content, ok.headers["content-type"]) == (
            200,
            b"OggS s3 bytes",
            "audio/ogg",
        )
        assert (await get(url.replace(".ogg", ".wav"))).status_code == 403
        assert (await get(url.replace("X-Amz-Expires=120", "X-Amz-Expires=999"))).status_code == 403
        assert (await get(url.split("?")[0])).status_code == 403  # anonymous reads are not allowed
    finally:
        await store.aclose()
        s3_server.client().delete_bucket(Bucket="signed-url-test")
