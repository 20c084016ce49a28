"""Legacy settings conversion, checked against v2's schema.

The conversion itself is pure (:mod:`voxshift.core.sunset.settings`, standard library only), so it
cannot run pydantic; this is where its document meets :func:`validate_agent_settings`, the same
check every v2 write goes through. A document the conversion produced but v2 refuses is a bug in
the conversion or a drift between the two schemas; either way the row must not be written, so the
refusal becomes an ``invalid`` finding and the row waits for a person like any other invalid one.
"""

from __future__ import annotations

from typing import Any

from voxshift.core.agent_settings import parse_path
from voxshift.core.sunset.settings import (
    Finding,
    SettingsConversion,
    convert_agent_config,
    convert_voice_settings,
)
from voxshift.errors import InvalidRequest
from voxshift.schemas.agent_settings import validate_agent_settings


def check_agent_config(config_json: Any) -> SettingsConversion:
    """An ``agent_configs.config_json`` → conversion, validated by v2's schema."""
    return check_conversion(convert_agent_config(config_json))


def check_voice_settings(raw: Any) -> SettingsConversion:
    """One legacy ``voice_settings`` value → conversion, validated by v2's schema."""
    return check_conversion(convert_voice_settings(raw))


def check_conversion(result: SettingsConversion) -> SettingsConversion:
    if result.document is None:
        return result
    try:
        validate_agent_settings(result.document)
    except InvalidRequest as exc:
        path = exc.param or "settings"
        finding = Finding("invalid", path, _value_at(result.document, path), f"v2 schema: {exc.message}")
        return SettingsConversion("invalid", None, (*result.findings, finding), result.source, result.legacy)
    return result


def _value_at(document: dict[str, Any], path: str) -> Any:
    """The converted value the v2 schema refused, for the report (None if the path does not resolve)."""
    try:
        node: Any = document
        for part in parse_path(path):
            node = node[part]
        return node
    except (InvalidRequest, KeyError, IndexError, TypeError):
        return None
