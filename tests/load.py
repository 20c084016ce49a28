"""Mixed voice traffic against a running `voxshift serve`: the stress test's and bench/soak.py's client.

Clients loop over STT (a short English clip), Russian TTS and English TTS, each with a hard client
timeout, and record every request: what it was, its status, how long it took, and whether it got
an answer at all. Nothing here knows the server's internals; it sees only HTTP.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

STT_TEXT = "The weather is lovely today, so we will go sailing after lunch."
TTS_RU = {
    "model": "tts-1",
    "input": "Привет, мир",
    "voice": "alloy",
    "language": "ru",
    "response_format": "wav",
}
TTS_EN = {
    "model": "tts-1",
    "input": "Your order has been shipped and will arrive on Friday.",
    "voice": "alloy",
    "language": "en",
    "response_format": "wav",
}
KINDS = ("stt", "tts_ru", "tts_en")


def english_clip() -> bytes:
    """A short English WAV spoken by espeak-ng (run here, in the client, never in the server)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError("espeak-ng is needed to make the STT clip")
    return subprocess.run(
        [binary, "--stdout", "-v", "en-us", STT_TEXT], capture_output=True, check=True, timeout=30
    ).stdout


@dataclass(frozen=True)
class Record:
    kind: str
    status: int  # 0: no answer before the client timeout (a hang), -1: connection error
    seconds: float
    started: float  # monotonic, relative to the load's start
    system: str | None = None
    retry_after: str | None = None
    error_code: str | None = None


@dataclass
class LoadReport:
    records: list[Record] = field(default_factory=list)
    wall_s: float = 0.0

    def of(self, *, kind: str | None = None, status: int | None = None) -> list[Record]:
        return [
            r
            for r in self.records
            if (kind is None or r.kind == kind) and (status is None or r.status == status)
        ]

    @property
    def hangs(self) -> list[Record]:
        return [r for r in self.records if r.status <= 0]

    def summary(self) -> dict[str, Any]:
        ok = self.of(status=200)
        refused = self.of(status=503)
        lat = sorted(r.seconds for r in ok)
        return {
            "requests": len(self.records),
            "ok": len(ok),
            "status_503": len(refused),
            "hangs": len(self.hangs),
            "other": len(self.records) - len(ok) - len(refused) - len(self.hangs),
            "throughput_rps": round(len(ok) / self.wall_s, 3) if self.wall_s else 0.0,
            "p50_s": round(quantile(lat, 0.5), 3),
            "p95_s": round(quantile(lat, 0.95), 3),
            "max_503_s": round(max((r.seconds for r in refused), default=0.0), 4),
            "p95_503_s": round(quantile(sorted(r.seconds for r in refused), 0.95), 4),
        }


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


async def one_request(client: httpx.AsyncClient, kind: str, clip: bytes, user: str, t0: float) -> Record:
    started = time.monotonic()
    headers = {"X-User-Id": user}
    try:
        if kind == "stt":
            response = await client.post(
                "/v1/audio/transcriptions",
                files={"file": ("clip.wav", clip, "audio/wav")},
                data={"model": "whisper-1", "language": "en"},
                headers=headers,
            )
        else:
            response = await client.post(
                "/v1/audio/speech", json=TTS_RU if kind == "tts_ru" else TTS_EN, headers=headers
            )
    except httpx.TimeoutException:
        return Record(kind, 0, time.monotonic() - started, started - t0)
    except httpx.HTTPError:
        return Record(kind, -1, time.monotonic() - started, started - t0)
    code = None
    if response.status_code != 200:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "not-openai-shaped"
    return Record(
        kind,
        response.status_code,
        time.monotonic() - started,
        started - t0,
        response.headers.get("x-voxshift-system"),
        response.headers.get("retry-after"),
        code,
    )


async def run_load(
    url: str,
    *,
    clients: int,
    duration_s: float | None = None,
    requests_per_client: int | None = None,
    client_timeout_s: float = 60.0,
    kinds: Sequence[str] = KINDS,
    clip: bytes | None = None,
    backoff_on_503: bool = True,
) -> LoadReport:
    """``clients`` loops, each cycling over ``kinds`` (client i starts at kind i), until the duration
    or the request count is reached. A client told 503 waits its Retry-After (at most 1 s) before
    its next request, as a polite client does."""
    if duration_s is None and requests_per_client is None:
        raise ValueError("give duration_s or requests_per_client")
    clip = clip if clip is not None else english_clip()
    report = LoadReport()
    t0 = time.monotonic()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=client_timeout_s, limits=limits) as client:

        async def loop(index: int) -> None:
            n = 0
            while True:
                if requests_per_client is not None and n >= requests_per_client:
                    return
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    return
                kind = kinds[(index + n) % len(kinds)]
                record = await one_request(client, kind, clip, f"user-{index}", t0)
                report.records.append(record)
                n += 1
                if record.status == 503 and backoff_on_503:
                    await asyncio.sleep(min(1.0, float(record.retry_after or 1)))

        await asyncio.gather(*(loop(i) for i in range(clients)))
    report.wall_s = time.monotonic() - t0
    return report
