"""OpenAI's speech endpoints (and any server that speaks their wire format) as voxshift providers.

The package shares its name with the ``openai`` SDK; that is harmless because every import in
voxshift is absolute (``import openai`` still finds the SDK, this is ``voxshift.engines.openai``).
"""

from voxshift.engines.openai.stt import OpenAISTT
from voxshift.engines.openai.tts import OpenAITTS

__all__ = ["OpenAISTT", "OpenAITTS"]
