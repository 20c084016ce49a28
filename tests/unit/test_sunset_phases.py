"""The sunset's guards: each phase only after the one before, a verified backup newer than the
last legacy write, and a cleanup only after a completed rollout, a clean validation and a yes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from voxshift.core.sunset.phases import PHASES, Facts, previous, refusals

DAY = 86400.0
NOW = 1_900_000_000.0
DONE = {"read_only": "completed", "data_migration": "completed"}
READY = Facts(
    now=NOW,
    status=dict(DONE),  # type: ignore[arg-type]
    backup_verified_at=NOW - 100,
    last_legacy_write_at=NOW - 200,
    rollout_state="completed",
    percentages=(100, 100),
    enabled=True,
    validation_clean=True,
    confirmed=True,
)


def test_order() -> None:
    assert PHASES == ("read_only", "data_migration", "infrastructure_cleanup")
    assert previous("read_only") is None and previous("infrastructure_cleanup") == "data_migration"


def test_read_only_needs_nothing_first() -> None:
    assert refusals("read_only", Facts(now=NOW, status={})) == []
    assert refusals("read_only", Facts(now=NOW, status={"read_only": "completed"})) == [
        "phase read_only already completed"
    ]


def test_data_migration_needs_read_only_and_a_fresh_verified_backup() -> None:
    facts = Facts(now=NOW, status={})
    assert refusals("data_migration", facts) == [
        "phase read_only has not completed (it is not_started)",
        "no verified backup: run `voxshift backup create` and `voxshift backup verify ID`",
    ]
    ok = replace(
        facts, status={"read_only": "completed"}, backup_verified_at=NOW - 10, last_legacy_write_at=NOW - 20
    )
    assert refusals("data_migration", ok) == []
    stale = replace(ok, last_legacy_write_at=NOW - 5)
    assert refusals("data_migration", stale) == [
        "the legacy wrote after the newest verified backup: back up again (after read_only)"
    ]


def test_cleanup_passes_only_with_everything() -> None:
    assert refusals("infrastructure_cleanup", READY) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"status": {"read_only": "completed"}},
            "phase data_migration has not completed (it is not_started)",
        ),
        ({"rollout_state": "running"}, "the rollout is running, not completed"),
        ({"percentages": (100, 30)}, "the rollout completed but the flags now send STT 100% / TTS 30%"),
        ({"validation_clean": None}, "no validation has run: run `voxshift sunset validate` first"),
        ({"validation_clean": False}, "the last validation found missing or changed items"),
        (
            {"confirmed": False},
            "deleting the legacy's data needs a person's confirmation (--yes for scripts)",
        ),
    ],
)
def test_cleanup_refusals_name_the_reason(change: dict[str, object], reason: str) -> None:
    assert refusals("infrastructure_cleanup", replace(READY, **change)) == [reason]  # type: ignore[arg-type]


def test_without_a_rollout_run_the_flags_must_hold_100_percent() -> None:
    facts = replace(READY, rollout_state=None, full_since=NOW - 2 * DAY, hold_s=7 * DAY)
    assert refusals("infrastructure_cleanup", facts) == [
        "the flags have held 100% for 48.0 h of the 168.0 h required"
    ]
    assert refusals("infrastructure_cleanup", replace(facts, full_since=NOW - 8 * DAY)) == []
    killed = replace(facts, enabled=False, full_since=NOW - 8 * DAY)
    assert refusals("infrastructure_cleanup", killed) == [
        "the flags send STT 100% / TTS 100% to voice_v2 and the kill switch has v2 disabled"
    ]
