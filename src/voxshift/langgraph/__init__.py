"""LangGraph voice tools (seed M4.1): ``voice_tools()`` for ``langgraph.prebuilt.ToolNode``.

Needs the optional extra: ``pip install voxshift[langgraph]``.
"""

from __future__ import annotations

try:
    import langchain_core.tools  # noqa: F401
    import langgraph.prebuilt  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the packages
    raise ImportError(
        "voxshift.langgraph needs LangGraph and LangChain Core: pip install voxshift[langgraph]"
    ) from exc

from voxshift.langgraph.results import SpeechArtifact
from voxshift.langgraph.tools import SYNTHESIZE, TRANSCRIBE, voice_tools
from voxshift.langgraph.voice_config import VoiceConfig

__all__ = ["SYNTHESIZE", "TRANSCRIBE", "SpeechArtifact", "VoiceConfig", "voice_tools"]
