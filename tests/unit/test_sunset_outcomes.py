"""The data migration's pure vocabulary: key plans, v2 names, TTS response references, metadata."""

from __future__ import annotations

import json

import pytest

from voxshift.core.legacy_layout import parse_voice_object_key
from voxshift.core.sunset import outcomes as oc

UUID = "0f8e4c2a-1b3d-4e5f-8a9b-0c1d2e3f4a5b"
AGENT = "agent_" + "голос_@:." * 12 + "_1a2b3c4d"  # non-ASCII, ':', '@', '.', ~115 characters


@pytest.mark.parametrize(
    ("key", "action"),
    [
        ("stt_cache:" + "a" * 32, "skip"),
        (f"agent_voice_settings:{AGENT}", "skip"),
        (f"voice_rate_limit:{AGENT}:42", "skip"),
        (f"voice_metrics:{AGENT}:stt", "history"),
        (f"voice_daily_stats:{AGENT}:2026-01-02", "history"),
        (f"tts_response_cache:{AGENT}:42:1767225600", "tts_response"),
    ],
)
def test_every_family_has_a_plan(key: str, action: str) -> None:
    plan = oc.plan_key(key)
    assert plan.action == action
    assert (plan.reason is not None) == (action == "skip")


def test_the_stt_cache_reason_says_why_it_cannot_move() -> None:
    reason = oc.plan_key("stt_cache:" + "0" * 32).reason or ""
    assert "md5(size:mime:provider)" in reason and "not transferable" in reason


def test_a_key_outside_the_families_has_no_plan() -> None:
    for key in ("session:1", "voice:cache:x", "stt_cache", "voice_v2:cache:stt:x"):
        with pytest.raises(ValueError):
            oc.plan_key(key)


def test_v2_object_key_uses_the_sniffed_extension() -> None:
    legacy = f"voice/{AGENT}/777/2026/01/02/03/{UUID}.mp3"
    assert oc.v2_object_key(legacy, "wav") == f"legacy/{AGENT}/777/2026/01/02/03/{UUID}.wav"
    assert oc.v2_object_key(legacy, "mp3") == f"legacy/{AGENT}/777/2026/01/02/03/{UUID}.mp3"
    # no recognised audio (an empty object): no extension the bytes do not back
    assert oc.v2_object_key(legacy, None) == f"legacy/{AGENT}/777/2026/01/02/03/{UUID}"
    assert (
        oc.v2_object_key(f"voice/a/u/2026/01/02/03/{UUID}", "ogg") == f"legacy/a/u/2026/01/02/03/{UUID}.ogg"
    )
    with pytest.raises(ValueError):
        oc.v2_object_key("voice/not-the-layout.txt", "ogg")


def test_v2_key_names() -> None:
    key = f"tts_response_cache:{AGENT}:42:1767225600"
    assert oc.tts_response_key(key) == f"legacy:tts_response_cache:{AGENT}:42:1767225600"
    assert oc.history_key("voice_metrics:a:stt") == "migration:legacy_history:voice_metrics:a:stt"
    with pytest.raises(ValueError):
        oc.tts_response_key("stt_cache:" + "a" * 32)


@pytest.mark.parametrize(
    ("value", "found", "why"),
    [
        (
            json.dumps({"success": True, "file_info": {"minio_key": "voice/a/b/c"}}).encode(),
            "voice/a/b/c",
            None,
        ),
        (b'{"success": true, "text": "\xd0\xbf', None, "corrupt JSON"),
        (b"\xff\xfe not utf-8", None, "not UTF-8"),
        (b'{"success": true}', None, "no file_info.minio_key"),
        (b'{"file_info": {"minio_key": ""}}', None, "no file_info.minio_key"),
        (b"[1, 2]", None, "no file_info.minio_key"),
    ],
)
def test_tts_response_object(value: bytes, found: str | None, why: str | None) -> None:
    key, reason = oc.tts_response_object(value)
    assert key == found
    assert (reason is None) == (why is None)
    if why is not None:
        assert why in (reason or "")


def test_metadata_keeps_who_what_when_and_the_digest() -> None:
    legacy = f"voice/agent_x/777/2026/01/02/03/{UUID}.mp3"
    parts = parse_voice_object_key(legacy)
    assert parts is not None
    meta = {
        "agent-id": "agent_x",
        "user-id": "777",
        "original-filename": "response_1.mp3",
        "upload-time": "2026-01-02T03:04:05.678901",
        "custom-type": "tts_output",
        "custom-text_length": "12",
    }
    out = oc.v2_object_metadata(legacy, parts, meta, "ab" * 32)
    assert out == {
        "agent-id": "agent_x",
        "user-id": "777",
        "kind": "tts_output",
        "legacy-key": legacy,
        "sha256": "ab" * 32,
        "original-filename": "response_1.mp3",
        "upload-time": "2026-01-02T03:04:05.678901",
    }
    assert oc.object_kind({}) == "unknown" and oc.object_kind({"custom-type": "voice_input"}) == "voice_input"


def test_outcome_vocabulary() -> None:
    assert oc.OUTCOMES == ("migrated", "skipped", "untouched", "expired")
    assert set(oc.STORES) == {"redis", "s3", "settings"}
