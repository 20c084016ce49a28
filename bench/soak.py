"""Soak: 16 clients of mixed STT and TTS (English and Russian) against a real `voxshift serve`.

Run: .venv/bin/python bench/soak.py [--seconds 180] [--clients 16] [--mode voice_v2|legacy]
(or `make bench` / `./dev bench`, which runs it with the defaults: about four minutes on 2 cores).

The server runs as a user would start it (2 workers, queue 16, the v2 budget of 20 s), voice_v2 on
for everyone unless --mode legacy. Each client loops STT (a short English clip) -> Russian TTS ->
English TTS; a client told 503 waits its Retry-After (at most 1 s), as a polite client does.

Measured: throughput (answered requests/s), p50/p95 latency of answered requests, the share of
503s and how fast they came back, hangs (no answer within the client's 60 s), and the server's RSS
at the start (after a warm-up: each kind alone, then two at once as the workers run them), its
peak (VmHWM), at each quarter of the load, and at the end (after the load, once the pools are
idle). Goals (issue 9): 0 hangs, every 503 answered in < 100 ms, RSS at the end within 1.2x of the
start, peak under 1.5 GB. Then a 30 s burst of 48 clients (past the 18 slots) shows how what cannot
finish in time is refused: 503 share, how fast, and that nothing hangs. Prints a table, then one
JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.* (the repo is not a package on sys.path)

import httpx  # noqa: E402

from tests.integration.server import start_server  # noqa: E402
from tests.load import KINDS, english_clip, one_request, run_load  # noqa: E402
from voxshift.engines.models import ensure_whisper_model  # noqa: E402

MODELS_DIR = Path(
    os.environ.get("VOXSHIFT_TEST_MODELS_DIR") or Path.home() / ".cache" / "voxshift-test-models"
)
WORKERS = 2
GOAL_MAX_503_S = 0.1
GOAL_END_OVER_START = 1.2
GOAL_PEAK_MB = 1536


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[int] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.25):
            try:
                self.samples.append(status_kb(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return


async def warm_up(url: str, clip: bytes, workers: int) -> None:
    """Each kind of request once alone, then ``workers`` at a time: the engines' working memory for
    concurrent jobs (ONNX Runtime's arena, CTranslate2's buffers) is part of the server's start."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for batch in (1, workers):
            for kind in KINDS:
                records = await asyncio.gather(
                    *(one_request(client, kind, clip, f"warm-up-{i}", time.monotonic()) for i in range(batch))
                )
                if any(r.status != 200 for r in records):
                    raise SystemExit(f"warm-up {kind} failed: {records}")


def wait_idle(url: str, timeout_s: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        ready: dict[str, object] = httpx.get(f"{url}/readyz", timeout=10).json()
        pools = ready["pools"]
        assert isinstance(pools, dict)
        if all(pool["in_flight"] == 0 for pool in pools.values()) or time.monotonic() > deadline:
            return ready
        time.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--mode", choices=("voice_v2", "legacy"), default="voice_v2")
    parser.add_argument("--burst-clients", type=int, default=48, help="clients of the overload phase")
    parser.add_argument("--burst-seconds", type=float, default=30.0)
    args = parser.parse_args()

    whisper_dir = ensure_whisper_model(MODELS_DIR / "whisper-base")
    clip = english_clip()
    with tempfile.TemporaryDirectory(prefix="voxshift-soak-") as tmp:
        server = start_server(
            Path(tmp),
            {
                "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_dir),
                "VOXSHIFT_WORKERS": "2",
                "VOXSHIFT_QUEUE_SIZE": "16",
            },
            all_on_v2=args.mode == "voice_v2",
        )
        pid = server.process.pid
        try:
            asyncio.run(warm_up(server.url, clip, WORKERS))
            wait_idle(server.url)
            rss_start = status_kb(pid, "VmRSS")
            sampler = RssSampler(pid)
            sampler.start()
            report = asyncio.run(
                run_load(
                    server.url, clients=args.clients, duration_s=args.seconds, client_timeout_s=60, clip=clip
                )
            )
            ready = wait_idle(server.url)
            time.sleep(1.0)  # let the last responses' buffers go
            rss_end = status_kb(pid, "VmRSS")
            rss_peak = status_kb(pid, "VmHWM")
            sampler.stop_event.set()
            # Past capacity: how the service refuses what it cannot finish in time.
            burst = asyncio.run(
                run_load(
                    server.url,
                    clients=args.burst_clients,
                    duration_s=args.burst_seconds,
                    client_timeout_s=60,
                    clip=clip,
                )
            )
            after_burst = wait_idle(server.url)
        finally:
            server.stop()

    summary = report.summary()
    bursted = burst.summary()
    figures = {
        "mode": args.mode,
        "clients": args.clients,
        "seconds": round(report.wall_s, 1),
        "requests": summary["requests"],
        "throughput_rps": summary["throughput_rps"],
        "p50_s": summary["p50_s"],
        "p95_s": summary["p95_s"],
        "share_503": round(summary["status_503"] / max(1, summary["requests"]), 4),
        "max_503_s": summary["max_503_s"],
        "p95_503_s": summary["p95_503_s"],
        "hangs": summary["hangs"],
        "other_errors": summary["other"],
        "rss_start_mb": round(rss_start / 1024, 1),
        "rss_peak_mb": round(rss_peak / 1024, 1),
        "rss_end_mb": round(rss_end / 1024, 1),
        "rss_end_over_start": round(rss_end / rss_start, 3),
        # RSS at each quarter of the load: a plateau is working memory, a steady climb a leak.
        "rss_quarters_mb": [
            round(sampler.samples[min(len(sampler.samples) - 1, q * len(sampler.samples) // 4)] / 1024, 1)
            for q in range(1, 5)
        ]
        if sampler.samples
        else [],
        "readyz_status": ready["status"],
        "burst_clients": args.burst_clients,
        "burst_requests": bursted["requests"],
        "burst_throughput_rps": bursted["throughput_rps"],
        "burst_p95_s": bursted["p95_s"],
        "burst_share_503": round(bursted["status_503"] / max(1, bursted["requests"]), 4),
        "burst_max_503_s": bursted["max_503_s"],
        "burst_p95_503_s": bursted["p95_503_s"],
        "burst_hangs": bursted["hangs"],
        "burst_max_answer_s": round(max((r.seconds for r in burst.records), default=0.0), 3),
        "readyz_after_burst": after_burst["status"],
    }
    goals = {
        "goal_no_hangs": figures["hangs"] == 0 and figures["burst_hangs"] == 0,
        "goal_503_under_100ms": max(figures["max_503_s"], figures["burst_max_503_s"]) < GOAL_MAX_503_S,
        "goal_rss_end_within_1_2x": figures["rss_end_over_start"] <= GOAL_END_OVER_START,
        "goal_peak_under_1_5gb": figures["rss_peak_mb"] < GOAL_PEAK_MB,
    }
    for name, value in {**figures, **goals}.items():
        print(f"{name:>28}  {value}")
    print(json.dumps({**figures, **goals}))


if __name__ == "__main__":
    main()
