"""Voice v2 rollout flags, the configuration: what an operator sets, its JSON and its validation.

The routing decision over it (bucketing, rule order, explanations) is :mod:`voxshift.core.flags`,
which re-exports every public name here, so callers keep importing from that one place. A
:class:`FlagConfig` is a frozen value checked on construction, so an invalid one never exists: each
change builds a new config and the flag service stores it with the next version. ``dumps`` is
canonical (sorted keys) because the stores compare the bytes.

No I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, Protocol, TypeVar, get_args

from voxshift.core.vocabulary import FEATURES, OPERATIONS, FeatureName, Operation
from voxshift.errors import InvalidRequest

# Short spellings for operators and the OpenFeature keys ("langgraph" for langgraph_integration).
FEATURE_ALIASES: dict[str, FeatureName] = {
    "stt": "stt_enabled",
    "tts": "tts_enabled",
    "langgraph": "langgraph_integration",
    "caching": "caching_enabled",
}
AnonymousPolicy = Literal["legacy", "v2", "bucket"]
ANONYMOUS_POLICIES: tuple[AnonymousPolicy, ...] = get_args(AnonymousPolicy)
FORMAT = 1
ID_MAX = 255  # NAME_LENGTH of the settings database
SALT_MAX = 64
_TOP_KEYS = (
    "format", "version", "enabled", "features", "percentages", "salt", "anonymous", "allow", "deny", "legacy",
)  # fmt: skip
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PerOperation(Generic[T]):
    """One value per operation; JSON ``{"stt": ..., "tts": ...}``."""

    stt: T
    tts: T

    def __getitem__(self, operation: Operation) -> T:
        return self.stt if operation == "stt" else self.tts

    def set(self, operation: Operation | None, value: T) -> PerOperation[T]:
        """``operation=None`` sets both."""
        if operation is None:
            return PerOperation(value, value)
        return PerOperation(value, self.tts) if operation == "stt" else PerOperation(self.stt, value)

    def to_json(self) -> dict[str, T]:
        return {"stt": self.stt, "tts": self.tts}


@dataclass(frozen=True, slots=True)
class Features:
    """The seed's ``VOICE_V2_FEATURES`` booleans."""

    stt_enabled: bool = False
    tts_enabled: bool = False
    langgraph_integration: bool = False
    caching_enabled: bool = False

    def to_json(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in FEATURES}


class _FeaturesLike(Protocol):
    @property
    def stt_enabled(self) -> bool: ...
    @property
    def tts_enabled(self) -> bool: ...
    @property
    def langgraph_integration(self) -> bool: ...
    @property
    def caching_enabled(self) -> bool: ...


class SettingsLike(Protocol):
    """The part of ``voxshift.config.Settings`` the start-up config comes from (seed M1.2)."""

    @property
    def voice_v2_enabled(self) -> bool: ...
    @property
    def voice_v2_rollout_percentage(self) -> int: ...
    @property
    def voice_v2_features(self) -> _FeaturesLike: ...


@dataclass(frozen=True)
class FlagConfig:
    enabled: bool = False  # the kill switch: False sends everything to legacy
    features: Features = Features()
    percentages: PerOperation[int] = PerOperation(0, 0)
    salt: PerOperation[str] = PerOperation("", "")  # "" = the seed's cohorts
    anonymous: AnonymousPolicy = "legacy"
    allow_users: frozenset[str] = frozenset()  # force v2 (after the feature flag)
    allow_agents: frozenset[str] = frozenset()
    deny_users: frozenset[str] = frozenset()  # force legacy; beats any allow
    deny_agents: frozenset[str] = frozenset()
    # The sunset's read_only phase (seed M5.1): the legacy stops writing (the reference legacy obeys
    # it; an external legacy reads it through the OpenFeature provider).
    legacy_read_only: bool = False
    # The sunset's infrastructure_cleanup removed the legacy: no request may fall back to it.
    legacy_retired: bool = False
    version: int = 0  # 0 = never stored; every stored change adds 1
    # Derived, read-only: per operation (feature on, percentage, salt), precomputed so that
    # core.flags.decide does no attribute chasing on the hot path.
    plans: Mapping[str, tuple[bool, int, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        plans = {op: (self.feature(op), self.percentages[op], self.salt[op]) for op in OPERATIONS}
        object.__setattr__(self, "plans", plans)

    def feature(self, name: str) -> bool:
        """A feature by name or alias (``stt``, ``langgraph`` ...)."""
        return bool(getattr(self.features, feature_name(name)))

    def same_rules(self, other: FlagConfig) -> bool:
        return replace(self, version=0) == replace(other, version=0)

    # --- changes (each returns a new config; the service bumps the version when it stores it) ----
    def killed(self) -> FlagConfig:
        return replace(self, enabled=False)

    def with_percentage(self, operation: Operation | None, percentage: int) -> FlagConfig:
        return replace(self, percentages=self.percentages.set(operation, percentage))

    def with_legacy_read_only(self, on: bool) -> FlagConfig:
        return replace(self, legacy_read_only=on)

    def with_legacy_retired(self, on: bool) -> FlagConfig:
        return replace(self, legacy_retired=on)

    def with_feature(self, name: str, on: bool) -> FlagConfig:
        return replace(self, features=replace(self.features, **{feature_name(name): on}))

    def with_listed(
        self,
        listing: Literal["allow", "deny"],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        remove: bool = False,
    ) -> FlagConfig:
        """Add to (or remove from) a list; adding to one list removes the id from the other, so
        ``allow`` after ``deny`` does what the operator meant instead of being silently outranked."""
        if (user_id is None) == (agent_id is None):
            raise InvalidRequest("give exactly one of a user id or an agent id", param="user_id")
        kind, ident = ("users", user_id) if user_id is not None else ("agents", agent_id)
        assert ident is not None
        other = "deny" if listing == "allow" else "allow"
        mine: frozenset[str] = getattr(self, f"{listing}_{kind}")
        theirs: frozenset[str] = getattr(self, f"{other}_{kind}")
        changes = {f"{listing}_{kind}": mine - {ident} if remove else mine | {ident}}
        if not remove:
            changes[f"{other}_{kind}"] = theirs - {ident}
        return replace(self, **changes)  # type: ignore[arg-type]

    # --- JSON --------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "enabled": self.enabled,
            "features": self.features.to_json(),
            "percentages": self.percentages.to_json(),
            "salt": self.salt.to_json(),
            "anonymous": self.anonymous,
            "allow": {"users": sorted(self.allow_users), "agents": sorted(self.allow_agents)},
            "deny": {"users": sorted(self.deny_users), "agents": sorted(self.deny_agents)},
            "legacy": {"read_only": self.legacy_read_only, "retired": self.legacy_retired},
        }

    def dumps(self) -> bytes:
        """Canonical bytes (sorted keys): equal configs encode equally, so CAS can compare them."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> FlagConfig:
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidRequest(f"flag config: not valid JSON ({exc})", param="config") from None
        doc = _mapping(data, "config", _TOP_KEYS)
        if doc.get("format", FORMAT) != FORMAT:
            raise _bad("format", f"must be {FORMAT}", doc.get("format"))
        features = _mapping(doc.get("features", {}), "features", FEATURES)
        pcts = _mapping(doc.get("percentages", {}), "percentages", OPERATIONS)
        salts = _mapping(doc.get("salt", {}), "salt", OPERATIONS)
        allow = _mapping(doc.get("allow", {}), "allow", ("users", "agents"))
        deny = _mapping(doc.get("deny", {}), "deny", ("users", "agents"))
        legacy = _mapping(doc.get("legacy", {}), "legacy", ("read_only", "retired"))
        return cls(
            enabled=doc.get("enabled", False),
            features=Features(**features),
            percentages=PerOperation(pcts.get("stt", 0), pcts.get("tts", 0)),
            salt=PerOperation(salts.get("stt", ""), salts.get("tts", "")),
            anonymous=doc.get("anonymous", "legacy"),
            allow_users=_ids(allow.get("users", []), "allow.users"),
            allow_agents=_ids(allow.get("agents", []), "allow.agents"),
            deny_users=_ids(deny.get("users", []), "deny.users"),
            deny_agents=_ids(deny.get("agents", []), "deny.agents"),
            legacy_read_only=legacy.get("read_only", False),
            legacy_retired=legacy.get("retired", False),
            version=doc.get("version", 0),
        )

    @classmethod
    def from_settings(cls, settings: SettingsLike) -> FlagConfig:
        """The start-up config from ``VOICE_V2_*`` (one percentage for both operations)."""
        f = settings.voice_v2_features
        pct = settings.voice_v2_rollout_percentage
        # VOXSHIFT_ANONYMOUS_USERS: not a seed variable, so optional on the settings object.
        raw = getattr(settings, "anonymous_users", "legacy")
        anonymous: AnonymousPolicy = "v2" if raw == "v2" else "bucket" if raw == "bucket" else "legacy"
        return cls(
            enabled=settings.voice_v2_enabled,
            features=Features(f.stt_enabled, f.tts_enabled, f.langgraph_integration, f.caching_enabled),
            percentages=PerOperation(pct, pct),
            anonymous=anonymous,
        )


def feature_name(name: str) -> FeatureName:
    resolved = FEATURE_ALIASES.get(name, name)
    if resolved not in FEATURES:
        raise InvalidRequest(
            f"unknown feature {name!r}; expected one of {', '.join(FEATURES)}", param="feature"
        )
    return resolved


def diff(old: FlagConfig | None, new: FlagConfig) -> list[str]:
    """Human lines such as ``percentages.stt: 10 -> 25`` (version excluded)."""
    before = _flatten(old.to_json()) if old is not None else {}
    after = _flatten(new.to_json())
    return [
        f"{key}: {json.dumps(before.get(key), ensure_ascii=False)} -> {json.dumps(value, ensure_ascii=False)}"
        for key, value in after.items()
        if key not in ("format", "version") and before.get(key) != value
    ]


def stored_diff(old: Any, new: Any) -> list[str]:
    """``diff`` of two stored flag documents (an audit row's old and new values), as `voxshift flags
    history` and the admin audit word it: the first row (no old) lists what differs from the
    defaults, and a document that no longer parses says so instead of failing the listing."""
    try:
        if old is None:
            return ["created", *diff(FlagConfig(), FlagConfig.from_json(new))]
        return diff(FlagConfig.from_json(old), FlagConfig.from_json(new))
    except InvalidRequest:
        return ["(not a readable flag config)"]


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


# --- validation ------------------------------------------------------------------------------------
def _bad(field_: str, message: str, got: Any) -> InvalidRequest:
    return InvalidRequest(f"{field_}: {message}, got {got!r}", param=field_)


def _mapping(value: Any, name: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(name, "must be a JSON object", value)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise _bad(name, f"unknown key(s) {', '.join(unknown)}; expected {', '.join(allowed)}", value)
    return value


def _ids(value: Any, name: str) -> frozenset[str]:
    if not isinstance(value, list | tuple | set | frozenset):
        raise _bad(name, "must be a list of ids", value)
    return frozenset(value)


def _validate(c: FlagConfig) -> None:
    if not isinstance(c.enabled, bool):
        raise _bad("enabled", "must be true or false", c.enabled)
    if not isinstance(c.features, Features):
        raise _bad("features", "must be Features", c.features)
    for name in FEATURES:
        if not isinstance(getattr(c.features, name), bool):
            raise _bad(f"features.{name}", "must be true or false", getattr(c.features, name))
    for op in OPERATIONS:
        pct, salt = c.percentages[op], c.salt[op]
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise _bad(f"percentages.{op}", "must be an integer from 0 to 100", pct)
        if not isinstance(salt, str) or len(salt) > SALT_MAX:
            raise _bad(f"salt.{op}", f"must be a string of at most {SALT_MAX} characters", salt)
    if c.anonymous not in ANONYMOUS_POLICIES:
        raise _bad("anonymous", "must be legacy, v2 or bucket", c.anonymous)
    for listed in ("allow_users", "allow_agents", "deny_users", "deny_agents"):
        ids = getattr(c, listed)
        where = listed.replace("_", ".")
        if not isinstance(ids, frozenset):
            raise _bad(where, "must be a frozenset of ids", ids)
        for ident in ids:
            if not isinstance(ident, str) or not ident.strip() or len(ident) > ID_MAX:
                raise _bad(where, f"ids must be non-blank strings of at most {ID_MAX} characters", ident)
    if not isinstance(c.legacy_read_only, bool):
        raise _bad("legacy.read_only", "must be true or false", c.legacy_read_only)
    if not isinstance(c.legacy_retired, bool):
        raise _bad("legacy.retired", "must be true or false", c.legacy_retired)
    if isinstance(c.version, bool) or not isinstance(c.version, int) or c.version < 0:
        raise _bad("version", "must be an integer >= 0", c.version)
