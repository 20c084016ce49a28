"""core.rollout.plan: the seed's default plan with its exact numbers, durations, TOML and dict round
trips, the digest, and every validation error (one line naming the field, ``param`` = the path)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest

from voxshift.core.rollout.plan import (
    DEFAULT_PLAN_TOML,
    Criterion,
    Phase,
    Plan,
    Step,
    default_plan,
    format_duration,
    parse_duration,
    plan_digest,
    plan_from_dict,
    plan_from_toml,
    plan_to_dict,
    plan_to_toml,
)
from voxshift.errors import InvalidRequest

DAY = 86_400.0
REGRESSION_RULES = [("latency_ratio_vs_legacy", "max", 1.2, 200), ("error_ratio_vs_legacy", "max", 1.5, 200)]


def criteria_of(phase: Phase) -> list[tuple[str, str, float, int]]:
    return [(c.metric, c.bound, c.threshold, c.min_samples) for c in phase.criteria]


# --- the default plan ----------------------------------------------------------------------------


def test_default_plan_is_the_seed_schedule() -> None:
    plan = default_plan()
    assert (plan.interval_s, plan.max_rollbacks, plan.on_failure, plan.breaker_open_s) == (
        60.0,
        2,
        "previous",
        None,
    )
    assert plan.breaker_open == 60.0  # defaults to one interval
    canary, pilot, beta, production = plan.phases
    assert [p.name for p in plan.phases] == ["canary", "pilot", "beta", "production"]
    assert not any(p.approval for p in plan.phases)

    assert canary.steps == (Step(1, 0, 3 * DAY),)
    assert canary.features == {"stt_enabled"}
    assert criteria_of(canary) == [
        ("error_rate", "max", 0.02, 200),
        ("latency_p95_ms", "max", 2000.0, 200),
        ("user_feedback", "min", 4.0, 30),
        *REGRESSION_RULES,
    ]

    assert pilot.steps == (Step(10, 10, 5 * DAY),)
    assert pilot.features == {"stt_enabled", "tts_enabled"}
    assert criteria_of(pilot) == [
        ("error_rate", "max", 0.01, 200),
        ("latency_p95_ms", "max", 1500.0, 200),
        ("user_feedback", "min", 4.2, 30),
        *REGRESSION_RULES,
    ]

    assert beta.steps == (Step(30, 30, 7 * DAY),)
    assert beta.features == {"stt_enabled", "tts_enabled", "caching_enabled"}
    assert criteria_of(beta) == [
        ("error_rate", "max", 0.005, 200),
        ("latency_p95_ms", "max", 1000.0, 200),
        ("cache_hit_rate", "min", 0.8, 200),
        *REGRESSION_RULES,
    ]

    assert production.steps == (Step(50, 50, 2 * DAY), Step(75, 75, 2 * DAY), Step(100, 100, 10 * DAY))
    assert production.min_duration_s == 14 * DAY
    assert production.features == {"stt_enabled", "tts_enabled", "caching_enabled", "langgraph_integration"}
    assert criteria_of(production) == [
        ("error_rate", "max", 0.001, 200),
        ("latency_p95_ms", "max", 800.0, 200),
        ("user_satisfaction", "min", 4.5, 30),
        *REGRESSION_RULES,
    ]
    assert all(not c.dry_run and c.operations == () for p in plan.phases for c in p.criteria)


def test_default_plan_text_parses_to_the_default_plan() -> None:
    assert plan_from_toml(DEFAULT_PLAN_TOML) == default_plan()
    assert default_plan() is default_plan()  # frozen, parsed once


def test_pending_limit_defaults_to_twice_the_step() -> None:
    production = default_plan().phases[3]
    assert [production.max_duration_for(s) for s in production.steps] == [4 * DAY, 4 * DAY, 20 * DAY]
    assert replace(production, max_duration_s=25 * DAY).max_duration_for(production.steps[0]) == 25 * DAY


def test_plan_index() -> None:
    assert default_plan().index("beta") == 2
    with pytest.raises(InvalidRequest, match="no phase named 'gamma'"):
        default_plan().index("gamma")


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60.0),
        ("15m", 900.0),
        ("3d", 3 * DAY),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("1d12h", 1.5 * DAY),
        ("2d3h4m5s", 2 * DAY + 3 * 3600 + 4 * 60 + 5),
        (" 2 D ", 2 * DAY),
        ("90", 90.0),
        ("0.25s", 0.25),
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
        (0.0004, 0.0),  # kept to the millisecond
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text, "interval") == seconds


@pytest.mark.parametrize(
    "text", ["", "x", "3 days", "1m1h", "5w", "-5s", "1h-30m", ".5s", True, -1, math.inf, None]
)
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_duration(text, "phases[0].min_duration")  # type: ignore[arg-type]
    assert exc.value.param == "phases[0].min_duration"
    assert exc.value.message.startswith("plan: phases[0].min_duration: must be a duration like")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3 * DAY, "3d"),
        (90.0, "90s"),
        (5400.0, "1h30m"),
        (60.0, "1m"),
        (0.0, "0s"),
        (1.5 * DAY, "1d12h"),
        (3600.5, "1h0.5s"),
        (0.25, "0.25s"),
        (3 * DAY + 61, "3d1m1s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("seconds", [0.001, 1.0, 59.999, 61.5, 3599.0, 3601.25, 86_399.999, 1e7 + 0.123])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds), "x") == seconds


# --- round trips -------------------------------------------------------------------------------

CUSTOM = """\
interval = "30s"
max_rollbacks = 0
on_failure = "kill"
breaker_open = "2m"

[[phases]]
name = "tts-first"
stt_percentage = 0
tts_percentage = 5
features = ["tts"]
min_duration = "1h30m"
max_duration = "6h"
approval = true

[[phases.criteria]]
metric = "fallback_rate"
max = 0.05
min_samples = 50
dry_run = true
operations = ["tts"]

[[phases]]
name = "ramp"
features = ["stt_enabled", "tts_enabled", "caching"]

[[phases.steps]]
stt_percentage = 10
tts_percentage = 20
min_duration = 600

[[phases.steps]]
percentage = 20
min_duration = "1d"
"""


def test_custom_plan_parses() -> None:
    plan = plan_from_toml(CUSTOM)
    first, ramp = plan.phases
    assert (plan.interval_s, plan.max_rollbacks, plan.on_failure, plan.breaker_open_s) == (
        30.0,
        0,
        "kill",
        120.0,
    )
    assert first.steps == (Step(0, 5, 5400.0),)
    assert first.features == {"tts_enabled"}  # the alias resolved
    assert (first.approval, first.max_duration_s) == (True, 6 * 3600.0)
    assert first.criteria == (Criterion("fallback_rate", 0.05, "max", 50, dry_run=True, operations=("tts",)),)
    assert ramp.steps == (Step(10, 20, 600.0), Step(20, 20, DAY))
    assert ramp.features == {"stt_enabled", "tts_enabled", "caching_enabled"}
    assert ramp.criteria == ()


@pytest.mark.parametrize("text", [DEFAULT_PLAN_TOML, CUSTOM])
def test_toml_and_dict_round_trip(text: str) -> None:
    plan = plan_from_toml(text)
    assert plan_from_toml(plan_to_toml(plan)) == plan
    doc = plan_to_dict(plan)
    assert plan_from_dict(json.loads(json.dumps(doc))) == plan  # JSON-able and readable back
    assert plan_to_toml(plan_from_toml(plan_to_toml(plan))) == plan_to_toml(plan)


def test_plan_to_dict_shape() -> None:
    doc = plan_to_dict(default_plan())
    assert doc["interval"] == "1m"
    assert doc["phases"][0] == {
        "name": "canary",
        "stt_percentage": 1,
        "tts_percentage": 0,
        "min_duration": "3d",
        "features": ["stt_enabled"],
        "approval": False,
        "criteria": [
            {"metric": "error_rate", "max": 0.02, "min_samples": 200, "dry_run": False},
            {"metric": "latency_p95_ms", "max": 2000.0, "min_samples": 200, "dry_run": False},
            {"metric": "user_feedback", "min": 4.0, "min_samples": 30, "dry_run": False},
            {"metric": "latency_ratio_vs_legacy", "max": 1.2, "min_samples": 200, "dry_run": False},
            {"metric": "error_ratio_vs_legacy", "max": 1.5, "min_samples": 200, "dry_run": False},
        ],
    }
    assert doc["phases"][3]["steps"] == [
        {"percentage": 50, "min_duration": "2d"},
        {"percentage": 75, "min_duration": "2d"},
        {"percentage": 100, "min_duration": "10d"},
    ]


def test_digest() -> None:
    plan = default_plan()
    digest = plan_digest(plan)
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert plan_digest(plan_from_toml(plan_to_toml(plan))) == digest
    # 2000 and 2000.0 are one threshold; a different number is a different plan.
    assert plan_digest(plan_from_toml(DEFAULT_PLAN_TOML.replace("max = 2000\n", "max = 2000.0\n"))) == digest
    assert plan_digest(plan_from_toml(DEFAULT_PLAN_TOML.replace("max = 2000\n", "max = 2001\n"))) != digest
    assert plan_digest(replace(plan, max_rollbacks=3)) != digest


def test_top_level_keys_default_to_the_seed() -> None:
    plan = plan_from_toml(
        '[[phases]]\nname = "only"\npercentage = 5\nfeatures = ["stt", "tts"]\nmin_duration = "1d"\n'
    )
    assert (plan.interval_s, plan.max_rollbacks, plan.on_failure) == (60.0, 2, "previous")


# --- validation --------------------------------------------------------------------------------

BASE = """\
interval = "60s"
max_rollbacks = 2
on_failure = "previous"

[[phases]]
name = "canary"
stt_percentage = 1
tts_percentage = 0
features = ["stt_enabled"]
min_duration = "3d"

[[phases.criteria]]
metric = "error_rate"
max = 0.02
min_samples = 200

[[phases]]
name = "pilot"
percentage = 10
features = ["stt_enabled", "tts_enabled"]
min_duration = "5d"

[[phases.criteria]]
metric = "error_rate"
max = 0.01
"""


def test_base_is_valid() -> None:
    assert len(plan_from_toml(BASE).phases) == 2


@pytest.mark.parametrize(
    ("old", "new", "param", "message"),
    [
        # unknown keys, at every level
        (
            'interval = "60s"',
            'interval = "60s"\nintervall = 5',
            "intervall",
            "unknown key; expected one of interval,",
        ),
        ('name = "pilot"', 'name = "pilot"\nduration = "5d"', "phases[1].duration", "unknown key"),
        (
            "max = 0.01",
            "maximum = 0.01",
            "phases[1].criteria[0].maximum",
            "unknown key; expected one of metric, max,",
        ),
        # durations and plan-level numbers
        ('interval = "60s"', 'interval = "soon"', "interval", 'must be a duration like "60s"'),
        ('interval = "60s"', 'interval = "500ms"', "interval", "must be a duration like"),
        ('interval = "60s"', 'interval = "0.5s"', "interval", "must be a duration of at least 1s, got 0.5"),
        (
            'min_duration = "3d"',
            'min_duration = "0s"',
            "phases[0].min_duration",
            "must be a positive duration, got 0.0",
        ),
        (
            'min_duration = "3d"',
            'min_duration = "3d"\nmax_duration = "1d"',
            "phases[0].max_duration",
            "at least the longest step (3d)",
        ),
        ("max_rollbacks = 2", "max_rollbacks = -1", "max_rollbacks", "must be a whole number >= 0, got -1"),
        ("max_rollbacks = 2", "max_rollbacks = 1.5", "max_rollbacks", "must be a whole number >= 0, got 1.5"),
        (
            'on_failure = "previous"',
            'on_failure = "panic"',
            "on_failure",
            'must be one of previous, zero, kill, got "panic"',
        ),
        (
            'on_failure = "previous"',
            'on_failure = "previous"\nbreaker_open = "0s"',
            "breaker_open",
            "must be a positive duration",
        ),
        # percentages
        (
            "stt_percentage = 1",
            "stt_percentage = 101",
            "phases[0].stt_percentage",
            "must be a whole number between 0 and 100, got 101",
        ),
        (
            "stt_percentage = 1",
            "stt_percentage = -1",
            "phases[0].stt_percentage",
            "between 0 and 100, got -1",
        ),
        ("stt_percentage = 1", "stt_percentage = 1.5", "phases[0].stt_percentage", "whole number"),
        ("percentage = 10", "percentage = 200", "phases[1].percentage", "between 0 and 100, got 200"),
        ("percentage = 10", "percentage = true", "phases[1].percentage", "got true"),
        ("percentage = 10", "percentage = 10\nstt_percentage = 10", "phases[1].percentage", "not both"),
        ("percentage = 10", "", "phases[1].percentage", "is required"),
        ('min_duration = "5d"', "", "phases[1].min_duration", "is required"),
        (
            "percentage = 10",
            "percentage = 0",
            "phases[1].stt_percentage",
            "must not go below the previous phase's 1, got 0",
        ),
        (
            "tts_percentage = 0",
            "tts_percentage = 20",
            "phases[0].tts_percentage",
            "tts_enabled is not in features",
        ),
        (
            'features = ["stt_enabled", "tts_enabled"]',
            'features = ["stt_enabled"]',
            "phases[1].tts_percentage",
            "sends traffic but tts_enabled is not in features, got 10",
        ),
        (
            'features = ["stt_enabled"]',
            'features = ["stt_enabled", "voice"]',
            "phases[0].features[1]",
            "unknown feature; expected one of stt_enabled, tts_enabled, langgraph_integration, "
            'caching_enabled, got "voice"',
        ),
        ('features = ["stt_enabled"]', 'features = "stt_enabled"', "phases[0].features", "must be a list"),
        # phases
        ('name = "pilot"', 'name = "canary"', "phases[1].name", 'duplicate phase name, got "canary"'),
        ('name = "pilot"', 'name = "pi lot"', "phases[1].name", "must be 1-64 letters"),
        ('name = "pilot"', "", "phases[1].name", "is required"),
        (
            'min_duration = "3d"',
            'min_duration = "3d"\napproval = 1',
            "phases[0].approval",
            "must be true or false",
        ),
        # criteria
        (
            'metric = "error_rate"\nmax = 0.01',
            'metric = "errors"\nmax = 0.01',
            "phases[1].criteria[0].metric",
            "unknown metric; expected one of error_rate,",
        ),
        (
            "max = 0.01",
            'max = "x"',
            "phases[1].criteria[0].max",
            'must be a number between 0 and 1 for error_rate, got "x"',
        ),
        (
            "max = 0.01",
            "max = 1.5",
            "phases[1].criteria[0].max",
            "must be a number between 0 and 1 for error_rate, got 1.5",
        ),
        ("max = 0.01", "max = 0", "phases[1].criteria[0].max", "between 0 and 1 for error_rate, got 0"),
        (
            "max = 0.01",
            "max = 0.01\nmin = 0.001",
            "phases[1].criteria[0].max",
            "give exactly one of max or min",
        ),
        ("max = 0.01", "", "phases[1].criteria[0].max", "give exactly one of max or min"),
        ("max = 0.01", "min = 0.01", "phases[1].criteria[0].min", "error_rate takes max, not min"),
        (
            'metric = "error_rate"\nmax = 0.01',
            'metric = "user_feedback"\nmin = 6',
            "phases[1].criteria[0].min",
            "must be a rating between 1 and 5 for user_feedback, got 6",
        ),
        (
            'metric = "error_rate"\nmax = 0.01',
            'metric = "user_satisfaction"\nmin = 0.9',
            "phases[1].criteria[0].min",
            "rating between 1 and 5",
        ),
        (
            'metric = "error_rate"\nmax = 0.01',
            'metric = "cache_hit_rate"\nmin = 80',
            "phases[1].criteria[0].min",
            "between 0 and 1 for cache_hit_rate, got 80",
        ),
        (
            'metric = "error_rate"\nmax = 0.01',
            'metric = "latency_p95_ms"\nmax = -5',
            "phases[1].criteria[0].max",
            "milliseconds between 0 and 120000 for latency_p95_ms, got -5",
        ),
        (
            'metric = "error_rate"\nmax = 0.01',
            'metric = "latency_ratio_vs_legacy"\nmax = 0.9',
            "phases[1].criteria[0].max",
            "a ratio above 1 (v2 / legacy) for latency_ratio_vs_legacy, got 0.9",
        ),
        (
            'metric = "error_rate"\nmax = 0.01',
            'metric = "error_ratio_vs_legacy"\nmax = 1',
            "phases[1].criteria[0].max",
            "ratio above 1",
        ),
        (
            "min_samples = 200",
            "min_samples = 0",
            "phases[0].criteria[0].min_samples",
            "must be a whole number >= 1, got 0",
        ),
        (
            "min_samples = 200",
            'min_samples = 200\ndry_run = "yes"',
            "phases[0].criteria[0].dry_run",
            "must be true or false",
        ),
        (
            "min_samples = 200",
            'min_samples = 200\noperations = ["stt", "asr"]',
            "phases[0].criteria[0].operations[1]",
            'must be one of stt, tts, once, got "asr"',
        ),
        (
            "min_samples = 200",
            'min_samples = 200\noperations = ["stt", "stt"]',
            "phases[0].criteria[0].operations[1]",
            "once",
        ),
    ],
)
def test_validation_errors(old: str, new: str, param: str, message: str) -> None:
    assert old in BASE
    with pytest.raises(InvalidRequest) as exc:
        plan_from_toml(BASE.replace(old, new, 1))
    assert exc.value.param == param
    assert exc.value.message.startswith(f"plan: {param}: ")
    assert message in exc.value.message
    assert "\n" not in exc.value.message
    assert exc.value.exit_code == 2


def test_separate_percentages_are_fine() -> None:
    plan = plan_from_toml(BASE.replace("percentage = 10", "stt_percentage = 10\ntts_percentage = 0"))
    assert plan.phases[1].steps == (Step(10, 0, 5 * DAY),)


STEPS = """\
[[phases]]
name = "ramp"
features = ["stt", "tts"]

[[phases.steps]]
percentage = 20
min_duration = "1d"

[[phases.steps]]
stt_percentage = 15
tts_percentage = 30
min_duration = "1d"
"""


def test_a_step_must_not_go_down() -> None:
    with pytest.raises(InvalidRequest) as exc:
        plan_from_toml(STEPS)
    assert exc.value.param == "phases[0].steps[1].stt_percentage"
    assert exc.value.message == (
        "plan: phases[0].steps[1].stt_percentage: must not go below the previous step's 20, got 15"
    )
    ok = plan_from_toml(STEPS.replace("stt_percentage = 15", "stt_percentage = 20"))
    assert ok.phases[0].steps == (Step(20, 20, DAY), Step(20, 30, DAY))


def test_step_errors_name_the_step() -> None:
    with pytest.raises(InvalidRequest) as exc:
        plan_from_toml(STEPS.replace("tts_percentage = 30", "tts_percentage = 130"))
    assert exc.value.param == "phases[0].steps[1].tts_percentage"
    with pytest.raises(InvalidRequest) as exc:
        plan_from_toml(STEPS.replace("percentage = 20\n", "percentage = 20\nmax_duration = 5\n"))
    assert exc.value.param == "phases[0].steps[0].max_duration"
    assert "unknown key; expected one of percentage, stt_percentage, tts_percentage, min_duration" in (
        exc.value.message
    )


def test_example_message_from_the_brief() -> None:
    with pytest.raises(InvalidRequest) as exc:
        plan_from_toml(BASE.replace("max = 0.01", 'max = "x"'))
    assert (
        exc.value.message
        == 'plan: phases[1].criteria[0].max: must be a number between 0 and 1 for error_rate, got "x"'
    )


@pytest.mark.parametrize(
    ("text", "param", "message"),
    [
        (
            "interval = \nmax_rollbacks = 2\n",
            "plan",
            "plan: not valid TOML: Invalid value (at line 1, column 12)",
        ),
        (
            'interval = "60s"\n',
            "phases",
            "plan: phases: a plan needs at least one [[phases]] table, got null",
        ),
        ("phases = []\n", "phases", "a plan needs at least one [[phases]] table, got []"),
        ("phases = [1]\n", "phases[0]", "plan: phases[0]: must be a table, got 1"),
        (
            '[[phases]]\nname = "a"\nfeatures = ["stt"]\nmin_duration = "1d"\npercentage = 1\nsteps = []\n',
            "phases[0].percentage",
            "goes in [[phases.steps]] when the phase has steps",
        ),
        ('[[phases]]\nname = "a"\nsteps = []\n', "phases[0].steps", "must be a non-empty array of tables"),
    ],
)
def test_structure_errors(text: str, param: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        plan_from_toml(text)
    assert exc.value.param == param
    assert message in exc.value.message
    assert "\n" not in exc.value.message


# --- hand-built plans are checked too ----------------------------------------------------------


def test_hand_built_objects_are_validated() -> None:
    with pytest.raises(
        InvalidRequest, match=r"^plan: max: must be a number between 0 and 1 for error_rate, got 2$"
    ):
        Criterion("error_rate", 2, "max")
    with pytest.raises(InvalidRequest, match=r"^plan: min: fallback_rate takes max, not min$"):
        Criterion("fallback_rate", 0.1, "min")
    with pytest.raises(InvalidRequest, match=r"^plan: tts_percentage: .* got 101$"):
        Step(0, 101, 60.0)
    with pytest.raises(InvalidRequest, match=r"^plan: steps: a phase needs at least one step$"):
        Phase("p", (), frozenset({"stt_enabled"}), ())
    with pytest.raises(InvalidRequest, match=r"^plan: stt_percentage: sends traffic but stt_enabled"):
        Phase("p", (Step(5, 0, 60.0),), frozenset(), ())
    with pytest.raises(InvalidRequest, match=r"^plan: steps\[1\]\.tts_percentage: must not go below"):
        Phase("p", (Step(5, 5, 60.0), Step(5, 4, 60.0)), frozenset({"stt", "tts"}), ())  # type: ignore[arg-type]
    phase = Phase("p", (Step(5, 0, 60.0),), frozenset({"stt"}), ())  # type: ignore[arg-type]
    assert phase.features == {"stt_enabled"}
    with pytest.raises(InvalidRequest, match=r"^plan: phases: a plan needs at least one phase$"):
        Plan(60.0, 2, "previous", ())
    with pytest.raises(
        InvalidRequest,
        match=r"^plan: phases\[1\]\.stt_percentage: must not go below the previous phase's 5, got 1$",
    ):
        Plan(60.0, 2, "previous", (phase, replace(phase, name="q", steps=(Step(1, 0, 60.0),))))
    assert Criterion("latency_p95_ms", 2000, "max").threshold == 2000.0
    assert isinstance(Criterion("latency_p95_ms", 2000, "max").threshold, float)
