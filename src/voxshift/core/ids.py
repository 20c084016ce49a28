"""The one check for caller-supplied ids (agent and user ids) shared by the HTTP API and the CLI.

Legacy agent ids are ``agent_{name}_{hex}`` with any name in it, so only emptiness, blankness,
length and NUL are checked: a stricter alphabet would refuse agents the legacy service served.
Stdlib only (besides ``voxshift.errors``), so the CLI can use it without loading the API.
"""

from __future__ import annotations

from voxshift.errors import InvalidRequest

# What a request may name: legacy agent ids run to about 115 characters and user ids are chat-platform
# ids. Stored agent ids have their own, lower bound (core.agent_settings.AGENT_ID_MAX, a column size).
MAX_ID_CHARS = 256


def check_id(value: object, param: str, *, max_chars: int = MAX_ID_CHARS) -> str:
    """``value`` when it is a string of 1..``max_chars`` characters that are not all whitespace;
    else InvalidRequest naming ``param`` (the header, argument or field the id came from)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{param} must be a non-empty string", param=param)
    if not value.strip():
        # An all-whitespace id is a slip (an empty shell variable, a stray quote), never an agent
        # or a user: accepting it would store settings nothing can ever ask for.
        raise InvalidRequest(f"{param} must not be blank, got {value!r}", param=param)
    if len(value) > max_chars:
        raise InvalidRequest(f"{param} must be at most {max_chars} characters, got {len(value)}", param=param)
    return value


def check_agent_id(value: object, param: str = "agent_id", *, max_chars: int = MAX_ID_CHARS) -> str:
    """An agent id per :func:`check_id`, and without NUL (PostgreSQL text cannot hold it)."""
    agent_id = check_id(value, param, max_chars=max_chars)
    if "\x00" in agent_id:
        raise InvalidRequest(f"{param} must not contain NUL characters", param=param)
    return agent_id
