"""Dates, days of a month, years and clock times."""

from __future__ import annotations

import re

from voxshift.core.text_norm_ru.context import (
    case_before,
    kept_dot,
    previous_word,
)
from voxshift.core.text_norm_ru.numerals import (
    OrdinalForm,
    cardinal,
    digit_group,
    ordinal,
)
from voxshift.core.text_norm_ru.vocab import (
    MONTHS_GENITIVE,
)

_MONTH_RE = "|".join(MONTHS_GENITIVE)
DATE = re.compile(
    r"(?=[0-9])(?<![\w.,])(?P<d>[0-3]?\d)\.(?P<m>[01]?\d)\.(?P<y>\d{4}|\d{2})(?![\w]|[.,]\d)"
    r"(?P<g>\s?г\.|\s+года(?!\w))?"
)


def speak_date(m: re.Match[str]) -> str:
    day, month = int(m["d"]), int(m["m"])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group()  # not a date: left to the other passes (a version number, a decimal)
    year = ordinal(int(m["y"]), "gen_m")
    dot = kept_dot(m) if m["g"] and m["g"].endswith(".") else ""
    form: OrdinalForm = "nom_n" if previous_word(m) in _DATE_IS_SUBJECT else "gen_m"
    return f"{ordinal(day, form)} {MONTHS_GENITIVE[month - 1]} {year} года{dot}"


# Day and month: «15 марта» is read «пятнадцатого марта» (the genitive ordinal of «встреча
# 15 марта», «до 15 марта»), «к 15 марта» «к пятнадцатому марта». «15-е марта» keeps its «-е».
DAY_MONTH = re.compile(
    rf"(?=[0-9])(?<![\w.,])(?P<d>[0-3]?\d)(?:-(?P<suf>го|е|ое|му|ого))?\s+(?P<month>{_MONTH_RE})(?!\w)"
)


# After these the date is nominative or accusative («Сегодня 1 сентября», «на 15 марта»,
# «по 10 июня»): «первое сентября», «на пятнадцатое марта».
_DATE_IS_SUBJECT = frozenset({"сегодня", "завтра", "вчера", "послезавтра", "позавчера", "по", "на"})
# «с 1 по 10 июня» → «с первого по десятое июня»; «1–10 июня» is read the same way.
DAY_RANGE = re.compile(
    rf"(?=[Сс0-9])(?<![\w.,])(?:(?P<from>[Сс]о?)\s+)?(?P<a>[0-3]?\d)(?:\s+(?P<to>по|до)\s+|\s?[–—-]\s?)"
    rf"(?P<b>[0-3]?\d)\s+(?P<month>{_MONTH_RE})(?!\w)"
)


def speak_day_range(m: re.Match[str]) -> str:
    to = m["to"] or "по"
    start = f"{m['from']} " if m["from"] else ("с " if not m["to"] else "")
    end_form: OrdinalForm = "nom_n" if to == "по" else "gen_m"
    first = ordinal(int(m["a"]), "gen_m")
    return f"{start}{first} {to} {ordinal(int(m['b']), end_form)} {m['month']}"


def speak_day_month(m: re.Match[str]) -> str:
    suffix = m["suf"]
    previous = previous_word(m)
    form: OrdinalForm = "gen_m"
    if previous in ("к", "ко"):
        form = "dat_m"
    elif previous in _DATE_IS_SUBJECT:
        form = "nom_n"  # «Сегодня 1 сентября» is «первое сентября»
    if suffix in ("е", "ое"):
        form = "nom_n"
    elif suffix in ("му",):
        form = "dat_m"
    return f"{ordinal(int(m['d']), form)} {m['month']}"


_YEAR_WORDS: dict[str, OrdinalForm] = {
    "год": "nom_m", "года": "gen_m", "году": "prep_m", "годом": "ins_m", "годе": "prep_m",
    "годы": "nom_pl", "годов": "gen_pl", "годах": "gen_pl", "годам": "gen_pl", "годами": "ins_pl",
}  # fmt: skip
YEAR = re.compile(
    r"(?=[0-9])(?<![\w.,])(?P<y>\d{1,4})(?:-(?P<suf>[а-яё]{1,3}))?\s?"
    r"(?P<word>годами|годах|годам|годов|годом|году|года|годе|годы|год|гг\.|г\.)(?!\w)"
)


def speak_year(m: re.Match[str]) -> str:
    year = int(m["y"])
    word = m["word"]
    prev = previous_word(m)
    if len(m["y"]) < 4 and not m["suf"] and word not in ("году", "г."):
        return m.group()  # «за 3 года» counts years: the quantity pass reads it
    if word in ("г.", "гг."):
        if word == "г." and not 1100 <= year <= 2100 and not m["suf"]:
            return m.group()  # «500 г.» is grams: the quantity pass reads it
        plural = word == "гг."
        if prev in ("в", "во"):
            form: OrdinalForm = "gen_pl" if plural else "prep_m"
            spoken_word = "годах" if plural else "году"
        else:
            form = "gen_pl" if plural else "gen_m"
            spoken_word = "годов" if plural else "года"
        return f"{ordinal(year, form)} {spoken_word}{kept_dot(m)}"
    form = _YEAR_WORDS[word]
    if word == "году" and prev in ("к", "ко", "по"):
        form = "dat_m"
    return f"{ordinal(year, form)} {word}"


TIME = re.compile(
    r"(?=[0-9])(?<![\w:.,])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?(?![\w:]|[.,]\d)"
    # «в 15.30», «до 9.00»: a dotted time, only after a preposition of time (else a decimal)
    r"|(?<![\w:.,])(?P<dh>[01]?\d|2[0-3])\.(?P<dm>[0-5]\d)(?![\w,:]|[.,:]\d)"
)
_TIME_PREPOSITIONS = frozenset({"в", "во", "с", "со", "до", "к", "ко", "после", "около", "по"})


def speak_time(m: re.Match[str]) -> str:
    """«15:30» → «пятнадцать тридцать», «15:05» → «пятнадцать ноль пять» (as clocks are read)."""
    if m["dh"] is not None:
        if previous_word(m) not in _TIME_PREPOSITIONS:
            return m.group()  # «3.15» alone is a decimal
        hours, minutes = m["dh"], m["dm"]
    else:
        hours, minutes = m["h"], m["m"]
    case = case_before(m)
    parts = [cardinal(int(hours), case=case), digit_group(minutes, case)]
    if m["s"]:
        parts.append(digit_group(m["s"], case))
    return " ".join(parts)


# «2024–2025 гг.», «в 1941-1945 годах»: both years take the form the plural noun asks for.
YEAR_RANGE = re.compile(
    r"(?=[0-9])(?<![\w.,])(?P<a>\d{4})\s?[-–—]\s?(?P<b>\d{4})\s?(?P<word>гг\.|годы|годов|годах)(?!\w)"
)
_YEAR_RANGE_FORMS: dict[str, OrdinalForm] = {"годы": "nom_m", "годов": "gen_m", "годах": "prep_m"}


def speak_year_range(m: re.Match[str]) -> str:
    word = m["word"]
    if word == "гг.":
        word = "годах" if previous_word(m) in ("в", "во") else "годы"
    form = _YEAR_RANGE_FORMS[word]
    dot = kept_dot(m) if m["word"] == "гг." else ""
    return f"{ordinal(int(m['a']), form)} — {ordinal(int(m['b']), form)} {word}{dot}"
