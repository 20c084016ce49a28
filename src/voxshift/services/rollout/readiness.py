"""The seed's "Migration Readiness Checklist" (pre / during / post) as checks with evidence.

:func:`readiness` runs one stage's checks against the configured stores and returns every check with
its status (``pass``, ``fail``, ``warn``, ``skip``) and the numbers or ids it saw. A store that is
down fails the checks that need it, with the error as evidence; it never aborts the stage, because
"which of these is not ready" is the answer an operator needs. Nothing is written except the object
storage bucket, which ``voxshift serve`` creates at start-up too (the same ``ensure_bucket``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from voxshift.config import Settings
from voxshift.core.flags import FlagConfig
from voxshift.core.masking import mask_url
from voxshift.core.rollout import success
from voxshift.core.rollout.machine import ACTIVE
from voxshift.core.rollout.plan import Plan
from voxshift.core.rollout.success import Check, CheckStatus
from voxshift.core.vocabulary import OPERATIONS
from voxshift.errors import InvalidRequest, VoxshiftError
from voxshift.services.flags.store import DB_KEY
from voxshift.services.metrics.dashboard import MigrationDashboard, rollout_source
from voxshift.services.rollout.controller import EVALUATION_KEY, RolloutController
from voxshift.services.rollout.report import RolloutView, history_kinds
from voxshift.services.wiring.backends import Backends, open_backends
from voxshift.services.wiring.control import build_feedback, build_flags
from voxshift.services.wiring.database import schema_revision
from voxshift.services.wiring.rollout import build_controller, configured_plan
from voxshift.stores.db.engine import is_sqlite
from voxshift.stores.db.history import MAX_LIMIT, FlagAuditRepository, RolloutHistoryRepository

Stage = Literal["pre", "during", "post"]
STAGES: tuple[Stage, ...] = get_args(Stage)
DEFAULT_DRILL_DAYS = 30
LEGACY_INFO_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Readiness:
    stage: Stage
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return success.stage_ok(self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


def check_stage(stage: object) -> Stage:
    for known in STAGES:
        if stage == known:
            return known
    raise InvalidRequest(f"stage must be one of {', '.join(STAGES)}, got {stage!r}", param="stage")


def check_days(days: object) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise InvalidRequest(
            f"drill days must be a whole number from 1 to 3650, got {days!r}", param="drill_days"
        )
    return days


async def readiness(
    settings: Settings,
    stage: str,
    *,
    drill_days: int = DEFAULT_DRILL_DAYS,
    hours: int = 24,
    clock: Callable[[], float] = time.time,
) -> Readiness:
    """Run one stage's checks (bad arguments: InvalidRequest, before anything is opened)."""
    which = check_stage(stage)
    check_days(drill_days)
    try:
        backends = await open_backends(settings, check=False)
    except VoxshiftError as exc:  # a malformed URL or an unopenable embedded file: every store check fails
        return Readiness(which, (Check("stores opened", "fail", exc.message),))
    try:
        run = Context(settings, backends, clock(), drill_days, hours)
        checks = await {"pre": run.pre, "during": run.during, "post": run.post}[which]()
    finally:
        await backends.aclose()
    return Readiness(which, tuple(checks))


Probe = Callable[[], Awaitable[tuple[CheckStatus, str]]]


class Context:
    """One stage's run: the opened backends and, built when first needed, the read-only view and
    the controller; ``_check`` turns a probe's exception into a failed check with its message."""

    __slots__ = ("_controller", "_view", "backends", "drill_days", "hours", "now", "settings")

    def __init__(
        self, settings: Settings, backends: Backends, now: float, drill_days: int, hours: int
    ) -> None:
        self.settings = settings
        self.backends = backends
        self.now = now
        self.drill_days = drill_days
        self.hours = hours
        self._view: RolloutView | None = None
        self._controller: RolloutController | None = None

    async def check(self, name: str, probe: Probe) -> Check:
        try:
            status, evidence = await probe()
        except VoxshiftError as exc:
            return Check(name, "fail", exc.message)
        except (OSError, ValueError) as exc:  # a store that dropped mid-read; a corrupt document
            return Check(name, "fail", f"{type(exc).__name__}: {exc}")
        return Check(name, status, evidence)

    async def _all(self, probes: Sequence[tuple[str, Probe]]) -> list[Check]:
        return [await self.check(name, probe) for name, probe in probes]

    async def view(self) -> RolloutView:
        """The read-only view (report.RolloutView) over the opened backends: flags loaded read-only."""
        if self._view is None:
            b = self.backends
            flags = build_flags(self.settings, b.v2_state, b.database)
            await flags.load(read_only=True)
            from voxshift.services.metrics.recorder import MigrationMetrics

            self._view = RolloutView(
                settings=self.settings,
                state=b.state,
                v2_state=b.v2_state,
                database=b.database,
                flags=flags,
                metrics=MigrationMetrics.from_settings(
                    b.state, self.settings, rollout_source=rollout_source(flags)
                ),
                feedback=build_feedback(self.settings, b.v2_state, b.database),
                history=RolloutHistoryRepository(b.database),
            )
        return self._view

    async def controller(self) -> RolloutController:
        if self._controller is None:
            view = await self.view()
            self._controller = build_controller(
                self.settings, self.backends, view.flags, view.metrics, feedback=view.feedback
            )
        return self._controller

    async def plan(self) -> Plan:
        controller = await self.controller()
        state, _ = await controller.read()
        return await controller.plan_for(state)

    # --- pre ----------------------------------------------------------------------------------------
    async def pre(self) -> list[Check]:
        return await self._all(
            [
                ("state store reachable", self.state_store),
                ("settings database at the latest schema", self.database),
                ("object storage reachable", self.object_storage),
                ("flags stored", self.flags_stored),
                ("v2 engines configured", self.engines),
                ("legacy backend reachable", self.legacy),
                ("rollout plan valid", self.plan_valid),
                (f"rollback drill within {self.drill_days} days", self.drill),
                ("webhooks configured", self.webhooks),
                ("metrics flowing", self.metrics_flowing),
                ("backups verified", sunset_skip("backup verification")),
            ]
        )

    async def state_store(self) -> tuple[CheckStatus, str]:
        await self.backends.state.ping()
        return "pass", f"ping answered: {mask_url(self.settings.resolved_state_url)}"

    async def database(self) -> tuple[CheckStatus, str]:
        url = self.settings.resolved_database_url
        rev = await schema_revision(url)
        where = mask_url(url) + (" (embedded SQLite: upgraded when opened)" if is_sqlite(url) else "")
        if not rev.at_head:
            hint = "a newer voxshift wrote it" if rev.unknown else "run `voxshift db upgrade`"
            return "fail", f"revision {rev.current or 'none'}, latest {rev.head}: {hint}; {where}"
        return "pass", f"revision {rev.current} (latest): {where}"

    async def object_storage(self) -> tuple[CheckStatus, str]:
        await self.backends.objects.ensure_bucket()
        await self.backends.objects.ping()
        bucket = self.settings.voice_v2_minio_bucket
        return "pass", f"bucket {bucket} ready: {mask_url(self.settings.resolved_storage_url)}"

    async def flags_stored(self) -> tuple[CheckStatus, str]:
        view = await self.view()
        c = view.flags.config
        if c.version < 1:
            return (
                "fail",
                "no flag config stored (servers would start from VOICE_V2_*): "
                "store one with `voxshift flags set`",
            )
        pct = f"STT {c.percentages['stt']}% / TTS {c.percentages['tts']}%"
        state = "enabled" if c.enabled else "disabled (kill switch)"
        return "pass", f"version {c.version} in the {view.flags.source}: {state}, {pct}"

    async def engines(self) -> tuple[CheckStatus, str]:
        stt = list(self.settings.stt_providers)
        tts = {lang: names for lang, names in self.settings.tts_providers.items() if names}
        evidence = f"stt: {', '.join(stt) or 'none'}; tts: " + (
            "; ".join(f"{lang}: {', '.join(names)}" for lang, names in sorted(tts.items())) or "none"
        )
        return ("pass" if stt and tts else "fail"), evidence

    async def legacy(self) -> tuple[CheckStatus, str]:
        from voxshift.services.wiring.runtime import build_legacy

        kind = self.settings.legacy_backend
        if kind == "none":
            return "fail", "VOXSHIFT_LEGACY_BACKEND=none: nothing to fall back or roll back to"
        parts = build_legacy(self.settings, self.backends)
        try:
            if parts.objects is not None:  # the reference's own bucket, created as serve creates it
                await parts.objects.ensure_bucket()
            async with asyncio.timeout(LEGACY_INFO_TIMEOUT_S):
                info = await parts.backend.info()
        except TimeoutError:
            return (
                "fail",
                f"{parts.backend.name}: no answer to its health check in {LEGACY_INFO_TIMEOUT_S:.0f}s",
            )
        finally:
            with contextlib.suppress(Exception):
                await parts.backend.aclose()
            if parts.objects is not None:
                with contextlib.suppress(Exception):
                    await parts.objects.aclose()
        if info.get("available"):
            return "pass", f"{info.get('name', parts.backend.name)} available"
        return "fail", f"{info.get('name', parts.backend.name)} unavailable: {info.get('reason')}"

    async def plan_valid(self) -> tuple[CheckStatus, str]:
        plan = configured_plan(self.settings)  # ConfigError names the file and the field
        source = str(self.settings.rollout_plan) if self.settings.rollout_plan else "built-in (the seed's)"
        phases = ", ".join(p.name for p in plan.phases)
        return "pass", (
            f"{source}: {len(plan.phases)} phases ({phases}), interval {plan.interval_s:g}s, "
            f"max_rollbacks {plan.max_rollbacks}, on_failure {plan.on_failure}"
        )

    async def drill(self) -> tuple[CheckStatus, str]:
        """A rollback the rollout recorded, or a flag change towards legacy (kill, lower), recently."""
        view = await self.view()
        since = self.now - self.drill_days * 86400
        for event in reversed(await view.history_events()):
            if event.at.timestamp() >= since and history_kinds([event]) in (["rollback"], ["halt"]):
                kind = history_kinds([event])[0]
                return "pass", f"rollout {kind} (history #{event.id}) at {_iso(event.at)} by {event.actor}"
        audit = FlagAuditRepository(self.backends.database)
        changes = await audit.list_recent(
            limit=MAX_LIMIT, key=DB_KEY, since=datetime.fromtimestamp(since, UTC)
        )
        for change in changes:  # newest first
            what = success.is_drill(_config(change.old_value), _config(change.new_value) or FlagConfig())
            if what is not None:
                return (
                    "pass",
                    f"flag change #{change.id} ({what}) at {_iso(change.changed_at)} by {change.actor}",
                )
        return "fail", (
            f"no rollback, kill or lowered percentage in the last {self.drill_days} days "
            f"({len(changes)} flag changes looked at): practise one, e.g. `voxshift flags kill`"
        )

    async def webhooks(self) -> tuple[CheckStatus, str]:
        urls = self.settings.rollout_webhooks
        if not urls:
            return "warn", "VOXSHIFT_ROLLOUT_WEBHOOKS is empty: transitions reach nobody but the history"
        return "pass", f"{len(urls)} configured: {', '.join(mask_url(u) for u in urls)}"

    async def metrics_flowing(self) -> tuple[CheckStatus, str]:
        view = await self.view()
        window = await view.metrics.traffic(self.now - 3600, self.now)
        by_op = ", ".join(
            f"{op} v2 {window[op].v2.requests} legacy {window[op].legacy.requests}" for op in OPERATIONS
        )
        if not window.requests:
            return "fail", "0 requests recorded in the last hour: is a server running and flushing?"
        return "pass", f"{window.requests} requests in the last hour ({by_op})"

    # --- during -------------------------------------------------------------------------------------
    async def during(self) -> list[Check]:
        return await self._all(
            [
                ("controller running", self.controller_running),
                ("criteria evaluated recently", self.evaluated),
                ("no failing criterion", self.no_failure),
                ("feedback collected (24 h)", self.feedback),
                ("rollbacks within max_rollbacks", self.rollbacks),
                ("dashboard answering", self.dashboard),
            ]
        )

    async def status(self) -> dict[str, Any]:
        return await (await self.controller()).status()

    async def controller_running(self) -> tuple[CheckStatus, str]:
        s = await self.status()
        leader = s["leader"]
        who = f"leader {leader['holder']} (token {leader['token']})" if leader else "no lease holder"
        where = f"rollout {s['state']}" + (f" in {s['phase']} step {s['step'] + 1}" if s["phase"] else "")
        ok = leader is not None and s["state"] in ACTIVE
        return ("pass" if ok else "fail"), f"{who}; {where}"

    async def evaluated(self) -> tuple[CheckStatus, str]:
        raw = await self.backends.v2_state.get(EVALUATION_KEY)
        plan = await self.plan()
        doc = json.loads(raw) if raw else None
        at = float(doc["at"]) if isinstance(doc, dict) and "at" in doc else None
        if at is None or not isinstance(doc, dict):
            return "fail", "no evaluation stored by a leader"
        age = self.now - at
        limit = 2 * plan.interval_s
        status: CheckStatus = "pass" if success.fresh(at, self.now, plan.interval_s) else "fail"
        return (
            status,
            f"last evaluation {age:.0f}s ago (seq {doc.get('seq')}; limit {limit:g}s = 2 intervals)",
        )

    async def no_failure(self) -> tuple[CheckStatus, str]:
        s = await self.status()
        criteria = s["criteria"]
        if s["state"] not in ACTIVE or not criteria:
            return "fail", f"rollout {s['state']}: no criteria being judged"
        failing = [c for c in criteria if c.get("verdict") == "fail" and not c.get("dry_run")]
        shown = "; ".join(_criterion(c) for c in criteria)
        return ("fail" if failing else "pass"), f"{len(failing)} failing of {len(criteria)}: {shown}"

    async def feedback(self) -> tuple[CheckStatus, str]:
        view = await self.view()
        window = await view.feedback.window(self.now - 86400, self.now)
        total = window.of().count
        parts = ", ".join(f"{sys_} {op} {r.count}" for (sys_, op), r in sorted(window.ratings.items()))
        return ("pass" if total else "fail"), f"{total} ratings in the last 24 h" + (
            f" ({parts})" if parts else ""
        )

    async def rollbacks(self) -> tuple[CheckStatus, str]:
        s = await self.status()
        ok = s["rollbacks"] <= s["max_rollbacks"] and s["state"] != "halted"
        return (
            "pass" if ok else "fail"
        ), f"{s['rollbacks']} rollbacks of at most {s['max_rollbacks']}; {s['state']}"

    async def dashboard(self) -> tuple[CheckStatus, str]:
        view = await self.view()
        data = await MigrationDashboard(view.metrics).data(hours=1)
        requests = sum(
            sum(c.get("requests", {}).values()) for c in data.get("system_comparison", {}).values()
        )
        return "pass", (
            f"built for the last hour: {requests} requests, rollout {data.get('rollout_percentages')}"
        )

    async def post(self) -> list[Check]:
        from voxshift.services.rollout.readiness_post import post_checks

        return await self._all(post_checks(self))


def sunset_skip(what: str) -> Probe:
    async def probe() -> tuple[CheckStatus, str]:
        return "skip", f"{what}: not available until {success.SUNSET_ISSUE} lands"

    return probe


def _config(value: object) -> FlagConfig | None:
    if value is None:
        return None
    try:
        return FlagConfig.from_json(value) if isinstance(value, dict | str | bytes) else None
    except InvalidRequest:  # a row written by another version: not evidence either way
        return None


def _criterion(c: dict[str, Any]) -> str:
    name = c["metric"] + (f"[{c['operation']}]" if c.get("operation") else "")
    value = c.get("value")
    shown = "-" if value is None else f"{value:.4g}"
    return f"{name} {shown} ({c.get('samples')} samples) {c.get('verdict')}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
