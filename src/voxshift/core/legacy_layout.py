"""The legacy voice service's data vocabulary: which keys and objects are its voice data (pure).

One place names every Redis key family PlatformAI-HUB's ``app/services/voice`` writes and the object
layout of its ``voice-files`` bucket (``/work/shared/legacy/platformai-hub-voice-layout.md`` §1, §2),
so a backup, a migration or a cleanup can never touch a key or object outside them: legacy and v2
may share one Redis and one S3 server with other tenants' data.

It also defines the backend-independent canonical form of a key's value. Redis ``DUMP`` payloads are
opaque and version-specific, and the embedded SQLite store has none, so items are compared through
``value_digest`` over this form: equal values give equal digests whichever store holds them.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LEGACY_BUCKET = "voice-files"  # settings.MINIO_VOICE_BUCKET_NAME's default

# Every key family the voice service writes, with the Redis type it uses (layout §1).
KEY_FAMILIES: Mapping[str, str] = {
    "agent_voice_settings:": "string",
    "stt_cache:": "string",
    "tts_response_cache:": "string",
    "voice_metrics:": "zset",
    "voice_daily_stats:": "string",
    "voice_rate_limit:": "zset",
}
KEY_PREFIXES: tuple[str, ...] = tuple(KEY_FAMILIES)

VOICE_OBJECT_PREFIX = "voice/"
# voice/{agent_id}/{user_id}/{YYYY/MM/DD/HH}/{uuid4}[.ext]: minio_manager._generate_object_key. Agent
# and user ids are any text without "/" (an id with "/" would have produced a different depth,
# which the legacy never wrote); the extension is whatever followed the original file name's dot.
_VOICE_OBJECT_RE = re.compile(
    r"voice/(?P<agent>[^/]+)/(?P<user>[^/]+)/"
    r"(?P<y>\d{4})/(?P<m>0[1-9]|1[0-2])/(?P<d>0[1-9]|[12]\d|3[01])/(?P<h>[01]\d|2[0-3])/"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?:\.(?P<ext>[A-Za-z0-9]{1,10}))?"
)


def family_of(key: str) -> str | None:
    """The key family (its prefix) when ``key`` is legacy voice data, else None."""
    for prefix in KEY_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return prefix
    return None


def is_voice_key(key: str) -> bool:
    return family_of(key) is not None


@dataclass(frozen=True)
class VoiceObjectKey:
    """The parts of a legacy voice object key."""

    agent_id: str
    user_id: str
    hour: str  # "YYYY/MM/DD/HH", UTC
    uuid: str
    ext: str | None


def parse_voice_object_key(key: str) -> VoiceObjectKey | None:
    """The parts when ``key`` has the legacy voice layout, else None (not voice data)."""
    match = _VOICE_OBJECT_RE.fullmatch(key)
    if match is None:
        return None
    hour = f"{match['y']}/{match['m']}/{match['d']}/{match['h']}"
    return VoiceObjectKey(match["agent"], match["user"], hour, match["uuid"], match["ext"])


def is_voice_object(key: str) -> bool:
    return parse_voice_object_key(key) is not None


# --- the canonical value form ---------------------------------------------------------------------


def _lp(data: bytes) -> bytes:
    # Length-prefixed, so no choice of bytes inside a value can make two different values collide.
    return struct.pack(">Q", len(data)) + data


def canonical_score(score: float | bytes | str) -> bytes:
    """A sorted-set score as the shortest text that round-trips the float (Redis and Python agree)."""
    value = float(score.decode("ascii") if isinstance(score, bytes) else score)
    return repr(value).encode("ascii")


def canonical_value(kind: str, value: object) -> bytes:
    """The canonical encoding of one key's value.

    ``string``: bytes. ``hash``: field -> bytes mapping. ``zset``: (member, score) pairs. ``list``:
    items in order. ``set``: members. Members, fields and items are bytes. Unordered types are sorted,
    so the order a store returned them in does not matter.
    """
    if kind == "string":
        assert isinstance(value, bytes)
        return b"string\n" + _lp(value)
    if kind == "hash":
        assert isinstance(value, Mapping)
        body = b"".join(_lp(f) + _lp(v) for f, v in sorted(value.items()))
        return b"hash\n" + body
    if kind == "zset":
        assert isinstance(value, Iterable)
        pairs = sorted((bytes(m), canonical_score(s)) for m, s in value)
        return b"zset\n" + b"".join(_lp(m) + _lp(s) for m, s in pairs)
    if kind == "list":
        assert isinstance(value, Iterable)
        return b"list\n" + b"".join(_lp(bytes(i)) for i in value)
    if kind == "set":
        assert isinstance(value, Iterable)
        return b"set\n" + b"".join(_lp(m) for m in sorted(bytes(i) for i in value))
    raise ValueError(f"no canonical form for a {kind!r} value")


def value_digest(kind: str, value: object) -> str:
    """sha256 (hex) of the canonical form: the identity of a key's value across stores."""
    return hashlib.sha256(canonical_value(kind, value)).hexdigest()


def decode_canonical(payload: bytes) -> tuple[str, object]:
    """Inverse of ``canonical_value`` (the embedded store's export payload)."""
    kind, sep, body = payload.partition(b"\n")
    if not sep:
        raise ValueError("not a canonical value payload")
    parts: list[bytes] = []
    pos = 0
    while pos < len(body):
        if pos + 8 > len(body):
            raise ValueError("truncated canonical value payload")
        (size,) = struct.unpack(">Q", body[pos : pos + 8])
        pos += 8
        if pos + size > len(body):
            raise ValueError("truncated canonical value payload")
        parts.append(body[pos : pos + size])
        pos += size
    name = kind.decode("ascii", "replace")
    if name == "string" and len(parts) == 1:
        return name, parts[0]
    if name in ("hash", "zset") and len(parts) % 2 == 0:
        pairs = list(zip(parts[::2], parts[1::2], strict=True))
        return (name, dict(pairs)) if name == "hash" else (name, [(m, float(s)) for m, s in pairs])
    if name in ("list", "set"):
        return name, parts
    raise ValueError(f"malformed canonical {name!r} payload")
