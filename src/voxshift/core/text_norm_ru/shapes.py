"""Numbers by their written shape: hyphenated ordinals («1-й»), versions and addresses
(«3.10.2»), fractions («3/4»), and digits glued to letters («MP3»).
"""

from __future__ import annotations

import re

from voxshift.core.text_norm_ru.numerals import (
    OrdinalForm,
    cardinal,
    digit_group,
    digits_one_by_one,
    ordinal,
    plural_index,
)

# The ending written after a hyphen says which form the ordinal takes: «1-й», «2-го», «3-я».
_SUFFIX_FORMS: dict[str, OrdinalForm] = {
    "й": "nom_m", "ый": "nom_m", "ий": "nom_m", "ой": "nom_m",
    "го": "gen_m", "ого": "gen_m", "его": "gen_m",
    "му": "dat_m", "ому": "dat_m", "ему": "dat_m",
    "м": "prep_m", "ом": "prep_m", "ем": "prep_m", "ым": "ins_m", "им": "ins_m",
    "я": "nom_f", "ая": "nom_f", "ья": "nom_f",
    "ю": "acc_f", "ую": "acc_f", "ью": "acc_f",
    "е": "nom_n", "ое": "nom_n", "ье": "nom_n",
    "х": "gen_pl", "ых": "gen_pl", "их": "gen_pl", "ые": "nom_pl", "ми": "ins_pl", "ыми": "ins_pl",
}  # fmt: skip
# Endings that make a cardinal genitive, not an ordinal: «5-ти» пяти, «7-ми» семи, «2-х» двух.
_CARDINAL_GENITIVE_SUFFIXES = frozenset({"ти", "и", "ух", "ех", "ёх"})
_INSTRUMENTAL = {2: "двумя", 3: "тремя", 4: "четырьмя"}
ORDINAL = re.compile(r"(?=[0-9])(?<![\w.,])(?P<n>\d{1,15})-(?P<suf>[а-яё]{1,3})(?!\w)")


def speak_ordinal(m: re.Match[str]) -> str:
    n, suffix = int(m["n"]), m["suf"]
    if suffix in _CARDINAL_GENITIVE_SUFFIXES or (suffix == "х" and n in (2, 3, 4)):
        return cardinal(n, case="gen")
    if suffix == "ми" and n in (7, 8):
        return cardinal(n, case="gen")
    if suffix == "мя" and n in _INSTRUMENTAL:
        return _INSTRUMENTAL[n]  # «с 2-мя» → «с двумя»
    form = _SUFFIX_FORMS.get(suffix)
    if form is None:
        return m.group()
    if suffix == "е" and n >= 10 and n % 10 == 0 and len(m["n"]) == 4:
        form = "nom_pl"  # «1990-е» are «девяностые» (годы), not an ordinal neuter
    return ordinal(n, form)


# «3.10.2», «192.168.1.1»: three or more dotted groups are a version or an address, read by group.
DOTTED = re.compile(r"(?=[0-9])(?<![\w.,])\d+(?:\.\d+){2,}(?!\w|\.\d)")


def speak_dotted(m: re.Match[str]) -> str:
    return " точка ".join(digit_group(group) for group in m.group().split("."))


# «1/2» → «одна вторая», «3/4» → «три четвёртых»; «24/7», «50/50» → «двадцать четыре на семь».
SLASHED = re.compile(r"(?=[0-9])(?<![\w.,/])(?P<a>\d{1,3})/(?P<b>\d{1,3})(?![\w/]|[.,]\d)")


def speak_slashed(m: re.Match[str]) -> str:
    a, b = int(m["a"]), int(m["b"])
    if 0 < a < b <= 10:
        denominator = ordinal(b, "nom_f" if plural_index(a) == 0 else "gen_pl")
        return f"{cardinal(a, 'f')} {denominator}"
    return f"{cardinal(a)} на {cardinal(b)}"


DIGITS = re.compile(r"[0-9]+")


def speak_leftover(m: re.Match[str]) -> str:
    """Digits glued to letters («MP3», «абв5»): spoken apart so the engine sees a word."""
    digits = m.group()
    spoken = digit_group(digits) if len(digits) <= 15 else digits_one_by_one(digits)
    before = m.string[m.start() - 1] if m.start() else " "
    after = m.string[m.end()] if m.end() < len(m.string) else " "
    return (" " if before.isalpha() else "") + spoken + (" " if after.isalpha() else "")
