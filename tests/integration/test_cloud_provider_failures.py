"""Every cloud provider (OpenAI and Yandex, STT and TTS) against failing fakes: missing and wrong
credentials, vendor errors, hangs, malformed answers and unreachable hosts, each mapped onto the
provider error family the chain understands."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.providers import KINDS, build, call, fake_for
from tests.fakes.yandex_server import FakeYandex
from voxshift.config import Settings
from voxshift.engines.base import Availability, STTProvider, TTSProvider, TTSRequest
from voxshift.engines.openai import OpenAITTS
from voxshift.errors import ProviderError, ProviderTimeout, ProviderUnavailable

pytest_plugins = ["tests.fakes.fixtures"]  # oa, ya, http, settings_for


@pytest.mark.parametrize("kind", KINDS)
async def test_missing_key_is_unavailable_without_touching_the_network(
    kind: str, oa: FakeOpenAI, ya: FakeYandex, settings_for: Callable[..., Settings]
) -> None:
    provider = build(kind, settings_for(openai_api_key=None, yandex_api_key=None), None)
    vendor = kind.split("-")[0].upper()
    expected = Availability(False, f"VOXSHIFT_{vendor}_API_KEY is not set")
    assert provider.info().availability == expected
    with pytest.raises(ProviderUnavailable, match=f"VOXSHIFT_{vendor}_API_KEY is not set") as caught:
        await call(provider)
    assert caught.value.retryable is False
    assert provider._client is None  # no HTTP client was even created
    assert oa.requests == [] and ya.requests == []


@pytest.mark.parametrize("kind", KINDS)
async def test_wrong_key_is_unavailable_with_the_vendors_message(
    kind: str, oa: FakeOpenAI, ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    provider = build(
        kind, settings_for(openai_api_key="sk-wrong-key-0000", yandex_api_key="AQVN-wrong"), http
    )
    message = "Incorrect API key provided" if kind.startswith("openai") else "Unknown api key (UNAUTHORIZED)"
    with pytest.raises(ProviderUnavailable, match="HTTP 401") as caught:
        await call(provider)
    assert message in str(caught.value) and caught.value.retryable is False
    assert len(fake_for(kind, oa, ya).requests) == 1


@pytest.mark.parametrize("status", [500, 429, 503])
@pytest.mark.parametrize("kind", KINDS)
async def test_vendor_failures_are_retryable_errors_with_the_vendors_message(
    kind: str, status: int, oa: FakeOpenAI, ya: FakeYandex, http: httpx.AsyncClient,
    settings_for: Callable[..., Settings],
) -> None:  # fmt: skip
    fake = fake_for(kind, oa, ya)
    fake.fail_next(status, message=f"vendor says no ({status})")
    with pytest.raises(ProviderError) as caught:
        await call(build(kind, settings_for(), http))
    assert type(caught.value) is ProviderError and caught.value.retryable is True
    assert f"HTTP {status}" in str(caught.value) and f"vendor says no ({status})" in str(caught.value)
    assert await call(build(kind, settings_for(), http))  # the fault was one request only


async def test_openai_default_error_bodies_reach_the_message(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    oa.fail_next(429)
    with pytest.raises(
        ProviderError, match=r"rate limited \(HTTP 429\): Rate limit reached.*rate_limit_exceeded"
    ):
        await call(build("openai-stt", settings_for(), http))


async def test_vendor_rejection_is_a_retryable_error(
    oa: FakeOpenAI, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    with pytest.raises(ProviderError, match=r"HTTP 404.*model `tts-9` does not exist") as caught:
        await OpenAITTS(settings_for(openai_tts_model="tts-9"), http).synthesize(TTSRequest(text="hi"))
    assert type(caught.value) is ProviderError and caught.value.retryable is True


@pytest.mark.parametrize("kind", KINDS)
async def test_a_hanging_vendor_times_out(
    kind: str, oa: FakeOpenAI, ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    fake_for(kind, oa, ya).hang_next(5.0)
    provider = build(kind, settings_for(provider_timeouts={"openai": 0.5, "yandex": 0.5}), http)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"within 0\.5 s"):
        await call(provider)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_answers_are_provider_errors(
    kind: str, oa: FakeOpenAI, ya: FakeYandex, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    fake_for(kind, oa, ya).malformed_next()
    with pytest.raises(ProviderError, match="malformed") as caught:
        await call(build(kind, settings_for(), http))
    assert type(caught.value) is ProviderError


@pytest.mark.parametrize("kind", KINDS)
async def test_an_unreachable_vendor_is_a_provider_error(
    kind: str, http: httpx.AsyncClient, settings_for: Callable[..., Settings]
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = settings_for(
        openai_base_url=dead + "/v1", yandex_stt_url=dead + "/stt", yandex_tts_url=dead + "/tts"
    )
    with pytest.raises(ProviderError, match=r"cannot reach 127\.0\.0\.1") as caught:
        await call(build(kind, settings, http))
    assert type(caught.value) is ProviderError


# --- shape -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
async def test_info_and_protocols(kind: str, settings_for: Callable[..., Settings]) -> None:
    provider = build(kind, settings_for(), None)
    info = provider.info()
    assert (provider.name, info.name, info.availability) == (kind.split("-")[0],) * 2 + (Availability(True),)
    protocol: type[Any] = STTProvider if info.kind == "stt" else TTSProvider
    assert isinstance(provider, protocol) and kind.endswith(info.kind)
    if info.kind == "tts":
        assert set(info.formats) == {"mp3", "opus", "aac", "flac", "wav", "pcm"} and info.voices
    assert info.languages and info.details
    await provider.aclose()
