"""An OpenFeature provider over :class:`FeatureFlags`, for code that speaks the OpenFeature API.

Flags (evaluation context: targeting key = the user id, attribute ``agent_id``):

* ``voice_v2.stt`` / ``voice_v2.tts`` (boolean): the routing decision. ``reason`` is the stable code
  of ``core.flags`` (``in_cohort``, ``kill_switch`` ...), ``variant`` is ``v2`` or ``legacy``, and the
  metadata carries ``bucket`` (when the bucket decided) and ``config_version``.
* ``voice_v2.enabled`` (boolean): the kill switch.
* ``voice_v2.features.<name>`` (boolean): ``stt_enabled``, ``tts_enabled``, ``langgraph_integration``,
  ``caching_enabled`` (or the short ``stt``, ``tts``, ``langgraph``, ``caching``).
* ``voice_v2.rollout_percentage.stt`` / ``.tts`` (integer).

Resolution reads the in-memory config, so it is as cheap as ``FeatureFlags.decide``; a config change
(from any replica) emits ``PROVIDER_CONFIGURATION_CHANGED``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import FlagNotFoundError, InvalidContextError, TypeMismatchError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from voxshift.core.flags import FEATURE_ALIASES, FEATURES, OPERATIONS, FlagConfig
from voxshift.errors import InvalidRequest

if TYPE_CHECKING:
    from voxshift.services.flags.service import FeatureFlags

PREFIX = "voice_v2."
_BOOLEAN_KEYS = (
    [f"{PREFIX}enabled"]
    + [f"{PREFIX}{op}" for op in OPERATIONS]
    + [f"{PREFIX}features.{name}" for name in (*FEATURES, *FEATURE_ALIASES)]
    + [f"{PREFIX}legacy.read_only"]  # the sunset's read_only phase, for a legacy that reads flags
)
_INTEGER_KEYS = [f"{PREFIX}rollout_percentage.{op}" for op in OPERATIONS]
FLAG_KEYS = tuple(_BOOLEAN_KEYS + _INTEGER_KEYS)


class VoxshiftFlagProvider(AbstractProvider):
    def __init__(self, flags: FeatureFlags) -> None:
        super().__init__()
        self.flags = flags
        self._unsubscribe = flags.on_change(self._changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="voxshift")

    def shutdown(self) -> None:
        self._unsubscribe()

    def _changed(self, old: FlagConfig, new: FlagConfig) -> None:
        self.emit_provider_configuration_changed(
            ProviderEventDetails(
                flags_changed=list(FLAG_KEYS),
                message=f"flag config version {new.version}",
                metadata={"config_version": new.version},
            )
        )

    # --- boolean -----------------------------------------------------------------------------------
    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        config = self.flags.config
        meta = {"config_version": config.version}
        name = _name(flag_key, _INTEGER_KEYS)
        if name == "enabled":
            return FlagResolutionDetails(config.enabled, reason=Reason.STATIC, flag_metadata=meta)
        if name == "legacy.read_only":
            return FlagResolutionDetails(config.legacy_read_only, reason=Reason.STATIC, flag_metadata=meta)
        if name.startswith("features."):
            try:
                on = config.feature(name.removeprefix("features."))
            except InvalidRequest:
                raise FlagNotFoundError(f"no flag {flag_key!r}") from None
            return FlagResolutionDetails(on, reason=Reason.STATIC, flag_metadata=meta)
        if name in OPERATIONS:
            user_id, agent_id = _context(evaluation_context)
            decision = self.flags.decide(name, user_id, agent_id)
            if decision.bucket is not None:
                meta["bucket"] = decision.bucket
            return FlagResolutionDetails(
                decision.use_v2,
                reason=decision.reason,
                variant="v2" if decision.use_v2 else "legacy",
                flag_metadata=meta,
            )
        raise FlagNotFoundError(f"no flag {flag_key!r}; known: {', '.join(FLAG_KEYS)}")

    # --- integer -----------------------------------------------------------------------------------
    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        if flag_key not in _INTEGER_KEYS:
            _not_integer_or_missing(flag_key)
        config = self.flags.config
        op = flag_key.rsplit(".", 1)[1]
        return FlagResolutionDetails(
            config.percentages[op],  # type: ignore[index]
            reason=Reason.STATIC,
            flag_metadata={"config_version": config.version},
        )

    # --- types voxshift has no flags of ------------------------------------------------------------
    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        _wrong_type(flag_key, "string")

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        _wrong_type(flag_key, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        _wrong_type(flag_key, "object")


def _name(flag_key: str, other_type: list[str]) -> str:
    if flag_key in other_type:
        raise TypeMismatchError(f"{flag_key!r} is an integer flag")
    if not flag_key.startswith(PREFIX):
        raise FlagNotFoundError(f"no flag {flag_key!r}; voxshift flags start with {PREFIX!r}")
    return flag_key.removeprefix(PREFIX)


def _not_integer_or_missing(flag_key: str) -> NoReturn:
    if flag_key in _BOOLEAN_KEYS:
        raise TypeMismatchError(f"{flag_key!r} is a boolean flag")
    raise FlagNotFoundError(f"no flag {flag_key!r}; known: {', '.join(FLAG_KEYS)}")


def _wrong_type(flag_key: str, kind: str) -> NoReturn:
    if flag_key in FLAG_KEYS:
        raise TypeMismatchError(f"{flag_key!r} is not a {kind} flag")
    raise FlagNotFoundError(f"no flag {flag_key!r}; known: {', '.join(FLAG_KEYS)}")


def _context(ctx: EvaluationContext | None) -> tuple[str | None, str | None]:
    if ctx is None:
        return None, None
    agent = ctx.attributes.get("agent_id")
    if agent is not None and not isinstance(agent, str):
        raise InvalidContextError(f"attribute agent_id must be a string, got {type(agent).__name__}")
    return ctx.targeting_key, agent
