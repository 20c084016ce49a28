"""Russian text normalization for speech: what a TTS engine should read instead of digits.

RHVoice and espeak-ng read «25 000 ₽», «в 15:30» or «3 кг» badly (or letter by letter);
``normalize_ru`` rewrites them as words («двадцать пять тысяч рублей», «в пятнадцать тридцать»,
«три килограмма»). Pure and deterministic; see docs/text-normalization.md for the rules and gaps.
"""

from __future__ import annotations

from voxshift.core.text_norm_ru.numerals import cardinal, decimal, ordinal
from voxshift.core.text_norm_ru.rules import normalize_ru

__all__ = ["cardinal", "decimal", "normalize_ru", "ordinal"]
