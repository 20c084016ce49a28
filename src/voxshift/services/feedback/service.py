"""FeedbackService: users rate answered voice requests; the rollout reads the ratings per system.

A rating names a request id from the ``X-Voxshift-Request-Id`` header; what was remembered about
that request (:mod:`.memory`) decides the system and operation it is filed under, never the caller.
One rating per request: the first one counts, a second is a 409. That is kept in the state store
beside the request's memory (``requests:{id}:rated``, set only if absent, so two replicas cannot
both accept one) and expires with it: after that the request is unknown anyway. A rating whose row
could not be written releases its mark, so the user can send it again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from voxshift.config import Settings
from voxshift.core.ids import check_id
from voxshift.core.rollout.criteria import mean_interval as criteria_mean_interval
from voxshift.core.rollout.window import FeedbackWindow, RatingStats
from voxshift.errors import Conflict, InvalidRequest, NotFound
from voxshift.services.feedback.memory import RequestMemory, ServedRequest, is_request_id, memory_key
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import Feedback
from voxshift.stores.state.base import StateStore

MAX_COMMENT_CHARS = 2000
MAX_REQUEST_ID_CHARS = 64
MAX_STATS_HOURS = 24 * 366
# What the feedback table's NOT NULL user_id holds for a request that named no user.
ANONYMOUS_USER = "anonymous"
_USER_ID_MAX = 255  # the column's bound (stores.db.models.NAME_LENGTH)
_AGENT_ID_MAX = 128  # stored agent ids (core.agent_settings.AGENT_ID_MAX)


class FeedbackStore(Protocol):
    """The feedback table (stores.db.history.FeedbackRepository)."""

    async def add(
        self,
        *,
        user_id: str,
        operation: Any,
        system: Any,
        rating: int,
        agent_id: str | None = None,
        comment: str | None = None,
        at: datetime | None = None,
    ) -> Feedback: ...

    async def rating_sums(
        self, *, since: datetime, until: datetime | None = None
    ) -> dict[tuple[str, str], RatingStats]: ...


@dataclass(frozen=True)
class StoredFeedback:
    id: int
    request_id: str
    rating: int
    comment: str | None
    system: str
    operation: str
    at: float  # unix seconds, when the rating was given

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "feedback",
            "request_id": self.request_id,
            "rating": self.rating,
            "comment": self.comment,
            "system": self.system,
            "operation": self.operation,
            "at": round(self.at, 3),
        }


@dataclass(frozen=True)
class RatingSummary:
    """One (system, operation): the mean rating and its 95 % confidence interval (Student's t; None
    below two ratings, where no interval exists)."""

    system: str
    operation: str
    count: int
    mean: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "system": self.system,
            "operation": self.operation,
            "count": self.count,
            "mean": r(self.mean),
            "ci95": None if self.low is None else [r(self.low), r(self.high)],
        }


class FeedbackService:
    def __init__(
        self,
        memory: RequestMemory,
        store: FeedbackStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.memory = memory
        self.store = store
        self.clock = clock

    async def add(self, request_id: object, rating: object, comment: object = None) -> StoredFeedback:
        """File a rating of one answered request. InvalidRequest (400) for a bad rating, comment or
        id, NotFound (404) for an id never issued or expired, Conflict (409) for a second rating,
        StoreUnavailable (503) when the state store or the database cannot be reached."""
        rid = check_id(request_id, "request_id", max_chars=MAX_REQUEST_ID_CHARS)
        stars = check_rating(rating)
        text = check_comment(comment)
        served = await self.memory.recall(rid) if is_request_id(rid) else None
        if served is None:
            raise NotFound(
                f"request_id {rid!r} is unknown or expired: rate a request within "
                f"{_duration(self.memory.ttl_s)} of its answer, by its X-Voxshift-Request-Id",
                param="request_id",
                code="request_not_found",
            )
        rated_key = memory_key(rid) + ":rated"
        if not await self.memory.store.set_if_absent(rated_key, b"1", ttl_s=self.memory.ttl_s):
            raise Conflict(
                f"request_id {rid!r} has been rated already; one rating per request",
                param="request_id",
                code="already_rated",
            )
        try:
            row = await self.store.add(
                user_id=_storable_user(served.user_id),
                agent_id=_storable_agent(served.agent_id),
                operation=served.operation,
                system=served.system,
                rating=stars,
                comment=text,
                at=datetime.fromtimestamp(self.clock(), UTC),
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the mark must not outlive a rating never stored
                await self.memory.store.delete(rated_key)
            raise
        return StoredFeedback(
            row.id, rid, row.rating, row.comment, row.system, row.operation, row.at.timestamp()
        )

    async def window(self, since: float, until: float | None = None) -> FeedbackWindow:
        """Ratings given in [since, until) (unix seconds; until None = now), per (system, operation)."""
        end = self.clock() if until is None else until
        ratings = await self.store.rating_sums(since=_utc(since), until=_utc(end))
        return FeedbackWindow(start=since, end=end, ratings=ratings)

    async def stats(self, hours: int) -> list[RatingSummary]:
        """Each (system, operation) rated in the last ``hours`` hours, sorted by system then operation."""
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_STATS_HOURS:
            raise InvalidRequest(f"hours must be an integer from 1 to {MAX_STATS_HOURS}", param="hours")
        now = self.clock()
        window = await self.window(now - hours * 3600, now)
        return [summarize(system, op, stats) for (system, op), stats in sorted(window.ratings.items())]


class _Stores(Protocol):
    """What the feedback service is opened on (services.wiring.backends.Backends)."""

    v2_state: StateStore
    database: Database


def open_feedback_source(settings: Settings, backends: _Stores) -> FeedbackService:
    """The feedback service over already opened backends (the rollout controller's ratings)."""
    from voxshift.services.wiring.control import build_feedback  # wiring imports this module

    return build_feedback(settings, backends.v2_state, backends.database)


def check_rating(value: object) -> int:
    # bool is an int to Python, and 4.0 or "4" are not what the API documents: refuse them alike.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise InvalidRequest(f"rating must be an integer from 1 to 5, got {value!r}", param="rating")
    return value


def check_comment(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("comment must be a string", param="comment")
    if len(value) > MAX_COMMENT_CHARS:
        raise InvalidRequest(
            f"comment must be at most {MAX_COMMENT_CHARS} characters, got {len(value)}", param="comment"
        )
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise InvalidRequest("comment must not contain NUL characters", param="comment")
    return value or None


def summarize(system: str, operation: str, stats: RatingStats) -> RatingSummary:
    low, high = mean_interval(stats)
    return RatingSummary(system, operation, stats.count, stats.mean, low, high)


def mean_interval(stats: RatingStats, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Student's t interval of the mean rating, clipped to the 1..5 scale (the rollout criteria's
    own); (None, None) below two ratings."""
    interval = criteria_mean_interval(stats, confidence)
    return (None, None) if interval is None else interval


def _utc(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


def _storable_user(user_id: str | None) -> str:
    # A request may name a user id the table cannot hold as is (256 characters, NUL): keep what fits.
    if not user_id:
        return ANONYMOUS_USER
    return user_id.replace("\x00", "")[:_USER_ID_MAX] or ANONYMOUS_USER


def _storable_agent(agent_id: str | None) -> str | None:
    # Longer agent ids than a stored one cannot have settings either; the rating still counts.
    return agent_id if agent_id is not None and len(agent_id) <= _AGENT_ID_MAX else None


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds)} s"


__all__ = [
    "ANONYMOUS_USER",
    "FeedbackService",
    "RatingSummary",
    "ServedRequest",
    "StoredFeedback",
    "check_comment",
    "check_rating",
    "mean_interval",
    "open_feedback_source",
    "summarize",
]
