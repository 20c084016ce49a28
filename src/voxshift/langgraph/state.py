"""Who a tool call is for, read from the graph state only (seed M4.1's ``InjectedState``).

The user and the chat never come from the model's arguments: a model that could name a user id
could also pick that user's cohort, voice settings and stored audio. The state may be a mapping
(a ``TypedDict`` state) or an object with attributes (a pydantic or dataclass state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voxshift.core.ids import check_agent_id, check_id

CONTEXT_FIELDS = ("chat_id", "agent_type", "agent_id", "workflow_step")


@dataclass(frozen=True)
class ToolCaller:
    user_id: str | None
    agent_id: str | None
    context: dict[str, str]  # the seed's context: chat_id, agent_type, agent_id, workflow_step


def _get(container: Any, name: str) -> Any:
    if isinstance(container, Mapping):
        return container.get(name)
    return getattr(container, name, None)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def caller_from_state(state: Any) -> ToolCaller:
    """The caller of a tool call; raises InvalidRequest when the state holds an unusable id."""
    user_id = _text(_get(_get(state, "user_data"), "user_id"))
    agent_id = _text(_get(state, "agent_id"))
    # core.ids is the one definition of a usable id, shared with the HTTP API's X-User-Id check.
    if user_id is not None:
        check_id(user_id, "state user_data.user_id")
    if agent_id is not None:
        check_agent_id(agent_id, "state agent_id")
    context = {name: value for name in CONTEXT_FIELDS if (value := _text(_get(state, name))) is not None}
    return ToolCaller(user_id, agent_id, context)
