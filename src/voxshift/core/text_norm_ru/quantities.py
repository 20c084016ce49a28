"""Numbers with what they count: units, currencies, multipliers, percent; and phone numbers."""

from __future__ import annotations

import re

from voxshift.core.text_norm_ru.context import (
    INT,
    SP,
    WORD_AFTER,
    alternation,
    case_before,
    gender_of_next_word,
    kept_dot,
    to_int,
)
from voxshift.core.text_norm_ru.numerals import (
    Case,
    agree,
    cardinal,
    dative,
    decimal,
    digit_group,
    digits_one_by_one,
)
from voxshift.core.text_norm_ru.vocab import (
    MULTIPLIERS,
    PREFIX_CURRENCIES,
    UNITS,
    Unit,
)

_UNIT_RE = alternation(list(UNITS))
_MULT_RE = alternation(list(MULTIPLIERS))
# «с» is a unit only where no word follows («за 5 с.»), else it is the preposition («5 с лишним»).
QUANTITY = re.compile(
    rf"(?=[-−+0-9])(?P<sign>(?<![\w\-−+])[-−+])?(?<![\w.,])(?P<int>{INT})(?:[.,](?P<frac>\d+))?(?![\d])"
    rf"(?:{SP}?(?P<mult>{_MULT_RE})(?![а-яё]))?"
    rf"(?:{SP}?(?P<unit>{_UNIT_RE})(?![а-яёА-ЯЁa-zA-Z/])(?!(?<=с)[ \t]+[а-яё]))?"
)
PREFIX_MONEY = re.compile(
    rf"(?<![\w])(?P<cur>{alternation(list(PREFIX_CURRENCIES))}){SP}?(?P<sign>[-−])?(?P<int>{INT})"
    rf"(?:[.,](?P<frac>\d+))?(?![\d])(?:{SP}?(?P<mult>{_MULT_RE})(?![а-яё]))?"
)


def _quantity(
    m: re.Match[str],
    sign: str | None,
    int_text: str,
    frac: str | None,
    mult: Unit | None,
    unit: Unit | None,
    case: Case,
    tail_dot: str,
) -> str:
    words: list[str] = []
    if sign in ("-", "−"):
        words.append("минус")
    elif sign == "+":
        words.append("плюс")
    if len(int_text) > 20:  # a run of digits, not a quantity: read one by one (int() caps at 4300)
        return " ".join([*words, digits_one_by_one(re.sub(SP, "", int_text))])
    n = to_int(int_text)
    if unit and unit.subunit and frac is not None and len(frac) == 2 and not mult:
        # Money with cents: «99,90 ₽» → «девяносто девять рублей девяносто копеек».
        cents = int(frac)
        words += [cardinal(n, unit.gender, case), agree(n, unit.forms, case)]
        if cents:
            words += [cardinal(cents, unit.subunit_gender, case), agree(cents, unit.subunit, case)]
        return " ".join(words) + _unit_suffix(unit) + tail_dot
    if frac is not None:
        # After a fraction the noun is genitive singular: «три целых пять десятых килограмма».
        follows = mult or unit
        gender = follows.gender if follows else gender_of_next_word(m, 2, case)
        noun_follows = bool(follows) or WORD_AFTER.match(m.string, m.end()) is not None
        words.append(decimal(n, frac, case, noun_follows=noun_follows, gender=gender))
        if mult:
            words.append(mult.forms[1])
        if unit:
            words.append(_after_fraction(n, frac, unit, case, mult is not None))
        return " ".join(words) + (_unit_suffix(unit) if unit else "") + tail_dot
    if int_text.startswith("0") and len(int_text) > 1 and not (mult or unit):
        words.append(digit_group(int_text))  # «007»: the zeros are spoken
        return " ".join(words) + tail_dot
    gender = mult.gender if mult else unit.gender if unit else gender_of_next_word(m, n, case)
    words.append(cardinal(n, gender, case))
    if mult:
        words.append(agree(n, mult.forms, case))
        if unit:
            words.append(unit.forms[2])  # «пять тысяч рублей», «два миллиона рублей»
    elif unit:
        words.append(agree(n, unit.forms, case))
    return " ".join(words) + (_unit_suffix(unit) if unit else "") + tail_dot


def _after_fraction(n: int, frac: str, unit: Unit, case: Case, after_multiplier: bool) -> str:
    """The unit after a fraction: genitive singular («трёх целых пяти десятых килограмма»), but
    after «полтора» in an oblique case the plural («более полутора часов», «к полутора часам»)."""
    if after_multiplier:
        return unit.forms[2]
    if n == 1 and frac == "5" and case in ("gen", "dat"):
        return unit.forms[2] if case == "gen" else dative(unit.forms[0], plural=True)
    return unit.forms[1]


def _unit_suffix(unit: Unit | None) -> str:
    return f" {unit.suffix}" if unit and unit.suffix else ""


def speak_quantity(m: re.Match[str]) -> str:
    mult = MULTIPLIERS[m["mult"]] if m["mult"] else None
    unit = UNITS[m["unit"]] if m["unit"] else None
    dot = kept_dot(m) if (m["unit"] or m["mult"] or "").endswith(".") else ""
    return _quantity(m, m["sign"], m["int"], m["frac"], mult, unit, case_before(m), dot)


def speak_prefix_money(m: re.Match[str]) -> str:
    mult = MULTIPLIERS[m["mult"]] if m["mult"] else None
    dot = kept_dot(m) if (m["mult"] or "").endswith(".") else ""
    unit = PREFIX_CURRENCIES[m["cur"]]
    return _quantity(m, m["sign"], m["int"], m["frac"], mult, unit, case_before(m), dot)


PHONES = re.compile(
    r"(?=[+0-9])(?<![\w+])(?:"
    r"\+\d[\d \u00a0()\-]{6,}\d(?![\d])"  # +7 (999) 123-45-67, +44 20 7946 0958
    r"|8[ \-]?\(?\d{3}\)?[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2}(?![\w])"  # 8 800 555-35-35
    r"|[78]\d{10}(?![\w])"  # 89991234567
    r"|\d{3}-\d{2}-\d{2}(?![\w\-])"  # 123-45-67
    r")"
)


def speak_phone(m: re.Match[str]) -> str:
    """Each written group is read as a number, with commas between them for the pauses."""
    text = m.group()
    groups = re.findall(r"\d+", text)
    if len(groups) == 1 and len(groups[0]) == 11:  # one block: 7 999 123 45 67
        g = groups[0]
        groups = [g[0], g[1:4], g[4:7], g[7:9], g[9:]]
    spoken = ", ".join(digit_group(g) for g in groups)
    return ("плюс " if text.startswith("+") else "") + spoken
