"""core.flags: every routing rule and its precedence, explain text, JSON round trip, validation,
rollback detection; and the OpenFeature provider on in-memory FeatureFlags."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode

from voxshift.config import Settings
from voxshift.core.flags import (
    REASONS,
    Decision,
    Features,
    FlagConfig,
    PerOperation,
    bucket,
    decide,
    diff,
    explain,
    feature_name,
    is_rollback,
)
from voxshift.errors import InvalidRequest
from voxshift.services.flags.openfeature import VoxshiftFlagProvider
from voxshift.services.flags.service import FeatureFlags

ON = Features(stt_enabled=True, tts_enabled=True)
# Users with known buckets (md5 % 100), so the cohort tests read plainly.
LOW = next(f"u{i}" for i in range(1000) if bucket(f"u{i}") < 10)
HIGH = next(f"u{i}" for i in range(1000) if bucket(f"u{i}") >= 90)


def cfg(**kwargs: Any) -> FlagConfig:
    base: dict[str, Any] = {"enabled": True, "features": ON, "percentages": PerOperation(50, 50)}
    return FlagConfig(**{**base, **kwargs})


def reason(config: FlagConfig, user: str | None, agent: str | None = None, op: str = "stt") -> str:
    return decide(config, op, user, agent).reason


# --- the rules, in order ------------------------------------------------------------------------
def test_kill_switch_beats_everything() -> None:
    config = cfg(enabled=False, allow_users=frozenset({LOW}), percentages=PerOperation(100, 100))
    d = decide(config, "stt", LOW, "agent")
    assert (d.use_v2, d.reason, d.bucket) == (False, "kill_switch", None)


def test_the_operations_feature_flag_comes_next() -> None:
    config = cfg(features=Features(stt_enabled=True), allow_users=frozenset({LOW}))
    assert reason(config, LOW, op="tts") == "feature_disabled"
    assert reason(config, LOW, op="stt") == "user_allowed"


def test_deny_beats_allow_users_before_agents() -> None:
    config = cfg(
        allow_users=frozenset({"a"}),
        allow_agents=frozenset({"bot"}),
        deny_users=frozenset({"d"}),
        deny_agents=frozenset({"evil"}),
        percentages=PerOperation(100, 100),
    )
    assert reason(config, "d", "bot") == "user_denied"
    assert reason(config, "a", "evil") == "agent_denied"  # a denied agent wins over an allowed user
    assert reason(config, "a", "bot") == "user_allowed"
    assert reason(config, HIGH, "bot") == "agent_allowed"
    assert decide(config, "stt", "d", "bot").use_v2 is False
    assert decide(config, "stt", HIGH, "bot").use_v2 is True


def test_allow_lists_beat_a_zero_percentage() -> None:
    config = cfg(percentages=PerOperation(0, 0), allow_users=frozenset({HIGH}))
    assert decide(config, "stt", HIGH).use_v2 is True
    assert reason(config, LOW) == "percentage_0"


@pytest.mark.parametrize("user", [None, ""])
def test_anonymous_requests_follow_the_policy(user: str | None) -> None:
    assert reason(cfg(percentages=PerOperation(100, 100)), user) == "anonymous_legacy"
    assert decide(cfg(anonymous="v2", percentages=PerOperation(0, 0)), "stt", user).use_v2 is True
    seedlike = cfg(anonymous="bucket", percentages=PerOperation(100, 100))
    assert reason(seedlike, user) == "percentage_100"
    d = decide(cfg(anonymous="bucket"), "stt", user)
    assert d.bucket == bucket("None")  # the seed's md5(str(None))
    # an allowed agent still routes an anonymous request to v2
    assert reason(cfg(allow_agents=frozenset({"bot"})), user, "bot") == "agent_allowed"


def test_percentage_0_and_100_skip_the_bucket() -> None:
    assert decide(cfg(percentages=PerOperation(0, 100)), "stt", LOW) == Decision(False, "percentage_0", None)
    d = decide(cfg(percentages=PerOperation(0, 100)), "tts", HIGH)
    assert (d.use_v2, d.reason, d.bucket) == (True, "percentage_100", None)


def test_bucket_below_the_percentage_is_in_the_cohort() -> None:
    config = cfg(percentages=PerOperation(50, 50))
    low, high = decide(config, "stt", LOW), decide(config, "stt", HIGH)
    assert (low.use_v2, low.reason, low.bucket) == (True, "in_cohort", bucket(LOW))
    assert (high.use_v2, high.reason, high.bucket) == (False, "out_of_cohort", bucket(HIGH))
    assert low.system == "voice_v2" and high.system == "legacy"


def test_percentages_and_salts_are_per_operation() -> None:
    config = cfg(percentages=PerOperation(100, 0))
    assert decide(config, "stt", HIGH).use_v2 and not decide(config, "tts", LOW).use_v2
    salted = cfg(salt=PerOperation("", "tts-salt"))
    assert decide(salted, "tts", LOW).bucket == bucket(LOW, "tts-salt")
    assert decide(salted, "stt", LOW).bucket == bucket(LOW)


def test_unknown_operation_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as err:
        decide(cfg(), "translate", "u")
    assert err.value.param == "operation"


def test_decisions_are_shared_objects() -> None:
    # The hot path allocates nothing: every possible Decision exists once.
    config = cfg()
    assert decide(config, "stt", LOW) is decide(config, "stt", LOW)
    assert decide(cfg(enabled=False), "stt", "x") is decide(cfg(enabled=False), "tts", "y")
    seen = {decide(cfg(**kw), "stt", u, a).reason for kw, u, a in _ALL_PATHS}
    assert seen == set(REASONS)


_ALL_PATHS: list[tuple[dict[str, Any], str | None, str | None]] = [
    ({"enabled": False}, "u", None),
    ({"features": Features()}, "u", None),
    ({"deny_users": frozenset({"u"})}, "u", None),
    ({"deny_agents": frozenset({"a"})}, "u", "a"),
    ({"allow_users": frozenset({"u"})}, "u", None),
    ({"allow_agents": frozenset({"a"})}, "u", "a"),
    ({}, None, None),
    ({"anonymous": "v2"}, None, None),
    ({"percentages": PerOperation(0, 0)}, "u", None),
    ({"percentages": PerOperation(100, 100)}, "u", None),
    ({}, LOW, None),
    ({}, HIGH, None),
]


# --- explain ------------------------------------------------------------------------------------
def test_explain_says_why_with_bucket_and_percentage() -> None:
    config = cfg(features=Features(stt_enabled=True), percentages=PerOperation(50, 30))
    stt, tts = explain(config, LOW)
    assert stt == f"stt: v2 (in_cohort): user {LOW!r} is in bucket {bucket(LOW)}, below the 50% rollout"
    assert (
        tts
        == f"tts: legacy (feature_disabled): feature tts_enabled is off [bucket {bucket(LOW)}, rollout 30%]"
    )
    killed = explain(cfg(enabled=False), HIGH)
    assert all("kill_switch" in line and "kill switch" in line for line in killed)
    assert "not below the 50% rollout" in explain(config, HIGH)[0]
    assert "agent 'bot' is on the deny list" in explain(cfg(deny_agents=frozenset({"bot"})), LOW, "bot")[0]
    assert "no user id" in explain(config, None)[0]
    assert "(salt 's')" in explain(cfg(salt=PerOperation("s", "")), LOW)[0]


# --- JSON and validation ------------------------------------------------------------------------
FULL = FlagConfig(
    enabled=True,
    features=Features(True, False, True, False),
    percentages=PerOperation(25, 5),
    salt=PerOperation("a", ""),
    anonymous="bucket",
    allow_users=frozenset({"alice", "Пётр"}),
    allow_agents=frozenset({"agent_1"}),
    deny_users=frozenset({"mallory"}),
    deny_agents=frozenset({"🤖"}),
    version=7,
)


def test_json_round_trip() -> None:
    assert FlagConfig.from_json(FULL.to_json()) == FULL
    assert FlagConfig.from_json(FULL.dumps()) == FULL
    assert FlagConfig.from_json(FULL.dumps().decode()) == FULL
    doc = FULL.to_json()
    assert doc["percentages"] == {"stt": 25, "tts": 5}
    assert doc["allow"] == {"users": ["alice", "Пётр"], "agents": ["agent_1"]}
    assert json.loads(FULL.dumps()) == doc


def test_legacy_read_only_round_trips_and_defaults_off() -> None:
    on = FULL.with_legacy_read_only(True)
    assert on.to_json()["legacy"] == {"read_only": True, "retired": False}
    retired = on.with_legacy_retired(True)
    assert FlagConfig.from_json(retired.dumps()).legacy_retired is True
    assert is_rollback(on, retired) is False
    assert FlagConfig.from_json(on.dumps()) == on
    assert FlagConfig.from_json({"enabled": True}).legacy_read_only is False  # stored before it existed
    with pytest.raises(InvalidRequest, match=r"legacy\.read_only"):
        FlagConfig.from_json({"legacy": {"read_only": "yes"}})
    with pytest.raises(InvalidRequest, match="legacy"):
        FlagConfig.from_json({"legacy": {"write": True}})


def test_dumps_is_canonical() -> None:
    a = replace(FULL, allow_users=frozenset(["x", "y", "z"]))
    b = replace(FULL, allow_users=frozenset(["z", "y", "x"]))
    assert a.dumps() == b.dumps()


def test_missing_keys_take_defaults() -> None:
    assert FlagConfig.from_json({}) == FlagConfig()
    assert FlagConfig.from_json({"percentages": {"stt": 5}}).percentages == PerOperation(5, 0)


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = FULL.to_json()
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[part]
    node[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "param", "fragment"),
    [
        (_with("percentages.stt", 101), "percentages.stt", "integer from 0 to 100, got 101"),
        (_with("percentages.tts", -1), "percentages.tts", "got -1"),
        (_with("percentages.stt", True), "percentages.stt", "integer from 0 to 100"),
        (_with("percentages.stt", "50"), "percentages.stt", "got '50'"),
        (_with("percentages", {"stt": 1, "asr": 2}), "percentages", "unknown key(s) asr"),
        (_with("features.stt_enabled", "yes"), "features.stt_enabled", "true or false"),
        (_with("features", {"tts": True}), "features", "unknown key(s) tts"),
        (_with("enabled", 1), "enabled", "true or false"),
        (_with("anonymous", "random"), "anonymous", "legacy, v2 or bucket"),
        (_with("allow.users", ["ok", " "]), "allow.users", "non-blank"),
        (_with("deny.agents", "bot"), "deny.agents", "list of ids"),
        (_with("deny.users", ["x" * 256]), "deny.users", "at most 255"),
        (_with("salt.stt", "s" * 65), "salt.stt", "at most 64"),
        (_with("version", -1), "version", ">= 0"),
        (_with("format", 2), "format", "must be 1"),
        ({**FULL.to_json(), "rollout": 5}, "config", "unknown key(s) rollout"),
        ([1, 2], "config", "JSON object"),
        ("{not json", "config", "not valid JSON"),
    ],
)
def test_validation_errors_name_the_field(doc: Any, param: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        FlagConfig.from_json(doc if isinstance(doc, str | list) else json.dumps(doc))
    assert err.value.param == param
    assert fragment in err.value.message
    assert err.value.message.startswith(param) or param == "config"


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(InvalidRequest, match=r"percentages\.tts: must be an integer from 0 to 100"):
        FULL.with_percentage("tts", 150)
    with pytest.raises(InvalidRequest, match="unknown feature 'asr'"):
        FULL.with_feature("asr", True)


def test_from_settings_uses_the_seeds_variables() -> None:
    settings = Settings(
        voice_v2_enabled=True,
        voice_v2_rollout_percentage=15,
        voice_v2_features={"stt_enabled": True, "caching_enabled": True},
    )
    config = FlagConfig.from_settings(settings)
    assert config == FlagConfig(
        enabled=True, features=Features(True, False, False, True), percentages=PerOperation(15, 15)
    )
    assert config.version == 0


# --- changes ------------------------------------------------------------------------------------
def test_listing_moves_an_id_between_lists() -> None:
    config = FlagConfig().with_listed("deny", user_id="u").with_listed("allow", user_id="u")
    assert config.allow_users == {"u"} and config.deny_users == set()
    config = config.with_listed("deny", agent_id="a")
    assert config.deny_agents == {"a"}
    assert config.with_listed("deny", agent_id="a", remove=True).deny_agents == set()
    assert config.with_listed("allow", user_id="u", remove=True).deny_users == set()
    with pytest.raises(InvalidRequest, match="exactly one"):
        config.with_listed("allow", user_id="u", agent_id="a")


def test_feature_aliases() -> None:
    assert feature_name("langgraph") == "langgraph_integration"
    assert FULL.feature("langgraph") is True and FULL.feature("caching_enabled") is False
    assert FULL.with_feature("caching", True).features.caching_enabled is True


@pytest.mark.parametrize(
    ("change", "rollback"),
    [
        (FlagConfig.killed, True),
        (lambda c: c.with_percentage("stt", 10), True),
        (lambda c: c.with_percentage(None, 0), True),
        (lambda c: c.with_percentage("tts", 6), False),
        (lambda c: c.with_listed("deny", user_id="new"), True),
        (lambda c: c.with_listed("deny", user_id="alice"), True),  # leaves the allow list too
        (lambda c: c.with_listed("allow", user_id="new"), False),
        (lambda c: c.with_listed("deny", user_id="mallory", remove=True), False),
        (lambda c: c.with_feature("tts", True), False),
        (lambda c: c.with_feature("stt", False), True),
        (lambda c: replace(c, salt=PerOperation("b", "")), False),
        (lambda c: replace(c, anonymous="legacy"), True),
        (lambda c: replace(c, anonymous="v2"), False),
        (lambda c: c.with_legacy_read_only(True), False),  # a sunset step needs its audit row
        (lambda c: c.with_legacy_retired(True), False),
    ],
)
def test_is_rollback(change: Any, rollback: bool) -> None:
    assert is_rollback(FULL, change(FULL)) is rollback
    assert is_rollback(FULL.killed(), FULL) is False


def test_diff_lines() -> None:
    assert diff(FULL, FULL.with_percentage("stt", 30)) == ["percentages.stt: 25 -> 30"]
    assert diff(FULL, replace(FULL, version=9)) == []
    assert 'allow.users: ["alice", "Пётр"] -> ["Пётр"]' in diff(
        FULL, FULL.with_listed("allow", user_id="alice", remove=True)
    )


# --- in-memory FeatureFlags and the OpenFeature provider -------------------------------------------
async def test_memory_only_flags_apply_changes_and_notify() -> None:
    flags = FeatureFlags(None, None, cfg())
    await flags.start()
    seen: list[tuple[int, int]] = []
    unsubscribe = flags.on_change(lambda old, new: seen.append((old.version, new.version)))
    await flags.kill(actor="t", reason="test")
    assert flags.decide("stt", LOW).reason == "kill_switch"
    unsubscribe()
    await flags.set_percentage("stt", 10, actor="t", reason="test")
    assert seen == [(0, 1)]
    assert flags.config.version == 2
    with pytest.raises(InvalidRequest, match="reason"):
        await flags.kill(actor="t", reason=" ")
    await flags.stop()


@pytest.fixture
def client() -> Any:
    flags = FeatureFlags(None, None, cfg(percentages=PerOperation(50, 0), allow_agents=frozenset({"bot"})))
    provider = VoxshiftFlagProvider(flags)
    api.set_provider_and_wait(provider, domain="voxshift-test")
    yield flags, api.get_client(domain="voxshift-test")
    api.clear_providers()


async def test_openfeature_routing_flags_carry_the_reason(client: Any) -> None:
    flags, of = client
    ctx = EvaluationContext(targeting_key=LOW)
    assert of.get_boolean_value("voice_v2.stt", False, ctx) is True
    details = of.get_boolean_details("voice_v2.stt", False, EvaluationContext(targeting_key=HIGH))
    assert (details.value, details.reason, details.variant) == (False, "out_of_cohort", "legacy")
    assert details.flag_metadata == {"config_version": 0, "bucket": bucket(HIGH)}
    agent = of.get_boolean_details(
        "voice_v2.tts", False, EvaluationContext(targeting_key=HIGH, attributes={"agent_id": "bot"})
    )
    assert (agent.value, agent.reason, agent.variant) == (True, "agent_allowed", "v2")
    assert of.get_boolean_details("voice_v2.tts", True, None).reason == "anonymous_legacy"
    await flags.kill(actor="t", reason="test")
    assert of.get_boolean_details("voice_v2.stt", True, ctx).reason == "kill_switch"
    assert of.get_boolean_value("voice_v2.enabled", True) is False


def test_openfeature_features_percentages_and_errors(client: Any) -> None:
    _, of = client
    assert of.get_boolean_value("voice_v2.enabled", False) is True
    assert of.get_boolean_value("voice_v2.features.stt_enabled", False) is True
    assert of.get_boolean_value("voice_v2.features.langgraph", True) is False
    assert of.get_integer_value("voice_v2.rollout_percentage.stt", -1) == 50
    assert of.get_integer_value("voice_v2.rollout_percentage.tts", -1) == 0
    missing = of.get_boolean_details("voice_v2.features.asr", True)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    assert of.get_boolean_details("other.flag", False).error_code == ErrorCode.FLAG_NOT_FOUND
    wrong = of.get_integer_details("voice_v2.stt", 7)
    assert (wrong.value, wrong.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    assert of.get_string_details("voice_v2.stt", "x").error_code == ErrorCode.TYPE_MISMATCH
    assert (
        of.get_boolean_details("voice_v2.rollout_percentage.stt", False).error_code == ErrorCode.TYPE_MISMATCH
    )
    bad = of.get_boolean_details("voice_v2.stt", False, EvaluationContext(LOW, {"agent_id": 5}))
    assert bad.error_code == ErrorCode.INVALID_CONTEXT


async def test_openfeature_emits_configuration_changed(client: Any) -> None:
    flags, of = client
    events: list[EventDetails] = []
    arrived = threading.Event()

    def handler(details: EventDetails) -> None:
        events.append(details)
        arrived.set()

    of.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    await flags.set_percentage(None, 20, actor="t", reason="test")
    assert await asyncio.to_thread(arrived.wait, 10)  # OpenFeature runs handlers on its own thread
    assert len(events) == 1
    assert events[0].metadata == {"config_version": 1}
    assert "voice_v2.stt" in (events[0].flags_changed or [])
