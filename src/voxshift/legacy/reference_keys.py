"""The legacy voice service's names and values, as pure functions (no I/O).

Everything here reproduces PlatformAI-HUB ``app/services/voice`` at commit be31e39 (see
``/work/shared/legacy/platformai-hub-voice-layout.md``), bugs included, because the data the real
service left behind has exactly this shape and the migration must read it:

* Redis ``agent_voice_settings:{agent_id}``: ``json.dumps(raw dict)``, ``setex 3600``.
* Redis ``stt_cache:{md5(f"{size}:{mime}:{provider}")}``: the key ignores the audio content and the
  agent, so equal-sized recordings share a transcript. The mime type is always ``audio/mpeg``.
* Objects in ``voice-files``: ``voice/{agent}/{user}/{utcnow:%Y/%m/%d/%H}/{uuid4}.{ext}``, always
  ``audio/mpeg``, metadata that minio-py refuses unless it is US-ASCII.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

SETTINGS_PREFIX = "agent_voice_settings:"
SETTINGS_TTL_S = 3600  # agent_runner._cache_voice_settings: setex 3600
STT_CACHE_PREFIX = "stt_cache:"
LEGACY_BUCKET = "voice-files"  # settings.MINIO_VOICE_BUCKET_NAME's default
UPLOAD_MIME = "audio/mpeg"  # upload_audio_file's default, which the STT path never overrides
LEGACY_PROVIDERS = ("openai", "google", "yandex")  # the VoiceProvider enum

# VoiceSettings defaults (app/api/schemas/voice_schemas.py) and the ranges its fields allow.
DEFAULT_MAX_FILE_SIZE_MB = 25
DEFAULT_CACHE_TTL_HOURS = 24
_RANGES = {"max_file_size_mb": (1, 100), "cache_ttl_hours": (1, 168), "rate_limit_per_minute": (1, 100)}

# AudioFileProcessor.detect_audio_format: the extension fallback when no magic number matched.
_EXTENSIONS = {
    ".mp3": "mp3", ".wav": "wav", ".ogg": "ogg", ".opus": "opus",
    ".flac": "flac", ".aac": "aac", ".m4a": "aac",
}  # fmt: skip


@dataclass(frozen=True)
class LegacyVoiceSettings:
    """The part of a legacy ``VoiceSettings`` document the voice path reads."""

    enabled: bool = False
    max_file_size_mb: int = DEFAULT_MAX_FILE_SIZE_MB
    cache_enabled: bool = True
    cache_ttl_hours: int = DEFAULT_CACHE_TTL_HOURS
    first_provider: str = "none"  # providers[0].provider: list order, not priority (the legacy's rule)

    @property
    def cache_ttl_s(self) -> int:
        return self.cache_ttl_hours * 3600

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_size_mb * 1024 * 1024


def parse_voice_settings(raw: Mapping[str, Any]) -> LegacyVoiceSettings:
    """Read the fields the voice path uses; ValueError naming the first one that is wrong.

    Like pydantic in the legacy, unknown fields are ignored and missing ones take the defaults.
    """
    if not isinstance(raw, Mapping):
        raise ValueError("voice settings must be a JSON object")
    values: dict[str, Any] = {}
    for name in ("enabled", "cache_enabled"):
        if name in raw:
            if not isinstance(raw[name], bool):
                raise ValueError(f"{name}: must be true or false, got {raw[name]!r}")
            values[name] = raw[name]
    for name, (lo, hi) in _RANGES.items():
        if name in raw:
            value = raw[name]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name}: must be an integer from {lo} to {hi}, got {value!r}")
            if name != "rate_limit_per_minute":  # validated like the legacy, never used
                values[name] = value
    providers = raw.get("providers", [])
    if not isinstance(providers, list):
        raise ValueError("providers: must be a list")
    for index, entry in enumerate(providers):
        if not isinstance(entry, Mapping) or entry.get("provider") not in LEGACY_PROVIDERS:
            raise ValueError(f"providers[{index}].provider: must be one of {', '.join(LEGACY_PROVIDERS)}")
    if providers:
        values["first_provider"] = providers[0]["provider"]
    return LegacyVoiceSettings(**values)


def settings_key(agent_id: str) -> str:
    return f"{SETTINGS_PREFIX}{agent_id}"


def settings_value(settings: Mapping[str, Any]) -> bytes:
    """``json.dumps(voice_settings)``: ensure_ascii, default separators, so always ASCII bytes."""
    return json.dumps(dict(settings)).encode("ascii")


def stt_cache_key(size_bytes: int, mime_type: str, provider: str) -> str:
    """``voice_orchestrator._generate_stt_cache_key``: no content hash, no agent (the collision bug)."""
    digest = hashlib.md5(f"{size_bytes}:{mime_type}:{provider}".encode()).hexdigest()
    return f"{STT_CACHE_PREFIX}{digest}"


def processing_result(
    *,
    success: bool,
    text: str | None,
    provider_used: str | None,
    processing_time: float,
    metadata: Mapping[str, Any],
    error_message: str | None = None,
) -> dict[str, Any]:
    """``VoiceProcessingResult.dict()`` for STT: exactly its eight fields, in its order."""
    return {
        "success": success,
        "text": text,
        "audio_url": None,
        "audio_data": None,  # always null for STT
        "provider_used": provider_used,
        "processing_time": processing_time,
        "error_message": error_message,
        "metadata": dict(metadata),
    }


def processing_result_value(result: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(result)).encode("ascii")


def detect_audio_format(data: bytes, filename: str = "") -> str | None:
    """``AudioFileProcessor.detect_audio_format``, as written.

    Note ``data[6:10] == b"ftyp"``: an MP4/M4A file has ``ftyp`` at offset 4, so the legacy never
    recognised one by its bytes and fell back to the file name (``.m4a`` -> ``aac``).
    """
    if not data:
        return None
    if data.startswith(b"ID3") or data[6:10] == b"ftyp":
        return "mp3"
    if data.startswith(b"OggS"):
        return "ogg"
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"fLaC"):
        return "flac"
    if data.startswith(b"OpusHead"):
        return "opus"
    if filename:
        return _EXTENSIONS.get(PurePosixPath(filename).suffix.lower())
    return None


def object_extension(audio_format: str | None, original_filename: str) -> str | None:
    """``upload_audio_file``: the detected format, else whatever follows the file name's last dot
    (case kept, not validated), else no extension at all."""
    if audio_format:
        return audio_format
    if "." in original_filename:
        return original_filename.split(".")[-1]
    return None


def object_key(
    agent_id: str,
    user_id: str,
    when: datetime,
    unique: uuid.UUID | str,
    extension: str | None,
) -> str:
    """``MinioFileManager._generate_object_key`` (file_type is always ``voice``, TTS output too)."""
    key = f"voice/{agent_id}/{user_id}/{when:%Y/%m/%d/%H}/{unique}"
    return f"{key}.{extension}" if extension else key


def upload_metadata(
    agent_id: str, user_id: str, original_filename: str, upload_time: datetime, extra: Mapping[str, Any]
) -> dict[str, str]:
    """The object's user metadata: four fixed fields plus ``custom-{k}`` = ``str(v)`` per extra."""
    metadata = {
        "agent-id": agent_id,
        "user-id": user_id,
        "original-filename": original_filename,
        "upload-time": upload_time.isoformat(),  # naive UTC: datetime.utcnow().isoformat()
    }
    metadata.update({f"custom-{k}": str(v) for k, v in extra.items()})
    return metadata


def check_minio_metadata(metadata: Mapping[str, str]) -> None:
    """What minio-py does to every metadata value before sending: US-ASCII or ValueError."""
    for value in metadata.values():
        try:
            value.encode("us-ascii")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"unsupported metadata value {value}; only US-ASCII encoded characters are supported"
            ) from exc
