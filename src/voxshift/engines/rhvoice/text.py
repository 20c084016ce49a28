"""Russian text made speakable before a local engine reads it: numbers, dates, units as words.

The normalizer (``voxshift.core.text_norm_ru.normalize_ru``) is written separately; it is looked up
at run time so this engine works, reading digits itself, on a checkout without it.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable

from voxshift.core.language import base_code

log = logging.getLogger("voxshift.engines.rhvoice")


@functools.cache
def _normalizer() -> Callable[[str], str] | None:
    try:
        module = importlib.import_module("voxshift.core.text_norm_ru")
    except ImportError:
        return None
    found = getattr(module, "normalize_ru", None)
    return found if callable(found) else None


def speakable(text: str, language: str) -> str:
    if base_code(language) != "ru":
        return text
    normalize = _normalizer()
    if normalize is None:
        return text
    try:
        return normalize(text) or text
    except Exception:  # a normalizer bug must not silence the voice: RHVoice reads digits itself
        log.warning("normalize_ru failed; speaking the text as written", exc_info=True)
        return text
