"""One process's voice stack, wired from Settings: backends, the v2 engines and service, the legacy
backend, feature flags, migration metrics, shadow runs and the MigrationRouter in front of them.

The HTTP app and the CLI both build it here, so a request takes the same path whichever entry point
it came through.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field

from voxshift.config import Settings
from voxshift.engines.pool import InferencePool
from voxshift.errors import ConfigError, StoreUnavailable
from voxshift.legacy.base import LegacyVoiceBackend, LoadableLegacy, ReadOnlyAware
from voxshift.legacy.none import NoLegacyBackend
from voxshift.services.feedback.service import FeedbackService
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.metrics.dashboard import rollout_source
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.migration.router import MigrationRouter
from voxshift.services.migration.shadow import ShadowRunner
from voxshift.services.rollout.controller import RolloutController
from voxshift.services.rollout.webhooks import WebhookNotifier
from voxshift.services.voice.cache import VoiceCache
from voxshift.services.voice.service import VoiceV2Service
from voxshift.services.wiring.backends import Backends, open_backends
from voxshift.services.wiring.background import BackgroundLoop
from voxshift.services.wiring.control import build_feedback, build_flags
from voxshift.services.wiring.engines import EngineSet, build_engines, build_pool
from voxshift.services.wiring.rollout import build_controller, build_notifier, chain_breakers
from voxshift.stores.objects import ObjectStorage, open_from_settings
from voxshift.stores.objects.base import SweepableStorage

log = logging.getLogger("voxshift.runtime")

LEGACY_BUCKET = "voice-files"  # PlatformAI-HUB's MINIO_VOICE_BUCKET_NAME default

# The embedded object store enforces the bucket's lifecycle itself (S3 servers do it on their own).
SWEEP_INTERVAL_S = 3600.0


@dataclass(frozen=True)
class LegacyParts:
    """The legacy backend and, when it is the built-in reference, the bucket it writes to (the
    runtime owns that store: it creates the bucket at start and closes it at the end) and its pool."""

    backend: LegacyVoiceBackend
    objects: ObjectStorage | None = None
    pool: InferencePool | None = None


def build_legacy(settings: Settings, backends: Backends) -> LegacyParts:
    kind = settings.legacy_backend
    if kind == "none":
        return LegacyParts(NoLegacyBackend())
    if kind == "http":
        if not settings.legacy_url:
            raise ConfigError("VOXSHIFT_LEGACY_URL is required with VOXSHIFT_LEGACY_BACKEND=http")
        from voxshift.legacy.http import HttpLegacyBackend

        key = settings.legacy_api_key.get_secret_value() if settings.legacy_api_key else None
        http = HttpLegacyBackend(
            settings.legacy_url,
            key,
            stt_model=settings.legacy_stt_model,
            tts_model=settings.legacy_tts_model,
            voice=settings.legacy_voice,
            timeout_s=settings.legacy_timeout_s,
        )
        return LegacyParts(http)
    if kind == "python":
        if not settings.legacy_python_target:
            raise ConfigError(
                "VOXSHIFT_LEGACY_PYTHON_TARGET (package.module:attribute) is required with "
                "VOXSHIFT_LEGACY_BACKEND=python"
            )
        from voxshift.legacy.python import PythonLegacyBackend

        python = PythonLegacyBackend.from_import_path(
            settings.legacy_python_target, timeout_s=settings.legacy_timeout_s
        )
        return LegacyParts(python)
    from voxshift.legacy.reference import ReferenceLegacyBackend

    # The reference legacy lives in the same servers as v2, under legacy names only: the raw state
    # store and its own bucket (no lifecycle: the legacy never expired anything).
    objects = open_from_settings(settings, LEGACY_BUCKET, lifecycle=())
    # Its own pool: when v2's queue is full the fallback must not land on the same full queue.
    pool = build_pool(settings, "legacy", settings.legacy_workers, settings.legacy_queue_size)
    reference = ReferenceLegacyBackend(
        backends.state, objects, pool, espeak_binary=settings.espeak_binary, owns_pool=True
    )
    return LegacyParts(reference, objects, pool)


@dataclass
class VoiceRuntime:
    settings: Settings
    backends: Backends
    engines: EngineSet
    v2: VoiceV2Service
    legacy: LegacyVoiceBackend
    flags: FeatureFlags
    metrics: MigrationMetrics
    shadow: ShadowRunner
    router: MigrationRouter
    feedback: FeedbackService  # request ids remembered (its writer runs from start to aclose) and ratings
    legacy_objects: ObjectStorage | None = None  # the reference legacy's bucket store, owned here
    legacy_pool: InferencePool | None = None  # the reference legacy's own pool (it shuts it down)
    owns_backends: bool = True
    owns_engines: bool = True
    rollout: RolloutController | None = None  # every replica runs the loop; the lease holder acts
    rollout_notifier: WebhookNotifier | None = None
    _loader: BackgroundLoop | None = field(default=None, init=False, repr=False)
    _sweeper: BackgroundLoop | None = field(default=None, init=False, repr=False)

    def pools(self) -> list[InferencePool]:
        """Every inference pool serving requests: v2's, and the in-process legacy's if any."""
        return [self.engines.pool, *([self.legacy_pool] if self.legacy_pool is not None else [])]

    def storage_for(self, bucket: str) -> ObjectStorage | None:
        """The v2 store when it is bound to ``bucket`` (the only one signed URLs are served from)."""
        objects = self.backends.objects
        return objects if objects is not None and objects.bucket == bucket else None

    async def start(self, *, watch_flags: bool = True, preload: bool = False, sweep: bool = False) -> None:
        """Start the background work; every task started here ends in :meth:`aclose`.

        ``preload``: load the models in the background now (``engines.loaded``, hence /readyz, stays
        False until they are in memory); otherwise each loads on first use and the engines count as
        ready at once. ``sweep``: enforce the embedded object store's lifecycle hourly (a server's
        job; S3 servers expire objects themselves, so nothing runs for them).
        """
        if self.legacy_objects is not None:
            # The reference legacy creates its bucket at start-up, as PlatformAI-HUB's service does.
            try:
                await self.legacy_objects.ensure_bucket()
            except StoreUnavailable as exc:  # its uploads fail (v2 falls back elsewhere) until S3 is back
                log.warning("legacy bucket not ready: %s", exc.message)
        await self.flags.start(watch=watch_flags)
        await self.metrics.start()
        self.feedback.memory.start()
        self.shadow.start()
        self.backends.monitor.start()
        if self.rollout_notifier is not None:
            await self.rollout_notifier.start()
        if self.rollout is not None:
            await self.rollout.start()
        objects = self.backends.objects
        if sweep and self._sweeper is None and isinstance(objects, SweepableStorage):
            self._sweeper = BackgroundLoop(
                "voxshift-lifecycle-sweep",
                functools.partial(_sweep_once, objects),
                interval_s=SWEEP_INTERVAL_S,
                logger=log,
                on_error=lambda exc: log.warning("lifecycle sweep failed: %s", exc),  # retried next hour
            )
            self._sweeper.start()
        if preload and not self.engines.loaded:
            if self._loader is None:
                self._loader = BackgroundLoop(
                    "voxshift-model-load", self.load_models, interval_s=None, logger=log
                )
                self._loader.start()
        else:
            self.engines.loaded = True

    async def load_models(self) -> None:
        """Bring the legacy's models and the engines' into memory; sets ``engines.loaded`` at the end."""
        if isinstance(self.legacy, LoadableLegacy):
            try:
                await self.legacy.load()  # the reference legacy's Whisper tiny.en
            except Exception as exc:  # an unloadable legacy model leaves legacy unavailable, not v2
                log.warning("could not load the legacy models: %s", exc)
        await asyncio.to_thread(self.engines.load)  # blocking model reads, off the event loop

    async def aclose(self) -> None:
        for loop in (self._loader, self._sweeper):
            if loop is not None:
                await loop.stop()
        self._loader = self._sweeper = None
        if self.rollout is not None:
            await self.rollout.stop()  # releases the lease: another replica takes over at once
        if self.rollout_notifier is not None:
            await self.rollout_notifier.aclose()
        await self.shadow.stop()
        await self.metrics.stop()  # flushes what is pending
        await self.feedback.memory.stop()  # writes the request ids still queued
        await self.flags.stop()
        await self.backends.monitor.stop()
        with contextlib.suppress(Exception):
            await self.legacy.aclose()
        if self.legacy_objects is not None:
            with contextlib.suppress(Exception):
                await self.legacy_objects.aclose()
        if self.owns_backends:
            await self.backends.aclose()
        if self.owns_engines:
            await self.engines.aclose()


async def _sweep_once(objects: SweepableStorage) -> None:
    removed = await objects.sweep()
    if removed:
        log.info("lifecycle sweep removed %d expired objects", removed)


async def open_runtime(
    settings: Settings,
    *,
    engines: EngineSet | None = None,
    backends: Backends | None = None,
    check: bool = False,
) -> VoiceRuntime:
    """Wire everything (nothing started: call ``start()``). Given engines/backends are borrowed."""
    opened = backends or await open_backends(settings, check=check)
    engine_set = engines or build_engines(settings)
    legacy_objects: ObjectStorage | None = None
    try:
        cache = VoiceCache(
            opened.v2_state, opened.objects, opened.state_dependency, opened.objects_dependency
        )
        flags = build_flags(settings, opened.v2_state, opened.database)
        v2 = VoiceV2Service(
            engine_set,
            cache,
            opened.agent_voice_settings,
            settings=settings,
            caching=lambda: flags.config.features.caching_enabled,  # live: follows the stored flags
        )
        parts = build_legacy(settings, opened)
        legacy, legacy_objects = parts.backend, parts.objects
        if isinstance(legacy, ReadOnlyAware):
            legacy.read_only = lambda: flags.config.legacy_read_only  # the sunset's read_only phase
        metrics = MigrationMetrics.from_settings(opened.state, settings, rollout_source=rollout_source(flags))
        metrics.set_breaker_source(
            lambda: {
                name: snap.state for name, snap in engine_set.breakers.snapshot(time.monotonic()).items()
            }
        )
        shadow = ShadowRunner(
            v2,
            metrics,
            engine_set.pool,
            sample_rate=settings.shadow_sample_rate,
            queue_size=settings.shadow_queue_size,
        )
        router = MigrationRouter(v2, legacy, flags, metrics, v2_budget_s=settings.v2_budget_s, shadow=shadow)
        feedback = build_feedback(settings, opened.v2_state, opened.database, opened.state_dependency)
        rollout: RolloutController | None = None
        notifier: WebhookNotifier | None = None
        if settings.rollout_controller and opened.v2_state is not None:
            notifier = build_notifier(settings)
            chains = {"stt": engine_set.stt_chain.names, "tts": engine_set.tts_chains["*"].names}
            rollout = build_controller(
                settings,
                opened,
                flags,
                metrics,
                feedback=feedback,
                notifier=notifier,
                breakers=lambda: chain_breakers(
                    chains,
                    {n: b.state for n, b in engine_set.breakers.snapshot(time.monotonic()).items()},
                ),
            )
    except BaseException:
        if legacy_objects is not None:
            await legacy_objects.aclose()
        if backends is None:
            await opened.aclose()
        if engines is None:
            await engine_set.aclose()
        raise
    return VoiceRuntime(
        settings=settings,
        backends=opened,
        engines=engine_set,
        v2=v2,
        legacy=legacy,
        flags=flags,
        metrics=metrics,
        shadow=shadow,
        router=router,
        feedback=feedback,
        rollout=rollout,
        rollout_notifier=notifier,
        legacy_objects=legacy_objects,
        legacy_pool=parts.pool,
        owns_backends=backends is None,
        owns_engines=engines is None,
    )
