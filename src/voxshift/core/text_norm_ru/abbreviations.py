"""Abbreviations read in full: «т.е.» → «то есть», «ул.» → «улица», «д. 5» → «дом пять»."""

from __future__ import annotations

import re

from voxshift.core.text_norm_ru.context import (
    kept_dot,
)


# (pattern, spoken, whether its dot may also end the sentence). Those before a number
# («д. 5», «№ 5») run before the number passes, which would otherwise eat the digits they need.
# Each table is one regex of named alternatives, so the text is scanned once per table.
class _Abbreviations:
    def __init__(self, rows: tuple[tuple[str, str, bool], ...]) -> None:
        self._spoken = {f"a{i}": (spoken, may_end) for i, (_, spoken, may_end) in enumerate(rows)}
        # One shared word-start check and a first-letter lookahead let most positions fail at once.
        first_letters = "".join(sorted({row[0][0] for row in rows}))
        alternatives = "|".join(f"(?P<a{i}>{row[0]})" for i, row in enumerate(rows))
        self._pattern = re.compile(f"(?<!\\w)(?=[{first_letters}])(?:{alternatives})")

    def expand(self, text: str) -> str:
        return self._pattern.sub(self._speak, text)

    def _speak(self, m: re.Match[str]) -> str:
        spoken, may_end = self._spoken[m.lastgroup or ""]
        return spoken + kept_dot(m) if may_end else spoken


def _abbreviations(rows: tuple[tuple[str, str, bool], ...]) -> _Abbreviations:
    return _Abbreviations(rows)


BEFORE_NUMBERS = _abbreviations(
    (
        (r"д\.(?=\s?\d)", "дом", False),
        (r"кв\.(?=\s?\d)", "квартира", False),
        (r"стр\.(?=\s?\d)", "страница", False),
        (r"рис\.(?=\s?\d)", "рисунок", False),
        (r"№\s?", "номер ", False),
    )
)
AFTER_NUMBERS = _abbreviations(
    (
        (r"т\.\s?е\.", "то есть", False),
        (r"т\.\s?к\.", "так как", False),
        (r"т\.\s?н\.", "так называемый", False),
        (r"т\.\s?д\.", "так далее", True),
        (r"т\.\s?п\.", "тому подобное", True),
        (r"и\s+др\.", "и другие", True),
        (r"и\s+пр\.", "и прочее", True),
        (r"напр\.", "например", False),
        (r"ул\.", "улица", False),
        (r"пр-т(?!\w)|просп\.", "проспект", False),
        (r"г\.(?=\s?[А-ЯЁ])", "город", False),
        (r"см\.(?=\s)", "смотри", False),
        (r"тыс\.", "тысяч", True),
        (r"млн(?!\w)\.?", "миллионов", True),
        (r"млрд(?!\w)\.?", "миллиардов", True),
        (r"руб\.", "рублей", True),
        (r"коп\.", "копеек", True),
    )
)
