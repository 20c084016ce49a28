"""The migration dashboard (seed M3.2): what `voxshift metrics` prints and GET /v2/migration/dashboard
returns, computed the same way for both.

The traffic comes from the hour keys every process flushes into, so it is the whole fleet's; the
rollout shown is the *effective* one (:func:`effective_rollout`), which the runtime also reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from voxshift.core.flags import FlagConfig


class FlagSource(Protocol):
    @property
    def config(self) -> FlagConfig: ...


class DashboardSource(Protocol):
    async def get_migration_dashboard_data(
        self, hours: int = 24, now: float | None = None
    ) -> dict[str, Any]: ...


def effective_rollout(config: FlagConfig) -> float:
    """The STT rollout percentage, 0 while the kill switch is thrown: a percentage behind a thrown
    kill switch sends nobody to v2, and a dashboard saying otherwise would mislead an operator."""
    return float(config.percentages["stt"]) if config.enabled else 0.0


def rollout_source(flags: FlagSource) -> Callable[[], float]:
    """MigrationMetrics' ``rollout_source``: read at each dashboard call, so it follows the flags."""
    return lambda: effective_rollout(flags.config)


class MigrationDashboard:
    def __init__(self, metrics: DashboardSource) -> None:
        self.metrics = metrics

    async def data(self, hours: int = 24) -> dict[str, Any]:
        return await self.metrics.get_migration_dashboard_data(hours=hours)
