"""``voice_config``, the synthesis tool's voice settings as a model may give them (seed M4.1)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_FORMAT = "mp3"
DEFAULT_STYLE = "natural"


class VoiceConfig(BaseModel):
    # The seed's agents also pass keys such as message_type: ignored rather than failing the call.
    model_config = ConfigDict(extra="ignore")

    language: Annotated[
        str | None,
        Field(
            description="ISO 639-1 code of the text, e.g. 'en' or 'ru'; guessed from the text when omitted"
        ),
    ] = None
    style: Annotated[
        str | None,
        Field(
            description="voice style: natural, male, female, neutral, or an OpenAI voice name such as alloy"
        ),
    ] = None
    voice: Annotated[str | None, Field(description="a specific voice name; overrides style")] = None
    format: Annotated[
        str | None, Field(description="audio format: mp3 (default), opus, aac, flac, wav or pcm")
    ] = None

    @property
    def voice_style(self) -> str:
        return self.style or DEFAULT_STYLE

    @property
    def audio_format(self) -> str:
        return self.format or DEFAULT_FORMAT
