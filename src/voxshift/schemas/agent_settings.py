"""Per-agent voice settings: the legacy ``VoiceSettings`` schema, made strict.

The legacy service (PlatformAI-HUB ``app/api/schemas/voice_schemas.py``) keeps these settings in
``agent_configs.config_json.simple.settings.voice_settings``; every field, default and range here
reproduces it so that a migrated document means exactly what it meant before. Two deliberate
differences: unknown fields are rejected (the legacy silently dropped them, so a typo such as
``cache_ttl_hour`` used to vanish and fall back to the default), and every problem is reported as
one line naming the field path, e.g. ``providers[0].tts_config.speed: must be between 0.25 and 4.0,
got 9``, because that line is what an operator sees from the CLI or the API.

No I/O. The storage records (:class:`StoredAgentSettings`) live here too so that services and
adapters share one shape without importing each other. Agent ids and editing a document by field
path are pure and live in :mod:`voxshift.core.agent_settings`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from voxshift.core.agent_settings import format_path, type_name
from voxshift.errors import InvalidRequest

# voxshift's engines first, then the legacy ``VoiceProvider`` enum (openai, google, yandex). Google is
# accepted so that migrated settings keep their provider list; voxshift has no Google engine and
# skips it at run time, exactly as the legacy did in practice (its Google results never validated).
V2_PROVIDERS = ("whisper", "piper", "rhvoice", "espeak", "openai", "yandex")
LEGACY_PROVIDERS = ("openai", "google", "yandex")
ProviderName = Literal["whisper", "piper", "rhvoice", "espeak", "openai", "yandex", "google"]
_NO_TTS = frozenset({"whisper"})  # speech-to-text only
_NO_STT = frozenset({"piper", "rhvoice", "espeak"})  # text-to-speech only

# Legacy STTModel / TTSModel enums, plus the model names of voxshift's own engines.
STTModel = Literal[
    "whisper-1",
    "latest_long",
    "latest_short",
    "command_and_search",
    "general",
    "general:rc",
    "general:deprecated",
    # voxshift
    "whisper-base",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
]
TTSModel = Literal[
    "tts-1",
    "tts-1-hd",
    "standard",
    "wavenet",
    "neural2",
    "polyglot",
    "studio",
    "journey",
    "jane",
    "oksana",
    "omazh",
    "zahar",
    "ermil",
    # voxshift
    "gpt-4o-mini-tts",
    "piper",
    "rhvoice",
    "espeak-ng",
]
AudioFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm", "ogg"]
IntentDetectionMode = Literal["keywords", "always", "disabled"]
SAMPLE_RATES_HZ = (8000, 16000, 22050, 44100, 48000)
DEFAULT_INTENT_KEYWORDS = ("голос", "скажи", "произнеси", "озвучь")

N = TypeVar("N", int, float)


def _between(lo: float, hi: float) -> Callable[[N], N]:
    # A validator rather than Field(ge=, le=): pydantic reports one bound per error, and the
    # operator needs both to fix the value in one go.
    def check(value: N) -> N:
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {_num(value)}")
        return value

    return check


def _one_of(allowed: tuple[int, ...]) -> Callable[[int], int]:
    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}, got {value}")
        return value

    return check


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class _Strict(BaseModel):
    # strict: JSON documents carry real types; "true" or "25" for a bool/int is a mistake worth
    # reporting, not coercing. frozen: settings are values, edited by building a new document.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class STTConfig(_Strict):
    enabled: bool = True
    model: STTModel
    language: str = "ru-RU"
    max_duration: Annotated[int, AfterValidator(_between(1, 600))] = 60
    enable_word_time_offsets: bool = False
    enable_automatic_punctuation: bool = True
    enable_profanity_filter: bool = False
    audio_channel_count: int = 1
    sample_rate_hertz: Annotated[int, AfterValidator(_one_of(SAMPLE_RATES_HZ))] = 16000
    custom_params: dict[str, Any] = Field(default_factory=dict)


class TTSConfig(_Strict):
    enabled: bool = True
    model: TTSModel
    voice: str
    language: str = "ru-RU"
    speed: Annotated[float, AfterValidator(_between(0.25, 4.0))] = 1.0
    pitch: Annotated[float, AfterValidator(_between(-20.0, 20.0))] = 0.0
    volume_gain_db: float = 0.0
    audio_format: AudioFormat = "mp3"
    sample_rate: int = 22050
    custom_params: dict[str, Any] = Field(default_factory=dict)


class VoiceProviderConfig(_Strict):
    provider: ProviderName
    priority: int = 1  # lower goes first
    stt_config: STTConfig | None = None
    tts_config: TTSConfig | None = None
    fallback_enabled: bool = True
    custom_settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _capabilities(self) -> VoiceProviderConfig:
        # Only voxshift's local engines are one-sided; the legacy providers all did both.
        if self.provider in _NO_TTS and self.tts_config is not None:
            raise _FieldError("tts_config", f"{self.provider} does speech-to-text only; remove tts_config")
        if self.provider in _NO_STT and self.stt_config is not None:
            raise _FieldError("stt_config", f"{self.provider} does text-to-speech only; remove stt_config")
        return self


class AgentVoiceSettings(_Strict):
    enabled: bool = False
    intent_detection_mode: IntentDetectionMode = "keywords"
    intent_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_INTENT_KEYWORDS))
    auto_stt: bool = True
    auto_tts_on_keywords: bool = True
    max_file_size_mb: Annotated[int, AfterValidator(_between(1, 100))] = 25
    cache_enabled: bool = True
    cache_ttl_hours: Annotated[int, AfterValidator(_between(1, 168))] = 24
    rate_limit_per_minute: Annotated[int, AfterValidator(_between(1, 100))] = 10
    providers: list[VoiceProviderConfig] = Field(default_factory=list)

    def stt_providers(self) -> list[VoiceProviderConfig]:
        """Providers with STT enabled, by ascending priority (stable: list order breaks ties)."""
        return sorted(
            (p for p in self.providers if p.stt_config and p.stt_config.enabled), key=lambda p: p.priority
        )

    def tts_providers(self) -> list[VoiceProviderConfig]:
        return sorted(
            (p for p in self.providers if p.tts_config and p.tts_config.enabled), key=lambda p: p.priority
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class _FieldError(ValueError):
    """A cross-field problem that belongs to one sub-field (pydantic would blame the parent)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StoredAgentSettings:
    agent_id: str
    settings: AgentVoiceSettings
    version: int  # starts at 1, +1 on every write
    created_at: datetime
    updated_at: datetime
    updated_by: str | None

    def to_json(self) -> dict[str, Any]:
        """As `voxshift agents show` and the admin API answer it."""
        return {
            "agent_id": self.agent_id,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
            "settings": self.settings.to_json(),
        }


def validate_agent_settings(data: object) -> AgentVoiceSettings:
    """Validate a settings document; any problem becomes one InvalidRequest naming the field path."""
    if isinstance(data, AgentVoiceSettings):
        return data
    if not isinstance(data, Mapping):
        raise InvalidRequest(f"voice settings must be a JSON object, got {type_name(data)}", param="settings")
    try:
        return AgentVoiceSettings.model_validate(dict(data))
    except ValidationError as exc:
        path, message = describe_error(exc)
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise InvalidRequest(f"{path}: {message}{suffix}", param=path) from None


def describe_error(exc: ValidationError) -> tuple[str, str]:
    """The first error as (field path, human message)."""
    err = exc.errors()[0]
    loc = list(err["loc"])
    raw_ctx = err.get("ctx") or {}
    cause = raw_ctx.get("error")
    if isinstance(cause, _FieldError):
        loc.append(cause.field)
    path = format_path(loc) or "settings"
    return path, _message(err["type"], str(err["msg"]), err.get("input"), raw_ctx, loc)


def _message(kind: str, msg: str, value: Any, ctx: Mapping[str, Any], loc: list[int | str]) -> str:
    if kind == "extra_forbidden":
        return f"unknown field{_allowed_fields(loc)}"
    if kind == "missing":
        return "required field is missing"
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '?').replace(' or ', ', ')}, got {_show(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a JSON object, got {type_name(value)}"
    if kind == "list_type":
        return f"must be a list, got {type_name(value)}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"must be an integer, got {_show(value)}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {_show(value)}"
    if kind == "bool_type":
        return f"must be true or false, got {_show(value)}"
    if kind == "string_type":
        return f"must be a string, got {_show(value)}"
    return f"{msg.replace('Input should be', 'must be')}, got {_show(value)}"


def _allowed_fields(loc: list[int | str]) -> str:
    model: type[BaseModel] | None = AgentVoiceSettings
    for part in loc[:-1]:
        if model is None:
            return ""
        if isinstance(part, str):
            model = _SUBMODELS.get((model, part))
    if model is None:
        return ""
    return f" (expected one of: {', '.join(model.model_fields)})"


_SUBMODELS: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (AgentVoiceSettings, "providers"): VoiceProviderConfig,
    (VoiceProviderConfig, "stt_config"): STTConfig,
    (VoiceProviderConfig, "tts_config"): TTSConfig,
}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
