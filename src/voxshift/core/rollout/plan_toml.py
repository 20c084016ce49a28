"""The text side of a rollout plan: durations, path-naming errors, a TOML writer, the default plan.

:mod:`voxshift.core.rollout.plan` owns the data (the dataclasses, their checks, the dict codec) and
re-exports what callers need from here, so import from there. This module knows nothing of the
dataclasses, which keeps the dependency one-way.

**Durations** are ``"90s"``, ``"15m"``, ``"3d"``, combinations with units in falling order
(``"1h30m"``, ``"1.5h"``) or plain numbers of seconds. They are kept to the millisecond, so that
:func:`format_duration` and :func:`parse_duration` round-trip exactly.

**Errors** are :class:`~voxshift.errors.InvalidRequest` with one line that names the field path
(``plan: phases[1].criteria[0].max: ...``) and ``param`` set to that path, because a person fixing
a plan file needs the place, not a traceback.

No I/O, no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from voxshift.errors import InvalidRequest

_UNITS: tuple[tuple[str, int], ...] = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?"
)
_PLAIN = re.compile(r"\d+(?:\.\d+)?")
_NO_VALUE = object()
_SHOW_MAX = 60


# --- errors ----------------------------------------------------------------------------------


def show(value: object) -> str:
    """A value as a person wrote it in TOML (strings quoted), cut short to stay on one line."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # NaN is fine for json; a cycle or an odd key is not
        text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def invalid(path: str, message: str, value: object = _NO_VALUE) -> InvalidRequest:
    """``plan: <path>: <message>[, got <value>]`` with ``param=path``."""
    got = "" if value is _NO_VALUE else f", got {show(value)}"
    return InvalidRequest(f"plan: {path}: {message}{got}", param=path)


def nested(prefix: str, exc: InvalidRequest) -> InvalidRequest:
    """An error raised by one object (``param`` relative to it) restated under its place in the
    plan: ``max: ...`` from a criterion becomes ``phases[1].criteria[0].max: ...``."""
    inner = exc.param or ""
    path = f"{prefix}.{inner}" if inner else prefix
    head = f"plan: {inner}:" if inner else "plan:"
    rest = exc.message.removeprefix(head) if exc.message.startswith(head) else f" {exc.message}"
    return InvalidRequest(f"plan: {path}:{rest}", param=path)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def table(value: object, path: str, keys: Iterable[str]) -> Mapping[str, Any]:
    """``value`` as a table whose keys are all in ``keys``; an unknown key is named, since a typo
    (``maximum`` for ``max``) must not silently become a default."""
    if not isinstance(value, Mapping):
        raise invalid(path or "plan", "must be a table", value)
    allowed = tuple(keys)
    for key in value:
        if key not in allowed:
            raise invalid(join(path, str(key)), f"unknown key; expected one of {', '.join(allowed)}")
    return value


def is_number(value: object) -> bool:
    """A finite int or float; TOML booleans are not numbers here although Python says they are."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def whole_number(value: object, path: str, lowest: int, highest: int | None, what: str) -> int:
    """``value`` if it is an int (not a boolean) within ``lowest..highest``; else the error ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise invalid(path, what, value)
    if highest is not None and value > highest:
        raise invalid(path, what, value)
    return value


# --- durations -------------------------------------------------------------------------------


def parse_duration(text: str | int | float, field: str) -> float:
    """Seconds (>= 0, to the millisecond) from ``"60s"``, ``"3d"``, ``"1h30m"``, ``"1.5h"`` or a
    plain number of seconds. ``field`` names the place for the error."""
    hint = 'must be a duration like "60s", "15m", "3d" or "1h30m" (units d, h, m, s)'
    if isinstance(text, bool):
        raise invalid(field, hint, text)
    if isinstance(text, int | float):
        if not math.isfinite(text) or text < 0:
            raise invalid(field, hint + " and not negative", text)
        return round(float(text), 3)
    if not isinstance(text, str):
        raise invalid(field, hint, text)
    compact = text.strip().lower().replace(" ", "")
    if _PLAIN.fullmatch(compact):
        return round(float(compact), 3)
    match = _DURATION.fullmatch(compact)
    if not compact or match is None:
        raise invalid(field, hint, text)
    # Whole units first, the fraction last: exact for every value format_duration writes.
    total = sum(float(part) * size for part, (_, size) in zip(match.groups(), _UNITS, strict=True) if part)
    return round(total, 3)


def format_duration(seconds: float) -> str:
    """The shortest usual spelling: ``"3d"``, ``"1h30m"``, ``"2m"``; under an hour with leftover
    seconds it stays in seconds (``"90s"``), as people write intervals. Exact to the millisecond."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {seconds!r}")
    millis = round(seconds * 1000)
    whole, frac = divmod(millis, 1000)
    if whole < 3_600 and (whole % 60 or frac):
        return _seconds(whole, frac)
    parts: list[str] = []
    for unit, size in _UNITS[:-1]:
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    if whole or frac or not parts:
        parts.append(_seconds(whole, frac))
    return "".join(parts)


def _seconds(whole: int, frac: int) -> str:
    return f"{whole}.{frac:03d}".rstrip("0") + "s" if frac else f"{whole}s"


# --- TOML writing ----------------------------------------------------------------------------


def dumps(doc: Mapping[str, Any]) -> str:
    """TOML for a document of scalars, lists of scalars and arrays of tables (the plan's shape):
    keys in the document's order, scalars before the arrays of tables of each table."""
    lines: list[str] = []
    _write_table(doc, "", lines)
    return "\n".join(lines).strip("\n") + "\n"


def _write_table(doc: Mapping[str, Any], prefix: str, lines: list[str]) -> None:
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for key, value in doc.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    for key, tables in arrays:
        name = join(prefix, key)
        for sub in tables:
            lines += ["", f"[[{name}]]"]
            _write_table(sub, name, lines)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML cannot hold {value!r} here")
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are all TOML escapes; DEL is the one character TOML wants escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


# --- the default plan ------------------------------------------------------------------------

# What `voxshift rollout plan` prints; parses to plan.default_plan() (a unit test holds them equal).
DEFAULT_PLAN_TOML = """\
# The seed's rollout schedule (voice_v2 migration strategy, M3.1) with its exact numbers.
# Validate an edited copy with `voxshift rollout plan --check FILE`, run it with
# `voxshift rollout start --plan FILE`. Durations take s, m, h, d ("90s", "3d", "1h30m").

interval = "60s"          # how often the criteria are judged; also how fast a fault is acted on
max_rollbacks = 2         # the seed's success criterion "Rollback Events <= 2": then the controller halts
on_failure = "previous"   # rollback goes to the previous phase's percentages (or "zero", or "kill")

# Every criterion is pass / fail / pending from a confidence interval (see docs/rollout.md):
# a phase is promoted only when all pass, rolled back as soon as one fails.
# min_samples is the floor under which a criterion stays pending whatever the numbers say:
#   200 requests for rates and the p95: the regression detector's default; also about the smallest
#       window in which zero errors proves an error rate under 2% (Wilson upper bound 1.88%);
#   30 ratings for feedback: where the t interval of a mean becomes trustworthy, and ratings arrive
#       one per hundreds of requests, so asking for more would stall the early phases.
# The seed's regression rules (v2 no more than 1.2x legacy's latency, 1.5x its errors) are
# criteria of every phase, judged against legacy's traffic over the same window.

[[phases]]
name = "canary"           # 1% of users, speech-to-text only
stt_percentage = 1
tts_percentage = 0
features = ["stt_enabled"]
min_duration = "3d"
approval = false

[[phases.criteria]]
metric = "error_rate"
max = 0.02
min_samples = 200

[[phases.criteria]]
metric = "latency_p95_ms"
max = 2000
min_samples = 200

[[phases.criteria]]
metric = "user_feedback"   # mean rating (1..5) of the responses voice_v2 served
min = 4.0
min_samples = 30

[[phases.criteria]]
metric = "latency_ratio_vs_legacy"
max = 1.2
min_samples = 200

[[phases.criteria]]
metric = "error_ratio_vs_legacy"
max = 1.5
min_samples = 200

[[phases]]
name = "pilot"            # 10% of users, speech-to-text and text-to-speech
percentage = 10
features = ["stt_enabled", "tts_enabled"]
min_duration = "5d"
approval = false

[[phases.criteria]]
metric = "error_rate"
max = 0.01
min_samples = 200

[[phases.criteria]]
metric = "latency_p95_ms"
max = 1500
min_samples = 200

[[phases.criteria]]
metric = "user_feedback"
min = 4.2
min_samples = 30

[[phases.criteria]]
metric = "latency_ratio_vs_legacy"
max = 1.2
min_samples = 200

[[phases.criteria]]
metric = "error_ratio_vs_legacy"
max = 1.5
min_samples = 200

[[phases]]
name = "beta"             # 30% of users, with the response cache
percentage = 30
features = ["stt_enabled", "tts_enabled", "caching_enabled"]
min_duration = "7d"
approval = false

[[phases.criteria]]
metric = "error_rate"
max = 0.005
min_samples = 200

[[phases.criteria]]
metric = "latency_p95_ms"
max = 1000
min_samples = 200

[[phases.criteria]]
metric = "cache_hit_rate"  # hits / lookups of the v2 cache
min = 0.80
min_samples = 200

[[phases.criteria]]
metric = "latency_ratio_vs_legacy"
max = 1.2
min_samples = 200

[[phases.criteria]]
metric = "error_ratio_vs_legacy"
max = 1.5
min_samples = 200

# All users with every feature. The seed jumps from 30% to 100%; stepping through 50% and 75%
# keeps the same 14 days while a fault that only shows at scale reaches fewer users first.
# At 100% legacy serves nothing new, so the ratio criteria compare against legacy's traffic
# earlier in the rollout.
[[phases]]
name = "production"
features = ["stt_enabled", "tts_enabled", "caching_enabled", "langgraph_integration"]
approval = false

[[phases.steps]]
percentage = 50
min_duration = "2d"

[[phases.steps]]
percentage = 75
min_duration = "2d"

[[phases.steps]]
percentage = 100
min_duration = "10d"

[[phases.criteria]]
metric = "error_rate"
max = 0.001
min_samples = 200

[[phases.criteria]]
metric = "latency_p95_ms"
max = 800
min_samples = 200

[[phases.criteria]]
metric = "user_satisfaction"  # mean rating of every response, whichever system served it
min = 4.5
min_samples = 30

[[phases.criteria]]
metric = "latency_ratio_vs_legacy"
max = 1.2
min_samples = 200

[[phases.criteria]]
metric = "error_ratio_vs_legacy"
max = 1.5
min_samples = 200
"""
