"""The data migration's vocabulary (pure): item outcomes, what is transferable, and the v2 names.

Every legacy item ends as exactly one outcome, recorded in the journal:

* ``migrated``: it now exists in v2 (``v2_key`` names where);
* ``skipped``: legacy voice data that was deliberately not carried over; ``reason`` says why;
* ``untouched``: not legacy voice data (another tenant's object in the legacy bucket): never read;
* ``expired``: its TTL ran out between the scan and the read. Not a loss: the legacy would have
  dropped it at the same moment.

v2 names (decided here, once):

* objects: ``legacy/{agent}/{user}/{YYYY/MM/DD/HH}/{uuid}.{ext}`` in the v2 bucket, where ``ext`` is
  the container sniffed from the bytes (TTS output under ``.mp3`` may be WAV or Ogg). Bytes that are
  no recognised audio (an empty object) get no extension: the legacy's would be a claim the bytes do
  not back (and S3 servers guess a Content-Type from it); the original file name stays in the
  metadata. The segments are the legacy's verbatim, so the key stays readable and the
  uuid keeps it unique; ``legacy/`` has no lifecycle rule, so migrated audio is not expired by v2's
  30-day ``audio/`` rule.
* keys, relative to the v2 namespace (``voice_v2:``): ``legacy:tts_response_cache:{rest}`` for a TTS
  response entry whose object was migrated (same value, remaining TTL), and
  ``migration:legacy_history:{legacy key}`` for metrics (the canonical value form, no TTL: history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from voxshift.core.legacy_layout import VoiceObjectKey, family_of, parse_voice_object_key

Outcome = Literal["migrated", "skipped", "untouched", "expired"]
Store = Literal["redis", "s3", "settings"]
OUTCOMES: tuple[Outcome, ...] = ("migrated", "skipped", "untouched", "expired")
STORES: tuple[Store, ...] = ("settings", "s3", "redis")

V2_OBJECT_PREFIX = "legacy/"
TTS_RESPONSE_PREFIX = "legacy:tts_response_cache:"
HISTORY_PREFIX = "migration:legacy_history:"

# Why a key family is not carried over (the families that are: tts_response_cache, the metrics).
SKIP_REASONS: dict[str, str] = {
    "stt_cache:": (
        "not transferable: the legacy STT cache key is md5(size:mime:provider), which names no audio, "
        "so no honest v2 cache key (sha256 of the audio) can be built"
    ),
    "agent_voice_settings:": "a cache of agent_configs; the settings were migrated from the rows",
    "voice_rate_limit:": "ephemeral rate-limit window (61 s); v2 keeps its own",
}
HISTORY_FAMILIES = ("voice_metrics:", "voice_daily_stats:")
OBJECT_GONE = "object gone: the audio it names was not migrated"


@dataclass(frozen=True)
class KeyPlan:
    """What to do with one legacy key, before its value is looked at."""

    action: Literal["skip", "history", "tts_response"]
    reason: str | None = None


def plan_key(key: str) -> KeyPlan:
    family = family_of(key)
    if family is None:
        raise ValueError(f"not a legacy voice key: {key!r}")
    if family in SKIP_REASONS:
        return KeyPlan("skip", SKIP_REASONS[family])
    if family in HISTORY_FAMILIES:
        return KeyPlan("history")
    return KeyPlan("tts_response")


def history_key(legacy_key: str) -> str:
    return HISTORY_PREFIX + legacy_key


def tts_response_key(legacy_key: str) -> str:
    family = family_of(legacy_key)
    if family != "tts_response_cache:":
        raise ValueError(f"not a tts_response_cache key: {legacy_key!r}")
    return TTS_RESPONSE_PREFIX + legacy_key[len(family) :]


def v2_object_key(legacy_key: str, sniffed_ext: str | None) -> str:
    """The v2 key of a legacy voice object; ``sniffed_ext`` None (not audio): no extension."""
    parts = parse_voice_object_key(legacy_key)
    if parts is None:
        raise ValueError(f"not a legacy voice object key: {legacy_key!r}")
    base = f"{V2_OBJECT_PREFIX}{parts.agent_id}/{parts.user_id}/{parts.hour}/{parts.uuid}"
    return f"{base}.{sniffed_ext.lower()}" if sniffed_ext else base


def object_kind(metadata: dict[str, str]) -> str:
    """``voice_input`` / ``tts_output`` from the legacy's ``custom-type`` metadata, else ``unknown``."""
    kind = metadata.get("custom-type", "")
    return kind if kind in ("voice_input", "tts_output") else "unknown"


def v2_object_metadata(
    legacy_key: str, parts: VoiceObjectKey, metadata: dict[str, str], sha256: str
) -> dict[str, str]:
    """What the v2 copy carries: who, what, when, where it came from, and the digest (idempotence)."""
    out = {
        "agent-id": parts.agent_id,
        "user-id": parts.user_id,
        "kind": object_kind(metadata),
        "legacy-key": legacy_key,
        "sha256": sha256,
    }
    for name in ("original-filename", "upload-time"):
        if metadata.get(name):
            out[name] = metadata[name]
    return out


def tts_response_object(value: bytes) -> tuple[str | None, str | None]:
    """The ``file_info.minio_key`` a TTS response entry names, or (None, why it names none)."""
    try:
        doc: Any = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8: the legacy itself could not read it"
    except ValueError as exc:
        return None, f"corrupt JSON ({exc}): names no object"
    info = doc.get("file_info") if isinstance(doc, dict) else None
    key = info.get("minio_key") if isinstance(info, dict) else None
    if not isinstance(key, str) or not key:
        return None, "no file_info.minio_key: names no object"
    return key, None
