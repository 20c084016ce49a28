"""Russian text made speakable before a local engine reads it: numbers, dates, times, money, units.

RHVoice reads plain digits well but «в 15:30» came back from Whisper as "15-30-30"; espeak-ng reads
them worse. ``normalize_ru`` (core, pure) rewrites them as words; other languages pass unchanged.
"""

from __future__ import annotations

import logging

from voxshift.core.language import base_code
from voxshift.core.text_norm_ru import normalize_ru

log = logging.getLogger("voxshift.engines.rhvoice")


def speakable(text: str, language: str) -> str:
    if base_code(language) != "ru":
        return text
    try:
        return normalize_ru(text) or text
    except Exception:  # a normalizer bug must not silence the voice: the engines read digits themselves
        log.warning("normalize_ru failed; speaking the text as written", exc_info=True)
        return text
