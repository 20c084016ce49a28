"""Whisper's language names, as OpenAI's ``verbose_json`` reports them, to ISO 639-1 codes.

The table is Whisper's own (``core.language.WHISPER_LANGUAGES``), since whisper-1 is Whisper: its
``language`` field is one of those lower-case English names (``"english"``, ``"russian"``), never a code.
"""

from __future__ import annotations

from voxshift.core.language import CODE_BY_NAME, WHISPER_LANGUAGES, base_code

__all__ = ["UNDETERMINED", "code_for"]

_ALIASES = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
    "pushto": "ps", "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si",
    "castilian": "es", "mandarin": "zh",
}  # fmt: skip

_BY_NAME = CODE_BY_NAME | _ALIASES

UNDETERMINED = "und"  # ISO 639-2 for "undetermined"


def code_for(language: str | None) -> str | None:
    """``"english"`` -> ``"en"``; a code passes through (OpenAI-compatible servers often send one)."""
    if not language:
        return None
    value = language.strip().lower().replace("_", "-")
    if value in _BY_NAME:
        return _BY_NAME[value]
    base = base_code(value)
    if base in WHISPER_LANGUAGES:
        return base
    return None
