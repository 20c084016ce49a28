"""The audio formats voxshift speaks and their Content-Types: plain data, no PyAV.

Stores and the migration router need these tables without paying for PyAV (~140 ms to import),
so they live apart from the encoder that uses them.
"""

from __future__ import annotations

# What synthesis can return, named and meant as in OpenAI's /v1/audio/speech ``response_format``.
# Every TTS provider offers all of them: providers return PCM and voxshift encodes the container.
OUTPUT_FORMATS: tuple[str, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")

CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
PCM_SAMPLE_RATE = 24_000  # ``pcm`` is headerless 16-bit little-endian mono at this rate

# Upload containers that are not output formats; an upload is stored as it arrived.
UPLOAD_CONTENT_TYPES: dict[str, str] = {
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "m4a": "audio/mp4",
}
