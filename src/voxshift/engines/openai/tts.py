"""OpenAI text-to-speech over the documented REST API.

Wire format (OpenAI API reference, "Audio: create speech"): ``POST {base}/audio/speech`` with
``Authorization: Bearer <key>`` and JSON ``{model, input, voice, response_format, speed}``; the
response body is the audio itself. We ask for ``response_format="pcm"``: raw 24 kHz signed 16-bit
little-endian mono without a header, which is exactly :class:`~voxshift.engines.base.Speech`, so
nothing is decoded here and the service encodes whatever format the caller wanted.

Request mapping:

* ``voice``: an OpenAI voice passes through. Another provider's voice (the chain may have fallen
  through from Yandex with the caller's ``alena``) becomes the OpenAI voice of the same gender:
  alena -> nova, jane -> shimmer, omazh -> coral, other female voices -> nova; filipp -> onyx,
  ermil -> echo, zahar -> fable, madirus -> ash, other male voices -> onyx; ``female``/``male``
  work too. Anything else, and ``None``, uses ``openai_tts_voice``.
* ``speed``: clamped to OpenAI's 0.25..4.0.
* ``language``: not sent; OpenAI reads the language from the text.
* ``input`` is limited to 4096 characters; longer text is refused before the network.
"""

from __future__ import annotations

from voxshift.audio.formats import OUTPUT_FORMATS
from voxshift.core.voices import OPENAI_VOICES
from voxshift.engines.base import EngineInfo, Speech, TTSRequest
from voxshift.engines.cloud import error_text
from voxshift.engines.openai.common import OpenAIProvider, error_message
from voxshift.errors import ProviderError

SAMPLE_RATE = 24_000  # what response_format=pcm is documented to be
MAX_INPUT_CHARS = 4096

VOICES = OPENAI_VOICES

_FOREIGN_VOICES = {
    "female": "nova", "alena": "nova", "jane": "shimmer", "omazh": "coral", "dasha": "nova",
    "julia": "nova", "lera": "nova", "masha": "nova", "marina": "nova", "lea": "nova",
    "naomi": "nova", "nigora": "nova", "saule": "nova", "zhanar": "nova",
    "male": "onyx", "filipp": "onyx", "ermil": "echo", "zahar": "fable", "madirus": "ash",
    "alexander": "onyx", "kirill": "onyx", "anton": "onyx", "john": "onyx", "madi": "onyx",
}  # fmt: skip


class OpenAITTS(OpenAIProvider):
    """``OpenAITTS(settings, client=None)``: speech with ``openai_tts_model``, 24 kHz PCM."""

    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            kind="tts",
            availability=self._availability(),
            languages=("*",),
            voices=VOICES,
            formats=OUTPUT_FORMATS,
            details={
                "model": self.settings.openai_tts_model,
                "base_url": self.base_url,
                "default_voice": self.settings.openai_tts_voice,
                "sample_rate": str(SAMPLE_RATE),
            },
        )

    def voice_for(self, requested: str | None) -> str:
        if requested:
            name = requested.strip().lower()
            if name in VOICES:
                return name
            if name in _FOREIGN_VOICES:
                return _FOREIGN_VOICES[name]
        return self.settings.openai_tts_voice

    async def synthesize(self, request: TTSRequest) -> Speech:
        headers = self._auth_headers()
        if len(request.text) > MAX_INPUT_CHARS:
            raise self._cannot_serve(
                f"the text has {len(request.text)} characters; OpenAI takes at most {MAX_INPUT_CHARS}"
            )
        payload = {
            "model": self.settings.openai_tts_model,
            "input": request.text,
            "voice": self.voice_for(request.voice),
            "response_format": "pcm",
            "speed": min(4.0, max(0.25, request.speed)),
        }
        response = await self._post(
            self.base_url + "/audio/speech", headers=headers, json=payload, vendor_message=error_message
        )
        content_type = response.headers.get("content-type", "")
        if content_type.startswith(("application/json", "text/")):
            # A 200 carrying an error document (some OpenAI-compatible proxies do this).
            detail = error_text(response, error_message)
            raise ProviderError(self.name, f"expected PCM audio, got {content_type}: {detail}")
        pcm = response.content
        if not pcm or len(pcm) % 2:
            raise ProviderError(self.name, f"malformed PCM in the response ({len(pcm)} bytes)")
        return Speech(pcm=pcm, sample_rate=SAMPLE_RATE)
