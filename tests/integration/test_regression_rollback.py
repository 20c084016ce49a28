"""The regression detector on stored metrics, and the audited rollback it can trigger."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxshift.config import Settings
from voxshift.services.flags.service import FeatureFlags
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.migration.regression import RegressionService, check
from voxshift.services.wiring.backends import Backends, open_backends
from voxshift.stores.db.repositories import FlagAuditRepository

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = 1_790_000_000.0


@pytest.fixture
async def backends(tmp_path: Path) -> AsyncIterator[Backends]:
    settings = Settings(
        data_dir=tmp_path,
        voice_v2_enabled=True,
        voice_v2_rollout_percentage=25,
        voice_v2_features={"stt_enabled": True, "tts_enabled": True},
    )
    opened = await open_backends(settings, check=True)
    yield opened
    await opened.aclose()


def record(
    metrics: MigrationMetrics, system: str, n: int, median_ms: float, error_rate: float, seed: int
) -> None:
    rng = random.Random(seed)
    for _ in range(n):
        ok = rng.random() >= error_rate
        metrics.record_operation("stt", system, rng.lognormvariate(0, 0.3) * median_ms, ok, provider="p")


async def test_a_slow_v2_is_a_regression_and_is_rolled_back_with_an_audit_row(backends: Backends) -> None:
    metrics = MigrationMetrics(backends.state, clock=lambda: NOW)
    record(metrics, "voice_v2", 600, 1500.0, 0.01, seed=1)  # 1.5x slower than legacy
    record(metrics, "legacy", 3000, 1000.0, 0.01, seed=2)
    await metrics.flush()
    flags = FeatureFlags.from_backends(backends)
    await flags.start(watch=False)
    try:
        assert flags.config.percentages["stt"] == 25
        report = await check(metrics, metrics.detector, hours=2, flags=flags, now=NOW, operations=("stt",))
        verdict = report.verdicts["stt"]
        assert verdict.regression, verdict
        ratio = verdict.numbers["latency_ratio"]
        assert ratio is not None and 1.3 < float(ratio) < 1.7
        assert report.rolled_back == ["stt"] and report.action == "percentage_0"
        assert flags.config.percentages["stt"] == 0
        assert flags.config.percentages["tts"] == 25  # only the operation that regressed
        audit = await FlagAuditRepository(backends.database).list_recent(limit=5)
        assert audit[0].actor == "regression-detector"
        assert audit[0].reason is not None and "performance regression" in audit[0].reason
    finally:
        await flags.stop()


async def test_a_healthy_v2_and_a_tiny_sample_are_left_alone(backends: Backends) -> None:
    metrics = MigrationMetrics(backends.state, clock=lambda: NOW)
    record(metrics, "voice_v2", 600, 1000.0, 0.01, seed=4)
    record(metrics, "legacy", 3000, 1000.0, 0.01, seed=5)
    metrics.record_operation("tts", "voice_v2", 9000.0, True)  # three slow requests at 1 % traffic
    metrics.record_operation("tts", "voice_v2", 9000.0, True)
    metrics.record_operation("tts", "voice_v2", 9000.0, True)
    for i in range(300):
        metrics.record_operation("tts", "legacy", 200.0 + i % 50, True)
    await metrics.flush()
    flags = FeatureFlags.from_backends(backends)
    await flags.start(watch=False)
    try:
        report = await check(metrics, metrics.detector, hours=2, flags=flags, now=NOW)
        assert report.verdicts["stt"].status == "healthy"
        assert report.verdicts["tts"].status == "insufficient_data"
        assert report.rolled_back == [] and flags.config.percentages == flags.initial.percentages
    finally:
        await flags.stop()


async def test_kill_action_throws_the_kill_switch(backends: Backends) -> None:
    metrics = MigrationMetrics(backends.state, clock=lambda: NOW)
    rng = random.Random(7)
    for _ in range(1000):
        metrics.record_operation("tts", "voice_v2", 300.0, rng.random() >= 0.10)  # 10 % errors
    for _ in range(3000):
        metrics.record_operation("tts", "legacy", 300.0, rng.random() >= 0.02)  # 2 %
    await metrics.flush()
    flags = FeatureFlags.from_backends(backends)
    await flags.start(watch=False)
    try:
        report = await check(metrics, metrics.detector, hours=2, flags=flags, action="kill", now=NOW)
        assert report.verdicts["tts"].regression and report.rolled_back == ["tts"]
        assert flags.config.enabled is False
        assert not flags.decide("tts", "any-user").use_v2
    finally:
        await flags.stop()


async def test_a_dry_run_names_what_it_would_roll_back_and_changes_nothing(backends: Backends) -> None:
    """What `voxshift regression --rollback [--dry-run]` calls."""
    metrics = MigrationMetrics(backends.state, clock=lambda: NOW)
    record(metrics, "voice_v2", 600, 1500.0, 0.01, seed=1)
    record(metrics, "legacy", 3000, 1000.0, 0.01, seed=2)
    await metrics.flush()
    flags = FeatureFlags.from_backends(backends)
    await flags.start(watch=False)
    try:
        service = RegressionService(metrics, flags)
        dry = await service.check(hours=2, rollback=True, dry_run=True)
        assert dry.would_roll_back == ["stt"] and dry.rolled_back == []
        assert dry.to_dict()["would_roll_back"] == ["stt"]
        assert flags.config.percentages["stt"] == 25
        assert "would_roll_back" not in (await service.check(hours=2)).to_dict()
        done = await service.check(hours=2, rollback=True, actor="cli")
        assert done.rolled_back == ["stt"] and flags.config.percentages["stt"] == 0
    finally:
        await flags.stop()
