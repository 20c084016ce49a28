"""Shadow runs: a sample of legacy-served STT requests is also transcribed by voice_v2, off the
request path, and compared (WER between the two transcripts, latency, success).

A team sees v2's quality on real traffic before any user is moved. The shadow never changes an
answer (it starts after the legacy answer exists) nor a user's latency: submission never waits (a
full queue drops the job and counts it), and a job starts only while the inference pool has an idle
worker, so shadow work never queues ahead of a real request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Protocol

from voxshift.core.text_metrics import word_error_rate
from voxshift.engines.pool import InferencePool
from voxshift.services.voice.service import VoiceV2Service
from voxshift.services.wiring.background import BackgroundLoop

log = logging.getLogger("voxshift.shadow")


class ShadowMetrics(Protocol):
    def record_shadow(
        self,
        operation: str,
        *,
        wer: float | None,
        v2_ms: float,
        legacy_ms: float,
        v2_ok: bool,
        legacy_ok: bool,
    ) -> None: ...

    def record_shadow_dropped(self, operation: str) -> None: ...


@dataclass(frozen=True)
class ShadowJob:
    audio: bytes
    language: str
    legacy_text: str
    legacy_ms: float
    filename: str | None


@dataclass
class ShadowStats:
    submitted: int = 0
    dropped: int = 0
    completed: int = 0
    v2_failed: int = 0


class ShadowRunner:
    def __init__(
        self,
        v2: VoiceV2Service,
        metrics: ShadowMetrics,
        pool: InferencePool,
        *,
        sample_rate: float,
        queue_size: int = 8,
        rng: random.Random | None = None,
        idle_poll_s: float = 0.05,
    ) -> None:
        self.v2 = v2
        self.metrics = metrics
        self.pool = pool
        self.sample_rate = sample_rate
        self.queue: asyncio.Queue[ShadowJob] = asyncio.Queue(maxsize=queue_size)
        self.rng = rng or random.Random()
        self.idle_poll_s = idle_poll_s
        self.stats = ShadowStats()
        # Back to back: each step waits for the next job itself.
        self._loop = BackgroundLoop("voxshift-shadow", self._run_next, interval_s=0, logger=log)

    def maybe_submit(
        self, audio: bytes, *, language: str, legacy_text: str, legacy_ms: float, filename: str | None
    ) -> bool:
        """Queue a comparison for a sampled request; never waits. True when queued."""
        if self.sample_rate <= 0 or self.rng.random() >= self.sample_rate:
            return False
        try:
            self.queue.put_nowait(ShadowJob(audio, language, legacy_text, legacy_ms, filename))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            self.metrics.record_shadow_dropped("stt")
            return False
        self.stats.submitted += 1
        return True

    def start(self) -> None:
        if self.sample_rate > 0:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def drain(self) -> None:
        """Wait until every queued job has run (tests, graceful shutdown)."""
        await self.queue.join()

    async def _run_next(self) -> None:
        job = await self.queue.get()
        try:
            while self.pool.in_flight >= self.pool.workers:
                await asyncio.sleep(self.idle_poll_s)  # real requests first
            await self._compare(job)
        except Exception as exc:  # a shadow must never take anything down
            log.warning("shadow comparison failed: %s", exc)
        finally:
            self.queue.task_done()

    async def _compare(self, job: ShadowJob) -> None:
        started = time.perf_counter()
        try:
            # No cache: the point is to measure v2's own answer and latency on this audio.
            result = await self.v2.transcribe(
                job.audio, language=job.language, filename=job.filename, use_cache=False
            )
        except Exception as exc:
            self.stats.v2_failed += 1
            self.stats.completed += 1
            self.metrics.record_shadow(
                "stt",
                wer=None,
                v2_ms=(time.perf_counter() - started) * 1000,
                legacy_ms=job.legacy_ms,
                v2_ok=False,
                legacy_ok=True,
            )
            log.info("shadow: v2 failed where legacy answered: %s", exc)
            return
        self.stats.completed += 1
        self.metrics.record_shadow(
            "stt",
            wer=word_error_rate(job.legacy_text, result.text),
            v2_ms=(time.perf_counter() - started) * 1000,
            legacy_ms=job.legacy_ms,
            v2_ok=True,
            legacy_ok=True,
        )
