"""Pytest fixtures for the cloud-provider tests: the running fakes, settings pointing at them, a client.

Loaded with ``pytest_plugins = ["tests.fakes.fixtures"]`` by the modules that use them. The fakes
are module-scoped (one server per test module); ``oa``/``ya`` hand them to a test freshly reset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.yandex_server import FakeYandex
from voxshift.config import Settings


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def yandex_server() -> Iterator[FakeYandex]:
    with FakeYandex() as fake:
        yield fake


@pytest.fixture
def oa(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


@pytest.fixture
def ya(yandex_server: FakeYandex) -> FakeYandex:
    yandex_server.reset()
    return yandex_server


@pytest_asyncio.fixture(loop_scope="function")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def settings_for(oa: FakeOpenAI, ya: FakeYandex) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "openai_api_key": oa.api_key,
            "openai_base_url": oa.base_url,
            "openai_stt_model": "whisper-1",
            "openai_tts_model": "tts-1",
            "openai_tts_voice": "alloy",
            "yandex_api_key": ya.api_key,
            "yandex_folder_id": None,
            "yandex_stt_url": ya.stt_url,
            "yandex_tts_url": ya.tts_url,
            "yandex_tts_voice": "alena",
            "provider_timeout_s": 5.0,
            "provider_timeouts": {},
        }
        values.update(overrides)
        return Settings(**values)

    return build
