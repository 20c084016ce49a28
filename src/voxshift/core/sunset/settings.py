"""Legacy per-agent ``voice_settings`` → v2 agent settings: a pure conversion that reports everything.

The legacy (PlatformAI-HUB ``app/api/schemas/voice_schemas.py``, pydantic 2.10, see
``/work/shared/legacy/platformai-hub-voice-layout.md`` §3) validated these documents leniently:
pydantic's lax mode turned ``"25"`` into 25 and ``"yes"`` into true, unknown fields were ignored,
missing ones took defaults, and its range checks were ``@validator`` functions. v2's schema
(:mod:`voxshift.schemas.agent_settings`) has the same fields, defaults and ranges but is strict. So
the conversion re-reads each row the way the legacy did and writes what it *meant*, with one finding
per field whose meaning needed a decision:

* ``defaulted``: missing, filled with the legacy default (what the legacy ran with, so no change);
* ``coerced``: a value the legacy converted (``"25"`` → 25), written converted;
* ``unmapped``: something v2 cannot hold (an unknown field, a NaN), left out but kept here with its value;
* ``invalid``: the legacy itself rejected it; the row is not converted and stays for a person;
* ``lookup``: the two places the legacy read settings from disagree (see :func:`locate_voice_settings`).

Also the staleness of the legacy's Redis copy (``agent_voice_settings:{agent}``) against the row.
Pure: standard library only; pydantic validation of the result is ``voxshift.services.sunset``'s job.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from voxshift.core.agent_settings import format_path, type_name

FindingKind = Literal["unmapped", "defaulted", "coerced", "invalid", "lookup"]
Verdict = Literal["convertible", "convertible_with_findings", "invalid", "absent"]

# Where the legacy read settings: the orchestrator (STT/TTS) and VoiceConfigMixin (intent_utils).
ORCHESTRATOR_PATH = "simple.settings.voice_settings"
MIXIN_PATH = "voice_settings"
ROOT = "voice_settings"  # the path printed for a problem with the document as a whole

STT_MODELS = ("whisper-1", "latest_long", "latest_short", "command_and_search", "general", "general:rc",
              "general:deprecated")  # fmt: skip
TTS_MODELS = ("tts-1", "tts-1-hd", "standard", "wavenet", "neural2", "polyglot", "studio", "journey",
              "jane", "oksana", "omazh", "zahar", "ermil")  # fmt: skip
PROVIDERS = ("openai", "google", "yandex")
AUDIO_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm", "ogg")
INTENT_MODES = ("keywords", "always", "disabled")
SAMPLE_RATES_HZ = (8000, 16000, 22050, 44100, 48000)
DEFAULT_INTENT_KEYWORDS = ("голос", "скажи", "произнеси", "озвучь")

_REQUIRED: Any = object()


@dataclass(frozen=True)
class _Field:
    kind: str  # bool, int, float, str, enum, str_list, dict, model, model_list
    default: Any = _REQUIRED
    choices: tuple[Any, ...] = ()  # enum values, or the allowed ints of sample_rate_hertz
    bounds: tuple[float, float] | None = None
    model: str = ""  # the nested model of ``model`` / ``model_list``


# The legacy models, field by field in their declaration order (v2 documents keep that order).
_MODELS: dict[str, dict[str, _Field]] = {
    "VoiceSettings": {
        "enabled": _Field("bool", False),
        "intent_detection_mode": _Field("enum", "keywords", INTENT_MODES),
        "intent_keywords": _Field("str_list", list(DEFAULT_INTENT_KEYWORDS)),
        "auto_stt": _Field("bool", True),
        "auto_tts_on_keywords": _Field("bool", True),
        "max_file_size_mb": _Field("int", 25, bounds=(1, 100)),
        "cache_enabled": _Field("bool", True),
        "cache_ttl_hours": _Field("int", 24, bounds=(1, 168)),
        "rate_limit_per_minute": _Field("int", 10, bounds=(1, 100)),
        "providers": _Field("model_list", [], model="VoiceProviderConfig"),
    },
    "VoiceProviderConfig": {
        "provider": _Field("enum", choices=PROVIDERS),
        "priority": _Field("int", 1),
        "stt_config": _Field("model", None, model="STTConfig"),
        "tts_config": _Field("model", None, model="TTSConfig"),
        "fallback_enabled": _Field("bool", True),
        "custom_settings": _Field("dict", {}),
    },
    "STTConfig": {
        "enabled": _Field("bool", True),
        "model": _Field("enum", choices=STT_MODELS),
        "language": _Field("str", "ru-RU"),
        "max_duration": _Field("int", 60, bounds=(1, 600)),
        "enable_word_time_offsets": _Field("bool", False),
        "enable_automatic_punctuation": _Field("bool", True),
        "enable_profanity_filter": _Field("bool", False),
        "audio_channel_count": _Field("int", 1),
        "sample_rate_hertz": _Field("int", 16000, SAMPLE_RATES_HZ),
        "custom_params": _Field("dict", {}),
    },
    "TTSConfig": {
        "enabled": _Field("bool", True),
        "model": _Field("enum", choices=TTS_MODELS),
        "voice": _Field("str"),
        "language": _Field("str", "ru-RU"),
        "speed": _Field("float", 1.0, bounds=(0.25, 4.0)),
        "pitch": _Field("float", 0.0, bounds=(-20.0, 20.0)),
        "volume_gain_db": _Field("float", 0.0),
        "audio_format": _Field("enum", "mp3", AUDIO_FORMATS),
        "sample_rate": _Field("int", 22050),
        "custom_params": _Field("dict", {}),
    },
}
LEGACY_FIELDS: dict[str, tuple[str, ...]] = {name: tuple(fields) for name, fields in _MODELS.items()}
LEGACY_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {f: spec.default for f, spec in fields.items() if spec.default is not _REQUIRED}
    for name, fields in _MODELS.items()
}

# pydantic's lax str -> bool words (case-insensitive, not stripped) and str -> int form.
_TRUE_WORDS = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE_WORDS = frozenset({"0", "off", "f", "false", "n", "no"})
_INT_TEXT = re.compile(r"[+-]?[0-9]+(_[0-9]+)*(\.0+)?")


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    path: str  # e.g. providers[0].tts_config.speed
    value: Any  # the legacy value (for ``defaulted``: the default that was filled)
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class SettingsConversion:
    verdict: Verdict
    document: dict[str, Any] | None  # the v2 settings; None when invalid or absent
    findings: tuple[Finding, ...]
    source: str | None  # ORCHESTRATOR_PATH, MIXIN_PATH, or None (given directly, or absent)
    legacy: Any  # the legacy value exactly as read, kept for a person

    def of_kind(self, kind: FindingKind) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "source": self.source,
            "document": self.document,
            "findings": [f.to_json() for f in self.findings],
            "legacy": self.legacy,
        }


class _Bad(Exception):
    """A value the legacy's pydantic model rejected; the message is the rule it broke."""


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _lax_bool(value: Any) -> tuple[bool, bool]:
    """(value, coerced) as pydantic's lax bool: bools, 0/1 (ints or floats), and yes/no words."""
    if isinstance(value, bool):
        return value, False
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value), True
    if isinstance(value, str) and value.lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.lower() in _TRUE_WORDS, True
    raise _Bad(f"must be true or false, got {_show(value)}")


def _lax_int(value: Any) -> tuple[int, bool]:
    if isinstance(value, bool):
        return int(value), True
    if isinstance(value, int):
        return value, False
    if isinstance(value, float) and value.is_integer():
        return int(value), True
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and _INT_TEXT.fullmatch(text):
            return int(text.split(".")[0]), True
    raise _Bad(f"must be an integer, got {_show(value)}")


def _lax_float(value: Any) -> tuple[float, bool]:
    if isinstance(value, bool):
        return float(value), True
    try:
        if isinstance(value, int | float):
            return float(value), False  # an int is the same JSON number, not a coercion
        if isinstance(value, str) and value.strip().isascii():  # float("٣") is 3.0; pydantic says no
            return float(value.strip()), True
    except (ValueError, OverflowError):
        pass
    raise _Bad(f"must be a number, got {_show(value)}")


class _Converter:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def note(self, kind: FindingKind, loc: list[int | str], value: Any, reason: str) -> None:
        self.findings.append(Finding(kind, format_path(loc) or ROOT, value, reason))

    def model(self, name: str, raw: Mapping[Any, Any], loc: list[int | str]) -> dict[str, Any]:
        spec = _MODELS[name]
        out: dict[str, Any] = {}
        for field_name, field in spec.items():
            here = [*loc, field_name]
            if field_name in raw:
                try:
                    out[field_name] = self.value(field, raw[field_name], here)
                except _Bad as bad:
                    self.note("invalid", here, raw[field_name], str(bad))
            elif field.default is _REQUIRED:
                self.note("invalid", here, None, "required field is missing")
            else:
                out[field_name] = copy.deepcopy(field.default)
                self.note(
                    "defaulted", here, field.default, "missing; the legacy default, which the legacy used"
                )
        for key, value in raw.items():
            if key not in spec:
                self.note(
                    "unmapped",
                    [*loc, str(key)],
                    value,
                    f"unknown field of {name}: the legacy ignored it (pydantic extra='ignore'), so it "
                    "never took effect; v2 rejects unknown fields, so it is not in the document",
                )
        return out

    def value(self, field: _Field, value: Any, loc: list[int | str]) -> Any:
        kind = field.kind
        if kind == "model" and value is None:
            return None  # Optional[STTConfig] / Optional[TTSConfig]
        if kind == "model":
            if not isinstance(value, Mapping):
                raise _Bad(f"must be a JSON object, got {type_name(value)}")
            return self.model(field.model, value, loc)
        if kind == "model_list":
            if not isinstance(value, list):
                raise _Bad(f"must be a list, got {type_name(value)}")
            items = []
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    items.append(self.model(field.model, item, [*loc, index]))
                else:
                    self.note("invalid", [*loc, index], item, f"must be a JSON object, got {type_name(item)}")
            return items
        if kind == "str_list":
            if not isinstance(value, list):
                raise _Bad(f"must be a list, got {type_name(value)}")
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    self.note("invalid", [*loc, index], item, f"must be a string, got {_show(item)}")
            return list(value)
        if kind == "dict":
            if not isinstance(value, Mapping):
                raise _Bad(f"must be a JSON object, got {type_name(value)}")
            return copy.deepcopy(dict(value))
        if kind in ("str", "enum"):
            if not isinstance(value, str):
                raise _Bad(f"must be a string, got {_show(value)}")
            if field.choices and value not in field.choices:
                raise _Bad(f"must be one of {', '.join(field.choices)}, got {_show(value)}")
            return value
        return self.scalar(field, value, loc)

    def scalar(self, field: _Field, value: Any, loc: list[int | str]) -> Any:
        converted: Any
        if field.kind == "bool":
            converted, coerced = _lax_bool(value)
        elif field.kind == "int":
            converted, coerced = _lax_int(value)
        else:
            converted, coerced = _lax_float(value)
        if field.bounds is not None:
            lo, hi = field.bounds
            # The legacy's own test, ``v < lo or v > hi``: NaN passes it (see below).
            if converted < lo or converted > hi:
                raise _Bad(f"must be between {_num(lo)} and {_num(hi)}, got {_num(converted)}")
        if field.choices and converted not in field.choices:
            raise _Bad(f"must be one of {', '.join(map(str, field.choices))}, got {converted}")
        if isinstance(converted, float) and not math.isfinite(converted):
            # The legacy ran with it; a v2 document is JSON, which has no NaN/Infinity, and v2's
            # range checks refuse them. The default stands in, the value stays in the report.
            self.note("unmapped", loc, value, f"{converted} is not a JSON number; v2 takes the default")
            return field.default
        if coerced:
            self.note("coerced", loc, value, f"the legacy read it as {json.dumps(converted)}")
        return converted


def convert_voice_settings(raw: Any, *, source: str | None = None) -> SettingsConversion:
    """One legacy ``voice_settings`` value (unvalidated JSON) → the v2 document and its findings.

    ``None`` is ``absent`` (the legacy's lookup returned None, so the agent had no voice). Anything
    else that is not an object is ``invalid``, like any row the legacy's model rejected.
    """
    if raw is None:
        return SettingsConversion("absent", None, (), source, None)
    converter = _Converter()
    if isinstance(raw, Mapping):
        document: dict[str, Any] | None = converter.model("VoiceSettings", raw, [])
    else:
        converter.note("invalid", [], raw, f"voice settings must be a JSON object, got {type_name(raw)}")
        document = None
    return _finish(converter.findings, document, source, raw)


def _finish(
    findings: list[Finding], document: dict[str, Any] | None, source: str | None, raw: Any
) -> SettingsConversion:
    kinds = {f.kind for f in findings}
    if "invalid" in kinds:
        return SettingsConversion("invalid", None, tuple(findings), source, raw)
    # ``defaulted`` alone changes nothing: the legacy ran with those very defaults.
    verdict: Verdict = "convertible_with_findings" if kinds - {"defaulted"} else "convertible"
    return SettingsConversion(verdict, document, tuple(findings), source, raw)


@dataclass(frozen=True)
class Located:
    value: Any  # None: neither path has settings
    source: str | None
    findings: tuple[Finding, ...]


def locate_voice_settings(config_json: Any) -> Located:
    """Which ``voice_settings`` of an ``agent_configs.config_json`` the legacy used.

    The orchestrator (every STT/TTS request) read ``simple.settings.voice_settings`` through
    ``.get`` calls inside a try, so a missing level, a null or a non-object on the way meant "no
    settings". ``VoiceConfigMixin`` (intent detection) read a top-level ``voice_settings``. The
    orchestrator's is converted when present; the mixin's only when it is the only one, with a
    finding, because the voice path itself never saw it.
    """
    main = _dig(config_json, ("simple", "settings", "voice_settings"))
    mixin = config_json.get("voice_settings") if isinstance(config_json, Mapping) else None
    if not isinstance(config_json, Mapping):
        reason = f"config_json is {type_name(config_json)}, not an object: the legacy found no voice settings"
        return Located(None, None, (Finding("lookup", "config_json", config_json, reason),))
    if main is not None:
        findings: tuple[Finding, ...] = ()
        if mixin is not None and not json_equal(main, mixin):
            reason = (
                f"config_json has both {ORCHESTRATOR_PATH} (read for STT/TTS, converted) and a different "
                f"top-level {MIXIN_PATH} (read by VoiceConfigMixin for intent detection), kept here"
            )
            findings = (Finding("lookup", f"config_json.{MIXIN_PATH}", mixin, reason),)
        return Located(main, ORCHESTRATOR_PATH, findings)
    if mixin is not None:
        reason = (
            f"only the top-level {MIXIN_PATH} exists: the legacy's intent detection read it, but its "
            f"STT/TTS path reads {ORCHESTRATOR_PATH} and ran this agent without voice settings"
        )
        return Located(mixin, MIXIN_PATH, (Finding("lookup", f"config_json.{MIXIN_PATH}", mixin, reason),))
    return Located(None, None, ())


def convert_agent_config(config_json: Any) -> SettingsConversion:
    """An ``agent_configs.config_json`` → its settings conversion (lookup findings first)."""
    located = locate_voice_settings(config_json)
    result = convert_voice_settings(located.value, source=located.source)
    if result.verdict == "absent":
        return SettingsConversion("absent", None, located.findings, None, None)
    findings = [*located.findings, *result.findings]
    return _finish(findings, result.document, located.source, located.value)


def _dig(node: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def json_equal(a: Any, b: Any) -> bool:
    return not json_diff(a, b)


def json_diff(a: Any, b: Any, loc: tuple[int | str, ...] = ()) -> list[str]:
    """The field paths at which two JSON values differ (true and 1 differ; 1 and 1.0 do not)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in a or key not in b:
                out.append(format_path([*loc, str(key)]))
            else:
                out.extend(json_diff(a[key], b[key], (*loc, str(key))))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for index in range(max(len(a), len(b))):
            if index >= len(a) or index >= len(b):
                out.append(format_path([*loc, index]))
            else:
                out.extend(json_diff(a[index], b[index], (*loc, index)))
        return out
    # bool is an int in Python, so True == 1; in JSON they are different values.
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    same = isinstance(a, bool) == isinstance(b, bool) and (a == b or both_nan)
    return [] if same else [format_path(list(loc)) or ROOT]
