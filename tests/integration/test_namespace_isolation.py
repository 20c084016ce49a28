"""Seed 1.1: v2 runs beside the legacy service in the same Redis and never touches a legacy key.

A Redis is filled with the legacy layout (PlatformAI-HUB's real keys, with TTLs, and the seed's
`voice:` names); every v2 path then runs against it; a SCAN before and after proves that not one key
outside `voice_v2:` was created, changed, re-timed or deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

from tests.conftest import speech_to_wav
from voxshift.config import Settings
from voxshift.engines.base import TTSRequest
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.voice.cache import VoiceCache
from voxshift.services.voice.service import VoiceV2Service
from voxshift.services.wiring.backends import open_backends
from voxshift.services.wiring.engines import build_engines

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


def fill_legacy(client: redis_sync.Redis) -> None:
    md5 = hashlib.md5(b"48213:audio/mpeg:openai").hexdigest()
    result = {"success": True, "text": "\u043f\u0440\u0438\u0432\u0435\u0442", "provider_used": "openai"}
    client.set(f"stt_cache:{md5}", json.dumps(result), ex=86400)
    client.set("agent_voice_settings:agent_demo", json.dumps({"enabled": True, "providers": []}), ex=3600)
    client.set("tts_response_cache:agent_demo:42:1764000000", json.dumps({"success": True}), ex=86400)
    client.zadd("voice_metrics:agent_demo:stt", {json.dumps({"timestamp": 1.0}): 1.0})
    client.expire("voice_metrics:agent_demo:stt", 7 * 86400)
    client.set("voice_daily_stats:agent_demo:2026-11-25", json.dumps({"total_requests": 3}), ex=30 * 86400)
    client.zadd("voice_rate_limit:agent_demo:42", {"1764000000.5": 1764000000.5})
    client.set("voice:cache:abc", "seed-style key")  # the seed's imagined legacy namespace
    client.hset("voice:session:1", mapping={"a": "1"})
    client.set("voice_v2_rollout:user-1:stt", "True")  # the seed's decision cache lives outside too
    client.set("voice_v2x:lookalike", "not our namespace")
    client.set("agent_voice_settings:агент:@.x", "non-ascii legacy id")


# What v2 owns: its namespace, and the seed's own metrics namespace (M3.2 "migration:voice_v2:").
V2_PREFIXES = (b"voice_v2:", b"migration:voice_v2:")


def snapshot(client: redis_sync.Redis, namespace: str) -> dict[bytes, tuple[bytes, bool]]:
    assert namespace.encode() + b":" in V2_PREFIXES
    out: dict[bytes, tuple[bytes, bool]] = {}
    for key in client.scan_iter(count=100):
        if key.startswith(V2_PREFIXES):
            continue
        dumped = client.dump(key)
        assert dumped is not None
        out[key] = (dumped, client.pttl(key) > 0)
    return out


def ttls(client: redis_sync.Redis, keys: list[bytes]) -> dict[bytes, int]:
    return {k: client.pttl(k) for k in keys}


async def test_every_v2_path_leaves_legacy_keys_alone(
    clean_redis: Any, tmp_path: Path, settings: Settings, whisper: Any, piper: Any
) -> None:
    client = redis_sync.Redis.from_url(clean_redis.url)
    fill_legacy(client)
    before = snapshot(client, "voice_v2")
    ttl_before = ttls(client, list(before))
    assert len(before) == 11

    v2_settings = Settings(
        data_dir=tmp_path,
        whisper_model_dir=settings.whisper_model_dir,
        workers=2,
        state_url=clean_redis.url,
        voice_v2_features={"caching_enabled": True, "stt_enabled": True, "tts_enabled": True},
    )
    backends = await open_backends(v2_settings, check=True)
    try:
        engines = build_engines(v2_settings)
        engines.load()
        cache = VoiceCache(
            backends.v2_state, backends.objects, backends.state_dependency, backends.objects_dependency
        )
        service = VoiceV2Service(engines, cache, backends.agent_voice_settings, settings=v2_settings)
        # Agent settings: write, read through the cache, update, delete.
        await backends.agent_settings.put("agent_demo", {"enabled": True, "cache_ttl_hours": 2})
        assert (await backends.agent_settings.get("agent_demo")) is not None
        await backends.agent_settings.put("агент:@.x", {"enabled": True})
        await backends.agent_settings.delete("агент:@.x")
        # STT and TTS, cached, with and without an agent, twice each (miss, then hit).
        speech = await piper.synthesize(TTSRequest("Legacy keys stay where they are.", "en"))
        wav = speech_to_wav(speech)
        for agent in ("agent_demo", None):
            for _ in range(2):
                await service.transcribe(wav, language="en", agent_id=agent)
                await service.synthesize("Legacy keys stay.", language="en", format="mp3", agent_id=agent)
        # Feature flags (stored, audited, published) and migration metrics (flushed).
        flags = FeatureFlags.from_backends(backends)
        await flags.start()
        await flags.set_percentage("stt", 30, actor="test", reason="isolation")
        await flags.kill(actor="test", reason="isolation")
        await flags.stop()
        metrics = MigrationMetrics(backends.state)
        metrics.record_operation("stt", "voice_v2", 120.0, True, provider="whisper")
        metrics.record_fallback("tts", "voice_v2", "legacy", "timeout")
        await metrics.flush()
        # Change notifications and the health probes.
        await backends.v2_state.publish("flags", b"changed")
        for dep in backends.monitor.dependencies:
            assert await dep.probe()
        await asyncio.sleep(0.05)
        await engines.aclose()
    finally:
        await backends.aclose()

    after = snapshot(client, "voice_v2")
    assert after.keys() == before.keys(), f"created or deleted: {after.keys() ^ before.keys()}"
    changed = [k for k in before if before[k][0] != after[k][0]]
    assert changed == []
    ttl_after = ttls(client, list(before))
    for key, left in ttl_after.items():
        # Never re-timed: a key's TTL only ran down (or stayed -1 without expiry).
        assert left <= ttl_before[key] or (ttl_before[key] == -1 and left == -1), key
    v2_keys = sorted(k.decode() for k in client.scan_iter(match="voice_v2:*"))
    assert any(k.startswith("voice_v2:cache:stt:") for k in v2_keys)
    assert any(k.startswith("voice_v2:cache:tts:") for k in v2_keys)
    assert "voice_v2:settings:agent:agent_demo" in v2_keys
    assert "voice_v2:flags:config" in v2_keys
    assert any(k.startswith(b"migration:voice_v2:operations:stt:voice_v2:") for k in client.scan_iter())
    client.close()
