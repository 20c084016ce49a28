"""Voice names every TTS path accepts: OpenAI's voices and the seed's ``voice_style`` values.

Each provider maps an OpenAI voice to one of its own, so these names work whichever engine answers.
"""

from __future__ import annotations

OPENAI_VOICES: tuple[str, ...] = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip
# The seed's voice_style values as OpenAI voices; "natural" is None: the provider's own default.
VOICE_STYLES: dict[str, str | None] = {"natural": None, "male": "onyx", "female": "nova", "neutral": "alloy"}
