"""Voice v2 rollout flags, pure: the bucketing and the routing decision over a :class:`FlagConfig`.

This is the seed's ``VoiceV2FeatureFlags.should_use_voice_v2`` (M2.1) split from its I/O. The
bucketing is exactly the seed's (``md5(user_id) % 100``), so users keep the cohort they had; what
changes is where the inputs come from (a versioned, audited :class:`FlagConfig` instead of process
settings) and what a decision costs (no Redis write per call: the seed's ``SETEX`` decision cache
was never read on the hot path, and its 300 s TTL would have outlived a rollback).

Rule order, first match wins (:func:`decide`): kill switch, the operation's feature flag, deny
lists (users then agents: force legacy), allow lists (force v2), the anonymous policy, percentage
0/100, then ``bucket < percentage``. A deny beats an allow because legacy is the safe direction.
Cohorts are monotone by construction: raising a percentage only moves users legacy -> v2 and
lowering it only v2 -> legacy, as long as the salt stays the same.

The configuration itself (its fields, JSON and validation) is :mod:`voxshift.core.flag_config`.

No I/O, no clock: services hold a ``FlagConfig`` and call :func:`decide` on every request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

# The configuration model lives in flag_config; its names are re-exported (see __all__) because
# every caller has always imported flags and configs alike from this module.
from voxshift.core.flag_config import (
    ANONYMOUS_POLICIES,
    FEATURE_ALIASES,
    FORMAT,
    ID_MAX,
    SALT_MAX,
    AnonymousPolicy,
    Features,
    FlagConfig,
    PerOperation,
    SettingsLike,
    diff,
    feature_name,
)
from voxshift.core.vocabulary import FEATURES, OPERATIONS, FeatureName, Operation
from voxshift.errors import InvalidRequest

ANONYMOUS_KEY = "None"  # the seed hashed str(None) when a request carried no user id
REASONS = (
    "kill_switch",
    "feature_disabled",
    "user_denied",
    "agent_denied",
    "user_allowed",
    "agent_allowed",
    "anonymous_legacy",
    "anonymous_v2",
    "percentage_0",
    "percentage_100",
    "in_cohort",
    "out_of_cohort",
)


def bucket(user_id: str, salt: str = "") -> int:
    """0..99. Without a salt exactly the seed's ``int(md5(user_id).hexdigest(), 16) % 100``."""
    return _bucket(user_id, salt)


@lru_cache(maxsize=1 << 16)  # repeat users skip the md5; bounded so unique ids cannot grow it
def _bucket(user_id: str, salt: str) -> int:
    key = salt + user_id if salt else user_id
    # surrogatepass: identical bytes for every valid str, and no crash on a lone surrogate.
    digest = hashlib.md5(key.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big") % 100  # == int(hexdigest, 16), without the hex round trip


# --- the decision ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Decision:
    use_v2: bool
    reason: str  # one of REASONS
    bucket: int | None  # only when the bucket decided

    @property
    def system(self) -> str:
        return "voice_v2" if self.use_v2 else "legacy"


# Every possible Decision exists once, so the hot path allocates nothing.
_TO_V2 = frozenset({"user_allowed", "agent_allowed", "anonymous_v2", "percentage_100"})
_FIXED = {reason: Decision(reason in _TO_V2, reason, None) for reason in REASONS}
_IN = tuple(Decision(True, "in_cohort", b) for b in range(100))
_OUT = tuple(Decision(False, "out_of_cohort", b) for b in range(100))


def decide(config: FlagConfig, operation: str, user_id: str | None, agent_id: str | None = None) -> Decision:
    """Route one request; ``user_id`` None or "" is anonymous."""
    if not config.enabled:
        return _FIXED["kill_switch"]
    plan = config.plans.get(operation)
    if plan is None:
        raise InvalidRequest(f"unknown operation {operation!r}; expected stt or tts", param="operation")
    feature_on, percentage, salt = plan
    if not feature_on:
        return _FIXED["feature_disabled"]
    if user_id and user_id in config.deny_users:
        return _FIXED["user_denied"]
    if agent_id and agent_id in config.deny_agents:
        return _FIXED["agent_denied"]
    if user_id and user_id in config.allow_users:
        return _FIXED["user_allowed"]
    if agent_id and agent_id in config.allow_agents:
        return _FIXED["agent_allowed"]
    if not user_id:
        if config.anonymous != "bucket":
            return _FIXED["anonymous_" + config.anonymous]
        user_id = ANONYMOUS_KEY
    if percentage == 0:
        return _FIXED["percentage_0"]
    if percentage == 100:
        return _FIXED["percentage_100"]
    b = _bucket(user_id, salt)
    return _IN[b] if b < percentage else _OUT[b]


def explain(config: FlagConfig, user_id: str | None, agent_id: str | None = None) -> list[str]:
    """One line per operation: the system, the reason code and why, with bucket and percentage."""
    who = f"user {user_id!r}" if user_id else "anonymous request"
    lines = []
    for op in OPERATIONS:
        d = decide(config, op, user_id, agent_id)
        pct, salt = config.percentages[op], config.salt[op]
        key = user_id or ANONYMOUS_KEY
        b = bucket(key, salt)
        why = {
            "kill_switch": "voice v2 is switched off (kill switch)",
            "feature_disabled": f"feature {op}_enabled is off",
            "user_denied": f"{who} is on the deny list",
            "agent_denied": f"agent {agent_id!r} is on the deny list",
            "user_allowed": f"{who} is on the allow list",
            "agent_allowed": f"agent {agent_id!r} is on the allow list",
            "anonymous_legacy": "no user id, and anonymous requests go to legacy",
            "anonymous_v2": "no user id, and anonymous requests go to v2",
            "percentage_0": f"the {op} rollout is 0%",
            "percentage_100": f"the {op} rollout is 100%",
            "in_cohort": f"{who} is in bucket {b}, below the {pct}% rollout",
            "out_of_cohort": f"{who} is in bucket {b}, not below the {pct}% rollout",
        }[d.reason]
        detail = "" if d.bucket is not None else f" [bucket {b}, rollout {pct}%]"
        salted = f" (salt {salt!r})" if salt else ""
        lines.append(f"{op}: {'v2' if d.use_v2 else 'legacy'} ({d.reason}): {why}{detail}{salted}")
    return lines


def is_rollback(old: FlagConfig, new: FlagConfig) -> bool:
    """True when no request that ``old`` sends to legacy would go to v2 under ``new`` (kill, lower
    a percentage, deny, ...). Conservative: a salt change reshuffles cohorts, so it is not one."""
    if new.enabled and not old.enabled:
        return False
    if (new.legacy_read_only and not old.legacy_read_only) or (new.legacy_retired and not old.legacy_retired):
        return False  # a sunset step, not a way back: it needs its audit row
    if any(new.feature(f) and not old.feature(f) for f in FEATURES):
        return False
    for op in OPERATIONS:
        if new.percentages[op] > old.percentages[op]:
            return False
        if new.salt[op] != old.salt[op] and new.percentages[op] not in (0, 100):
            return False
    rank = {"legacy": 0, "bucket": 1, "v2": 2}
    return (
        rank[new.anonymous] <= rank[old.anonymous]
        and new.allow_users <= old.allow_users
        and new.allow_agents <= old.allow_agents
        and new.deny_users >= old.deny_users
        and new.deny_agents >= old.deny_agents
    )


__all__ = [
    "ANONYMOUS_KEY",
    "ANONYMOUS_POLICIES",
    "FEATURES",
    "FEATURE_ALIASES",
    "FORMAT",
    "ID_MAX",
    "OPERATIONS",
    "REASONS",
    "SALT_MAX",
    "AnonymousPolicy",
    "Decision",
    "FeatureName",
    "Features",
    "FlagConfig",
    "Operation",
    "PerOperation",
    "SettingsLike",
    "bucket",
    "decide",
    "diff",
    "explain",
    "feature_name",
    "is_rollback",
]
