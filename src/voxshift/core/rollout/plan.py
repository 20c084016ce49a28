"""A rollout plan: phases of steps, each with its percentages, features, minimum duration and
criteria. A plan is data (TOML, see ``docs/rollout.md``); the seed's schedule (M3.1) is the
built-in default. Frozen dataclasses, checked on construction, so an invalid plan never exists,
whether it was read from a file or built by hand.

The TOML shape (``plan_to_dict`` gives the same document, JSON-able)::

    interval = "60s"  max_rollbacks = 2  on_failure = "previous"  [breaker_open = "60s"]
    [[phases]]  name, percentage | stt_percentage + tts_percentage, features, min_duration,
                [max_duration], approval        (or [[phases.steps]] with percentages + min_duration)
    [[phases.criteria]]  metric, max | min, min_samples, dry_run, [operations]

``interval``, ``max_rollbacks`` and ``on_failure`` default to the seed's 60 s, 2 and "previous".
Percentages never go down, from one step or phase to the next, per operation: a lower percentage
is a rollback, which is the controller's decision, not the plan's. An operation gets traffic only
in a phase whose features enable it.

No I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, get_args

from voxshift.core.flag_config import FEATURE_ALIASES

# Re-exported (``as`` names them public for mypy): callers import the plan's whole API from here.
from voxshift.core.rollout.plan_toml import DEFAULT_PLAN_TOML as DEFAULT_PLAN_TOML
from voxshift.core.rollout.plan_toml import dumps as _dumps_toml
from voxshift.core.rollout.plan_toml import format_duration as format_duration
from voxshift.core.rollout.plan_toml import invalid, is_number, join, nested, table, whole_number
from voxshift.core.rollout.plan_toml import parse_duration as parse_duration
from voxshift.core.vocabulary import FEATURES, OPERATIONS, FeatureName, Operation
from voxshift.errors import InvalidRequest

Metric = Literal[
    "error_rate",
    "latency_p95_ms",
    "user_feedback",
    "user_satisfaction",
    "cache_hit_rate",
    "fallback_rate",
    "latency_ratio_vs_legacy",
    "error_ratio_vs_legacy",
]
METRICS: tuple[Metric, ...] = get_args(Metric)
Bound = Literal["max", "min"]  # max: the value must stay under the threshold; min: over it
OnFailure = Literal["previous", "zero", "kill"]
ON_FAILURE: tuple[OnFailure, ...] = get_args(OnFailure)

# Per metric: (lowest, highest, exclusive) thresholds, the unit for the message, and the one bound
# that makes sense. A threshold at the edge of a range can never pass or never fail, and the other
# direction ("error rate at least 1%") is always a slip, so both are refused up front.
_RANGES: dict[str, tuple[float, float, str, Bound]] = {
    "error_rate": (0.0, 1.0, "a number between 0 and 1", "max"),
    "fallback_rate": (0.0, 1.0, "a number between 0 and 1", "max"),
    "cache_hit_rate": (0.0, 1.0, "a number between 0 and 1", "min"),
    "user_feedback": (1.0, 5.0, "a rating between 1 and 5", "min"),
    "user_satisfaction": (1.0, 5.0, "a rating between 1 and 5", "min"),
    # The latency histogram's last finite bucket ends just over 120 s: above that it cannot tell.
    "latency_p95_ms": (0.0, 120_000.0, "a number of milliseconds between 0 and 120000", "max"),
    # The regression detector's ratios: how much worse than legacy v2 may get, so above 1.
    "latency_ratio_vs_legacy": (1.0, 1_000.0, "a ratio above 1 (v2 / legacy)", "max"),
    "error_ratio_vs_legacy": (1.0, 1_000.0, "a ratio above 1 (v2 / legacy)", "max"),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PLAN_KEYS = ("interval", "max_rollbacks", "on_failure", "breaker_open", "phases")
_PHASE_KEYS = (
    "name",
    "percentage",
    "stt_percentage",
    "tts_percentage",
    "features",
    "min_duration",
    "max_duration",
    "approval",
    "steps",
    "criteria",
)
_STEP_KEYS = ("percentage", "stt_percentage", "tts_percentage", "min_duration")
_CRITERION_KEYS = ("metric", "max", "min", "min_samples", "dry_run", "operations")
_PERCENTAGE = "must be a whole number between 0 and 100"
_OPERATION_FEATURE: dict[Operation, FeatureName] = {"stt": "stt_enabled", "tts": "tts_enabled"}


def _feature(raw: object, path: str) -> FeatureName:
    """A feature by name or alias (``stt``, ``caching`` ...), as the flags commands take them."""
    name = FEATURE_ALIASES.get(raw, raw) if isinstance(raw, str) else raw
    for feature in FEATURES:
        if name == feature:
            return feature
    raise invalid(path, f"unknown feature; expected one of {', '.join(FEATURES)}", raw)


@dataclass(frozen=True)
class Criterion:
    metric: Metric
    threshold: float
    bound: Bound
    min_samples: int = 200
    dry_run: bool = False  # evaluated and reported, never acts
    # Operations it is judged on; () = every operation the step sends to v2.
    operations: tuple[Operation, ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise invalid("metric", f"unknown metric; expected one of {', '.join(METRICS)}", self.metric)
        low, high, what, natural = _RANGES[self.metric]
        if self.bound not in ("max", "min"):
            raise invalid("bound", 'must be "max" or "min"', self.bound)
        if self.bound != natural:
            raise invalid(self.bound, f"{self.metric} takes {natural}, not {self.bound}")
        t = self.threshold
        if not is_number(t) or not low < t < high:
            raise invalid(self.bound, f"must be {what} for {self.metric}", t)
        object.__setattr__(self, "threshold", float(t))  # 2000 and 2000.0: one plan, one digest
        whole_number(self.min_samples, "min_samples", 1, None, "must be a whole number >= 1")
        if not isinstance(self.dry_run, bool):
            raise invalid("dry_run", "must be true or false", self.dry_run)
        ops = tuple(self.operations)
        for i, op in enumerate(ops):
            if op not in OPERATIONS or op in ops[:i]:
                raise invalid(f"operations[{i}]", f"must be one of {', '.join(OPERATIONS)}, once", op)
        object.__setattr__(self, "operations", ops)


@dataclass(frozen=True)
class Step:
    """One percentage level of a phase; its criteria are judged on traffic since it began."""

    stt_percentage: int
    tts_percentage: int
    min_duration_s: float

    def __post_init__(self) -> None:
        for op in OPERATIONS:
            whole_number(self.percentage(op), f"{op}_percentage", 0, 100, _PERCENTAGE)
        if not is_number(self.min_duration_s) or self.min_duration_s <= 0:
            raise invalid("min_duration", "must be a positive duration", self.min_duration_s)

    def percentage(self, operation: Operation) -> int:
        return self.stt_percentage if operation == "stt" else self.tts_percentage


@dataclass(frozen=True)
class Phase:
    name: str
    steps: tuple[Step, ...]
    features: frozenset[FeatureName]
    criteria: tuple[Criterion, ...]
    approval: bool = False  # promotion out of the phase waits for `voxshift rollout promote`
    # Still pending this long after a step began: pause and say why (None = 2 x min_duration).
    max_duration_s: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise invalid("name", "must be 1-64 letters, digits, '_', '.', '-' (not first)", self.name)
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "criteria", tuple(self.criteria))
        object.__setattr__(self, "features", frozenset(_feature(f, "features") for f in self.features))
        if not self.steps:
            raise invalid("steps", "a phase needs at least one step")
        if not isinstance(self.approval, bool):
            raise invalid("approval", "must be true or false", self.approval)
        for i, step in enumerate(self.steps):
            for op in OPERATIONS:
                pct, feature = step.percentage(op), _OPERATION_FEATURE[op]
                if pct and feature not in self.features:
                    raise invalid(
                        self.step_path(i, op), f"sends traffic but {feature} is not in features", pct
                    )
                if i and pct < self.steps[i - 1].percentage(op):
                    message = f"must not go below the previous step's {self.steps[i - 1].percentage(op)}"
                    raise invalid(self.step_path(i, op), message, pct)
        longest = max(s.min_duration_s for s in self.steps)
        if self.max_duration_s is not None and (
            not is_number(self.max_duration_s) or self.max_duration_s < longest
        ):
            message = f"must be a duration at least the longest step ({format_duration(longest)})"
            raise invalid("max_duration", message, self.max_duration_s)

    @property
    def min_duration_s(self) -> float:
        return sum(s.min_duration_s for s in self.steps)

    def max_duration_for(self, step: Step) -> float:
        """How long ``step`` may stay pending before the controller pauses."""
        return self.max_duration_s if self.max_duration_s is not None else 2 * step.min_duration_s

    def step_path(self, index: int, operation: Operation) -> str:
        """Where a step's percentage is written: a one-step phase has it on the phase itself."""
        key = f"{operation}_percentage"
        return key if len(self.steps) == 1 else f"steps[{index}].{key}"


@dataclass(frozen=True)
class Plan:
    interval_s: float
    max_rollbacks: int
    on_failure: OnFailure
    phases: tuple[Phase, ...]
    # v2 breakers open this long (continuously) count as a failure; None = one interval.
    breaker_open_s: float | None = None

    def __post_init__(self) -> None:
        if not is_number(self.interval_s) or self.interval_s < 1:
            raise invalid("interval", "must be a duration of at least 1s", self.interval_s)
        whole_number(self.max_rollbacks, "max_rollbacks", 0, None, "must be a whole number >= 0")
        if self.on_failure not in ON_FAILURE:
            raise invalid("on_failure", f"must be one of {', '.join(ON_FAILURE)}", self.on_failure)
        if self.breaker_open_s is not None and (
            not is_number(self.breaker_open_s) or self.breaker_open_s <= 0
        ):
            raise invalid("breaker_open", "must be a positive duration", self.breaker_open_s)
        object.__setattr__(self, "phases", tuple(self.phases))
        if not self.phases:
            raise invalid("phases", "a plan needs at least one phase")
        seen: set[str] = set()
        for i, phase in enumerate(self.phases):
            if phase.name in seen:
                raise invalid(f"phases[{i}].name", "duplicate phase name", phase.name)
            seen.add(phase.name)
            if not i:
                continue
            before, first = self.phases[i - 1].steps[-1], phase.steps[0]
            for op in OPERATIONS:
                if first.percentage(op) < before.percentage(op):
                    message = f"must not go below the previous phase's {before.percentage(op)}"
                    raise invalid(f"phases[{i}].{phase.step_path(0, op)}", message, first.percentage(op))

    @property
    def breaker_open(self) -> float:
        """Seconds v2's breakers may stay open before that counts as a failure."""
        return self.breaker_open_s if self.breaker_open_s is not None else self.interval_s

    def index(self, name: str) -> int:
        """The position of the phase called ``name``."""
        for i, phase in enumerate(self.phases):
            if phase.name == name:
                return i
        raise InvalidRequest(f"plan: no phase named {name!r}", param="phase")


# --- reading ---------------------------------------------------------------------------------


def plan_from_toml(text: str) -> Plan:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"plan: not valid TOML: {exc}", param="plan") from None
    return plan_from_dict(doc)


def plan_from_dict(doc: Mapping[str, Any]) -> Plan:
    """A plan from its TOML document (or :func:`plan_to_dict`'s JSON)."""
    top = table(doc, "", _PLAN_KEYS)
    raw_phases = top.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise invalid("phases", "a plan needs at least one [[phases]] table", raw_phases)
    phases = tuple(_phase(raw, f"phases[{i}]") for i, raw in enumerate(raw_phases))
    breaker = top.get("breaker_open")
    return Plan(
        interval_s=parse_duration(top.get("interval", 60), "interval"),
        max_rollbacks=top.get("max_rollbacks", 2),
        on_failure=top.get("on_failure", "previous"),
        phases=phases,
        breaker_open_s=None if breaker is None else parse_duration(breaker, "breaker_open"),
    )


def _phase(raw: object, path: str) -> Phase:
    doc = table(raw, path, _PHASE_KEYS)
    if "name" not in doc:
        raise invalid(join(path, "name"), "is required")
    if "steps" in doc:
        clash = [k for k in _STEP_KEYS if k in doc]
        if clash:
            raise invalid(join(path, clash[0]), "goes in [[phases.steps]] when the phase has steps")
        raw_steps = doc["steps"]
        if not isinstance(raw_steps, list) or not raw_steps:
            raise invalid(join(path, "steps"), "must be a non-empty array of tables", raw_steps)
        steps = tuple(_step(s, f"{path}.steps[{i}]") for i, s in enumerate(raw_steps))
    else:
        steps = (_step(doc, path, phase_keys=True),)
    raw_features = doc.get("features", [])
    if not isinstance(raw_features, list):
        raise invalid(join(path, "features"), "must be a list of feature names", raw_features)
    features = frozenset(_feature(f, f"{path}.features[{i}]") for i, f in enumerate(raw_features))
    raw_criteria = doc.get("criteria", [])
    if not isinstance(raw_criteria, list):
        raise invalid(join(path, "criteria"), "must be an array of [[phases.criteria]] tables", raw_criteria)
    criteria = tuple(_criterion(c, f"{path}.criteria[{i}]") for i, c in enumerate(raw_criteria))
    max_duration = doc.get("max_duration")
    try:
        return Phase(
            name=doc["name"],
            steps=steps,
            features=features,
            criteria=criteria,
            approval=doc.get("approval", False),
            max_duration_s=None if max_duration is None else parse_duration(max_duration, "max_duration"),
        )
    except InvalidRequest as exc:
        raise nested(path, exc) from None


def _step(raw: object, path: str, *, phase_keys: bool = False) -> Step:
    # A simple phase carries its one step's keys itself (already checked against the phase's keys).
    doc = raw if phase_keys and isinstance(raw, Mapping) else table(raw, path, _STEP_KEYS)
    if "percentage" in doc:
        if "stt_percentage" in doc or "tts_percentage" in doc:
            message = "give percentage (both operations) or stt_percentage / tts_percentage, not both"
            raise invalid(join(path, "percentage"), message)
        stt = tts = whole_number(doc["percentage"], join(path, "percentage"), 0, 100, _PERCENTAGE)
    elif "stt_percentage" in doc or "tts_percentage" in doc:
        stt, tts = doc.get("stt_percentage", 0), doc.get("tts_percentage", 0)
    else:
        raise invalid(
            join(path, "percentage"), "is required (or stt_percentage / tts_percentage, or [[phases.steps]])"
        )
    if "min_duration" not in doc:
        raise invalid(join(path, "min_duration"), "is required")
    try:
        return Step(stt, tts, parse_duration(doc["min_duration"], "min_duration"))
    except InvalidRequest as exc:
        raise nested(path, exc) from None


def _criterion(raw: object, path: str) -> Criterion:
    doc = table(raw, path, _CRITERION_KEYS)
    if "metric" not in doc:
        raise invalid(join(path, "metric"), "is required")
    bounds = [b for b in ("max", "min") if b in doc]
    if len(bounds) != 1:
        raise invalid(join(path, "max"), "give exactly one of max or min")
    bound: Bound = "max" if bounds[0] == "max" else "min"
    operations = doc.get("operations", [])
    if not isinstance(operations, list):
        raise invalid(join(path, "operations"), 'must be a list such as ["stt"]', operations)
    try:
        return Criterion(
            metric=doc["metric"],
            threshold=doc[bound],
            bound=bound,
            min_samples=doc.get("min_samples", 200),
            dry_run=doc.get("dry_run", False),
            operations=tuple(operations),
        )
    except InvalidRequest as exc:
        raise nested(path, exc) from None


# --- writing ---------------------------------------------------------------------------------


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan's TOML document as JSON-able data, canonical: equal plans give equal documents, and
    :func:`plan_from_dict` reads it back to an equal plan."""
    doc: dict[str, Any] = {
        "interval": format_duration(plan.interval_s),
        "max_rollbacks": plan.max_rollbacks,
        "on_failure": plan.on_failure,
    }
    if plan.breaker_open_s is not None:
        doc["breaker_open"] = format_duration(plan.breaker_open_s)
    doc["phases"] = [_phase_doc(p) for p in plan.phases]
    return doc


def _phase_doc(phase: Phase) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": phase.name}
    if len(phase.steps) == 1:
        doc.update(_step_doc(phase.steps[0]))
    doc["features"] = [f for f in FEATURES if f in phase.features]
    if phase.max_duration_s is not None:
        doc["max_duration"] = format_duration(phase.max_duration_s)
    doc["approval"] = phase.approval
    if len(phase.steps) > 1:
        doc["steps"] = [_step_doc(s) for s in phase.steps]
    doc["criteria"] = [_criterion_doc(c) for c in phase.criteria]
    return doc


def _step_doc(step: Step) -> dict[str, Any]:
    if step.stt_percentage == step.tts_percentage:
        doc: dict[str, Any] = {"percentage": step.stt_percentage}
    else:
        doc = {"stt_percentage": step.stt_percentage, "tts_percentage": step.tts_percentage}
    doc["min_duration"] = format_duration(step.min_duration_s)
    return doc


def _criterion_doc(criterion: Criterion) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "metric": criterion.metric,
        criterion.bound: criterion.threshold,
        "min_samples": criterion.min_samples,
        "dry_run": criterion.dry_run,
    }
    if criterion.operations:
        doc["operations"] = list(criterion.operations)
    return doc


def plan_to_toml(plan: Plan) -> str:
    return _dumps_toml(plan_to_dict(plan))


def plan_digest(plan: Plan) -> str:
    """12 hex digits of the SHA-256 of the canonical JSON: names a plan in the history and status,
    so two replicas (or a restart) can tell whether they run the same plan."""
    canonical = json.dumps(plan_to_dict(plan), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# --- the default ------------------------------------------------------------------------------


@cache
def default_plan() -> Plan:
    """The seed's schedule (M3.1) with its exact numbers. :data:`DEFAULT_PLAN_TOML` is the one
    source, so what `voxshift rollout plan` prints is what runs; its comments say why each
    ``min_samples`` is what it is. Plans are frozen, so one parsed copy serves every caller."""
    return plan_from_toml(DEFAULT_PLAN_TOML)
