"""Pure parts of object storage: key layout, metadata encoding, URL signing, storage URL parsing."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from voxshift.config import Settings
from voxshift.errors import ConfigError, Forbidden, InvalidRequest
from voxshift.stores.objects import (
    LocalObjectStorage,
    load_or_create_signing_key,
    open_from_settings,
    open_object_storage,
    resolve_signing_key,
)
from voxshift.stores.objects.keys import (
    audio_object_key,
    content_type_for,
    decode_agent_segment,
    decode_metadata,
    encode_agent_segment,
    encode_metadata,
    temp_object_key,
    validate_metadata,
)
from voxshift.stores.objects.signing import signature, signed_path, verify

SHA = "ab" * 32
WHEN = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)
KEY = b"unit-test-signing-key-0123456789"


# --- keys -------------------------------------------------------------------------------------------


def test_audio_key_layout() -> None:
    assert audio_object_key("agent_42", SHA, "mp3", WHEN) == f"audio/agent_42/2026/03/09/{SHA}.mp3"
    assert audio_object_key(None, SHA.upper(), ".OGG", WHEN) == f"audio/_/2026/03/09/{SHA}.ogg"


def test_audio_key_date_is_utc() -> None:
    moscow = WHEN.astimezone(timezone(timedelta(hours=3)))  # already 10 March there
    assert audio_object_key("a", SHA, "wav", moscow).startswith("audio/a/2026/03/09/")
    with pytest.raises(InvalidRequest):
        audio_object_key("a", SHA, "wav", datetime(2026, 3, 9))


@pytest.mark.parametrize(
    ("agent", "segment"),
    [
        ("agent_привет_ab12", "agent_привет_ab12"),  # UTF-8 kept readable
        ("bot:42@team.example", "bot:42@team.example"),  # ':', '@' and inner '.' kept
        ("a/b", "a%2Fb"),
        ("..", "%2E."),
        (".hidden", "%2Ehidden"),
        ("100%", "100%25"),
        ("sp ace\ttab", "sp%20ace%09tab"),
        ("q?h#b\\s", "q%3Fh%23b%5Cs"),
        ("nul\x00", "nul%00"),
        ("_", "%5F"),  # an agent really named "_" must not collide with "no agent"
        ("", "_"),
    ],
)
def test_agent_segment_is_safe_and_reversible(agent: str, segment: str) -> None:
    assert encode_agent_segment(agent) == segment
    assert "/" not in segment
    assert decode_agent_segment(segment) == (agent or None)


def test_agent_segment_limits() -> None:
    with pytest.raises(InvalidRequest):
        encode_agent_segment("я" * 101)  # 202 bytes
    with pytest.raises(InvalidRequest):
        encode_agent_segment("bad\udc80surrogate")


@pytest.mark.parametrize("sha", ["", "ab" * 31, "zz" * 32, SHA + "0"])
def test_bad_sha256_refused(sha: str) -> None:
    with pytest.raises(InvalidRequest):
        audio_object_key("a", sha, "mp3", WHEN)


@pytest.mark.parametrize("ext", ["", "m p3", "../x", "a" * 11, "mp3/x"])
def test_bad_extension_refused(ext: str) -> None:
    with pytest.raises(InvalidRequest):
        audio_object_key("a", SHA, ext, WHEN)


def test_temp_key() -> None:
    assert temp_object_key("wav", WHEN, token="abc") == "temp/2026/03/09/abc.wav"
    one, two = temp_object_key("wav", WHEN), temp_object_key("wav", WHEN)
    assert one != two and one.startswith("temp/2026/03/09/")
    with pytest.raises(InvalidRequest):
        temp_object_key("wav", WHEN, token="../x")


def test_content_types_are_real() -> None:
    assert content_type_for("ogg") == "audio/ogg"
    assert content_type_for(".WAV") == "audio/wav"
    assert content_type_for("mp3") == "audio/mpeg"
    assert content_type_for("opus") == "audio/ogg"
    assert content_type_for("unknown") == "application/octet-stream"


# --- keys as local paths: nothing can escape the bucket folder ----------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStorage:
    return LocalObjectStorage(tmp_path / "objects", "voice-v2-files", signing_key=KEY)


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "nul\x00byte",
        "tab\there",
        "back\\slash",
        "trailing/",
        ".vxmeta.x.json",
        "a/.vxbucket.json",
        "x" * 201,
    ],
)
async def test_local_refuses_unsafe_keys(local: LocalObjectStorage, key: str, tmp_path: Path) -> None:
    await local.ensure_bucket()
    with pytest.raises(Exception) as refused:
        await local.put(key, b"x", "audio/wav")
    assert getattr(refused.value, "status", None) == 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["objects"]
    assert [p.name for p in (tmp_path / "objects").iterdir()] == ["voice-v2-files"]


async def test_local_symlink_cannot_lead_outside(local: LocalObjectStorage, tmp_path: Path) -> None:
    await local.ensure_bucket()
    outside = tmp_path / "outside"
    outside.mkdir()
    (local.bucket_dir / "link").symlink_to(outside)
    with pytest.raises(Exception) as refused:
        await local.put("link/x.wav", b"x", "audio/wav")
    assert getattr(refused.value, "status", None) == 400
    assert list(outside.iterdir()) == []


async def test_local_prefix_key_conflict_is_a_clear_error(local: LocalObjectStorage) -> None:
    await local.ensure_bucket()
    await local.put("a/b", b"x", "audio/wav")
    with pytest.raises(Exception) as refused:
        await local.put("a", b"y", "audio/wav")
    assert getattr(refused.value, "status", None) == 400
    assert (await local.get("a/b"))[0] == b"x"


# --- metadata ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["plain", "голосовое.ogg", "x:@.", "  padded ", "line\nbreak", "=?UTF-8?B?aGk=?=", "", "emoji 🎙"],
)
def test_metadata_values_round_trip_as_ascii(value: str) -> None:
    encoded = encode_metadata({"k": value})
    assert encoded["k"].isascii() and "\n" not in encoded["k"]
    assert decode_metadata(encoded) == {"k": value}


def test_plain_ascii_metadata_is_sent_unchanged() -> None:
    assert encode_metadata({"user-id": "u:42@x.y"}) == {"user-id": "u:42@x.y"}
    assert decode_metadata({"X-Other-Tool": "=?UTF-8?B?!!!?="}) == {"x-other-tool": "=?UTF-8?B?!!!?="}


@pytest.mark.parametrize("key", ["Upper", "with space", "ключ", "", "-lead", "a" * 129])
def test_metadata_keys_must_survive_s3(key: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_metadata({key: "v"})


def test_metadata_size_limit() -> None:
    validate_metadata({"a": "x" * 2000})
    with pytest.raises(InvalidRequest):
        validate_metadata({"a": "я" * 1000})  # 2000 UTF-8 bytes grow past 2 KB as base64


# --- signing ----------------------------------------------------------------------------------------


def test_signature_covers_bucket_key_and_expiry() -> None:
    base = signature(KEY, "b", "k", 100)
    assert len({base, signature(KEY, "c", "k", 100), signature(KEY, "b", "j", 100)}) == 3
    assert signature(KEY, "b", "k", 101) != base
    assert signature(b"another-signing-key-0123456789", "b", "k", 100) != base
    # length-prefixed fields: moving a character between bucket and key changes the message
    assert signature(KEY, "ab", "c", 1) != signature(KEY, "a", "bc", 1)


def test_verify() -> None:
    sig = signature(KEY, "b", "k/ы", 1000)
    verify(KEY, "b", "k/ы", "1000", sig, now=999)
    for bad in [("b", "k/y", "1000", sig), ("b", "k/ы", "1001", sig), ("b", "k/ы", "1000", "0" * 64)]:
        with pytest.raises(Forbidden) as refused:
            verify(KEY, *bad, now=999)
        assert refused.value.code == "signature_mismatch"
    with pytest.raises(Forbidden) as expired:
        verify(KEY, "b", "k/ы", "1000", sig, now=1000)
    assert expired.value.code == "url_expired"
    for expires, given in [(None, sig), ("1000", None)]:
        with pytest.raises(Forbidden):
            verify(KEY, "b", "k/ы", expires, given, now=0)
    with pytest.raises(Forbidden):
        verify(KEY, "b", "k/ы", "-5", sig, now=0)


def test_signed_path_escapes_the_key_once() -> None:
    path = signed_path(KEY, "voice-v2-files", "audio/a%2Fb/x y?.mp3", 77)
    assert path.startswith("/v2/objects/voice-v2-files/audio/a%252Fb/x%20y%3F.mp3?expires=77&sig=")


def test_signing_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create_signing_key(tmp_path / "data")
    again = load_or_create_signing_key(tmp_path / "data")
    mode = (tmp_path / "data" / "signing.key").stat().st_mode
    assert first == again and len(first) == 32
    assert stat.S_IMODE(mode) == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["signing.key"]  # no temp file left


def test_corrupt_signing_key_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "signing.key").write_text("not hex")
    with pytest.raises(ConfigError, match=r"signing\.key"):
        load_or_create_signing_key(tmp_path)


# --- storage URLs -----------------------------------------------------------------------------------


def test_file_url_opens_local_store(tmp_path: Path) -> None:
    store = open_object_storage(f"file://{tmp_path}/objects", "voice-v2-files", signing_key=KEY)
    assert isinstance(store, LocalObjectStorage)
    assert store.bucket_dir == tmp_path / "objects" / "voice-v2-files"


def test_s3_url_bucket_argument_wins() -> None:
    store = open_object_storage(
        "s3://voice-files?endpoint=http://127.0.0.1:9&region=eu-west-1",
        "voice-v2-files",
        access_key=SecretStr("ak"),
        secret_key="sk",
    )
    assert store.bucket == "voice-v2-files"
    assert getattr(store, "region", None) == "eu-west-1"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://x",
        "file://relative/path",
        "file:///abs?x=1",
        "s3://b?endpoint=ftp://h",
        "s3://b?endpoint=http://h:99999",
        "s3://b?endpoint=http://h/path",
        "s3://b?endpoint=http://h&unknown=1",
        "s3://b?region=a&region=b",
        "s3://b?addressing=sideways",
        "redis://localhost",
    ],
)
def test_bad_storage_urls_are_one_line_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as bad:
        open_object_storage(url, "voice-v2-files", signing_key=KEY)
    assert "VOXSHIFT_STORAGE_URL" in bad.value.message
    assert "file:///" in bad.value.message and "s3://" in bad.value.message
    assert "\n" not in bad.value.message


def test_password_in_endpoint_is_masked_in_errors() -> None:
    with pytest.raises(ConfigError) as bad:
        open_object_storage("s3://b?endpoint=http://u:hunter2@h/x", "voice-v2-files")
    assert "hunter2" not in bad.value.message


def test_local_store_needs_a_signing_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VOXSHIFT_SIGNING_KEY"):
        open_object_storage(f"file://{tmp_path}", "voice-v2-files")
    with pytest.raises(ConfigError, match="at least"):
        open_object_storage(f"file://{tmp_path}", "voice-v2-files", signing_key="short")


def test_bad_bucket_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        open_object_storage(f"file://{tmp_path}", "Bad_Bucket", signing_key=KEY)


def test_settings_wiring(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_from_settings(settings)
    assert isinstance(store, LocalObjectStorage)
    assert store.bucket == "voice-v2-files"
    assert store.bucket_dir == tmp_path / "objects" / "voice-v2-files"
    assert resolve_signing_key(settings) == load_or_create_signing_key(tmp_path)
    configured = Settings(data_dir=tmp_path, signing_key=SecretStr("configured-key-0123456789"))
    assert resolve_signing_key(configured) == b"configured-key-0123456789"
