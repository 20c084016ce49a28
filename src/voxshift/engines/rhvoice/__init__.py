"""RHVoice: the offline Russian voice (binding, voice table, provider)."""

from voxshift.engines.rhvoice.provider import RHVoiceTTS

__all__ = ["RHVoiceTTS"]
