"""The voice stack the rollout simulator drives: the same pieces `voxshift serve` wires (stores,
feature flags, VoiceV2Service with its cache, the MigrationRouter, MigrationMetrics, the feedback
table, the rollout history and the RolloutController), on the simulated clock, with the fault
switch in front of every v2 provider.

Stores are embedded (SQLite state store, SQLite database, a local object folder) in the given data
directory; ``state_url`` puts the state store on Redis instead. Engines are the real ones (Whisper,
Piper, espeak-ng for v2; the reference legacy, Whisper tiny.en and espeak-ng) or, ``fast``, the
in-process sampled-latency engines of :mod:`.sim_traffic`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from voxshift.config import Settings
from voxshift.core.rollout.plan import Plan
from voxshift.engines.base import STTProvider, TTSProvider, TTSRequest
from voxshift.engines.chain import BreakerRegistry
from voxshift.legacy.base import LegacyVoiceBackend, LoadableLegacy
from voxshift.services.feedback.service import FeedbackService
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.migration.router import MigrationRouter
from voxshift.services.rollout.controller import RolloutController
from voxshift.services.rollout.sim_faults import FaultSwitch, FaultySTT, FaultyTTS, SimClock
from voxshift.services.rollout.sim_traffic import (
    EN_PHRASES,
    LEGACY_STT,
    LEGACY_TTS,
    SIM_STT,
    SIM_TTS,
    STT_CLIP_PHRASES,
    V2_STT,
    V2_TTS,
    FastLegacy,
    FastSTT,
    FastTTS,
    tone_wav,
)
from voxshift.services.voice.cache import VoiceCache
from voxshift.services.voice.service import VoiceV2Service
from voxshift.services.wiring.backends import Backends, open_backends
from voxshift.services.wiring.control import build_feedback, build_flags
from voxshift.services.wiring.engines import EngineSet, build_engines, build_pool
from voxshift.services.wiring.rollout import chain_breakers
from voxshift.services.wiring.runtime import build_legacy
from voxshift.stores.db.history import RolloutHistoryRepository

SIM_HOLDER = "simulator"
# Real seconds a breaker stays open: short, so that the simulated days after a fault are not spent
# with v2 shut out by one real half-minute.
SIM_BREAKER_COOLDOWN_S = 1.0


def sim_settings(
    base: Settings, data_dir: Path, *, fast: bool, v2_budget_s: float, resolution_s: int, retention_s: int
) -> Settings:
    """The base settings (model locations, workers) with the simulator's own stores and routing: a
    user's VOXSHIFT_STATE_URL or VOICE_V2_* never leak into a simulation."""
    update: dict[str, Any] = {
        "data_dir": data_dir,
        "whisper_model_dir": base.resolved_whisper_dir,  # the models stay where they are installed
        "state_url": None,
        "storage_url": None,
        "database_url": None,
        "voice_v2_enabled": False,
        "voice_v2_rollout_percentage": 0,
        "v2_budget_s": v2_budget_s,
        "metrics_resolution_s": resolution_s,
        "metrics_fine_retention_s": retention_s,
        "breaker_cooldown_s": SIM_BREAKER_COOLDOWN_S,
        "rollout_webhooks": [],
        "rollout_plan": None,
        "shadow_sample_rate": 0.0,
        "legacy_backend": "reference",
        "stt_providers": [SIM_STT] if fast else ["whisper"],
        "tts_providers": {"*": [SIM_TTS]} if fast else {"en": ["piper"], "*": ["espeak"]},
    }
    return base.model_copy(update=update)


@dataclass
class SimStack:
    settings: Settings
    clock: SimClock
    faults: FaultSwitch
    backends: Backends
    engines: EngineSet
    legacy: LegacyVoiceBackend
    flags: FeatureFlags
    metrics: MigrationMetrics
    feedback: FeedbackService
    history: RolloutHistoryRepository
    controller: RolloutController
    router: MigrationRouter
    stt_clips: list[bytes]
    closers: list[Any] = field(default_factory=list)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.controller.lease.release()
        with contextlib.suppress(Exception):
            await self.metrics.stop()
        with contextlib.suppress(Exception):
            await self.flags.stop()
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                await close()


def _wrap(engines: EngineSet, settings: Settings, faults: FaultSwitch) -> EngineSet:
    stt: dict[str, STTProvider] = {n: FaultySTT(p, faults) for n, p in engines.stt.items()}
    tts: dict[str, TTSProvider] = {n: FaultyTTS(p, faults) for n, p in engines.tts.items()}
    return EngineSet(
        settings=settings, pool=engines.pool, stt=stt, tts=tts, breakers=engines.breakers, http=engines.http
    )


async def open_stack(
    base: Settings,
    data_dir: Path,
    plan: Plan,
    clock: SimClock,
    *,
    fast: bool,
    seed: int,
    v2_budget_s: float,
    tick_s: float,
    flush_s: float | None,
    state_url: str | None = None,
) -> SimStack:
    resolution = max(1, min(60, int(plan.interval_s // 10)))
    total = sum(p.min_duration_s for p in plan.phases)
    settings = sim_settings(
        base,
        data_dir,
        fast=fast,
        v2_budget_s=v2_budget_s,
        resolution_s=resolution,
        # Fine buckets kept (in simulated seconds) for the whole run: every window reads them.
        retention_s=int(max(2 * 86400, 4 * total)),
    )
    if state_url is not None:
        settings = settings.model_copy(update={"state_url": state_url})
    rng = random.Random(seed * 7919 + 1)
    faults = FaultSwitch(random.Random(seed * 7919 + 2))
    closers: list[Any] = []
    backends = await open_backends(settings, check=True)
    closers.append(backends.aclose)
    try:
        if fast:
            clip_seconds = [1.2, 1.5, 1.8, 2.1]
            texts = {s: t for s, t in zip(clip_seconds, STT_CLIP_PHRASES, strict=True)}
            clips = [tone_wav(s, 220.0 + 40 * i) for i, s in enumerate(clip_seconds)]
            settings_ = settings
            engines = EngineSet(
                settings=settings_,
                pool=build_pool(settings_, "inference", 1, 0),
                stt={SIM_STT: FaultySTT(FastSTT(V2_STT, rng, texts), faults)},
                tts={SIM_TTS: FaultyTTS(FastTTS(V2_TTS, rng), faults)},
                breakers=BreakerRegistry(settings_.breaker_failure_threshold, settings_.breaker_cooldown_s),
                http=httpx.AsyncClient(),
            )
            closers.append(engines.aclose)
            legacy: LegacyVoiceBackend = FastLegacy(LEGACY_STT, LEGACY_TTS, rng, texts)
        else:
            real = build_engines(settings)
            closers.append(real.aclose)
            engines = _wrap(real, settings, faults)
            parts = build_legacy(settings, backends)
            legacy = parts.backend
            closers.append(legacy.aclose)
            if parts.objects is not None:
                closers.append(parts.objects.aclose)
                await parts.objects.ensure_bucket()
            await asyncio.to_thread(engines.load)
            if isinstance(legacy, LoadableLegacy):
                await legacy.load()
            clips = [await _spoken_clip(engines, text) for text in EN_PHRASES[:3]]
        flags = build_flags(settings, backends.v2_state, backends.database)
        await flags.start(watch=False)  # one process: every flag change is made here
        cache = VoiceCache(
            backends.v2_state, backends.objects, backends.state_dependency, backends.objects_dependency
        )
        v2 = VoiceV2Service(
            engines,
            cache,
            backends.agent_voice_settings,
            settings=settings,
            caching=lambda: flags.config.features.caching_enabled,
        )
        metrics = MigrationMetrics.from_settings(
            backends.state, settings, clock=clock, flush_interval_s=flush_s or 1.0
        )
        if flush_s is not None:
            await metrics.start()
        feedback = build_feedback(settings, backends.v2_state, backends.database)
        feedback.clock = clock
        history = RolloutHistoryRepository(backends.database)
        chains = {"stt": engines.stt_chain.names, "tts": engines.tts_chain_for("*").names}
        controller = RolloutController(
            backends.v2_state,
            flags,
            default_plan=plan,
            traffic=metrics,
            feedback=feedback,
            history=history,
            breakers=lambda: chain_breakers(
                chains, {n: b.state for n, b in engines.breakers.snapshot(time.monotonic()).items()}
            ),
            holder=SIM_HOLDER,
            clock=clock,
            tick_s=tick_s,
        )
        router = MigrationRouter(v2, legacy, flags, metrics, v2_budget_s=settings.v2_budget_s)
    except BaseException:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()
        raise
    return SimStack(
        settings=settings,
        clock=clock,
        faults=faults,
        backends=backends,
        engines=engines,
        legacy=legacy,
        flags=flags,
        metrics=metrics,
        feedback=feedback,
        history=history,
        controller=controller,
        router=router,
        stt_clips=clips,
        closers=closers,
    )


async def _spoken_clip(engines: EngineSet, text: str) -> bytes:
    """One English clip for the STT traffic, spoken once by v2's own English TTS chain."""
    from voxshift.audio import encode_speech

    outcome = await engines.tts_chain_for("en").run(lambda p: p.synthesize(TTSRequest(text, "en")))
    return encode_speech(outcome.value, "wav")
