"""The rollout's stored state and what the state machine (:mod:`voxshift.core.rollout.machine`)
takes and returns: the flag target, the state document, the measured evaluation, a transition.

No I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, get_args

from voxshift.errors import InvalidRequest, VoxshiftError

StateName = Literal["pending", "running", "paused", "rolled_back", "halted", "completed", "aborted"]
STATES: tuple[StateName, ...] = get_args(StateName)
TransitionKind = Literal[
    "start", "step_up", "promote", "complete", "rollback", "halt", "pause", "resume", "approve", "abort"
]
ACTIVE: tuple[StateName, ...] = ("running", "paused")  # the controller evaluates criteria
CONTROLLER = "rollout-controller"
FORMAT = 1


class RolloutRefused(VoxshiftError):
    """The command does not apply in the rollout's current state (409; CLI exit 1)."""

    status = 409
    code = "rollout_refused"
    error_type = "invalid_request_error"
    exit_code = 1


@dataclass(frozen=True)
class Target:
    """What the feature flags must say: the kill switch, a percentage per operation, and exactly
    which of the seed's features are on (the others off)."""

    enabled: bool = False
    stt: int = 0
    tts: int = 0
    features: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "stt": self.stt, "tts": self.tts, "features": sorted(self.features)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Target:
        return cls(bool(doc["enabled"]), int(doc["stt"]), int(doc["tts"]), frozenset(doc["features"]))


@dataclass(frozen=True)
class RolloutState:
    state: StateName = "pending"
    phase: int = -1  # index into plan.phases; -1 before the start
    step: int = 0
    since: float = 0.0  # the current step began: its criteria read [since, now)
    entered: float = 0.0  # the current state was entered
    resumed: float = 0.0  # the pending clock (max_duration) restarts on resume
    started: float = 0.0  # the rollout began: the baseline window for legacy
    rollbacks: int = 0
    approved: bool = False  # a person approved promotion out of the current phase
    seq: int = 0  # transitions so far
    applied: int = 0  # transitions whose flags, history and webhooks are done (an outbox)
    target: Target = Target()
    reason: str = ""
    plan_digest: str = ""
    # The last transition as stored (kind, actor, numbers...): the controller writes its history row
    # and webhook from here, so a leader that dies half-way leaves the next one able to finish.
    event: dict[str, Any] = field(default_factory=dict)

    @property
    def pending_apply(self) -> bool:
        return self.applied < self.seq

    def dumps(self) -> bytes:
        doc = asdict(self)
        doc["target"] = self.target.to_json()
        doc["format"] = FORMAT
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes | str) -> RolloutState:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError(f"a JSON object was expected, not {type(doc).__name__}")
            if doc.pop("format", FORMAT) != FORMAT:
                raise ValueError("unknown format")
            doc["target"] = Target.from_json(doc["target"])
            state = cls(**doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"stored rollout state is unreadable: {exc}", param="rollout") from None
        if state.state not in STATES:
            raise InvalidRequest(f"stored rollout state {state.state!r} is unknown", param="rollout")
        return state


class CriterionLike(Protocol):
    """What the machine reads of a criterion's result (core.rollout.criteria.CriterionResult)."""

    @property
    def metric(self) -> str: ...
    @property
    def operation(self) -> str | None: ...
    @property
    def verdict(self) -> str: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def detail(self) -> str: ...
    @property
    def samples(self) -> int: ...
    @property
    def min_samples(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Evaluation:
    """What one interval measured. ``results``: the criteria on the step's window (they decide
    promotion); ``recent``: the same criteria on the last interval only (a fault shows there at
    once instead of being diluted by days of healthy traffic; only their failures count)."""

    results: Sequence[CriterionLike] = ()
    recent: Sequence[CriterionLike] = ()
    breakers_open_s: float = 0.0  # how long v2's breakers have been open without a break
    killed: bool = False  # the flags' kill switch is off

    def numbers(self) -> dict[str, Any]:
        return {
            "criteria": [r.to_dict() for r in self.results],
            "recent": [r.to_dict() for r in self.recent],
            "breakers_open_s": round(self.breakers_open_s, 3),
        }


@dataclass(frozen=True)
class Transition:
    seq: int
    kind: TransitionKind
    at: float
    actor: str
    reason: str
    before: RolloutState
    after: RolloutState
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """What `voxshift rollout <command> --json` and the admin API show of a transition."""
        return {
            "kind": self.kind,
            "seq": self.seq,
            "from": self.before.state,
            "to": self.after.state,
            "phase": self.after.phase,
            "step": self.after.step,
            "target": self.after.target.to_json(),
            "reason": self.reason,
            "actor": self.actor,
        }
