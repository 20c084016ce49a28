"""The passes of ``normalize_ru``: each a regex over the whole text whose callback speaks one match.

Order matters: the most specific shapes go first (phones before thousands, dates before decimals,
years before grams), and a final pass reads any digits the others left, so the output of Russian
text with ASCII digits has no digits. Every pass only rewrites its own matches; text without digits
and without the listed abbreviations comes back unchanged, which makes the function idempotent.
A pass runs only when a cheap substring guard says it can match, which keeps a short sentence
in the tens of microseconds and text without digits or abbreviations at about one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from voxshift.core.text_norm_ru.abbreviations import AFTER_NUMBERS, BEFORE_NUMBERS
from voxshift.core.text_norm_ru.calendar import (
    DATE,
    DAY_MONTH,
    DAY_RANGE,
    TIME,
    YEAR,
    YEAR_RANGE,
    speak_date,
    speak_day_month,
    speak_day_range,
    speak_time,
    speak_year,
    speak_year_range,
)
from voxshift.core.text_norm_ru.quantities import (
    PHONES,
    PREFIX_MONEY,
    QUANTITY,
    speak_phone,
    speak_prefix_money,
    speak_quantity,
)
from voxshift.core.text_norm_ru.shapes import (
    DIGITS,
    DOTTED,
    ORDINAL,
    SLASHED,
    speak_dotted,
    speak_leftover,
    speak_ordinal,
    speak_slashed,
)
from voxshift.core.text_norm_ru.vocab import (
    MONTHS_GENITIVE,
    PREFIX_CURRENCIES,
)


def _any(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(needle in text for needle in needles)


# (guard, pattern, speaker): a pass runs only where its guard, a few substring tests, finds what
# its pattern needs; regex scans cost about a microsecond each, the guards a tenth of that.
PASSES: tuple[tuple[Callable[[str], bool], re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (lambda _: True, PHONES, speak_phone),
    (_any("."), DATE, speak_date),
    (_any("."), DOTTED, speak_dotted),
    (_any("/"), SLASHED, speak_slashed),
    (_any(":", "."), TIME, speak_time),
    (_any("год", "гг."), YEAR_RANGE, speak_year_range),
    (_any("год", "г."), YEAR, speak_year),
    (_any(*MONTHS_GENITIVE), DAY_RANGE, speak_day_range),
    (_any(*MONTHS_GENITIVE), DAY_MONTH, speak_day_month),
    (_any("-"), ORDINAL, speak_ordinal),
    (_any(*PREFIX_CURRENCIES), PREFIX_MONEY, speak_prefix_money),
    (lambda _: True, QUANTITY, speak_quantity),
)
_HAS_DIGIT = re.compile("[0-9]")


def normalize_ru(text: str) -> str:
    """Russian ``text`` as it should be spoken: numbers, dates, times, money, units in words."""
    has_digits = _HAS_DIGIT.search(text) is not None
    if has_digits:
        text = BEFORE_NUMBERS.expand(text)
        for guard, pattern, speak in PASSES:
            if guard(text):
                text = pattern.sub(speak, text)
        text = DIGITS.sub(speak_leftover, text)
    if "." in text or "м" in text or "пр-т" in text:  # every abbreviation has a dot, but «млн»
        text = AFTER_NUMBERS.expand(text)
    return text
