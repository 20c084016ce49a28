"""The one id check (core.ids) and its users: the stores' validate_agent_id and the API's caller()."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from voxshift.api.deps import caller
from voxshift.core.agent_settings import AGENT_ID_MAX, validate_agent_id
from voxshift.core.ids import MAX_ID_CHARS, check_agent_id, check_id
from voxshift.errors import InvalidRequest


def request_with(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "must be a non-empty string"),
        (None, "must be a non-empty string"),
        (7, "must be a non-empty string"),
        (" ", "must not be blank, got ' '"),
        ("\t\n ", "must not be blank"),
        ("x" * (MAX_ID_CHARS + 1), f"must be at most {MAX_ID_CHARS} characters, got {MAX_ID_CHARS + 1}"),
        ("a\x00b", "must not contain NUL"),
    ],
)
def test_bad_agent_ids_name_the_param(value: object, needle: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_agent_id(value, "X-Agent-Id")
    assert refused.value.param == "X-Agent-Id"
    assert refused.value.message.startswith("X-Agent-Id ") and needle in refused.value.message


@pytest.mark.parametrize("value", ["a", " agent padded ", "агент" * 25, "x" * MAX_ID_CHARS])
def test_good_ids_come_back_unchanged(value: str) -> None:
    assert check_agent_id(value) == value
    assert check_id(value, "X-User-Id") == value


def test_stored_agent_ids_use_the_same_check_with_the_column_bound() -> None:
    assert validate_agent_id("x" * AGENT_ID_MAX) == "x" * AGENT_ID_MAX
    for bad, needle in [(" ", "must not be blank"), ("x" * (AGENT_ID_MAX + 1), f"at most {AGENT_ID_MAX}")]:
        with pytest.raises(InvalidRequest) as refused:
            validate_agent_id(bad)
        assert refused.value.param == "agent_id" and needle in refused.value.message


@pytest.mark.parametrize(
    ("headers", "body_user", "param"),
    [
        ({"X-Agent-Id": " "}, None, "X-Agent-Id"),
        ({"X-Agent-Id": "a" * (MAX_ID_CHARS + 1)}, None, "X-Agent-Id"),
        ({"X-User-Id": "  "}, None, "X-User-Id"),
        ({}, " ", "X-User-Id"),
        ({"X-User-Id": "u" * (MAX_ID_CHARS + 1)}, None, "X-User-Id"),
    ],
)
def test_the_api_refuses_blank_and_overlong_ids(
    headers: dict[str, str], body_user: str | None, param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        caller(request_with(headers), body_user)
    assert refused.value.param == param


def test_the_api_keeps_accepting_request_ids_longer_than_stored_agent_ids() -> None:
    long_agent = "a" * MAX_ID_CHARS  # > AGENT_ID_MAX: no stored settings, but not a bad request
    who = caller(request_with({"X-Agent-Id": long_agent, "X-User-Id": "u-1"}))
    assert (who.user_id, who.agent_id) == ("u-1", long_agent)
    assert caller(request_with({"X-Agent-Id": "", "X-User-Id": ""})) == type(who)(None, None)
