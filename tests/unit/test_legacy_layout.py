"""The legacy voice vocabulary: which keys and objects are voice data, and the canonical value form."""

from __future__ import annotations

import pytest

from voxshift.core.legacy_layout import (
    canonical_value,
    decode_canonical,
    family_of,
    parse_voice_object_key,
    value_digest,
)

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    ("key", "family"),
    [
        ("agent_voice_settings:agent_x_1a2b3c4d", "agent_voice_settings:"),
        ("stt_cache:d41d8cd98f00b204e9800998ecf8427e", "stt_cache:"),
        ("tts_response_cache:a:u:1700000000", "tts_response_cache:"),
        ("voice_metrics:a:stt", "voice_metrics:"),
        ("voice_daily_stats:a:2026-01-01", "voice_daily_stats:"),
        ("voice_rate_limit:a:u", "voice_rate_limit:"),
        ("voice:cache:x", None),  # the seed's namespace: nothing the legacy wrote
        ("stt_cache:", None),
        ("voice_v2:stt:x", None),
        ("session:stt_cache:x", None),
    ],
)
def test_key_families(key: str, family: str | None) -> None:
    assert family_of(key) == family


@pytest.mark.parametrize(
    ("key", "ext"),
    [
        (f"voice/agent_a/user1/2026/01/02/03/{UUID}.ogg", "ogg"),
        (f"voice/agent_бот_@:.x/42/2026/12/31/23/{UUID}", None),
        (f"voice/a/u/2026/01/02/03/{UUID}.mp3", "mp3"),
    ],
)
def test_voice_object_keys(key: str, ext: str | None) -> None:
    parsed = parse_voice_object_key(key)
    assert parsed is not None and parsed.ext == ext and parsed.uuid == UUID


@pytest.mark.parametrize(
    "key",
    [
        f"voice/a/2026/01/02/03/{UUID}.ogg",  # no user segment
        f"voice/a/u/2026/13/02/03/{UUID}.ogg",  # month 13
        f"voice/a/u/2026/01/02/24/{UUID}.ogg",  # hour 24
        "voice/a/u/2026/01/02/03/not-a-uuid.ogg",
        f"user-files/agent_a/user_1/2026/01/02/03/{UUID}.png",
        f"whatsapp/chat/{UUID}.ogg",
        f"voice/a/u/2026/01/02/03/{UUID}.ogg/extra",
        "backups/x/manifest.json",
    ],
)
def test_not_voice_objects(key: str) -> None:
    assert parse_voice_object_key(key) is None


def test_canonical_form_ignores_store_order_and_round_trips() -> None:
    a = canonical_value("zset", [(b"m2", b"2.5"), (b"m1", 1.0)])
    b = canonical_value("zset", [(b"m1", b"1"), (b"m2", 2.5)])
    assert a == b
    assert value_digest("hash", {b"f": b"1", b"g": b"2"}) == value_digest("hash", {b"g": b"2", b"f": b"1"})
    assert value_digest("string", b"ab") != value_digest("string", b"a") != value_digest("hash", {b"a": b"b"})
    assert decode_canonical(canonical_value("string", b"\xff\x00")) == ("string", b"\xff\x00")
    assert decode_canonical(canonical_value("hash", {b"f": b"v"})) == ("hash", {b"f": b"v"})
    assert decode_canonical(canonical_value("zset", [(b"m", 1.5)])) == ("zset", [(b"m", 1.5)])
    with pytest.raises(ValueError):
        decode_canonical(b"string\n\x00\x00")
