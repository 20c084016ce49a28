"""What the rules read around a match: the word before (its case), the word after (its gender),
whether an abbreviation's dot also ends the sentence; and the shape of a written integer.
"""

from __future__ import annotations

import re

from voxshift.core.text_norm_ru.numerals import (
    Case,
    Gender,
    plural_index,
)
from voxshift.core.text_norm_ru.vocab import (
    ACCUSATIVE_PREPOSITIONS,
    DATIVE_PREPOSITIONS,
    FEMININE_SOFT_NOUNS,
    GENITIVE_PREPOSITIONS,
)

# Thousands are grouped by a space, a no-break space or a narrow (no-break) space: «25 000».
SP = "[ \u00a0\u202f\u2009]"
INT = rf"(?:[1-9]\d{{0,2}}(?:{SP}\d{{3}})+(?!\d)|\d+)"
_WORD_BEFORE = re.compile(r"(?:^|[^\w])(\w+)\s+$")
WORD_AFTER = re.compile(r"\s+([а-яёА-ЯЁ]+)")


def alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def previous_word(m: re.Match[str]) -> str:
    found = _WORD_BEFORE.search(m.string[max(0, m.start() - 24) : m.start()])
    return found.group(1).lower() if found else ""


def case_before(m: re.Match[str]) -> Case:
    previous = previous_word(m)
    if previous in GENITIVE_PREPOSITIONS:
        return "gen"
    if previous in DATIVE_PREPOSITIONS:
        return "dat"
    return "acc" if previous in ACCUSATIVE_PREPOSITIONS else "nom"


def kept_dot(m: re.Match[str]) -> str:
    """The dot of an abbreviation that also ends the sentence: keep it for the intonation."""
    if not m.group().endswith("."):
        return ""
    rest = m.string[m.end() :].lstrip(" \t")
    if not rest or rest[0] in "\n\r" or rest[0].isupper():
        return "."
    return ""


def to_int(text: str) -> int:
    return int(re.sub(SP, "", text))


def gender_of_next_word(m: re.Match[str], n: int, case: Case) -> Gender:
    """The gender «1» and «2» take from the noun written after them, guessed from its ending.

    «1 минута», «1 новая книга» (-а/-я) are feminine, «1 окно», «1 здание» (-о/-е) neuter; after
    2-4, «2 минуты», «2 новые книги» (-ы/-и) are feminine while «2 часа», «2 дня» are masculine.
    In the genitive, «от 1 минуты» (-ы/-и) is feminine. A handful of «-ь» nouns are listed.
    Anything else reads as masculine, the commonest case.
    """
    found = WORD_AFTER.match(m.string, m.end())
    if not found:
        return "m"
    word = found.group(1).lower()
    if word in FEMININE_SOFT_NOUNS or word.rstrip("иы") + "ь" in FEMININE_SOFT_NOUNS:
        return "f"
    if plural_index(n) == 0 and case == "gen":
        if word.endswith(("ы", "и")):
            return "f"
    elif plural_index(n) == 0 and case == "dat":
        if word.endswith("е"):
            return "f"  # «к 1 минуте»
    elif plural_index(n) == 0 and word.endswith(("у", "ю")) and previous_word(m) not in ("к", "ко", "по"):
        return "f"  # an accusative: «через 1 минуту», «купи 1 штуку»
    elif plural_index(n) == 0:
        if word.endswith(("а", "я")) and word not in ("раза", "часа", "дня"):
            return "f"
        if word.endswith(("о", "е", "ё")) and not word.endswith("ее"):
            return "n"
    elif word.endswith(("ы", "и")) and not word.endswith(("ых", "их")):
        return "f"
    return "m"
