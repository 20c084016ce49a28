"""The rollout's words: the two operations and the seed's four ``VOICE_V2_FEATURES`` names.

Settings, flags, metrics and the stores all spell these; they are defined here once so that adding
an operation or a feature is one edit, not a search.
"""

from __future__ import annotations

from typing import Literal, get_args

Operation = Literal["stt", "tts"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)
FeatureName = Literal["stt_enabled", "tts_enabled", "langgraph_integration", "caching_enabled"]
FEATURES: tuple[FeatureName, ...] = get_args(FeatureName)
