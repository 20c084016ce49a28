"""`voxshift report` and `voxshift readiness` as an operator runs them, on a tmp data dir (embedded
SQLite state store and settings database) holding what servers, the controller and users left:
metrics flushed by MigrationMetrics, rollout history rows, ratings, the rollout state document."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.redis_server import free_port
from tests.integration.cli_helpers import run
from voxshift.config import load_settings
from voxshift.core.rollout.machine import RolloutState, StateName
from voxshift.core.stats import LatencyHistogram
from voxshift.services.metrics.recorder import MigrationMetrics
from voxshift.services.rollout.controller import LEASE_NAME, STATE_KEY
from voxshift.services.rollout.fenced import FencedDocument
from voxshift.services.wiring.rollout import open_rollout
from voxshift.stores.db.engine import Database
from voxshift.stores.db.history import FeedbackRepository, RolloutHistoryRepository
from voxshift.stores.state import NamespacedStore, open_state_store

ALL_FEATURES = ("stt=true", "tts=true", "langgraph=true", "caching=true")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    out["VOXSHIFT_DATA_DIR"] = str(tmp_path / "data")
    out["VOXSHIFT_ROLLOUT_LEASE_S"] = "600"  # the lease a test's controller took outlives the test
    return out


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc.stdout


def report(env: dict[str, str], *args: str) -> dict[str, Any]:
    doc = json.loads(ok(run(env, "report", "--format", "json", *args)))
    return {row["metric"]: row for row in doc["technical"] + doc["business"]} | {"_doc": doc}


def readiness(env: dict[str, str], stage: str, *args: str) -> tuple[int, dict[str, Any]]:
    proc = run(env, "readiness", stage, "--json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    return proc.returncode, {c["name"]: c for c in doc["checks"]} | {"_doc": doc}


def state_url(env: dict[str, str]) -> str:
    return f"sqlite:///{env['VOXSHIFT_DATA_DIR']}/state.db"


def db_url(env: dict[str, str]) -> str:
    return f"sqlite+aiosqlite:///{env['VOXSHIFT_DATA_DIR']}/voxshift.db"


def record(env: dict[str, str], ops: list[tuple[str, str, int, int, float]], fallbacks: int = 0) -> int:
    """(operation, system, requests, errors, latency ms) as a server flushes them."""

    async def go() -> int:
        store = open_state_store(state_url(env))
        try:
            metrics = MigrationMetrics(store)
            for op, system, n, errors, ms in ops:
                for i in range(n):
                    metrics.record_operation(op, system, ms, i >= errors, error_type="TimeoutError")
            for _ in range(fallbacks):
                metrics.record_fallback("stt", "voice_v2", "legacy", "timeout")
            return await metrics.flush()
        finally:
            await store.aclose()

    return asyncio.run(go())


def rate(env: dict[str, str], ratings: list[tuple[str, int]]) -> None:
    async def go() -> None:
        db = await Database.open(db_url(env))
        try:
            repo = FeedbackRepository(db)
            for i, (system, stars) in enumerate(ratings):
                await repo.add(user_id=f"user-{i}", operation="stt", system=system, rating=stars)  # type: ignore[arg-type]
        finally:
            await db.aclose()

    asyncio.run(go())


def history(env: dict[str, str], kinds: list[str]) -> None:
    async def go() -> None:
        db = await Database.open(db_url(env))
        try:
            repo = RolloutHistoryRepository(db)
            for seq, kind in enumerate(kinds, 1):
                await repo.append(
                    to_phase="canary",
                    percentage=1,
                    actor="rollout-controller",
                    metrics={"kind": kind, "seq": seq},
                )
        finally:
            await db.aclose()

    asyncio.run(go())


def set_rollout_state(env: dict[str, str], state: StateName) -> None:
    async def go() -> None:
        raw = open_state_store(state_url(env))
        try:
            doc = FencedDocument(NamespacedStore(raw, "voice_v2"), STATE_KEY, fence_name=LEASE_NAME)
            token = await doc.next_token()
            assert await doc.write(
                RolloutState(state=state, seq=5, applied=5).dumps(), token=token, expected=await doc.read()
            )
        finally:
            await raw.aclose()

    asyncio.run(go())


def full_flags(env: dict[str, str]) -> None:
    features = [a for f in ALL_FEATURES for a in ("--feature", f)]
    ok(run(env, "flags", "set", "--enabled", "--percentage", "100", *features, "--reason", "all on v2"))


def p95_regression(v2_ms: float, legacy_ms: float) -> float:
    v2, legacy = LatencyHistogram(), LatencyHistogram()
    v2.add(v2_ms)
    legacy.add(legacy_ms)
    return (v2.percentile(0.95) / legacy.percentile(0.95) - 1) * 100  # type: ignore[operator]


# --- report --------------------------------------------------------------------------------------


def test_report_on_an_empty_system_measures_nothing_and_says_why(env: dict[str, str]) -> None:
    rows = report(env)
    doc = rows["_doc"]
    assert doc["window_hours"] == 24 and doc["generated_at"].endswith("Z")
    assert [r["metric"] for r in doc["technical"]] == [
        "Migration Completion",
        "Data Loss",
        "Performance Regression",
        "Error Rate Increase",
        "Rollback Events",
    ]
    assert [r["metric"] for r in doc["business"]] == [
        "User Satisfaction", "Feature Adoption", "Support Tickets", "Revenue Impact",
    ]  # fmt: skip
    assert doc["summary"] == {"pass": 0, "fail": 1, "not_measurable": 8}
    completion = rows["Migration Completion"]
    assert (completion["value"], completion["verdict"]) == (0.0, "fail")
    assert "the rollout is pending, not completed" in str(completion["why"])
    assert rows["Performance Regression"]["why"] == "no voice traffic in the window"
    assert rows["User Satisfaction"]["why"] == "0 ratings of voice_v2 responses in the window; need 30"
    assert "sunset" in str(rows["Data Loss"]["why"])
    assert "revenue" in str(rows["Revenue Impact"]["why"])
    assert rows["Rollback Events"]["verdict"] == "not_measurable"
    # Reading wrote nothing: the flags are still not stored.
    assert json.loads(ok(run(env, "flags", "show", "--json")))["version"] == 0


def test_report_after_a_migration_gives_exact_values(env: dict[str, str]) -> None:
    full_flags(env)
    set_rollout_state(env, "completed")
    assert (
        record(env, [("stt", "voice_v2", 300, 3, 500.0), ("stt", "legacy", 300, 0, 400.0)], fallbacks=3)
        == 603
    )
    rate(env, [("voice_v2", 5)] * 20 + [("voice_v2", 4)] * 10 + [("legacy", 1)] * 5)
    history(env, ["start", "promote", "rollback", "resume", "halt", "resume", "complete"])
    rows = report(env, "--hours", "2")
    assert rows["_doc"]["window_hours"] == 2
    completion = rows["Migration Completion"]
    assert (completion["value"], completion["verdict"]) == (100.0, "pass")
    latency = rows["Performance Regression"]
    assert latency["value"] == pytest.approx(p95_regression(500.0, 400.0), abs=1e-4)
    assert (latency["verdict"], latency["samples"]) == ("fail", 597)  # 297 timed v2 successes + 300 legacy
    errors = rows["Error Rate Increase"]
    assert errors["value"] == pytest.approx(1.0) and errors["verdict"] == "pass" and errors["samples"] == 600
    rollbacks = rows["Rollback Events"]
    assert (rollbacks["value"], rollbacks["samples"], rollbacks["verdict"]) == (2.0, 7, "pass")
    satisfaction = rows["User Satisfaction"]
    assert satisfaction["value"] == pytest.approx(round(140 / 30, 4))
    assert (satisfaction["samples"], satisfaction["verdict"]) == (30, "pass")  # legacy's ratings left out
    adoption = rows["Feature Adoption"]
    assert adoption["value"] == pytest.approx(round(297 / 597 * 100, 4))
    assert (adoption["samples"], adoption["verdict"]) == (597, "fail")
    assert rows["_doc"]["summary"] == {"pass": 4, "fail": 2, "not_measurable": 3}


def test_report_table_and_markdown_show_both_tables(env: dict[str, str]) -> None:
    history(env, ["start", "rollback"])
    text = ok(run(env, "report"))
    assert text.index("Technical Success Metrics") < text.index("Business Success Metrics")
    assert "Rollback Events" in text and "1 events" in text and "not measurable" in text
    md = ok(run(env, "report", "--format", "markdown"))
    assert "### Technical Success Metrics" in md and "### Business Success Metrics" in md
    assert "| Metric | Target | Value | Samples | Verdict | Why |" in md
    assert "| Rollback Events | <=2 | 1 events | 2 | pass |" in md
    assert md.count("|---|---|---|---|---|---|") == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--format", "xml"), "--format must be one of table, json, markdown"),
        (("--hours", "0"), "--hours must be a whole number from 1 to 360"),
        (("--hours", "abc"), "--hours must be a whole number"),
    ],
)
def test_report_bad_input_is_one_line_and_exit_2(
    env: dict[str, str], args: tuple[str, ...], needle: str
) -> None:
    proc = run(env, "report", *args)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr


def test_report_and_readiness_with_the_state_store_down(env: dict[str, str]) -> None:
    env["VOXSHIFT_STATE_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    proc = run(env, "report")
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    code, checks = readiness(env, "pre")
    assert code == 1 and checks["state store reachable"]["status"] == "fail"
    assert checks["settings database at the latest schema"]["status"] == "pass"


# --- readiness -----------------------------------------------------------------------------------


def test_readiness_pre_fails_until_flags_are_stored_and_a_drill_was_done(env: dict[str, str]) -> None:
    code, checks = readiness(env, "pre")
    assert code == 1
    assert checks["flags stored"]["status"] == "fail"
    assert checks["rollback drill within 30 days"]["status"] == "fail"
    assert "0 flag changes looked at" in str(checks["rollback drill within 30 days"]["evidence"])
    assert checks["metrics flowing"]["status"] == "fail"
    assert checks["backups verified"]["status"] == "skip"
    assert checks["webhooks configured"]["status"] == "warn"
    for name in (
        "state store reachable",
        "object storage reachable",
        "rollout plan valid",
        "v2 engines configured",
    ):
        assert checks[name]["status"] == "pass", checks[name]

    ok(
        run(
            env, "flags", "set", "--enabled", "--percentage", "5", "--feature", "stt=true", "--reason", "prep"
        )
    )
    ok(run(env, "flags", "kill", "--reason", "rollback drill"))
    assert record(env, [("stt", "legacy", 12, 0, 300.0)]) == 12
    env["VOXSHIFT_ROLLOUT_WEBHOOKS"] = "https://hooks.example.com/voxshift"
    proc = run(env, "readiness", "pre")
    assert proc.returncode == 0, proc.stdout
    assert "✗" not in proc.stdout and "- backups verified" in proc.stdout
    assert (
        "✓ flags stored: version 2 in the state store: disabled (kill switch), STT 5% / TTS 5%" in proc.stdout
    )
    assert (
        "(kill switch) at " in proc.stdout
        and "✓ metrics flowing: 12 requests in the last hour" in proc.stdout
    )
    assert proc.stdout.rstrip().endswith("pre-migration: ready, 11 checks")
    code, checks = readiness(env, "pre", "--drill-days", "1")
    assert code == 0 and checks["_doc"]["ok"] is True and checks["_doc"]["stage"] == "pre"
    assert set(checks["flags stored"]) == {"name", "status", "evidence"}


def test_readiness_during_follows_the_controller(env: dict[str, str]) -> None:
    code, checks = readiness(env, "during")
    assert code == 1
    assert checks["controller running"]["evidence"] == "no lease holder; rollout pending"
    assert checks["criteria evaluated recently"]["evidence"] == "no evaluation stored by a leader"
    assert checks["dashboard answering"]["status"] == "pass"

    async def start_and_lead() -> None:
        settings = load_settings(None, data_dir=Path(env["VOXSHIFT_DATA_DIR"]), rollout_lease_s=600.0)
        async with open_rollout(settings, notify=False) as controller:
            await controller.command("start", actor="test", reason="go")
            await controller.run_once()  # takes the lease and stores its evaluation

    asyncio.run(start_and_lead())
    rate(env, [("voice_v2", 5)])
    code, checks = readiness(env, "during")
    assert code == 0, checks
    assert "rollout running in canary step 1" in str(checks["controller running"]["evidence"])
    assert "0 failing of 5" in str(checks["no failing criterion"]["evidence"])
    assert checks["feedback collected (24 h)"]["evidence"] == "1 ratings in the last 24 h (voice_v2 stt 1)"
    assert checks["rollbacks within max_rollbacks"]["evidence"] == "0 rollbacks of at most 2; running"


def test_readiness_post_passes_only_when_v2_carries_everything(env: dict[str, str]) -> None:
    code, checks = readiness(env, "post")
    assert code == 1 and checks["rollout completed"]["evidence"] == "rollout pending (seq 0)"
    assert checks["data migrated, legacy sunset"]["status"] == "skip"

    full_flags(env)
    set_rollout_state(env, "completed")
    record(env, [("stt", "voice_v2", 250, 0, 300.0), ("tts", "voice_v2", 250, 0, 300.0)])
    rate(env, [("voice_v2", 5)] * 30)
    code, checks = readiness(env, "post")
    assert code == 0, checks
    assert checks["legacy serves fallbacks only (1 h)"]["evidence"] == (
        "legacy handled 0 requests in the last hour, 0 of them fallbacks"
    )
    assert "error_rate[stt] 0 <= 0.001: ok" in str(
        checks["production error and latency targets met"]["evidence"]
    )

    record(env, [("stt", "legacy", 5, 0, 300.0)], fallbacks=2)  # 3 requests reached legacy on their own
    code, checks = readiness(env, "post")
    assert code == 1
    assert checks["legacy serves fallbacks only (1 h)"]["evidence"] == (
        "legacy handled 5 requests in the last hour, 2 of them fallbacks"
    )


def test_readiness_bad_stage_and_days(env: dict[str, str]) -> None:
    proc = run(env, "readiness", "later")
    assert proc.returncode == 2 and "stage must be one of pre, during, post" in proc.stderr
    proc = run(env, "readiness", "pre", "--drill-days", "-1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
