"""What a stored rollout transition does to the world, as plain values: the flag change, the
history row, the webhook body. The controller applies them (an outbox: once each, finished by the
next leader when one dies half-way)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from voxshift.core.flags import FlagConfig
from voxshift.core.rollout.plan import Plan
from voxshift.core.rollout.state import CONTROLLER, RolloutState, Target
from voxshift.core.vocabulary import FEATURES


def apply_target(target: Target, *, keep_killed: bool) -> Callable[[FlagConfig], FlagConfig]:
    """The flag change that makes the config say what ``target`` says. ``keep_killed``: a person's
    kill switch stays off (only a person's command turns it back on)."""

    def change(config: FlagConfig) -> FlagConfig:
        enabled = target.enabled and not (keep_killed and not config.enabled)
        out = replace(config, enabled=enabled) if config.enabled != enabled else config
        out = out.with_percentage("stt", target.stt).with_percentage("tts", target.tts)
        for name in FEATURES:
            out = out.with_feature(name, name in target.features)
        return out

    return change


def phase_name(plan: Plan, index: int) -> str | None:
    return plan.phases[index].name if 0 <= index < len(plan.phases) else None


def history_row(plan: Plan, state: RolloutState) -> dict[str, Any]:
    """The ``rollout_history`` row of ``state``'s last transition, with the numbers behind it."""
    event = state.event
    return {
        "from_phase": phase_name(plan, int(event.get("from_phase", -1))),
        "to_phase": phase_name(plan, state.phase) or "none",
        "percentage": max(state.target.stt, state.target.tts),
        "actor": str(event.get("actor") or CONTROLLER),
        "reason": state.reason,
        "metrics": {
            "seq": state.seq,
            "kind": event.get("kind"),
            "from_state": event.get("from_state"),
            "to_state": state.state,
            "from_step": event.get("from_step"),
            "step": state.step,
            "percentages": {"stt": state.target.stt, "tts": state.target.tts},
            "enabled": state.target.enabled,
            "features": sorted(state.target.features),
            "rollbacks": state.rollbacks,
            "plan": state.plan_digest,
            **dict(event.get("numbers") or {}),
        },
        "at": datetime.fromtimestamp(float(event.get("at", 0.0)), UTC),
        "seq": state.seq,
    }


def webhook_event(plan: Plan, state: RolloutState) -> dict[str, Any]:
    """The JSON a webhook receives; ``text`` is what Slack shows."""
    event = state.event
    kind = str(event.get("kind"))
    before = phase_name(plan, int(event.get("from_phase", -1)))
    after = phase_name(plan, state.phase)
    where = after if before in (None, after) else f"{before} -> {after}"
    pct = f"STT {state.target.stt}% / TTS {state.target.tts}%"
    text = f"voxshift rollout {kind}: {where} ({state.state}, {pct}) by {event.get('actor')}: {state.reason}"
    return {
        "event": f"rollout.{kind}",
        "text": text,
        "seq": state.seq,
        "state": state.state,
        "from_state": event.get("from_state"),
        "phase": after,
        "from_phase": before,
        "step": state.step,
        "percentages": {"stt": state.target.stt, "tts": state.target.tts},
        "features": sorted(state.target.features),
        "enabled": state.target.enabled,
        "rollbacks": state.rollbacks,
        "actor": event.get("actor"),
        "reason": state.reason,
        "at": iso(float(event.get("at", 0.0))),
    }


def iso(ts: float) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None
