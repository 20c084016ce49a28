"""What the service costs on top of the engines: direct vs VoiceV2Service vs HTTP, and 8-client throughput.

Run: .venv/bin/python bench/engines.py   (or `make bench` / `./dev bench`; about two minutes on 2 cores)

Measures, in one run, on one English clip/sentence:
  STT  faster-whisper's WhisperModel.transcribe on the decoded clip (the engine's own settings)
       vs VoiceV2Service.transcribe(wav bytes) vs POST /v1/audio/transcriptions to `voxshift serve`
  TTS  PiperVoice.synthesize vs VoiceV2Service.synthesize(format="wav") vs POST /v1/audio/speech
  RU   RHVoice's engine (binding) vs VoiceV2Service.synthesize(language="ru") vs POST /v1/audio/speech
       with one Russian sentence, and its real-time factor (skipped when RHVoice is not installed)
  Throughput  8 concurrent HTTP clients vs the same model called directly one request at a time.

The three paths of each operation are interleaved round by round (rotating which goes first), and
the throughput phases alternate sequential/concurrent twice: other work on the machine then shifts
every path alike instead of biasing one ratio. ``*_over_direct`` is the median of the per-round
ratios (``*_over_direct_of_medians``, the ratio of the medians, is printed too). Goals: STT through
the service within 5 % of the engine, 8 HTTP clients get >= 90 % of the engine's sequential
throughput, and none of them ever gets a 503. Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.integration.server (the repo is not a package on sys.path)

import httpx  # noqa: E402
from piper import SynthesisConfig  # noqa: E402

from tests.integration.server import RunningServer, start_server  # noqa: E402
from voxshift.config import Settings  # noqa: E402
from voxshift.engines.models import ensure_whisper_model  # noqa: E402
from voxshift.engines.piper import PiperTTS  # noqa: E402
from voxshift.engines.rhvoice import RHVoiceTTS  # noqa: E402
from voxshift.engines.rhvoice.text import speakable  # noqa: E402
from voxshift.engines.whisper import _TEMPERATURE_FALLBACK, BEAM_SIZE, WhisperSTT  # noqa: E402
from voxshift.services.voice.service import VoiceV2Service  # noqa: E402
from voxshift.services.wiring.engines import EngineSet, build_engines  # noqa: E402

# About 3 s of speech: a typical voice-message utterance, long enough that Whisper dominates.
STT_TEXT = "The weather is lovely today and the river is calm, so we will go sailing after lunch."
TTS_TEXT = "Thank you for calling. Your order has been shipped and will arrive on Friday."
RU_TEXT = "Добрый день! Ваш заказ доставят 25 декабря с 10:00 до 14:00, стоимость 1 500 рублей."
RU_VOICE = "Aleksandr-hq"  # what the service picks for voice "onyx" and for no voice
RU_REPS = 15  # ~0.3 s per call
STT_REPS = 9  # ~1.1-1.5 s per call and three paths: ~35 s
TTS_REPS = 25  # ~0.2 s per call
DECODE_REPS = 25  # the upload's decode + resample alone, ~10 ms
THROUGHPUT_REQUESTS = 16  # per mode, split over two alternating halves
CLIENTS = 8
# The server as it should be run on this box: one inference worker per core (CTranslate2 already
# uses every core for one call, and queues further calls in its single model worker), and a queue
# deep enough that 8 clients never find every slot taken (a full queue answers 503 at once).
WORKERS = os.cpu_count() or 1
QUEUE_SIZE = 2 * CLIENTS

GOAL_STT_SERVICE_OVER_DIRECT = 1.05
GOAL_STT_CONCURRENT8_THROUGHPUT = 0.9
GOAL_RU_SERVICE_OVER_DIRECT = 1.05  # as for Piper

MODELS_DIR = Path(
    os.environ.get("VOXSHIFT_TEST_MODELS_DIR") or Path.home() / ".cache" / "voxshift-test-models"
)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)

    def median_ms(self, name: str) -> float:
        return statistics.median(self.samples[name]) * 1000

    def spread_ms(self, name: str) -> tuple[float, float]:
        values = self.samples[name]
        return min(values) * 1000, max(values) * 1000


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def interleaved(paths: dict[str, Callable[[], Awaitable[object]]], reps: int, timings: Timings) -> None:
    names = list(paths)
    for rep in range(reps):
        # Rotate the order so no path always runs right after another one's cache-warming.
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            timings.add(name, await timed(paths[name]))


@dataclass
class Bench:
    service: VoiceV2Service
    engines: EngineSet
    server: RunningServer
    http: httpx.AsyncClient
    clip_wav: bytes
    clip_s: float
    results: dict[str, Any] = field(default_factory=dict)
    cache_hits: int = 0

    # --- the paths ------------------------------------------------------------------------------

    def stt_direct_sync(self, samples: Any) -> str:
        whisper = self.engines.stt["whisper"]
        assert isinstance(whisper, WhisperSTT)
        # WhisperSTT._transcribe_sync's call, minus the service: same model object, same settings.
        segments, _info = whisper.model.transcribe(
            samples,
            language=None,
            task="transcribe",
            beam_size=BEAM_SIZE,
            initial_prompt=None,
            temperature=_TEMPERATURE_FALLBACK,
            word_timestamps=False,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments)  # the generator does the decoding

    async def stt_service(self) -> str:
        result = await self.service.transcribe(self.clip_wav, language="auto", filename="clip.wav")
        return result.text

    async def stt_http(self) -> httpx.Response:
        response = await self.http.post(
            f"{self.server.url}/v1/audio/transcriptions",
            files={"file": ("clip.wav", self.clip_wav, "audio/wav")},
            data={"model": "whisper-1"},
        )
        self._check(response)
        return response

    def tts_direct_sync(self) -> bytes:
        piper = self.engines.tts["piper"]
        assert isinstance(piper, PiperTTS)
        voice = piper.voice
        # PiperTTS._synthesize_sync at speed 1.0, minus the service.
        config = SynthesisConfig(length_scale=float(voice.config.length_scale))
        return b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(TTS_TEXT, syn_config=config))

    async def tts_service(self) -> bytes:
        result = await self.service.synthesize(TTS_TEXT, language="en", format="wav")
        return result.audio

    async def tts_http(self) -> httpx.Response:
        response = await self.http.post(
            f"{self.server.url}/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": TTS_TEXT, "response_format": "wav"},
        )
        self._check(response)
        return response

    def ru_direct_sync(self) -> bytes:
        rhvoice = self.engines.tts["rhvoice"]
        assert isinstance(rhvoice, RHVoiceTTS)
        # RHVoiceTTS._synthesize_sync minus the service: a lent engine, the normalized text.
        with rhvoice.engines.engine() as engine:
            return engine.speak(speakable(RU_TEXT, "ru"), RU_VOICE, 1.0)[0]

    async def ru_service(self) -> bytes:
        result = await self.service.synthesize(RU_TEXT, language="ru", format="wav", voice="onyx")
        assert result.provider_used == "rhvoice", result.provider_used
        return result.audio

    async def ru_http(self) -> httpx.Response:
        # No language: the service guesses Russian from the Cyrillic script, as for any OpenAI client.
        response = await self.http.post(
            f"{self.server.url}/v1/audio/speech",
            json={"model": "tts-1", "voice": "onyx", "input": RU_TEXT, "response_format": "wav"},
        )
        self._check(response)
        if response.headers.get("x-voxshift-provider") != "rhvoice":
            raise RuntimeError(f"Russian answered by {response.headers.get('x-voxshift-provider')}")
        return response

    async def russian(self) -> None:
        if not self.engines.tts["rhvoice"].info().availability.available:
            self.results["ru_skipped"] = self.engines.tts["rhvoice"].info().availability.reason
            return
        ru: dict[str, Callable[[], Awaitable[object]]] = {
            "ru_direct": lambda: asyncio.sleep(0, self.ru_direct_sync()),
            "ru_service": self.ru_service,
            "ru_http": self.ru_http,
        }
        await interleaved(ru, 2, Timings())  # warm-up: voice data, first requests
        timings = Timings()
        await interleaved(ru, RU_REPS, timings)
        audio_s = len(self.ru_direct_sync()) / 2 / 24_000
        for name in ru:
            self.results[f"{name}_ms"] = round(timings.median_ms(name), 1)
            low, high = timings.spread_ms(name)
            self.results[f"{name}_min_ms"] = round(low, 1)
            self.results[f"{name}_max_ms"] = round(high, 1)
        for path in ("service", "http"):
            paired = zip(timings.samples[f"ru_{path}"], timings.samples["ru_direct"], strict=True)
            self.results[f"ru_{path}_over_direct"] = round(statistics.median(a / b for a, b in paired), 3)
            self.results[f"ru_{path}_over_direct_of_medians"] = round(
                timings.median_ms(f"ru_{path}") / timings.median_ms("ru_direct"), 3
            )
        self.results["ru_audio_s"] = round(audio_s, 3)
        self.results["ru_direct_rtf"] = round(timings.median_ms("ru_direct") / 1000 / audio_s, 4)
        self.results["ru_service_rtf"] = round(timings.median_ms("ru_service") / 1000 / audio_s, 4)

    def _check(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        # A cached answer would measure the cache, not the engine: count any, so they show.
        if response.headers.get("x-voxshift-cache") == "hit":
            self.cache_hits += 1

    # --- the measurements -----------------------------------------------------------------------

    async def latency(self) -> None:
        samples = self.service.validate_audio(self.clip_wav, "clip.wav").samples
        # Direct calls block this thread, like the pool's worker thread would; nothing else runs.
        stt: dict[str, Callable[[], Awaitable[object]]] = {
            "stt_direct": lambda: asyncio.sleep(0, self.stt_direct_sync(samples)),
            "stt_service": self.stt_service,
            "stt_http": self.stt_http,
        }
        tts: dict[str, Callable[[], Awaitable[object]]] = {
            "tts_direct": lambda: asyncio.sleep(0, self.tts_direct_sync()),
            "tts_service": self.tts_service,
            "tts_http": self.tts_http,
        }
        # Warm-up: first calls pay for lazy allocations (CTranslate2 buffers, ONNX Runtime arenas,
        # HTTP connection, FastAPI's first request): one untimed round of STT (a second each), two
        # of TTS.
        await interleaved(stt, 1, Timings())
        await interleaved(tts, 2, Timings())

        timings = Timings()
        await interleaved(stt, STT_REPS, timings)
        await interleaved(tts, TTS_REPS, timings)
        # Where the service's extra time could go, timed on their own.
        breakdown = Timings()
        for _ in range(DECODE_REPS):
            breakdown.add("stt_decode", await timed(lambda: self._decode()))
        for name in (*stt, *tts):
            self.results[f"{name}_ms"] = round(timings.median_ms(name), 1)
            low, high = timings.spread_ms(name)
            self.results[f"{name}_min_ms"] = round(low, 1)
            self.results[f"{name}_max_ms"] = round(high, 1)
        self.results["stt_decode_ms"] = round(breakdown.median_ms("stt_decode"), 2)
        for op in ("stt", "tts"):
            direct = timings.median_ms(f"{op}_direct")
            for path in ("service", "http"):
                name = f"{op}_{path}"
                # The headline ratio is taken round by round (each path against the direct call of
                # the same round), then the median: on a shared machine a burst of other work lands
                # on a few calls, and the ratio of two medians then swings by +-30 % (seen here),
                # while the per-round ratio stays within a few percent.
                paired = zip(timings.samples[name], timings.samples[f"{op}_direct"], strict=True)
                self.results[f"{name}_over_direct"] = round(statistics.median(a / b for a, b in paired), 3)
                self.results[f"{name}_over_direct_of_medians"] = round(timings.median_ms(name) / direct, 3)

    async def _decode(self) -> None:
        self.service.validate_audio(self.clip_wav, "clip.wav")

    async def throughput(self) -> None:
        samples = self.service.validate_audio(self.clip_wav, "clip.wav").samples
        half = THROUGHPUT_REQUESTS // 2
        sequential_s = concurrent_s = 0.0
        statuses: dict[int, int] = {}
        latencies: list[float] = []
        for _ in range(2):
            started = time.perf_counter()
            for _ in range(half):
                self.stt_direct_sync(samples)
            sequential_s += time.perf_counter() - started
            concurrent_s += await self._concurrent(half, statuses, latencies)
        ok = statuses.get(200, 0)
        sequential_rps = 2 * half / sequential_s
        concurrent_rps = ok / concurrent_s
        self.results.update(
            stt_sequential_rps=round(sequential_rps, 3),
            stt_concurrent8_rps=round(concurrent_rps, 3),
            stt_concurrent8_throughput_ratio=round(concurrent_rps / sequential_rps, 3),
            stt_concurrent8_requests=2 * half,
            stt_concurrent8_ok=ok,
            stt_concurrent8_503s=statuses.get(503, 0),
            stt_concurrent8_other_errors=sum(n for s, n in statuses.items() if s not in (200, 503)),
            stt_concurrent8_latency_p50_ms=round(statistics.median(latencies) * 1000, 1),
            stt_concurrent8_latency_max_ms=round(max(latencies) * 1000, 1),
        )

    async def _concurrent(self, requests: int, statuses: dict[int, int], latencies: list[float]) -> float:
        remaining = iter(range(requests))

        async def client() -> None:
            # Each client sends its next request as soon as the previous one is answered.
            for _ in remaining:
                started = time.perf_counter()
                response = await self.http.post(
                    f"{self.server.url}/v1/audio/transcriptions",
                    files={"file": ("clip.wav", self.clip_wav, "audio/wav")},
                    data={"model": "whisper-1"},
                )
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.headers.get("x-voxshift-cache") == "hit":
                    self.cache_hits += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return time.perf_counter() - started


def print_table(results: dict[str, Any]) -> None:
    def row(label: str, key: str) -> str:
        return (
            f"  {label:<44} {results[key + '_ms']:>9.1f}   "
            f"({results[key + '_min_ms']:.1f} .. {results[key + '_max_ms']:.1f})"
        )

    print(f"\nclip {results['clip_s']:.2f} s; medians in ms (min .. max)")
    print(f"  STT, {STT_REPS} rounds")
    print(row("faster-whisper WhisperModel.transcribe", "stt_direct"))
    print(row("VoiceV2Service.transcribe (decodes the wav)", "stt_service"))
    print(row("POST /v1/audio/transcriptions", "stt_http"))
    print(f"  {'  of which wav decode + resample':<44} {results['stt_decode_ms']:>9.2f}")
    print(f"  TTS, {TTS_REPS} rounds")
    print(row("PiperVoice.synthesize", "tts_direct"))
    print(row("VoiceV2Service.synthesize (wav)", "tts_service"))
    print(row("POST /v1/audio/speech (wav)", "tts_http"))
    if "ru_direct_ms" in results:
        print(f"  Russian TTS (RHVoice), {RU_REPS} rounds, {results['ru_audio_s']:.2f} s of speech")
        print(row("RHVoice engine (binding, lent engine)", "ru_direct"))
        print(row("VoiceV2Service.synthesize (ru, wav)", "ru_service"))
        print(row("POST /v1/audio/speech (Cyrillic, wav)", "ru_http"))
        print(
            f"  {'real-time factor direct / service':<44} {results['ru_direct_rtf']:>9.4f} / "
            f"{results['ru_service_rtf']:.4f}"
        )
    print(f"ratios {'(per-round, median)':>46} {'(of medians)':>20}")
    for key in (
        "stt_service_over_direct",
        "stt_http_over_direct",
        "tts_service_over_direct",
        "tts_http_over_direct",
        *(("ru_service_over_direct", "ru_http_over_direct") if "ru_direct_ms" in results else ()),
    ):
        print(f"  {key:<44} {results[key]:>9.3f} {results[key + '_of_medians']:>20.3f}")
    print(
        f"throughput, {results['stt_concurrent8_requests']} requests per mode "
        f"(workers={WORKERS}, queue={QUEUE_SIZE})"
    )
    print(f"  {'direct, one after another (req/s)':<44} {results['stt_sequential_rps']:>9.3f}")
    print(f"  {'HTTP, 8 concurrent clients (req/s)':<44} {results['stt_concurrent8_rps']:>9.3f}")
    print(f"  {'ratio':<44} {results['stt_concurrent8_throughput_ratio']:>9.3f}")
    print(
        f"  {'503s / other errors':<44} {results['stt_concurrent8_503s']:>5} / "
        f"{results['stt_concurrent8_other_errors']}"
    )
    print(
        f"  {'latency under load p50 / max (ms)':<44} {results['stt_concurrent8_latency_p50_ms']:>9.1f} / "
        f"{results['stt_concurrent8_latency_max_ms']:.1f}"
    )
    print(f"load average at start / end: {results['loadavg_start']} / {results['loadavg_end']}")


async def main() -> None:
    load_start = round(os.getloadavg()[0], 2)
    wall = time.perf_counter()
    model_dir = ensure_whisper_model(MODELS_DIR / "whisper-base")
    with tempfile.TemporaryDirectory(prefix="voxshift-bench-") as tmp:
        data_dir = Path(tmp)
        # The server first: it loads its models in its own process while this one loads its own.
        server = start_server(
            data_dir / "server",
            {
                "VOXSHIFT_WHISPER_MODEL_DIR": str(model_dir),
                "VOXSHIFT_WORKERS": str(WORKERS),
                "VOXSHIFT_QUEUE_SIZE": str(QUEUE_SIZE),
                # Every request repeats the same clip/text: a cache would answer instead of the engine.
                "VOICE_V2_FEATURES": json.dumps(
                    {
                        "stt_enabled": True,
                        "tts_enabled": True,
                        "langgraph_integration": False,
                        "caching_enabled": False,
                    }
                ),
            },
        )
        settings = Settings(
            data_dir=data_dir / "inproc", whisper_model_dir=model_dir, workers=WORKERS, queue_size=QUEUE_SIZE
        )
        engines = build_engines(settings)
        try:
            engines.load()
            service = VoiceV2Service(engines)
            clip = await service.synthesize(STT_TEXT, language="en", format="wav")
            async with httpx.AsyncClient(timeout=300) as http:
                bench = Bench(service, engines, server, http, clip.audio, clip.duration_seconds)
                bench.results["clip_s"] = round(clip.duration_seconds, 3)
                await bench.latency()
                await bench.russian()
                await bench.throughput()
                results = bench.results
                results["cache_hits"] = bench.cache_hits
        finally:
            await engines.aclose()
            server.stop()
        if "Traceback" in server.log:
            print(server.log[-3000:], file=sys.stderr)
    results["workers"] = WORKERS
    results["queue_size"] = QUEUE_SIZE
    results["loadavg_start"] = load_start
    results["loadavg_end"] = round(os.getloadavg()[0], 2)
    results["wall_s"] = round(time.perf_counter() - wall, 1)
    results["goal_stt_service_over_direct_met"] = (
        results["stt_service_over_direct"] <= GOAL_STT_SERVICE_OVER_DIRECT
    )
    results["goal_stt_concurrent8_throughput_met"] = (
        results["stt_concurrent8_throughput_ratio"] >= GOAL_STT_CONCURRENT8_THROUGHPUT
    )
    results["goal_no_503_met"] = results["stt_concurrent8_503s"] == 0
    if "ru_service_over_direct" in results:
        results["goal_ru_service_over_direct_met"] = (
            results["ru_service_over_direct"] <= GOAL_RU_SERVICE_OVER_DIRECT
        )
    print_table(results)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
