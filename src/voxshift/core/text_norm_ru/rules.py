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

from voxshift.core.text_norm_ru.numerals import (
    Case,
    Gender,
    OrdinalForm,
    agree,
    cardinal,
    decimal,
    digit_group,
    digits_one_by_one,
    ordinal,
    plural_index,
)
from voxshift.core.text_norm_ru.vocab import (
    ACCUSATIVE_PREPOSITIONS,
    FEMININE_SOFT_NOUNS,
    GENITIVE_PREPOSITIONS,
    MONTHS_GENITIVE,
    MULTIPLIERS,
    PREFIX_CURRENCIES,
    UNITS,
    Unit,
)

# Thousands are grouped by a space, a no-break space or a narrow (no-break) space: «25 000».
_SP = "[ \u00a0\u202f\u2009]"
_INT = rf"(?:[1-9]\d{{0,2}}(?:{_SP}\d{{3}})+(?!\d)|\d+)"
_WORD_BEFORE = re.compile(r"(?:^|[^\w])(\w+)\s+$")
_WORD_AFTER = re.compile(r"\s+([а-яёА-ЯЁ]+)")


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _previous_word(m: re.Match[str]) -> str:
    found = _WORD_BEFORE.search(m.string[max(0, m.start() - 24) : m.start()])
    return found.group(1).lower() if found else ""


def _case_before(m: re.Match[str]) -> Case:
    previous = _previous_word(m)
    if previous in GENITIVE_PREPOSITIONS:
        return "gen"
    return "acc" if previous in ACCUSATIVE_PREPOSITIONS else "nom"


def _kept_dot(m: re.Match[str]) -> str:
    """The dot of an abbreviation that also ends the sentence: keep it for the intonation."""
    if not m.group().endswith("."):
        return ""
    rest = m.string[m.end() :].lstrip(" \t")
    if not rest or rest[0] in "\n\r" or rest[0].isupper():
        return "."
    return ""


def _int(text: str) -> int:
    return int(re.sub(_SP, "", text))


def _gender_of_next_word(m: re.Match[str], n: int, case: Case) -> Gender:
    """The gender «1» and «2» take from the noun written after them, guessed from its ending.

    «1 минута», «1 новая книга» (-а/-я) are feminine, «1 окно», «1 здание» (-о/-е) neuter; after
    2-4, «2 минуты», «2 новые книги» (-ы/-и) are feminine while «2 часа», «2 дня» are masculine.
    In the genitive, «от 1 минуты» (-ы/-и) is feminine. A handful of «-ь» nouns are listed.
    Anything else reads as masculine, the commonest case.
    """
    found = _WORD_AFTER.match(m.string, m.end())
    if not found:
        return "m"
    word = found.group(1).lower()
    if word in FEMININE_SOFT_NOUNS or word.rstrip("иы") + "ь" in FEMININE_SOFT_NOUNS:
        return "f"
    if plural_index(n) == 0 and case == "gen":
        if word.endswith(("ы", "и")):
            return "f"
    elif plural_index(n) == 0 and word.endswith(("у", "ю")) and _previous_word(m) not in ("к", "ко", "по"):
        return "f"  # an accusative: «через 1 минуту», «купи 1 штуку»
    elif plural_index(n) == 0:
        if word.endswith(("а", "я")) and word not in ("раза", "часа", "дня"):
            return "f"
        if word.endswith(("о", "е", "ё")) and not word.endswith("ее"):
            return "n"
    elif word.endswith(("ы", "и")) and not word.endswith(("ых", "их")):
        return "f"
    return "m"


# --- quantities: number, multiplier, unit --------------------------------------------------------

_UNIT_RE = _alternation(list(UNITS))
_MULT_RE = _alternation(list(MULTIPLIERS))
# «с» is a unit only where no word follows («за 5 с.»), else it is the preposition («5 с лишним»).
_QUANTITY = re.compile(
    rf"(?=[-−+0-9])(?P<sign>(?<![\w\-−+])[-−+])?(?<![\w.,])(?P<int>{_INT})(?:[.,](?P<frac>\d+))?(?![\d])"
    rf"(?:{_SP}?(?P<mult>{_MULT_RE})(?![а-яё]))?"
    rf"(?:{_SP}?(?P<unit>{_UNIT_RE})(?![а-яёА-ЯЁa-zA-Z/])(?!(?<=с)[ \t]+[а-яё]))?"
)
_PREFIX_MONEY = re.compile(
    rf"(?<![\w])(?P<cur>{_alternation(list(PREFIX_CURRENCIES))}){_SP}?(?P<sign>[-−])?(?P<int>{_INT})"
    rf"(?:[.,](?P<frac>\d+))?(?![\d])(?:{_SP}?(?P<mult>{_MULT_RE})(?![а-яё]))?"
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
    n = _int(int_text)
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
        gender = follows.gender if follows else _gender_of_next_word(m, 2, case)
        noun_follows = bool(follows) or _WORD_AFTER.match(m.string, m.end()) is not None
        words.append(decimal(n, frac, case, noun_follows=noun_follows, gender=gender))
        if mult:
            words.append(mult.forms[1])
        if unit:
            words.append(unit.forms[2] if mult else unit.forms[1])
        return " ".join(words) + (_unit_suffix(unit) if unit else "") + tail_dot
    if int_text.startswith("0") and len(int_text) > 1 and not (mult or unit):
        words.append(digit_group(int_text))  # «007»: the zeros are spoken
        return " ".join(words) + tail_dot
    gender = mult.gender if mult else unit.gender if unit else _gender_of_next_word(m, n, case)
    words.append(cardinal(n, gender, case))
    if mult:
        words.append(agree(n, mult.forms, case))
        if unit:
            words.append(unit.forms[2])  # «пять тысяч рублей», «два миллиона рублей»
    elif unit:
        words.append(agree(n, unit.forms, case))
    return " ".join(words) + (_unit_suffix(unit) if unit else "") + tail_dot


def _unit_suffix(unit: Unit | None) -> str:
    return f" {unit.suffix}" if unit and unit.suffix else ""


def _speak_quantity(m: re.Match[str]) -> str:
    mult = MULTIPLIERS[m["mult"]] if m["mult"] else None
    unit = UNITS[m["unit"]] if m["unit"] else None
    dot = _kept_dot(m) if (m["unit"] or m["mult"] or "").endswith(".") else ""
    return _quantity(m, m["sign"], m["int"], m["frac"], mult, unit, _case_before(m), dot)


def _speak_prefix_money(m: re.Match[str]) -> str:
    mult = MULTIPLIERS[m["mult"]] if m["mult"] else None
    dot = _kept_dot(m) if (m["mult"] or "").endswith(".") else ""
    unit = PREFIX_CURRENCIES[m["cur"]]
    return _quantity(m, m["sign"], m["int"], m["frac"], mult, unit, _case_before(m), dot)


# --- phones ---------------------------------------------------------------------------------------

_PHONES = re.compile(
    r"(?=[+0-9])(?<![\w+])(?:"
    r"\+\d[\d \u00a0()\-]{6,}\d(?![\d])"  # +7 (999) 123-45-67, +44 20 7946 0958
    r"|8[ \-]?\(?\d{3}\)?[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2}(?![\w])"  # 8 800 555-35-35
    r"|[78]\d{10}(?![\w])"  # 89991234567
    r"|\d{3}-\d{2}-\d{2}(?![\w\-])"  # 123-45-67
    r")"
)


def _speak_phone(m: re.Match[str]) -> str:
    """Each written group is read as a number, with commas between them for the pauses."""
    text = m.group()
    groups = re.findall(r"\d+", text)
    if len(groups) == 1 and len(groups[0]) == 11:  # one block: 7 999 123 45 67
        g = groups[0]
        groups = [g[0], g[1:4], g[4:7], g[7:9], g[9:]]
    spoken = ", ".join(digit_group(g) for g in groups)
    return ("плюс " if text.startswith("+") else "") + spoken


# --- dates, years, times, ordinals ---------------------------------------------------------------

_MONTH_RE = "|".join(MONTHS_GENITIVE)
_DATE = re.compile(
    r"(?=[0-9])(?<![\w.,])(?P<d>[0-3]?\d)\.(?P<m>[01]?\d)\.(?P<y>\d{4}|\d{2})(?![\w]|[.,]\d)"
    r"(?P<g>\s?г\.|\s+года(?!\w))?"
)


def _speak_date(m: re.Match[str]) -> str:
    day, month = int(m["d"]), int(m["m"])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group()  # not a date: left to the other passes (a version number, a decimal)
    year = ordinal(int(m["y"]), "gen_m")
    dot = _kept_dot(m) if m["g"] and m["g"].endswith(".") else ""
    form: OrdinalForm = "nom_n" if _previous_word(m) in _DATE_IS_SUBJECT else "gen_m"
    return f"{ordinal(day, form)} {MONTHS_GENITIVE[month - 1]} {year} года{dot}"


# Day and month: «15 марта» is read «пятнадцатого марта» (the genitive ordinal of «встреча
# 15 марта», «до 15 марта»), «к 15 марта» «к пятнадцатому марта». «15-е марта» keeps its «-е».
_DAY_MONTH = re.compile(
    rf"(?=[0-9])(?<![\w.,])(?P<d>[0-3]?\d)(?:-(?P<suf>го|е|ое|му|ого))?\s+(?P<month>{_MONTH_RE})(?!\w)"
)


# After these the date is nominative or accusative («Сегодня 1 сентября», «на 15 марта»,
# «по 10 июня»): «первое сентября», «на пятнадцатое марта».
_DATE_IS_SUBJECT = frozenset({"сегодня", "завтра", "вчера", "послезавтра", "позавчера", "по", "на"})
# «с 1 по 10 июня» → «с первого по десятое июня»; «1–10 июня» is read the same way.
_DAY_RANGE = re.compile(
    rf"(?=[Сс0-9])(?<![\w.,])(?:(?P<from>[Сс]о?)\s+)?(?P<a>[0-3]?\d)(?:\s+(?P<to>по|до)\s+|\s?[–—-]\s?)"
    rf"(?P<b>[0-3]?\d)\s+(?P<month>{_MONTH_RE})(?!\w)"
)


def _speak_day_range(m: re.Match[str]) -> str:
    to = m["to"] or "по"
    start = f"{m['from']} " if m["from"] else ("с " if not m["to"] else "")
    end_form: OrdinalForm = "nom_n" if to == "по" else "gen_m"
    first = ordinal(int(m["a"]), "gen_m")
    return f"{start}{first} {to} {ordinal(int(m['b']), end_form)} {m['month']}"


def _speak_day_month(m: re.Match[str]) -> str:
    suffix = m["suf"]
    previous = _previous_word(m)
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
_YEAR = re.compile(
    r"(?=[0-9])(?<![\w.,])(?P<y>\d{1,4})(?:-(?P<suf>[а-яё]{1,3}))?\s?"
    r"(?P<word>годами|годах|годам|годов|годом|году|года|годе|годы|год|гг\.|г\.)(?!\w)"
)


def _speak_year(m: re.Match[str]) -> str:
    year = int(m["y"])
    word = m["word"]
    prev = _previous_word(m)
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
        return f"{ordinal(year, form)} {spoken_word}{_kept_dot(m)}"
    form = _YEAR_WORDS[word]
    if word == "году" and prev in ("к", "ко", "по"):
        form = "dat_m"
    return f"{ordinal(year, form)} {word}"


_TIME = re.compile(
    r"(?=[0-9])(?<![\w:.,])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?(?![\w:]|[.,]\d)"
    # «в 15.30», «до 9.00»: a dotted time, only after a preposition of time (else a decimal)
    r"|(?<![\w:.,])(?P<dh>[01]?\d|2[0-3])\.(?P<dm>[0-5]\d)(?![\w,:]|[.,:]\d)"
)
_TIME_PREPOSITIONS = frozenset({"в", "во", "с", "со", "до", "к", "ко", "после", "около", "по"})


def _speak_time(m: re.Match[str]) -> str:
    """«15:30» → «пятнадцать тридцать», «15:05» → «пятнадцать ноль пять» (as clocks are read)."""
    if m["dh"] is not None:
        if _previous_word(m) not in _TIME_PREPOSITIONS:
            return m.group()  # «3.15» alone is a decimal
        hours, minutes = m["dh"], m["dm"]
    else:
        hours, minutes = m["h"], m["m"]
    case = _case_before(m)
    parts = [cardinal(int(hours), case=case), digit_group(minutes, case)]
    if m["s"]:
        parts.append(digit_group(m["s"], case))
    return " ".join(parts)


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
_ORDINAL = re.compile(r"(?=[0-9])(?<![\w.,])(?P<n>\d+)-(?P<suf>[а-яё]{1,3})(?!\w)")


def _speak_ordinal(m: re.Match[str]) -> str:
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
_DOTTED = re.compile(r"(?=[0-9])(?<![\w.,])\d+(?:\.\d+){2,}(?!\w|\.\d)")


def _speak_dotted(m: re.Match[str]) -> str:
    return " точка ".join(digit_group(group) for group in m.group().split("."))


# «1/2» → «одна вторая», «3/4» → «три четвёртых»; «24/7», «50/50» → «двадцать четыре на семь».
_SLASHED = re.compile(r"(?=[0-9])(?<![\w.,/])(?P<a>\d{1,3})/(?P<b>\d{1,3})(?![\w/]|[.,]\d)")


def _speak_slashed(m: re.Match[str]) -> str:
    a, b = int(m["a"]), int(m["b"])
    if 0 < a < b <= 10:
        denominator = ordinal(b, "nom_f" if plural_index(a) == 0 else "gen_pl")
        return f"{cardinal(a, 'f')} {denominator}"
    return f"{cardinal(a)} на {cardinal(b)}"


# «2024–2025 гг.», «в 1941-1945 годах»: both years take the form the plural noun asks for.
_YEAR_RANGE = re.compile(
    r"(?=[0-9])(?<![\w.,])(?P<a>\d{4})\s?[-–—]\s?(?P<b>\d{4})\s?(?P<word>гг\.|годы|годов|годах)(?!\w)"
)
_YEAR_RANGE_FORMS: dict[str, OrdinalForm] = {"годы": "nom_m", "годов": "gen_m", "годах": "prep_m"}


def _speak_year_range(m: re.Match[str]) -> str:
    word = m["word"]
    if word == "гг.":
        word = "годах" if _previous_word(m) in ("в", "во") else "годы"
    form = _YEAR_RANGE_FORMS[word]
    dot = _kept_dot(m) if m["word"] == "гг." else ""
    return f"{ordinal(int(m['a']), form)} — {ordinal(int(m['b']), form)} {word}{dot}"


# --- abbreviations --------------------------------------------------------------------------------


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
        return spoken + _kept_dot(m) if may_end else spoken


def _abbreviations(rows: tuple[tuple[str, str, bool], ...]) -> _Abbreviations:
    return _Abbreviations(rows)


_BEFORE_NUMBERS = _abbreviations(
    (
        (r"д\.(?=\s?\d)", "дом", False),
        (r"кв\.(?=\s?\d)", "квартира", False),
        (r"стр\.(?=\s?\d)", "страница", False),
        (r"рис\.(?=\s?\d)", "рисунок", False),
        (r"№\s?", "номер ", False),
    )
)
_AFTER_NUMBERS = _abbreviations(
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


# --- leftovers ------------------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")


def _speak_leftover(m: re.Match[str]) -> str:
    """Digits glued to letters («MP3», «абв5»): spoken apart so the engine sees a word."""
    digits = m.group()
    spoken = digit_group(digits) if len(digits) <= 15 else digits_one_by_one(digits)
    before = m.string[m.start() - 1] if m.start() else " "
    after = m.string[m.end()] if m.end() < len(m.string) else " "
    return (" " if before.isalpha() else "") + spoken + (" " if after.isalpha() else "")


def _any(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(needle in text for needle in needles)


# (guard, pattern, speaker): a pass runs only where its guard, a few substring tests, finds what
# its pattern needs; regex scans cost about a microsecond each, the guards a tenth of that.
PASSES: tuple[tuple[Callable[[str], bool], re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (lambda _: True, _PHONES, _speak_phone),
    (_any("."), _DATE, _speak_date),
    (_any("."), _DOTTED, _speak_dotted),
    (_any("/"), _SLASHED, _speak_slashed),
    (_any(":", "."), _TIME, _speak_time),
    (_any("год", "гг."), _YEAR_RANGE, _speak_year_range),
    (_any("год", "г."), _YEAR, _speak_year),
    (_any(*MONTHS_GENITIVE), _DAY_RANGE, _speak_day_range),
    (_any(*MONTHS_GENITIVE), _DAY_MONTH, _speak_day_month),
    (_any("-"), _ORDINAL, _speak_ordinal),
    (_any(*PREFIX_CURRENCIES), _PREFIX_MONEY, _speak_prefix_money),
    (lambda _: True, _QUANTITY, _speak_quantity),
)
_HAS_DIGIT = re.compile("[0-9]")


def normalize_ru(text: str) -> str:
    """Russian ``text`` as it should be spoken: numbers, dates, times, money, units in words."""
    has_digits = _HAS_DIGIT.search(text) is not None
    if has_digits:
        text = _BEFORE_NUMBERS.expand(text)
        for guard, pattern, speak in PASSES:
            if guard(text):
                text = pattern.sub(speak, text)
        text = _DIGITS.sub(_speak_leftover, text)
    if "." in text or "м" in text or "пр-т" in text:  # every abbreviation has a dot, but «млн»
        text = _AFTER_NUMBERS.expand(text)
    return text
