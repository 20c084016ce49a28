"""The success report (issue 11 §5): the seed's "Technical" and "Business Success Metrics" from real
data - the live flags, the rollout state and history, the migration metrics and the feedback table.

:func:`success_report` opens the stores read-only (:func:`open_rollout_view`: nothing is written,
not even the first flag config), measures, and returns a JSON-able document; the verdicts are
``core.rollout.success``'s. The CLI (`voxshift report`) only formats it, and an admin API can
return it as is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from voxshift.config import Settings
from voxshift.core.rollout import success
from voxshift.core.rollout.machine import RolloutState
from voxshift.core.rollout.window import SYSTEM_V2, TrafficWindow
from voxshift.errors import InvalidRequest, StoreUnavailable
from voxshift.services.feedback.service import FeedbackService, mean_interval
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.rollout.controller import LEASE_NAME, STATE_KEY, state_of
from voxshift.services.rollout.fenced import FencedDocument
from voxshift.services.wiring.control import build_feedback, build_flags
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import MAX_LIMIT, RolloutEvent, RolloutHistoryRepository
from voxshift.stores.state import NamespacedStore, open_state_store
from voxshift.stores.state.base import StateStore

# The coarse rollups keep 15 days (a production phase is 14): a longer window would read nothing.
MAX_REPORT_HOURS = 15 * 24
DEFAULT_REPORT_HOURS = 24


@dataclass
class RolloutView:
    """Read-only access to everything the migration left behind."""

    settings: Settings
    state: StateStore  # raw: the metrics' keys are not namespaced
    v2_state: StateStore
    database: Database
    flags: FeatureFlags  # loaded read-only: the stored config, else the environment's (version 0)
    metrics: MigrationMetrics
    feedback: FeedbackService
    history: RolloutHistoryRepository

    async def rollout_state(self) -> RolloutState:
        state, _ = state_of(await FencedDocument(self.v2_state, STATE_KEY, fence_name=LEASE_NAME).read())
        return state

    async def history_events(self) -> list[RolloutEvent]:
        """The whole rollout history, oldest first (bounded by the repository's largest page)."""
        return await self.history.list(limit=MAX_LIMIT, newest_first=False)


@asynccontextmanager
async def open_rollout_view(settings: Settings) -> AsyncIterator[RolloutView]:
    """The state store (pinged) and the settings database, opened for reading. An unreachable store
    is StoreUnavailable (exit 1); a malformed URL stays a ConfigError (exit 2)."""
    state = open_state_store(settings.resolved_state_url)
    try:
        await state.ping()
        database = await Database.open(settings.resolved_database_url)
        try:
            v2_state = NamespacedStore(state, settings.voice_v2_redis_namespace)
            flags = build_flags(settings, v2_state, database)
            await flags.load(read_only=True)
            yield RolloutView(
                settings=settings,
                state=state,
                v2_state=v2_state,
                database=database,
                flags=flags,
                metrics=MigrationMetrics.from_settings(state, settings),
                feedback=build_feedback(settings, v2_state, database),
                history=RolloutHistoryRepository(database),
            )
        finally:
            await database.aclose()
    finally:
        with contextlib.suppress(Exception):
            await state.aclose()


def check_hours(hours: object) -> int:
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_REPORT_HOURS:
        raise InvalidRequest(
            f"hours must be a whole number from 1 to {MAX_REPORT_HOURS} (the metrics' 15-day retention), "
            f"got {hours!r}",
            param="hours",
        )
    return hours


def history_kinds(events: list[RolloutEvent]) -> list[str]:
    """The transition kind of each history row (rows the controller did not write have none)."""
    out: list[str] = []
    for event in events:
        metrics = event.metrics
        if isinstance(metrics, dict) and isinstance(metrics.get("kind"), str):
            out.append(metrics["kind"])
    return out


async def measure_report(
    view: RolloutView, hours: int, *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """The report over the last ``hours`` hours (now included), on an opened view."""
    check_hours(hours)
    now = clock()
    since = now - hours * 3600
    traffic: TrafficWindow = await view.metrics.traffic(since, now)
    ratings = (await view.feedback.window(since, now)).of(system=SYSTEM_V2)
    state = await view.rollout_state()
    kinds = history_kinds(await view.history_events())
    windows = dict(traffic.operations)
    technical = [
        success.completion(view.flags.config, state.state),
        success.data_loss(),
        success.latency_regression(windows),
        success.error_rate_increase(windows),
        success.rollback_events(kinds),
    ]
    business = [
        success.user_satisfaction(ratings, mean_interval(ratings)),
        success.feature_adoption(windows),
        success.support_tickets(),
        success.revenue_impact(),
    ]
    return {
        "generated_at": _iso(now),
        "window_hours": hours,
        "window": {"start": _iso(traffic.start), "end": _iso(traffic.end)},
        "rollout": {
            "state": state.state,
            "rollbacks": state.rollbacks,
            "flags_version": view.flags.config.version,
        },
        "technical": [r.to_dict() for r in technical],
        "business": [r.to_dict() for r in business],
        "summary": success.summarize([*technical, *business]),
    }


async def success_report(settings: Settings, hours: int = DEFAULT_REPORT_HOURS) -> dict[str, Any]:
    """``voxshift report --format json``: opens the stores, measures, closes them."""
    check_hours(hours)
    async with open_rollout_view(settings) as view:
        try:
            return await measure_report(view, hours)
        except StoreUnavailable:
            raise
        except OSError as exc:  # a store that dropped between the ping and the reads
            raise StoreUnavailable(f"a store became unreachable while reading: {exc}") from None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
