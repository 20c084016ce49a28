"""Per-agent voice settings, the pure part: agent ids and editing a settings document by field path.

The settings schema itself (field types, defaults, ranges) is a validation model and lives with the
other validation models in :mod:`voxshift.schemas.agent_settings`; what is here works on the plain
JSON document, so the CLI and the services can address ``providers[0].tts_config.speed`` without it.

Pure: no I/O, standard library only.
"""

from __future__ import annotations

import json
from typing import Any

from voxshift.core.ids import check_agent_id

# VersionConflict lives with the other errors (the flag store raises it too); re-exported here
# because the settings repositories and their callers have always imported it from this module.
from voxshift.errors import InvalidRequest
from voxshift.errors import VersionConflict as VersionConflict

AGENT_ID_MAX = 128


def validate_agent_id(agent_id: object, param: str = "agent_id") -> str:
    """An agent id that can be stored: :func:`voxshift.core.ids.check_agent_id` with the column's bound."""
    return check_agent_id(agent_id, param, max_chars=AGENT_ID_MAX)


def format_path(loc: list[int | str] | tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def type_name(value: Any) -> str:
    """What a JSON value is, for messages: ``a number``, ``a list``, ``null``."""
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def set_path(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``document`` with ``path`` (``a.b[0].c`` or ``a.b.0.c``) set to ``value``.

    Missing objects on the way are created, so ``providers[0].tts_config.speed=1.5`` works on a
    provider that has no TTS config yet; a list index may append (== length) but not skip ahead.
    """
    parts = parse_path(path)
    root: dict[str, Any] = json.loads(json.dumps(document))  # deep copy of plain JSON data
    node: Any = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = format_path(parts[: i + 1])
        if isinstance(node, dict):
            if not isinstance(part, str):
                parent = format_path(parts[:i])
                raise InvalidRequest(f"{where}: {parent} is an object, not a list", param=where)
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = [] if isinstance(parts[i + 1], int) else {}
                node = node[part]
        elif isinstance(node, list):
            if not isinstance(part, int):
                raise InvalidRequest(f"{where}: {format_path(parts[:i])} is a list, use [index]", param=where)
            if part > len(node):
                raise InvalidRequest(
                    f"{where}: index out of range (the list has {len(node)} item(s))", param=where
                )
            if part == len(node):
                node.append([] if not last and isinstance(parts[i + 1], int) else {})
            if last:
                node[part] = value
            else:
                if node[part] is None:
                    node[part] = [] if isinstance(parts[i + 1], int) else {}
                node = node[part]
        else:
            parent = format_path(parts[:i])
            raise InvalidRequest(f"{where}: {parent} is {type_name(node)}, not an object", param=where)
    return root


def parse_path(path: str) -> list[int | str]:
    parts: list[int | str] = []
    for chunk in path.replace("[", ".[").split("."):
        if not chunk:
            continue
        if chunk.startswith("["):
            inner = chunk[1:].rstrip("]")
            if not chunk.endswith("]") or not inner.isdigit():
                raise InvalidRequest(f"{path}: bad list index {chunk!r}", param=path)
            parts.append(int(inner))
        elif chunk.isdigit():
            parts.append(int(chunk))
        else:
            parts.append(chunk)
    if not parts or not isinstance(parts[0], str):
        raise InvalidRequest(f"{path!r} is not a field path (e.g. providers[0].tts_config.speed)", param=path)
    return parts
