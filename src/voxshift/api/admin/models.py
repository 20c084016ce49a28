"""The admin API's request and response models, and the error answers every route declares.

Documents whose shape belongs to another part of voxshift and grows with it (the metrics dashboard,
the success report, readiness checks, sunset documents) are declared as free-form objects with
the keys callers rely on named in the description; everything the admin API itself defines is a
model here, so /openapi.json describes it field by field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voxshift.api.error_docs import error_responses

Role = Literal["viewer", "operator"]
Reason = Field(min_length=1, max_length=2000, description="Why; goes to the audit trail.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------------------
def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for an admin route: 401 and 503 always, plus ``statuses``."""
    return error_responses(401, 503, *statuses)


READ = errors(400)
CHANGE = errors(400, 403, 409)


# --- who ------------------------------------------------------------------------------------------
class WhoAmI(BaseModel):
    name: str = Field(description="The token's name (`env` for VOXSHIFT_ADMIN_TOKEN).")
    role: Role


# --- flags ----------------------------------------------------------------------------------------
class IdLists(BaseModel):
    users: list[str]
    agents: list[str]


class LegacyFlags(BaseModel):
    read_only: bool
    retired: bool


class FlagDocument(BaseModel):
    """The flag configuration, as `voxshift flags show --json` prints it."""

    format: int
    version: int
    enabled: bool
    features: dict[str, bool]
    percentages: dict[str, int]
    salt: dict[str, str]
    anonymous: Literal["legacy", "v2", "bucket"]
    allow: IdLists
    deny: IdLists
    legacy: LegacyFlags
    source: str = Field(description="environment, state store or database")


class FlagsPatch(_Strict):
    reason: str = Reason
    enabled: bool | None = None
    percentage: int | None = Field(None, ge=0, le=100, description="Both operations.")
    stt_percentage: int | None = Field(None, ge=0, le=100)
    tts_percentage: int | None = Field(None, ge=0, le=100)
    features: dict[str, bool] | None = Field(
        None, description="stt_enabled, tts_enabled, langgraph_integration, caching_enabled (or stt/tts/...)."
    )
    anonymous: Literal["legacy", "v2", "bucket"] | None = None


class ReasonBody(_Strict):
    reason: str = Reason


class ListingBody(_Strict):
    user_id: str | None = Field(None, min_length=1, max_length=256)
    agent_id: str | None = Field(None, min_length=1, max_length=128, description="Instead of user_id.")
    remove: bool = False
    reason: str = Reason


class FlagChangeResult(BaseModel):
    changed: bool
    version: int
    changes: list[str] = Field(description="What changed, one line per field.")
    warnings: list[str] = Field(description="E.g. the database was down: no audit row.")
    flags: FlagDocument


class Decision(BaseModel):
    system: str
    reason: str
    bucket: int
    percentage: int


class Explanation(BaseModel):
    user_id: str
    agent_id: str | None
    version: int
    decisions: dict[str, Decision]
    explain: list[str]


class FlagHistoryItem(BaseModel):
    id: int
    at: str
    actor: str
    reason: str | None
    old: Any
    new: Any
    changes: list[str]


class FlagHistory(BaseModel):
    items: list[FlagHistoryItem]


# --- rollout --------------------------------------------------------------------------------------
class RolloutCommandBody(_Strict):
    reason: str | None = Field(None, min_length=1, max_length=2000, description="Required unless dry_run.")
    force: bool = False
    dry_run: bool = False


class TransitionDoc(BaseModel):
    kind: str
    seq: int
    from_: str = Field(alias="from")
    to: str
    phase: int
    step: int
    target: dict[str, Any]
    reason: str
    actor: str

    model_config = ConfigDict(populate_by_name=True)


class RolloutOutcome(BaseModel):
    """As `voxshift rollout <command> --json`."""

    dry_run: bool
    changed: bool
    state: str
    transition: TransitionDoc | None


class RolloutPlanSummary(BaseModel):
    digest: str
    phases: list[str]
    interval_s: float


class RolloutStatus(BaseModel):
    """As `voxshift rollout status --json`; ``criteria`` are the current step's, each with metric,
    operation, value, threshold, bound, samples, min_samples and verdict."""

    model_config = ConfigDict(extra="allow")

    state: str
    phase: str | None
    step: int
    steps: int
    percentages: dict[str, int]
    features: list[str]
    enabled: bool
    rollbacks: int
    max_rollbacks: int
    reason: str | None = None
    criteria: list[dict[str, Any]]
    leader: dict[str, Any] | None
    flags: dict[str, Any]
    plan: RolloutPlanSummary


class RolloutHistoryItem(BaseModel):
    id: int
    at: str
    from_phase: str | None
    to_phase: str
    percentage: int
    actor: str
    reason: str | None
    metrics: Any


class RolloutHistory(BaseModel):
    items: list[RolloutHistoryItem]


# --- agents ---------------------------------------------------------------------------------------
class AgentRecord(BaseModel):
    agent_id: str
    version: int
    created_at: str
    updated_at: str
    updated_by: str | None
    settings: dict[str, Any] = Field(description="The legacy VoiceSettings document.")


class AgentDeleted(BaseModel):
    agent_id: str
    deleted: bool = Field(description="False when someone else deleted it in the meantime.")
    version: int = Field(description="The version that was deleted.")
    by: str


class SunsetResolved(BaseModel):
    legacy_key: str
    store: str = Field(description="Where the legacy item lived: `s3`, `redis` or `settings`.")
    v2_key: str
    outcome: str


class AgentList(BaseModel):
    items: list[AgentRecord]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class AgentPut(_Strict):
    settings: dict[str, Any] = Field(description="The whole VoiceSettings document (validated strictly).")
    expected_version: int | None = Field(
        None, ge=0, description="Write only if the stored version is this (0: create only)."
    )


# --- sunset ---------------------------------------------------------------------------------------
class SunsetRunBody(_Strict):
    dry_run: bool = False
    confirm: bool = Field(False, description="Must be true for a real run (the CLI's --yes).")
    reason: str | None = Field(None, min_length=1, max_length=2000, description="Required unless dry_run.")


# --- audit and the dashboard ------------------------------------------------------------------------
class AuditItem(BaseModel):
    at: str
    kind: Literal["flags", "rollout", "sunset"]
    actor: str
    reason: str | None
    summary: str


class AuditList(BaseModel):
    items: list[AuditItem]


class FeedbackStats(BaseModel):
    hours: int
    ratings: list[dict[str, Any]] = Field(
        description="Per system and operation: count, mean and ci95 ([low, high], null below 2 ratings)."
    )


class Dashboard(BaseModel):
    whoami: WhoAmI
    rollout: RolloutStatus
    plan: dict[str, Any] = Field(description="The plan in force: phases with their steps and criteria.")
    flags: FlagDocument
    metrics: dict[str, Any] = Field(description="As GET /admin/v1/metrics.")
    feedback: FeedbackStats
    audit: list[AuditItem]


FreeForm = dict[str, Any]
