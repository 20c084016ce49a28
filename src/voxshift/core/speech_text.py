"""Text a TTS request may carry: valid Unicode, no control characters.

A lone UTF-16 surrogate (JSON allows ``"\\udcff"``) is not text: no engine can encode it, so it is
refused with the position. Control characters (NUL, ESC, C1...) are not speech: they are replaced
by spaces before any engine sees them (Piper's phonemizer raises on NUL), keeping tab and newlines.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class SpeechTextError(ValueError):
    pass


def clean_speech_text(text: str) -> str:
    """``text`` with control characters replaced by spaces; SpeechTextError for a lone surrogate."""
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise SpeechTextError(
            f"the text has an invalid character at position {bad.start()}: a lone UTF-16 surrogate "
            f"(U+{ord(bad.group()):04X}) is not text; send valid Unicode"
        )
    return _CONTROL.sub(" ", text)
