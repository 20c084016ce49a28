"""The rollout controller, wired from the settings: for `serve` (every replica runs the loop, the
lease holder acts) and for the CLI (one command, then closed)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from voxshift.config import Settings
from voxshift.core.rollout.plan import Plan, default_plan, plan_from_toml
from voxshift.errors import ConfigError, InvalidRequest
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.rollout.controller import RolloutController
from voxshift.services.rollout.evaluate import BreakerSource, FeedbackSource
from voxshift.services.rollout.webhooks import WebhookNotifier
from voxshift.services.wiring.backends import Backends, open_backends
from voxshift.services.wiring.control import build_flags
from voxshift.stores.db.history import RolloutHistoryRepository

log = logging.getLogger("voxshift.rollout")
MAX_PLAN_BYTES = 256 * 1024


def read_plan(path: Path) -> Plan:
    """A plan file, validated; every problem is one InvalidRequest line naming the file."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise InvalidRequest(f"{path}: cannot read the plan: {exc.strerror or exc}", param="plan") from None
    if len(raw) > MAX_PLAN_BYTES:
        raise InvalidRequest(f"{path}: a plan is at most {MAX_PLAN_BYTES // 1024} KiB", param="plan")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"{path}: the plan is not UTF-8 text", param="plan") from None
    try:
        return plan_from_toml(text)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{path}: {exc.message}", param=exc.param) from None


def configured_plan(settings: Settings) -> Plan:
    """VOXSHIFT_ROLLOUT_PLAN, or the seed's schedule."""
    if settings.rollout_plan is None:
        return default_plan()
    try:
        return read_plan(settings.rollout_plan)
    except InvalidRequest as exc:
        raise ConfigError(f"VOXSHIFT_ROLLOUT_PLAN: {exc.message}") from None


def build_controller(
    settings: Settings,
    backends: Backends,
    flags: FeatureFlags,
    metrics: MigrationMetrics,
    *,
    feedback: FeedbackSource | None = None,
    breakers: BreakerSource | None = None,
    notifier: WebhookNotifier | None = None,
) -> RolloutController:
    if backends.v2_state is None:
        raise ConfigError("the rollout controller needs a state store")
    return RolloutController(
        backends.v2_state,
        flags,
        default_plan=configured_plan(settings),
        traffic=metrics,
        feedback=feedback,
        history=RolloutHistoryRepository(backends.database) if backends.database is not None else None,
        notifier=notifier,
        breakers=breakers,
        lease_s=settings.rollout_lease_s,
    )


def build_notifier(settings: Settings) -> WebhookNotifier | None:
    return WebhookNotifier(settings.rollout_webhooks) if settings.rollout_webhooks else None


def chain_breakers(providers: Mapping[str, list[str]], states: Mapping[str, str]) -> dict[str, bool]:
    """{operation: every v2 provider of it has an open breaker}; a provider never called has no
    breaker yet and counts as closed."""
    return {
        op: bool(names) and all(states.get(name) == "open" for name in names)
        for op, names in providers.items()
    }


@asynccontextmanager
async def open_rollout(settings: Settings, *, notify: bool = True) -> AsyncIterator[RolloutController]:
    """A controller for one CLI command: every store checked first (a transition must not
    half-happen on a store that is down), flags loaded, webhooks delivered before it closes."""
    from voxshift.services.feedback.service import open_feedback_source

    backends = await open_backends(settings, check=True)
    notifier = build_notifier(settings) if notify else None
    try:
        flags = build_flags(settings, backends.v2_state, backends.database)
        await flags.start(watch=False)
        metrics = MigrationMetrics(
            backends.state,
            resolution_s=settings.metrics_resolution_s,
            fine_retention_s=settings.metrics_fine_retention_s,
        )
        feedback = open_feedback_source(settings, backends)
        if notifier is not None:
            await notifier.start()
        try:
            yield build_controller(settings, backends, flags, metrics, feedback=feedback, notifier=notifier)
        finally:
            await flags.stop()
    finally:
        if notifier is not None:
            await notifier.aclose()
        await backends.aclose()


async def rollout_history(settings: Settings, limit: int) -> list[dict[str, object]]:
    """The rollout history table, newest first (the settings database only)."""
    from dataclasses import asdict

    from voxshift.stores.db.engine import Database

    db = await Database.open(settings.resolved_database_url)
    try:
        return [asdict(e) for e in await RolloutHistoryRepository(db).list(limit=limit)]
    finally:
        await db.aclose()
