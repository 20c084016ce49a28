"""Which providers exist in this process, built once from Settings.

Every provider is constructed even when it cannot run (no key, no binary): it then reports why it is
unavailable, which `voxshift engines` and /readyz show, and the chain skips it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import httpx

from voxshift.config import Settings
from voxshift.engines.base import EngineInfo, Speech, STTProvider, TTSProvider, TTSRequest
from voxshift.engines.chain import BreakerRegistry, ProviderChain
from voxshift.engines.espeak import EspeakTTS
from voxshift.engines.openai import OpenAISTT, OpenAITTS
from voxshift.engines.piper import PiperTTS
from voxshift.engines.pool import InferencePool
from voxshift.engines.rhvoice import RHVoiceTTS
from voxshift.engines.rhvoice.text import speakable
from voxshift.engines.whisper import WhisperSTT
from voxshift.engines.yandex import YandexSTT, YandexTTS
from voxshift.errors import ConfigError

log = logging.getLogger("voxshift.engines")
_P = TypeVar("_P")


@dataclass
class EngineSet:
    settings: Settings
    pool: InferencePool
    stt: dict[str, STTProvider]
    tts: dict[str, TTSProvider]
    breakers: BreakerRegistry
    http: httpx.AsyncClient
    stt_chain: ProviderChain[STTProvider] = field(init=False)
    tts_chains: dict[str, ProviderChain[TTSProvider]] = field(init=False)
    loaded: bool = False

    def __post_init__(self) -> None:
        self.stt_chain = ProviderChain(
            [self._pick(self.stt, n, "VOXSHIFT_STT_PROVIDERS") for n in self.settings.stt_providers],
            operation="stt",
            timeout_for=self.settings.timeout_for,
            breakers=self.breakers,
        )
        self.tts_chains = {
            lang: ProviderChain(
                [self._pick(self.tts, n, "VOXSHIFT_TTS_PROVIDERS") for n in names],
                operation="tts",
                timeout_for=self.settings.timeout_for,
                breakers=self.breakers,
            )
            for lang, names in self.settings.tts_providers.items()
        }
        if "*" not in self.tts_chains:
            raise ConfigError(
                'VOXSHIFT_TTS_PROVIDERS: needs a "*" entry for languages without their own chain'
            )

    @staticmethod
    def _pick(registry: dict[str, _P], name: str, variable: str) -> _P:
        try:
            return registry[name]
        except KeyError:
            raise ConfigError(
                f"{variable}: unknown provider {name!r}; known: {', '.join(sorted(registry))}"
            ) from None

    def tts_chain_for(self, language: str) -> ProviderChain[TTSProvider]:
        return self.tts_chains.get(language) or self.tts_chains["*"]

    def infos(self) -> list[EngineInfo]:
        return [p.info() for p in self.stt.values()] + [p.info() for p in self.tts.values()]

    def load(self) -> None:
        """Load the local models the chains will use (blocking; call from a thread at start-up)."""
        used = {p.name for p in self.stt_chain.providers}
        for chain in self.tts_chains.values():
            used |= {p.name for p in chain.providers}
        for name, loader in self._loaders().items():
            if name in used:
                try:
                    loader()
                except Exception as exc:  # an unloadable model leaves its provider unavailable
                    log.warning("could not load %s: %s", name, exc)
        self.loaded = True

    def _loaders(self) -> dict[str, Callable[[], None]]:
        out: dict[str, Callable[[], None]] = {}
        providers: list[STTProvider | TTSProvider] = [*self.stt.values(), *self.tts.values()]
        for provider in providers:
            load = getattr(provider, "load", None)
            if callable(load):
                out[provider.name] = load
        return out

    async def aclose(self) -> None:
        await self.http.aclose()
        self.pool.shutdown()


class RussianNormalizedEspeak(EspeakTTS):
    """espeak-ng reading Russian numbers, dates and units as words first, like RHVoice does; the
    reference legacy builds a plain EspeakTTS of its own and keeps the old system's reading."""

    async def synthesize(self, request: TTSRequest) -> Speech:
        return await super().synthesize(replace(request, text=speakable(request.text, request.language)))


def build_pool(settings: Settings, name: str, workers: int, queue_size: int) -> InferencePool:
    """An inference pool that admits only what can start within the v2 budget (see engines.pool)."""
    return InferencePool(
        workers,
        queue_size,
        name=name,
        max_wait_s=settings.v2_budget_s,
        job_deadline_s=settings.job_deadline_s,
        stall_after_s=settings.pool_stall_s,
    )


def build_engines(settings: Settings) -> EngineSet:
    pool = build_pool(settings, "inference", settings.workers, settings.queue_size)
    http = httpx.AsyncClient(follow_redirects=False)
    stt: dict[str, STTProvider] = {
        "whisper": WhisperSTT(settings, pool),
        "openai": OpenAISTT(settings, http),
        "yandex": YandexSTT(settings, http),
    }
    tts: dict[str, TTSProvider] = {
        "piper": PiperTTS(settings, pool),
        "rhvoice": RHVoiceTTS(settings, pool),
        "espeak": RussianNormalizedEspeak(settings, pool),
        "openai": OpenAITTS(settings, http),
        "yandex": YandexTTS(settings, http),
    }
    breakers = BreakerRegistry(settings.breaker_failure_threshold, settings.breaker_cooldown_s)
    return EngineSet(settings=settings, pool=pool, stt=stt, tts=tts, breakers=breakers, http=http)
