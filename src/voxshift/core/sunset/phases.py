"""The legacy sunset's phases (seed M5.1) and the guards in front of each: a phase runs only when
everything that makes it safe is true, and a refusal names every reason at once.

``read_only → data_migration → infrastructure_cleanup``. Guards (issue 12 §2):

* every phase: the one before it completed;
* ``data_migration``: a verified backup newer than the legacy's last write (else the backup may miss
  data written after it);
* ``infrastructure_cleanup``: the rollout ``completed`` at 100 % for both operations (or, without a
  rollout controller run, the stored flags at 100 % with v2 enabled for ``hold_s``), the last
  validation clean, and a person's confirmation.

Pure: the caller gathers the facts (clock included) and asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Phase = Literal["read_only", "data_migration", "infrastructure_cleanup"]
PHASES: tuple[Phase, ...] = get_args(Phase)
PhaseStatus = Literal["not_started", "running", "completed", "failed"]


@dataclass(frozen=True)
class Facts:
    """What the guards look at, measured by the caller just before the phase would run."""

    now: float
    status: dict[str, PhaseStatus]  # per phase
    backup_verified_at: float | None = None  # newest verified backup (unix time)
    last_legacy_write_at: float | None = None  # newest legacy write seen (key or object)
    rollout_state: str | None = None  # the controller's state, None when never started
    percentages: tuple[int, int] = (0, 0)  # stored flags (stt, tts)
    enabled: bool = False  # v2 enabled: the kill switch not pulled
    full_since: float | None = None  # flags at 100/100 with v2 enabled since (unix time)
    hold_s: float = 7 * 86400  # how long the flags must have held 100 % without a rollout run
    validation_clean: bool | None = None  # the last `voxshift sunset validate`; None = never run
    confirmed: bool = False


def previous(phase: Phase) -> Phase | None:
    i = PHASES.index(phase)
    return PHASES[i - 1] if i else None


def refusals(phase: Phase, facts: Facts) -> list[str]:
    """Why ``phase`` may not run now; empty when it may."""
    out: list[str] = []
    before = previous(phase)
    if before is not None and facts.status.get(before) != "completed":
        out.append(f"phase {before} has not completed (it is {facts.status.get(before, 'not_started')})")
    if facts.status.get(phase) == "completed":
        out.append(f"phase {phase} already completed")
    if phase == "data_migration":
        out.extend(_backup(facts))
    if phase == "infrastructure_cleanup":
        out.extend(_rollout(facts))
        if facts.validation_clean is None:
            out.append("no validation has run: run `voxshift sunset validate` first")
        elif not facts.validation_clean:
            out.append("the last validation found missing or changed items")
        if not facts.confirmed:
            out.append("deleting the legacy's data needs a person's confirmation (--yes for scripts)")
    return out


def _backup(facts: Facts) -> list[str]:
    if facts.backup_verified_at is None:
        return ["no verified backup: run `voxshift backup create` and `voxshift backup verify ID`"]
    last = facts.last_legacy_write_at
    if last is not None and last >= facts.backup_verified_at:
        return ["the legacy wrote after the newest verified backup: back up again (after read_only)"]
    return []


def _rollout(facts: Facts) -> list[str]:
    stt, tts = facts.percentages
    full = facts.enabled and stt == 100 and tts == 100
    if facts.rollout_state == "completed":
        return [] if full else [f"the rollout completed but the flags now send STT {stt}% / TTS {tts}%"]
    if facts.rollout_state not in (None, "pending", "aborted"):
        return [f"the rollout is {facts.rollout_state}, not completed"]
    # No controller run: the stored flags must have held 100 % for the configured time.
    if not full:
        return [
            f"the flags send STT {stt}% / TTS {tts}% to voice_v2"
            + ("" if facts.enabled else " and the kill switch has v2 disabled")
        ]
    held = facts.now - facts.full_since if facts.full_since is not None else 0.0
    if held < facts.hold_s:
        return [
            f"the flags have held 100% for {held / 3600:.1f} h of the {facts.hold_s / 3600:.1f} h required"
        ]
    return []
