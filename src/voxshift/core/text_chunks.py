"""Split long text into pieces a neural TTS model can take one at a time.

Piper's model works on a whole sentence at once and its memory grows faster than linearly with the
sentence (measured: 4096 characters without a full stop took 2.5 GB, kept by ONNX Runtime's arena
afterwards; 250-character pieces peak about 190 MB). Pieces end at the strongest boundary that
keeps them under the limit: a sentence end, then a clause mark, then a space; a run of characters
with no boundary at all is cut hard.
"""

from __future__ import annotations

import re

# Strongest first. Each pattern matches the boundary *after* which a piece may end.
_BOUNDARIES = (
    re.compile(r"[.!?…。！？]+[\"'»”)\]]*\s+"),
    re.compile(r"[,;:—–]\s+|\s+[-–—]\s+|\n"),
    re.compile(r"\s+"),
)


def split_for_synthesis(text: str, max_chars: int) -> list[str]:
    """Non-empty pieces of ``text``, each at most ``max_chars`` long, in order; joined with the
    whitespace between them they give ``text`` back (stripped)."""
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if len(rest) <= max_chars:
            pieces.append(rest)
            break
        cut = _cut_point(rest, max_chars)
        piece, rest = rest[:cut].strip(), rest[cut:].lstrip()
        if piece:
            pieces.append(piece)
    return pieces


def _cut_point(text: str, max_chars: int) -> int:
    # Look a little past the limit: the whitespace after a boundary is dropped from the piece.
    window = text[: max_chars + 8]
    for pattern in _BOUNDARIES:
        cuts = [
            m.end()
            for m in pattern.finditer(window)
            if m.start() > 0 and len(text[: m.end()].rstrip()) <= max_chars
        ]
        if cuts:
            return cuts[-1]
    return max_chars
