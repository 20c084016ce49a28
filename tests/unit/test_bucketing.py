"""Bucketing: the seed's md5 cohorts, evenly spread, monotone in the percentage, independent per salt.

The seed's ``should_use_voice_v2`` is re-implemented here verbatim (minus its Redis write), so a
change to voxshift's bucketing that would move users between cohorts fails here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from voxshift.core.flags import Features, FlagConfig, PerOperation, bucket, decide

N = 100_000
IDS = [f"user_{i:06d}" for i in range(N)]
SAMPLE = [
    "42",
    "user-1",
    "alice@example.com",
    "Пользователь_7",
    "用户-三",
    "🤖-bot-1",
    "naïve café",
    "tg:123456789",
    "None",
    " padded ",
    "x" * 255,
]


def seed_should_use_voice_v2(settings: dict[str, Any], user_id: Any, operation: str) -> bool:
    """The seed's VoiceV2FeatureFlags.should_use_voice_v2 (M2.1), without the Redis SETEX."""
    if not settings["VOICE_V2_ENABLED"]:
        return False
    feature_enabled = settings["VOICE_V2_FEATURES"].get(f"{operation}_enabled", False)
    if not feature_enabled:
        return False
    rollout_percentage = settings["VOICE_V2_ROLLOUT_PERCENTAGE"]
    if rollout_percentage == 0:
        return False
    if rollout_percentage == 100:
        return True
    user_hash = int(hashlib.md5(str(user_id).encode()).hexdigest(), 16)
    user_percentage = user_hash % 100
    return user_percentage < rollout_percentage


@pytest.fixture(scope="module")
def buckets() -> list[int]:
    return [bucket(user_id) for user_id in IDS]


def test_every_percentage_gets_its_share_within_half_a_point(buckets: list[int]) -> None:
    counts = [0] * 100
    for b in buckets:
        counts[b] += 1
    below = 0  # users with bucket < p, accumulated as p grows
    worst = 0.0
    for p in range(101):
        share = 100 * below / N
        worst = max(worst, abs(share - p))
        assert abs(share - p) <= 0.5, f"{p}%: {share:.3f}% of users"
        if p < 100:
            below += counts[p]
    print(f"largest deviation over 0..100%: {worst:.3f} percentage points")


def test_cohorts_are_monotone_in_the_percentage() -> None:
    users = IDS[:5000]
    cohorts = []
    for p in range(101):
        config = FlagConfig(enabled=True, features=Features(True, True), percentages=PerOperation(p, p))
        cohorts.append({u for u in users if decide(config, "stt", u).use_v2})
    for p in range(100):
        assert cohorts[p] <= cohorts[p + 1], f"raising {p}% -> {p + 1}% moved someone to legacy"
    assert cohorts[0] == set()
    assert cohorts[100] == set(users)


@pytest.mark.parametrize("user_id", SAMPLE)
def test_bucket_is_the_seeds_formula(user_id: str) -> None:
    assert bucket(user_id) == int(hashlib.md5(user_id.encode()).hexdigest(), 16) % 100


def test_bucket_is_the_seeds_formula_on_many_ids(buckets: list[int]) -> None:
    seed = [int(hashlib.md5(user_id.encode()).hexdigest(), 16) % 100 for user_id in IDS]
    assert buckets == seed


@pytest.mark.parametrize("percentage", [0, 1, 10, 25, 50, 99, 100])
def test_decisions_match_the_seed(percentage: int) -> None:
    features = {"stt_enabled": True, "tts_enabled": False}
    seed = {
        "VOICE_V2_ENABLED": True,
        "VOICE_V2_ROLLOUT_PERCENTAGE": percentage,
        "VOICE_V2_FEATURES": features,
    }
    config = FlagConfig(
        enabled=True, features=Features(**features), percentages=PerOperation(percentage, percentage)
    )
    for user_id in SAMPLE + IDS[:2000]:
        for op in ("stt", "tts"):
            assert decide(config, op, user_id).use_v2 == seed_should_use_voice_v2(seed, user_id, op)
    # The seed hashed str(None) for a request without a user: the "bucket" policy keeps that cohort.
    anonymous = FlagConfig(
        enabled=True,
        features=Features(**features),
        percentages=PerOperation(percentage, percentage),
        anonymous="bucket",
    )
    assert decide(anonymous, "stt", None).use_v2 == seed_should_use_voice_v2(seed, None, "stt")


def test_a_salt_gives_an_independent_cohort(buckets: list[int]) -> None:
    salted = [bucket(user_id, "stt-2026") for user_id in IDS]
    assert salted != buckets
    for p in (10, 30, 50, 80):
        both = sum(1 for a, b in zip(buckets, salted, strict=True) if a < p and b < p)
        overlap = 100 * both / N
        expected = p * p / 100  # independent cohorts: P(a < p and b < p) = p^2
        assert abs(overlap - expected) <= 0.5, f"{p}%: overlap {overlap:.2f}% vs {expected:.2f}%"
        assert abs(100 * sum(1 for b in salted if b < p) / N - p) <= 0.5


def test_salt_is_prepended_to_the_user_id() -> None:
    assert bucket("alice", "s1") == int(hashlib.md5(b"s1alice").hexdigest(), 16) % 100
    assert bucket("alice", "") == bucket("alice")


def test_lone_surrogates_do_not_crash() -> None:
    assert 0 <= bucket("bad\udcff-id") < 100
