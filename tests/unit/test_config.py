from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voxshift.config import load_settings
from voxshift.config_report import describe
from voxshift.core.masking import mask_url
from voxshift.core.vocabulary import FEATURES as FEATURE_KEYS
from voxshift.errors import ConfigError

VOXSHIFT = [sys.executable, "-m", "voxshift.cli"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("VOICE_V2_", "VOXSHIFT_")):
            monkeypatch.delenv(key)


def test_seed_defaults() -> None:
    s = load_settings()
    assert s.voice_v2_enabled is False
    assert s.voice_v2_rollout_percentage == 0
    assert s.voice_v2_redis_namespace == "voice_v2"
    assert s.voice_v2_minio_bucket == "voice-v2-files"
    assert s.voice_v2_features.model_dump() == dict.fromkeys(FEATURE_KEYS, False)
    assert s.max_upload_bytes == 25 * 1024 * 1024
    assert s.max_text_chars == 4096
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_seed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICE_V2_ENABLED", "true")
    monkeypatch.setenv("VOICE_V2_ROLLOUT_PERCENTAGE", "30")
    monkeypatch.setenv("VOICE_V2_REDIS_NAMESPACE", "voice_v2:")  # the seed's own spelling
    monkeypatch.setenv("VOICE_V2_MINIO_BUCKET", "my-bucket")
    monkeypatch.setenv("VOICE_V2_FEATURES", '{"stt_enabled": true, "caching_enabled": true}')
    s = load_settings()
    assert s.voice_v2_enabled is True
    assert s.voice_v2_rollout_percentage == 30
    assert s.voice_v2_redis_namespace == "voice_v2"
    assert s.voice_v2_minio_bucket == "my-bucket"
    assert s.voice_v2_features.stt_enabled and s.voice_v2_features.caching_enabled
    assert not s.voice_v2_features.tts_enabled


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("VOICE_V2_ROLLOUT_PERCENTAGE", "150", "integer from 0 to 100"),
        ("VOICE_V2_ROLLOUT_PERCENTAGE", "abc", "integer from 0 to 100"),
        ("VOICE_V2_ROLLOUT_PERCENTAGE", "-1", "integer from 0 to 100"),
        ("VOICE_V2_ROLLOUT_PERCENTAGE", "12.5", "integer from 0 to 100"),
        ("VOICE_V2_ENABLED", "maybe", "true or false"),
        ("VOICE_V2_FEATURES", "{not json", "not valid JSON"),
        ("VOICE_V2_FEATURES", '{"stt_enabled": true, "turbo": true}', "unknown key(s) turbo"),
        ("VOICE_V2_FEATURES", '{"stt_enabled": "yes"}', "stt_enabled must be true or false"),
        ("VOICE_V2_FEATURES", "[true]", "JSON object"),
        ("VOICE_V2_MINIO_BUCKET", "Bad_Bucket", "S3 bucket name"),
        ("VOXSHIFT_PORT", "99999", "VOXSHIFT_PORT"),
    ],
)
def test_bad_values_name_variable_value_and_rule(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expect: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert var in message
    assert repr(value) in message
    assert expect in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("VOICE_V2_ROLLOUT_PERCENTAGE", "150"),
        ("VOICE_V2_ROLLOUT_PERCENTAGE", "abc"),
        ("VOICE_V2_ENABLED", "maybe"),
        ("VOICE_V2_FEATURES", "{oops"),
        ("VOICE_V2_FEATURES", '{"stt_enabled": true, "extra": false}'),
    ],
)
def test_serve_refuses_to_start_with_one_line_and_exit_2(var: str, value: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env.update({var: value, "VOXSHIFT_DATA_DIR": str(tmp_path)})
    proc = subprocess.run([*VOXSHIFT, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert var in lines[0] and value in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_toml_file_and_env_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "voxshift.toml"
    cfg.write_text('port = 9001\nVOICE_V2_ROLLOUT_PERCENTAGE = 10\nopenai_api_key = "sk-secret-1234567890"\n')
    monkeypatch.setenv("VOICE_V2_ROLLOUT_PERCENTAGE", "20")
    s = load_settings(cfg)
    assert s.port == 9001
    assert s.voice_v2_rollout_percentage == 20  # environment wins over the file
    rows = {r.name: r for r in describe(s)}
    assert rows["port"].source == f"file {cfg}"
    assert rows["voice_v2_rollout_percentage"].source == "environment"
    assert rows["host"].source == "default"
    assert "sk-secret" not in rows["openai_api_key"].value
    assert rows["openai_api_key"].value.endswith("7890")


def test_toml_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(unknown)
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "missing.toml")


def test_url_passwords_are_masked() -> None:
    assert mask_url("redis://user:hunter2@host:6379/0") == "redis://user:****@host:6379/0"
    assert mask_url("redis://host:6379") == "redis://host:6379"


def test_config_command_prints_sources_and_masks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env.update(
        {
            "VOXSHIFT_DATA_DIR": str(tmp_path),
            "VOICE_V2_ENABLED": "1",
            "VOXSHIFT_OPENAI_API_KEY": "sk-abcdefgh12345",
        }
    )
    proc = subprocess.run([*VOXSHIFT, "config"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(row for row in proc.stdout.splitlines() if row.startswith("VOICE_V2_ENABLED"))
    assert "True" in line and "environment" in line
    assert "sk-abcdefgh12345" not in proc.stdout
    rollout = next(row for row in proc.stdout.splitlines() if row.startswith("VOICE_V2_ROLLOUT_PERCENTAGE"))
    assert "default" in rollout


def test_backend_urls_default_under_data_dir_and_are_masked_in_describe(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.resolved_state_url == f"sqlite:///{tmp_path / 'state.db'}"
    assert settings.resolved_storage_url == f"file://{tmp_path / 'objects'}"
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'voxshift.db'}"
    rows = {r.name: r for r in describe(settings, environ={})}
    assert rows["state_url"].value == settings.resolved_state_url
    assert rows["state_url"].source == "default"

    env = {
        "VOXSHIFT_STATE_URL": "redis://:s3cret-pass@127.0.0.1:6379/0",
        "VOXSHIFT_DATABASE_URL": "postgresql+asyncpg://vox:pg-pass@db/voxshift",
    }
    settings = load_settings(
        data_dir=tmp_path, state_url=env["VOXSHIFT_STATE_URL"], database_url=env["VOXSHIFT_DATABASE_URL"]
    )
    rows = {r.name: r for r in describe(settings, environ=env)}
    assert rows["state_url"].value == "redis://:****@127.0.0.1:6379/0"
    assert rows["database_url"].value == "postgresql+asyncpg://vox:****@db/voxshift"
    assert rows["state_url"].source == "environment"
    assert "s3cret" not in str(rows) and "pg-pass" not in str(rows)


def test_config_file_must_be_a_bounded_regular_file(tmp_path: Path) -> None:
    from voxshift.config import read_toml
    from voxshift.errors import ConfigError

    for path in (Path("/dev/zero"), tmp_path):
        with pytest.raises(ConfigError, match="not a regular file"):
            read_toml(path)
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        read_toml(big)
