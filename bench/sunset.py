"""Sunset data migration benchmark (issue 12 §6): the seed's approach vs ``voxshift sunset migrate``.

Run with ``.venv/bin/python bench/sunset.py`` (starts a redis-server and a SeaweedFS ``weed`` on free
loopback ports, stops both: only their own pids) or ``--redis URL --s3 URL`` (``s3://?endpoint=...``
with ``--s3-access-key``/``--s3-secret-key``) against servers you already run; ``--keys``/``--objects``
scale it down for a quick look.

The legacy: ``--keys`` keys in PlatformAI-HUB's families with their real TTLs and value shapes
(STT cache JSON, TTS response entries naming objects, settings cache, daily stats, rate-limit and
``voice_metrics`` sorted sets, a few of those) plus 1 % unrelated keys, and ``--objects`` voice
objects of a few KB in the ``voice/{agent}/{user}/{YYYY/MM/DD/HH}/{uuid}.ext`` layout.

* ``seed``: the seed's sample as written (``redis.asyncio``): ``KEYS *`` then filter by family, then
  per key one ``await get()`` and one ``SETEX 3600`` round trip (a ``GET`` on a sorted set fails:
  counted, not retried); for objects the seed has no code, so each is copied with one get and one
  put, sequentially. ``seed_sync`` runs the same key loop with the blocking client (a faster
  baseline, reported beside it).
* ``voxshift``: ``migrate(settings)`` on the same data (keys re-populated first: the 61 s rate-limit
  keys would otherwise have gone), a fresh journal, v2 namespace and bucket.

When the bench starts SeaweedFS itself it also reports the server's own CPU per request: on a
2-core machine that, not the client, bounds how fast any copy of small objects can go.

Each measured run is a child process, so its peak RSS is its own (``ru_maxrss``; ``*_rss_delta_mb``
subtracts the RSS after imports). Throughput runs do not trace; the ``tracemalloc`` peaks come from
separate traced runs of the same code at 10 % and 100 % of the items, which show whether memory
grows with the number of items. The last line is one JSON object with every figure by name.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fixtures` is importable from the repo root
sys.path.insert(1, str(ROOT / "src"))

import boto3  # noqa: E402
import redis  # noqa: E402
from botocore.config import Config  # noqa: E402

HOUR = 3600
# family -> (share of the voice keys, TTL seconds): layout document §1
FAMILIES: dict[str, tuple[float, int]] = {
    "stt_cache:": (0.50, 24 * HOUR),
    "tts_response_cache:": (0.20, 24 * HOUR),
    "agent_voice_settings:": (0.05, HOUR),
    "voice_daily_stats:": (0.15, 30 * 24 * HOUR),
    "voice_rate_limit:": (0.09, 61),
    "voice_metrics:": (0.01, 7 * 24 * HOUR),
}


# --- the legacy's data ------------------------------------------------------------------------------


def s3_client(endpoint: str, access: str, secret: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32, retries={"max_attempts": 3}),
    )


def object_keys(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"voice/agent_bot_{rng.randrange(50):04x}/{rng.randrange(10**6)}/2026/01/02/{rng.randrange(24):02d}/"
        f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.{rng.choice(['ogg', 'mp3', 'wav'])}"
        for _ in range(n)
    ]


def populate_objects(client: Any, bucket: str, n: int) -> list[str]:
    keys = object_keys(n, seed=n)
    client.create_bucket(Bucket=bucket)

    def put(item: tuple[int, str]) -> None:
        i, key = item
        body = b"OggS\x00\x02" + os.urandom(16) + bytes([i % 256]) * random.Random(i).randrange(1000, 6000)
        meta = {"agent-id": key.split("/")[1], "user-id": key.split("/")[2], "custom-type": "voice_input"}
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="audio/mpeg", Metadata=meta)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, enumerate(keys)))
    client.put_object(Bucket=bucket, Key="notes/unrelated.txt", Body=b"not voice")
    return keys


def populate_keys(url: str, n: int, objects: list[str]) -> None:
    """``n`` voice keys in the families' shares, plus 1 % unrelated keys; pipelined."""
    r = redis.Redis.from_url(url)
    r.flushall()
    rng = random.Random(n)
    pipe = r.pipeline(transaction=False)
    counts = {family: int(n * share) for family, (share, _) in FAMILIES.items()}
    counts["stt_cache:"] += n - sum(counts.values())  # the rounding remainder
    for family, (_, ttl) in FAMILIES.items():
        for i in range(counts[family]):
            key, value = _key_value(family, i, rng, objects)
            if family in ("voice_metrics:", "voice_rate_limit:"):
                pipe.zadd(key, value)
                pipe.expire(key, ttl)
            else:
                pipe.set(key, value, ex=ttl)
            if len(pipe) >= 2000:
                pipe.execute()
    for i in range(n // 100):
        pipe.set(f"session:{i}", b"x" * 50)
    pipe.execute()
    r.close()


def _key_value(family: str, i: int, rng: random.Random, objects: list[str]) -> tuple[str, Any]:
    agent = f"agent_bot_{i % 50:04x}"
    if family == "stt_cache:":
        text = "".join(rng.choice("абвгдеж ") for _ in range(80))
        doc = {
            "success": True,
            "text": text,
            "provider_used": "openai",
            "processing_time": 0.8,
            "audio_url": None,
            "audio_data": None,
            "error_message": None,
            "metadata": {"model": "whisper-1", "language": "ru", "file_size": 20000},
        }
        return f"stt_cache:{rng.getrandbits(128):032x}", json.dumps(doc)
    if family == "tts_response_cache:":
        # Half name an object that exists (carried over), half one that is gone (skipped).
        named = (
            objects[i % len(objects)] if objects and i % 2 == 0 else f"voice/{agent}/u/2025/01/01/00/x.mp3"
        )
        info = {
            "file_id": str(uuid.uuid4()),
            "minio_bucket": "voice-files",
            "minio_key": named,
            "mime_type": "audio/mpeg",
            "size_bytes": 20000,
            "created_at": "2026-01-02T03:04:05",
        }
        doc = {"success": True, "file_info": info, "response_text": "привет " * 10}
        return f"tts_response_cache:{agent}:{i}:{1767225600 + i}", json.dumps(doc)
    if family == "agent_voice_settings:":
        doc = {"enabled": True, "providers": [{"provider": "openai", "stt_config": {"model": "whisper-1"}}]}
        return f"agent_voice_settings:{agent}_{i}", json.dumps(doc)
    if family == "voice_daily_stats:":
        stats = {"total": 10, "success": 9, "total_time": 7.5, "providers": {"openai": {"total": 10}}}
        doc = {
            "date": "2026-01-02",
            "agent_id": agent,
            "stt": stats,
            "tts": stats,
            "total_requests": 20,
            "unique_users": [str(u) for u in range(i % 7)],
        }
        return f"voice_daily_stats:{agent}:{i}:2026-01-02", json.dumps(doc)
    if family == "voice_rate_limit:":
        now = 1767225600.0 + i
        return f"voice_rate_limit:{agent}:{i}", {str(now + k): now + k for k in range(1 + i % 5)}
    members = {
        json.dumps(
            {
                "timestamp": 1767225600.0 + k,
                "agent_id": agent,
                "operation": "stt",
                "provider": "openai",
                "success": True,
                "processing_time": 0.5,
            }
        ): 1767225600.0 + k
        for k in range(30)
    }
    return f"voice_metrics:{agent}:{i}:stt", members


# --- the two approaches (each in a child process) ----------------------------------------------------


def seed_keys(url: str) -> dict[str, float]:
    """The seed's sample as written: redis.asyncio, ``await keys()``, then per key ``await get()`` and
    ``await setex(3600)``, one round trip each."""
    import redis.asyncio as aredis

    async def run() -> dict[str, float]:
        r = aredis.Redis.from_url(url)
        families = tuple(FAMILIES)
        copied = wrongtype = gone = 0
        for key in await r.keys("*"):  # the seed's KEYS pattern, widened to find the real families
            if not key.decode("utf-8", "surrogateescape").startswith(families):
                continue
            try:
                value = await r.get(key)
            except redis.ResponseError:
                wrongtype += 1  # a sorted set: the seed's GET cannot read it
                continue
            if value is None:
                gone += 1
                continue
            await r.set(b"seed_v2:" + key, value, ex=3600)  # = SETEX (redis-py deprecates setex())
            copied += 1
        await r.aclose()
        return {"keys_copied": copied, "keys_wrongtype_errors": wrongtype, "keys_expired": gone}

    return asyncio.run(run())


def seed_keys_sync(url: str) -> dict[str, float]:
    """The same with the blocking client: fewer event-loop hops per round trip, so a faster baseline."""
    r = redis.Redis.from_url(url)
    families = tuple(FAMILIES)
    copied = wrongtype = gone = 0
    for key in r.keys("*"):
        if not key.decode("utf-8", "surrogateescape").startswith(families):
            continue
        try:
            value = r.get(key)
        except redis.ResponseError:
            wrongtype += 1
            continue
        if value is None:
            gone += 1
            continue
        r.setex(b"seed_v2:" + key, 3600, value)
        copied += 1
    r.close()
    return {"keys_copied": copied, "keys_wrongtype_errors": wrongtype, "keys_expired": gone}


def seed_objects(endpoint: str, access: str, secret: str, bucket: str) -> dict[str, float]:
    """No seed code for objects: list, then one get and one put per object, sequentially."""
    client = s3_client(endpoint, access, secret)
    target = f"seed-v2-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=target)
    copied = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="voice/"):
        for item in page.get("Contents", []):
            got = client.get_object(Bucket=bucket, Key=item["Key"])
            client.put_object(
                Bucket=target,
                Key=item["Key"],
                Body=got["Body"].read(),
                ContentType=got["ContentType"],
                Metadata=got["Metadata"],
            )
            copied += 1
    return {"objects_copied": copied}


def voxshift_migrate(args: argparse.Namespace, bucket: str) -> dict[str, float]:
    from voxshift.config import Settings
    from voxshift.services.sunset.migrate import migrate

    suffix = uuid.uuid4().hex[:8]
    s3 = f"?endpoint={args.s3_endpoint}&region=us-east-1"
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="voxshift-bench-sunset-")),  # a fresh journal
        state_url=args.redis,
        legacy_redis_url=args.redis,
        voice_v2_redis_namespace=f"voice_v2_{suffix}",
        storage_url="s3://" + s3,
        storage_access_key=args.s3_access_key,
        storage_secret_key=args.s3_secret_key,
        voice_v2_minio_bucket=f"voice-v2-{suffix}",
        legacy_s3_url=f"s3://{bucket}{s3}",
        legacy_s3_access_key=args.s3_access_key,
        legacy_s3_secret_key=args.s3_secret_key,
    )
    last: dict[str, float] = {}

    def progress(store: str, items: int, size: int) -> None:
        last[store] = time.perf_counter()  # the phases run in order: settings, objects, keys

    began = time.perf_counter()
    result = asyncio.run(migrate(settings, progress=progress))
    ended = time.perf_counter()
    objects_done = last.get("s3", began)
    out: dict[str, float] = {"objects_seconds": objects_done - began, "keys_seconds": ended - objects_done}
    for store, outcomes in result.counts.items():
        for outcome, slot in outcomes.items():
            out[f"{store}_{outcome}"] = slot["items"]
    return out


def child(args: argparse.Namespace) -> None:
    """One measured run; prints its figures as JSON."""
    import logging

    logging.disable(logging.WARNING)  # SeaweedFS lifecycle notes are not figures
    bucket = args.bucket
    if args.child == "voxshift":
        # Imported before the baseline: the figures are the run's, not the import of the package.
        import voxshift.services.sunset.migrate  # noqa: F401
    if args.trace:
        tracemalloc.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_before, cpu_before = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    if args.child == "seed_sync_keys":
        figures = seed_keys_sync(args.redis)
        figures["keys_seconds"] = time.perf_counter() - start
        figures["objects_copied"] = 0
    elif args.child == "seed":
        figures = seed_keys(args.redis)
        keys_s = time.perf_counter() - start
        figures |= seed_objects(args.s3_endpoint, args.s3_access_key, args.s3_secret_key, bucket)
        figures["keys_seconds"] = keys_s
    else:
        figures = voxshift_migrate(args, bucket)
    figures["seconds"] = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of this process (all threads): near ``seconds`` means the client side is CPU-bound.
    figures["cpu_s"] = usage.ru_utime + usage.ru_stime - cpu_before
    figures["rss_peak_mb"] = usage.ru_maxrss / 1024
    figures["rss_delta_mb"] = figures["rss_peak_mb"] - rss_before
    if args.trace:
        figures["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    print(json.dumps(figures))


# --- the run -------------------------------------------------------------------------------------


def run_child(args: argparse.Namespace, mode: str, bucket: str, *, trace: bool = False) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", mode, "--bucket", bucket, "--redis", args.redis]
    cmd += ["--s3", args.s3_endpoint, "--s3-access-key", args.s3_access_key]
    cmd += ["--s3-secret-key", args.s3_secret_key] + (["--trace"] if trace else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def items_of(figures: dict[str, float], mode: str) -> float:
    if mode.startswith("seed"):
        keys = figures["keys_copied"] + figures["keys_wrongtype_errors"] + figures["keys_expired"]
        return keys + figures["objects_copied"]
    return sum(v for k, v in figures.items() if k.split("_")[0] in ("redis", "s3", "settings"))


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of a process we started; 0 when there is none to look at."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    client = s3_client(args.s3_endpoint, args.s3_access_key, args.s3_secret_key)
    suffix = uuid.uuid4().hex[:8]
    big, small = f"voice-files-{suffix}", f"voice-files-small-{suffix}"
    n_keys, n_objects = args.keys, args.objects
    t0 = time.perf_counter()
    objects = populate_objects(client, big, n_objects)
    small_objects = populate_objects(client, small, max(n_objects // 10, 1))
    out: dict[str, Any] = {
        "keys": n_keys,
        "objects": n_objects,
        "populate_objects_s": time.perf_counter() - t0,
    }

    def fresh_keys(n: int, names: list[str]) -> None:
        t = time.perf_counter()
        populate_keys(args.redis, n, names)
        print(f"  populated {n} keys in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    runs: list[tuple[str, str, int, str, bool]] = [  # (figure prefix, mode, keys, bucket, traced)
        ("seed", "seed", args.seed_keys or n_keys, big, False),
        ("seed_sync", "seed_sync_keys", args.seed_keys or n_keys, big, False),
        ("voxshift", "voxshift", n_keys, big, False),
        ("voxshift_traced_10pct", "voxshift", n_keys // 10, small, True),
        # Traced at 10x the keys with the same objects: does the peak grow with the number of items?
        ("voxshift_traced_100pct", "voxshift", n_keys, small, True),
        ("seed_traced_10pct", "seed", n_keys // 10, small, True),
    ]
    if args.seed_trace_full:
        runs.append(("seed_traced_100pct", "seed", n_keys, big, True))
    for name, mode, keys, bucket, traced in runs:
        fresh_keys(keys, objects if bucket == big else small_objects)
        server_cpu = _cpu_s(args.s3_pid)
        figures = run_child(args, mode, bucket, trace=traced)
        if args.s3_pid and not traced:
            figures["s3_server_cpu_s"] = _cpu_s(args.s3_pid) - server_cpu
        items = items_of(figures, mode)
        print(
            f"{name}: {items:.0f} items in {figures['seconds']:.1f} s = {items / figures['seconds']:.0f}/s, "
            f"RSS peak {figures['rss_peak_mb']:.0f} MB"
            + (f", tracemalloc peak {figures['tracemalloc_peak_mb']:.1f} MB" if traced else ""),
            file=sys.stderr,
        )
        out[f"{name}_items"] = items
        out[f"{name}_items_per_s"] = items / figures["seconds"]
        for key, value in figures.items():
            out[f"{name}_{key}"] = value
    out["seed_keys_per_s"] = (out["seed_items"] - out["seed_objects_copied"]) / out["seed_keys_seconds"]
    out["seed_objects_per_s"] = out["seed_objects_copied"] / (out["seed_seconds"] - out["seed_keys_seconds"])
    out["voxshift_keys_per_s"] = (out["voxshift_items"] - out["objects"] - 1) / out["voxshift_keys_seconds"]
    out["voxshift_objects_per_s"] = (out["objects"] + 1) / out["voxshift_objects_seconds"]
    out["seed_measured_on_keys"] = args.seed_keys or n_keys
    out["seed_sync_keys_per_s"] = out["seed_sync_items"] / out["seed_sync_keys_seconds"]
    out["keys_ratio_voxshift_over_seed"] = out["voxshift_keys_per_s"] / out["seed_keys_per_s"]
    out["keys_ratio_voxshift_over_seed_sync"] = out["voxshift_keys_per_s"] / out["seed_sync_keys_per_s"]
    out["objects_ratio_voxshift_over_seed"] = out["voxshift_objects_per_s"] / out["seed_objects_per_s"]
    out["throughput_ratio_voxshift_over_seed"] = out["voxshift_items_per_s"] / out["seed_items_per_s"]
    out["goal_throughput_10x"] = out["throughput_ratio_voxshift_over_seed"] >= 10
    if "voxshift_s3_server_cpu_s" in out:
        # What the S3 server itself spends per request (a GET and a PUT per object): on 2 cores this
        # caps any client's object copy rate, however fast the client is.
        requests = 2 * out["objects"]
        out["s3_server_cpu_ms_per_request"] = 1000 * out["voxshift_s3_server_cpu_s"] / requests
        out["objects_per_s_ceiling_2_cores"] = 2 / (2 * out["s3_server_cpu_ms_per_request"] / 1000)
    for who in ("voxshift", "seed"):
        for pct in ("10pct", "100pct"):
            name = f"{who}_traced_{pct}"
            if f"{name}_tracemalloc_peak_mb" in out:
                out[f"{name}_bytes_per_item"] = (
                    out[f"{name}_tracemalloc_peak_mb"] * 2**20 / out[f"{name}_items"]
                )
    ratio = (
        out["voxshift_traced_100pct_tracemalloc_peak_mb"] / out["voxshift_traced_10pct_tracemalloc_peak_mb"]
    )
    out["voxshift_peak_memory_ratio_100pct_over_10pct"] = ratio
    out["goal_memory_flat"] = ratio <= 1.5  # 10x the items, at most 1.5x the peak
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", help="a Redis URL to use instead of starting redis-server")
    parser.add_argument("--s3", dest="s3_endpoint", help="an S3 endpoint URL instead of starting SeaweedFS")
    parser.add_argument("--s3-access-key", default="")
    parser.add_argument("--s3-secret-key", default="")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--seed-keys", type=int, default=0, help="run the seed on this many keys only")
    parser.add_argument("--seed-trace-full", action="store_true", help="also trace the seed at 100%%")
    parser.add_argument("--child", choices=("seed", "seed_sync_keys", "voxshift"), help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.s3_pid = None
    if args.child:
        child(args)
        return
    started = time.perf_counter()
    redis_server = s3_server = None
    try:
        if args.redis is None:
            from tests.fixtures.redis_server import RedisServer

            redis_server = RedisServer().start()
            args.redis = redis_server.url
        if args.s3_endpoint is None:
            from tests.fixtures.s3_server import SeaweedS3

            s3_server = SeaweedS3()
            s3_server.start()
            args.s3_endpoint = s3_server.endpoint_url
            args.s3_access_key, args.s3_secret_key = s3_server.access_key, s3_server.secret_key
            assert s3_server.process is not None
            args.s3_pid = s3_server.process.pid
        figures = measure(args)
    finally:
        if s3_server is not None:
            s3_server.close()  # SIGTERM, then SIGKILL after a few seconds (weed ignores SIGTERM)
        if redis_server is not None:
            redis_server.close()
    figures["wall_s"] = time.perf_counter() - started
    figures["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
