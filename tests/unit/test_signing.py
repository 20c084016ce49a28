"""Signed object URLs cannot outlive MAX_EXPIRES_S, however they were signed; the stores never sign
longer ones (the local store's URLs and S3 presigning)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from voxshift.errors import Forbidden, InvalidRequest
from voxshift.stores.objects import open_object_storage
from voxshift.stores.objects.signing import (
    CLOCK_SKEW_S,
    MAX_EXPIRES_S,
    load_or_create_signing_key,
    signature,
    verify,
)

NOW = 1_770_000_000
TEN_YEARS_S = 10 * 365 * 86400


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return load_or_create_signing_key(tmp_path)  # the real key file, as a server would use it


def signed(key: bytes, expires: int) -> tuple[str, str]:
    return str(expires), signature(key, "voice-v2-files", "temp/a.wav", expires)


def test_a_correctly_signed_url_ten_years_ahead_is_refused(key: bytes) -> None:
    with pytest.raises(Forbidden) as refused:
        verify(key, "voice-v2-files", "temp/a.wav", *signed(key, NOW + TEN_YEARS_S), now=NOW)
    assert refused.value.code == "url_lifetime_exceeded"
    assert f"maximum of {MAX_EXPIRES_S} s (7 days)" in refused.value.message


@pytest.mark.parametrize("ahead", [1, MAX_EXPIRES_S, MAX_EXPIRES_S + CLOCK_SKEW_S])
def test_lifetimes_up_to_the_maximum_plus_clock_skew_are_accepted(key: bytes, ahead: int) -> None:
    verify(key, "voice-v2-files", "temp/a.wav", *signed(key, NOW + ahead), now=NOW)


def test_one_second_past_the_allowance_is_refused(key: bytes) -> None:
    with pytest.raises(Forbidden) as refused:
        verify(
            key, "voice-v2-files", "temp/a.wav", *signed(key, NOW + MAX_EXPIRES_S + CLOCK_SKEW_S + 1), now=NOW
        )
    assert refused.value.code == "url_lifetime_exceeded"


def test_a_forged_far_future_url_learns_only_that_the_signature_is_wrong(key: bytes) -> None:
    expires, _ = signed(key, NOW + TEN_YEARS_S)
    with pytest.raises(Forbidden) as refused:
        verify(key, "voice-v2-files", "temp/a.wav", expires, "0" * 64, now=NOW)
    assert refused.value.code == "signature_mismatch"


async def test_the_local_store_signs_at_most_the_maximum(tmp_path: Path, key: bytes) -> None:
    store = open_object_storage(f"file://{tmp_path}/objects", "voice-v2-files", signing_key=key)
    url = await store.signed_url("temp/a.wav", MAX_EXPIRES_S)
    query = parse_qs(urlsplit(url).query)
    expires, sig = query["expires"][0], query["sig"][0]
    verify(key, "voice-v2-files", "temp/a.wav", expires, sig, now=int(expires) - MAX_EXPIRES_S)
    for too_long in (MAX_EXPIRES_S + 1, TEN_YEARS_S):
        with pytest.raises(InvalidRequest, match=rf"expires_s must be 1\.\.{MAX_EXPIRES_S} seconds"):
            await store.signed_url("temp/a.wav", too_long)


async def test_s3_presigns_at_most_the_maximum() -> None:
    # Presigning is local computation: no server is needed at this endpoint.
    store = open_object_storage(
        "s3://voice-v2-files?endpoint=http://127.0.0.1:9&region=eu-west-1",
        "voice-v2-files",
        access_key=SecretStr("ak"),
        secret_key="sk",
    )
    try:
        url = await store.signed_url("temp/a.wav", MAX_EXPIRES_S)
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(MAX_EXPIRES_S)]
        for too_long in (MAX_EXPIRES_S + 1, TEN_YEARS_S):
            with pytest.raises(InvalidRequest, match=r"expires_s must be 1\.\."):
                await store.signed_url("temp/a.wav", too_long)
    finally:
        await store.aclose()
