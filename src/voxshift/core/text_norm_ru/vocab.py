"""The words the rules need: units, currencies, multipliers, months, abbreviations, prepositions.

Noun forms are (nominative singular, genitive singular, genitive plural): «килограмм»,
«килограмма», «килограммов» - the three forms a Russian noun takes after a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxshift.core.text_norm_ru.numerals import Gender

Forms = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Unit:
    forms: Forms
    gender: Gender = "m"
    suffix: str = ""  # words that follow every form: «градусов Цельсия», «километров в час»
    subunit: Forms | None = None  # the hundredth of a currency: копейка, цент
    subunit_gender: Gender = "f"


_RUBLE = Unit(("рубль", "рубля", "рублей"), subunit=("копейка", "копейки", "копеек"))
_DOLLAR = Unit(("доллар", "доллара", "долларов"), subunit=("цент", "цента", "центов"), subunit_gender="m")
# «евро» does not decline; «один евро» is the usual spoken gender (the norm hesitates).
_EURO = Unit(("евро", "евро", "евро"), subunit=("цент", "цента", "центов"), subunit_gender="m")
_POUND = Unit(("фунт", "фунта", "фунтов"), subunit=("пенс", "пенса", "пенсов"), subunit_gender="m")
_GRAM = Unit(("грамм", "грамма", "граммов"))
_SECOND = Unit(("секунда", "секунды", "секунд"), "f")

# Written after the number. Longest spellings win in the regex, so «мин» is not read as «м».
UNITS: dict[str, Unit] = {
    "₽": _RUBLE,
    "руб.": _RUBLE,
    "руб": _RUBLE,
    "р.": _RUBLE,
    "RUB": _RUBLE,
    "коп.": Unit(("копейка", "копейки", "копеек"), "f"),
    "коп": Unit(("копейка", "копейки", "копеек"), "f"),
    "$": _DOLLAR,
    "долл.": _DOLLAR,
    "USD": _DOLLAR,
    "€": _EURO,
    "EUR": _EURO,
    "евро": _EURO,
    "£": _POUND,
    "¥": Unit(("юань", "юаня", "юаней")),
    "%": Unit(("процент", "процента", "процентов")),
    "кг": Unit(("килограмм", "килограмма", "килограммов")),
    "мг": Unit(("миллиграмм", "миллиграмма", "миллиграммов")),
    "г": _GRAM,
    "г.": _GRAM,
    "гр.": _GRAM,
    "гр": _GRAM,
    "т": Unit(("тонна", "тонны", "тонн"), "f"),
    "км/ч": Unit(("километр", "километра", "километров"), suffix="в час"),
    "м/с": Unit(("метр", "метра", "метров"), suffix="в секунду"),
    "км": Unit(("километр", "километра", "километров")),
    "м": Unit(("метр", "метра", "метров")),
    "см": Unit(("сантиметр", "сантиметра", "сантиметров")),
    "мм": Unit(("миллиметр", "миллиметра", "миллиметров")),
    "л": Unit(("литр", "литра", "литров")),
    "мл": Unit(("миллилитр", "миллилитра", "миллилитров")),
    "ч": Unit(("час", "часа", "часов")),
    "ч.": Unit(("час", "часа", "часов")),
    "мин": Unit(("минута", "минуты", "минут"), "f"),
    "мин.": Unit(("минута", "минуты", "минут"), "f"),
    "сек": _SECOND,
    "сек.": _SECOND,
    "с": _SECOND,
    "мс": Unit(("миллисекунда", "миллисекунды", "миллисекунд"), "f"),
    "°C": Unit(("градус", "градуса", "градусов"), suffix="Цельсия"),
    "°С": Unit(("градус", "градуса", "градусов"), suffix="Цельсия"),  # Cyrillic С
    "℃": Unit(("градус", "градуса", "градусов"), suffix="Цельсия"),
    "°": Unit(("градус", "градуса", "градусов")),
    "шт.": Unit(("штука", "штуки", "штук"), "f"),
    "шт": Unit(("штука", "штуки", "штук"), "f"),
    "ГБ": Unit(("гигабайт", "гигабайта", "гигабайт")),
    "Гб": Unit(("гигабайт", "гигабайта", "гигабайт")),
    "МБ": Unit(("мегабайт", "мегабайта", "мегабайт")),
    "Мб": Unit(("мегабайт", "мегабайта", "мегабайт")),
    "ТБ": Unit(("терабайт", "терабайта", "терабайт")),
    "кБ": Unit(("килобайт", "килобайта", "килобайт")),
    "Гц": Unit(("герц", "герца", "герц")),
    "кГц": Unit(("килогерц", "килогерца", "килогерц")),
    "МГц": Unit(("мегагерц", "мегагерца", "мегагерц")),
    "Вт": Unit(("ватт", "ватта", "ватт")),
    "кВт": Unit(("киловатт", "киловатта", "киловатт")),
}
# Written before the number: «$5», «€ 10».
PREFIX_CURRENCIES: dict[str, Unit] = {"$": _DOLLAR, "€": _EURO, "£": _POUND, "₽": _RUBLE}

# «5 тыс.», «2,5 млн»: the count agrees with the multiplier, the unit after it is genitive plural.
MULTIPLIERS: dict[str, Unit] = {
    "тыс.": Unit(("тысяча", "тысячи", "тысяч"), "f"),
    "тыс": Unit(("тысяча", "тысячи", "тысяч"), "f"),
    "млн": Unit(("миллион", "миллиона", "миллионов")),
    "млн.": Unit(("миллион", "миллиона", "миллионов")),
    "млрд": Unit(("миллиард", "миллиарда", "миллиардов")),
    "млрд.": Unit(("миллиард", "миллиарда", "миллиардов")),
    "трлн": Unit(("триллион", "триллиона", "триллионов")),
    "трлн.": Unit(("триллион", "триллиона", "триллионов")),
}

MONTHS_GENITIVE = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                   "сентября", "октября", "ноября", "декабря")  # fmt: skip

# A number right after one of these is in the genitive: «до пяти минут», «более трёх часов».
# «с» is mostly «from» before a number («с 9:00», «с 5 до 10»); «с пятью» (with) is rarer.
GENITIVE_PREPOSITIONS = frozenset(
    {"от", "до", "из", "около", "более", "менее", "свыше", "больше", "меньше", "без", "для",
     "после", "кроме", "вместо", "с", "со", "у", "порядка", "мимо", "среди", "возле", "против"}
)  # fmt: skip

# A number after these is dative: «к пяти часам», «к десяти пятнадцати». «по» is left out: «по 5
# рублей» is said «по пять рублей».
DATIVE_PREPOSITIONS = frozenset({"к", "ко", "благодаря", "согласно", "вопреки", "навстречу"})

# After these a feminine «1» is accusative: «за одну минуту», «через одну неделю».
ACCUSATIVE_PREPOSITIONS = frozenset({"за", "на", "через", "в", "во", "про", "под", "сквозь"})

# Nouns in «-ь» that are feminine (the ending says nothing): «одна ночь», «две части».
FEMININE_SOFT_NOUNS = frozenset(
    {"ночь", "часть", "дверь", "вещь", "площадь", "запись", "новость", "скорость", "мощность",
     "область", "очередь", "модель", "копейка", "жизнь", "неделя", "единица", "тетрадь", "роль",
     "связь", "цель", "мысль", "речь", "ступень", "степень", "версия"}
)  # fmt: skip
