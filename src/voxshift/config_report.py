"""What `voxshift config` prints: every effective setting, masked, and where its value came from."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from voxshift.config import Settings, env_name, read_toml
from voxshift.core.masking import mask_url


@dataclass(frozen=True)
class SettingReport:
    name: str
    env: str
    value: str
    source: str


_SECRET_HINTS = ("key", "password", "secret", "token")


def mask(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        return "****" + raw[-4:] if len(raw) > 8 else "****"
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump())
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


_RESOLVED = {
    "state_url": "resolved_state_url",
    "storage_url": "resolved_storage_url",
    "database_url": "resolved_database_url",
}


def describe(settings: Settings, environ: Mapping[str, str] | None = None) -> list[SettingReport]:
    """Every effective value, masked, and where it came from."""
    env = os.environ if environ is None else environ
    config_file: Path | None = getattr(settings, "_config_file", None)
    from_file = read_toml(config_file) if config_file else {}
    rows = []
    for name in Settings.model_fields:
        var = env_name(name)
        if var in env:
            source = "environment"
        elif name in from_file:
            source = f"file {config_file}"
        else:
            source = "default"
        value = getattr(settings, name)
        if value is None and name in _RESOLVED:
            value = getattr(settings, _RESOLVED[name])  # show the embedded default actually used
        shown = mask(value)
        if isinstance(value, str) and "://" in value:
            shown = mask_url(value)
        if any(h in name for h in _SECRET_HINTS) and not isinstance(value, SecretStr) and value:
            shown = "****"
        rows.append(SettingReport(name=name, env=var, value=shown, source=source))
    return rows
