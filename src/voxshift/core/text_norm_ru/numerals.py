"""Russian numerals as words: cardinals (nominative, genitive; three genders), ordinals, decimals.

Pure tables and arithmetic; the text rules that decide which form a number takes live in
``rules.py``. Cardinals go up to the trillions; larger numbers are read digit by digit by the caller.
"""

from __future__ import annotations

from typing import Literal

Gender = Literal["m", "f", "n"]
# The accusative differs from the nominative only for a feminine «1» («за одну минуту»): the
# nouns the rules count are inanimate, whose masculine and neuter accusative is the nominative.
# The dative («к пяти часам», «к десяти пятнадцати») is the other case a preposition commonly asks.
Case = Literal["nom", "gen", "acc", "dat"]

_ONES_NOM = ("", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_ONES_GEN = ("", "одного", "двух", "трёх", "четырёх", "пяти", "шести", "семи", "восьми", "девяти")
_TEENS_NOM = (
    "десять",
    "одиннадцать",
    "двенадцать",
    "тринадцать",
    "четырнадцать",
    "пятнадцать",
    "шестнадцать",
    "семнадцать",
    "восемнадцать",
    "девятнадцать",
)
# Genitive of 10..19 and of 20, 30, 50..80: the final soft sign becomes «и».
_TEENS_GEN = tuple(word[:-1] + "и" for word in _TEENS_NOM)
_TENS_NOM = ("", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
             "восемьдесят", "девяносто")  # fmt: skip
_TENS_GEN = ("", "", "двадцати", "тридцати", "сорока", "пятидесяти", "шестидесяти", "семидесяти",
             "восьмидесяти", "девяноста")  # fmt: skip
_HUNDREDS_NOM = ("", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
                 "восемьсот", "девятьсот")  # fmt: skip
_HUNDREDS_DAT = ("", "ста", "двумстам", "трёмстам", "четырёмстам", "пятистам", "шестистам", "семистам",
                 "восьмистам", "девятистам")  # fmt: skip
_ONES_DAT = ("", "одному", "двум", "трём", "четырём", "пяти", "шести", "семи", "восьми", "девяти")
_HUNDREDS_GEN = ("", "ста", "двухсот", "трёхсот", "четырёхсот", "пятисот", "шестисот", "семисот",
                 "восьмисот", "девятисот")  # fmt: skip

# (power, nominative singular / genitive singular / genitive plural, gender of the count)
_SCALES: tuple[tuple[int, tuple[str, str, str], Gender], ...] = (
    (10**12, ("триллион", "триллиона", "триллионов"), "m"),
    (10**9, ("миллиард", "миллиарда", "миллиардов"), "m"),
    (10**6, ("миллион", "миллиона", "миллионов"), "m"),
    (10**3, ("тысяча", "тысячи", "тысяч"), "f"),
)
MAX_CARDINAL = 10**15 - 1


def plural_index(n: int) -> int:
    """Which noun form follows ``n`` in the nominative: 0 «один час», 1 «два часа», 2 «пять часов»."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


def agree(n: int, forms: tuple[str, str, str], case: Case = "nom") -> str:
    """The noun form after ``n``; ``forms`` = (nominative sg, genitive sg, genitive pl).

    In the genitive («до пяти минут») only a number ending in 1 keeps the singular («до одной минуты»).
    """
    index = plural_index(n)
    if case == "dat":
        if n >= 1000 and n % 1000 == 0:
            return forms[2]  # «к одному миллиону рублей»: after a round scale word, genitive plural
        return dative(forms[0], plural=index != 0)
    if case == "gen":
        return forms[1] if index == 0 else forms[2]
    if case == "acc" and index == 0:
        return accusative(forms[0])
    return forms[index]


def dative(noun: str, *, plural: bool) -> str:
    """Dative of a counted noun: «минута» → «минуте» / «минутам», «рубль» → «рублю» / «рублям»."""
    if noun == "евро":
        return noun
    if noun.endswith("ь"):
        return noun[:-1] + ("ям" if plural else "ю")
    if noun.endswith("а"):
        return noun[:-1] + ("ам" if plural else "е")
    if noun.endswith("я"):
        return noun[:-1] + ("ям" if plural else "е")
    return noun + ("ам" if plural else "у")


def accusative(noun: str) -> str:
    """Accusative singular of an inanimate noun: «минута» → «минуту», «неделя» → «неделю»."""
    if noun.endswith("а"):
        return noun[:-1] + "у"
    if noun.endswith("я"):
        return noun[:-1] + "ю"
    return noun


def _below_thousand(n: int, gender: Gender, case: Case) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    oblique = case in ("gen", "dat")  # 5-99 share their genitive and dative: пяти, двадцати
    if hundreds:
        hundreds_table = _HUNDREDS_DAT if case == "dat" else _HUNDREDS_GEN if oblique else _HUNDREDS_NOM
        words.append(hundreds_table[hundreds])
    if 10 <= rest <= 19:
        words.append((_TEENS_GEN if oblique else _TEENS_NOM)[rest - 10])
        return words
    tens, ones = divmod(rest, 10)
    if tens:
        words.append((_TENS_GEN if oblique else _TENS_NOM)[tens])
    if ones:
        words.append(_one_digit(ones, gender, case))
    return words


def _one_digit(digit: int, gender: Gender, case: Case) -> str:
    if case == "dat":
        return "одной" if digit == 1 and gender == "f" else _ONES_DAT[digit]
    if case == "gen":
        if digit == 1:
            return "одной" if gender == "f" else "одного"
        return _ONES_GEN[digit]
    if digit == 1:
        if case == "acc" and gender == "f":
            return "одну"
        return {"m": "один", "f": "одна", "n": "одно"}[gender]
    if digit == 2 and gender == "f":
        return "две"
    return _ONES_NOM[digit]


def cardinal(n: int, gender: Gender = "m", case: Case = "nom") -> str:
    """``n`` in words: ``cardinal(21, "f")`` is «двадцать одна», ``cardinal(5, case="gen")`` «пяти»."""
    if n < 0:
        return "минус " + cardinal(-n, gender, case)
    if n == 0:
        return {"gen": "ноля", "dat": "нулю"}.get(case, "ноль")
    if n > MAX_CARDINAL:
        return digits_one_by_one(str(n))
    words: list[str] = []
    rest = n
    for power, forms, scale_gender in _SCALES:
        count, rest = divmod(rest, power)
        if count:
            # 1000 is spoken «тысяча», 1990 «тысяча девятьсот девяносто»: no «одна» before it.
            if not (count == 1 and power == 1000):
                words += _below_thousand(count, scale_gender, case)
            words.append(agree(count, forms, case))
    words += _below_thousand(rest, gender, case)
    return " ".join(words)


def digits_one_by_one(digits: str) -> str:
    """«007» → «ноль ноль семь»: for groups whose leading zeros are spoken."""
    return " ".join(_ONES_NOM[int(d)] if d != "0" else "ноль" for d in digits)


def digit_group(digits: str, case: Case = "nom") -> str:
    """A group of a phone number or the minutes of a time: «05» → «ноль пять», «45» → «сорок пять»."""
    stripped = digits.lstrip("0")
    if len(stripped) > len(str(MAX_CARDINAL)):
        return digits_one_by_one(digits)  # and never int() of thousands of digits (Python refuses)
    zeros = len(digits) - len(stripped)
    if not stripped:
        return " ".join(["ноль"] * len(digits))
    head = ["ноль"] * zeros
    return " ".join([*head, cardinal(int(stripped), case=case)])


# --- ordinals -----------------------------------------------------------------------------------

# Ordinal form keys: case + gender or plural. "s" stems take the stressed «-ой» in the masculine
# nominative (второй, шестой), "h" stems the unstressed «-ый» (первый, пятый); «третий» is apart.
OrdinalForm = Literal[
    "nom_m", "nom_f", "nom_n", "gen_m", "gen_f", "dat_m", "dat_f", "acc_f", "ins_m", "prep_m",
    "prep_f", "nom_pl", "gen_pl", "ins_pl",
]  # fmt: skip
_HARD_ENDINGS: dict[str, str] = {
    "nom_m": "ый", "nom_f": "ая", "nom_n": "ое", "gen_m": "ого", "gen_f": "ой", "dat_m": "ому",
    "dat_f": "ой", "acc_f": "ую", "ins_m": "ым", "prep_m": "ом", "prep_f": "ой", "nom_pl": "ые",
    "gen_pl": "ых", "ins_pl": "ыми",
}  # fmt: skip
_THIRD_ENDINGS: dict[str, str] = {
    "nom_m": "ий", "nom_f": "ья", "nom_n": "ье", "gen_m": "ьего", "gen_f": "ьей", "dat_m": "ьему",
    "dat_f": "ьей", "acc_f": "ью", "ins_m": "ьим", "prep_m": "ьем", "prep_f": "ьей", "nom_pl": "ьи",
    "gen_pl": "ьих", "ins_pl": "ьими",
}  # fmt: skip
_UNIT_STEMS = ("нулев", "перв", "втор", "трет", "четвёрт", "пят", "шест", "седьм", "восьм", "девят")
_STRESSED = {"нулев", "втор", "шест", "седьм", "восьм", "сороков"}
_TEEN_STEMS = tuple(word[:-1] for word in _TEENS_NOM)
_TEN_STEMS = ("", "", "двадцат", "тридцат", "сороков", "пятидесят", "шестидесят", "семидесят",
              "восьмидесят", "девяност")  # fmt: skip
_HUNDRED_STEMS = ("", "сот", "двухсот", "трёхсот", "четырёхсот", "пятисот", "шестисот", "семисот",
                  "восьмисот", "девятисот")  # fmt: skip
_SCALE_STEMS = ((10**12, "триллионн"), (10**9, "миллиардн"), (10**6, "миллионн"), (10**3, "тысячн"))


def _ending(stem: str, form: OrdinalForm) -> str:
    if stem == "трет":
        return stem + _THIRD_ENDINGS[form]
    if form == "nom_m" and stem in _STRESSED:
        return stem + "ой"
    return stem + _HARD_ENDINGS[form]


def _compound_prefix(count: int) -> str:
    """The count glued before «тысячный»: 2 → «двух», 21 → «двадцатиодно», 100 → «сто»."""
    words = cardinal(count, case="gen").split()
    glued = ["одно" if w in ("одного", "одной") else "сто" if w == "ста" else w for w in words]
    return "".join(glued)


def ordinal(n: int, form: OrdinalForm = "nom_m") -> str:
    """``n`` as an ordinal: ``ordinal(2025, "prep_m")`` is «две тысячи двадцать пятом»."""
    if n < 0:
        return "минус " + ordinal(-n, form)
    if n == 0:
        return _ending("нулев", form)
    if n > MAX_CARDINAL:
        return digits_one_by_one(str(n))
    for power, scale_stem in _SCALE_STEMS:
        if n % power == 0:
            count = (n % (power * 1000)) // power if power < 10**12 else n // power
            head = n - count * power
            stem = scale_stem if count == 1 else _compound_prefix(count) + scale_stem
            return _join(head, _ending(stem, form))
    last_two = n % 100
    if last_two == 0:
        return _join(n - n % 1000, _ending(_HUNDRED_STEMS[(n % 1000) // 100], form))
    if last_two < 10:
        return _join(n - last_two, _ending(_UNIT_STEMS[last_two], form))
    if last_two < 20:
        return _join(n - last_two, _ending(_TEEN_STEMS[last_two - 10], form))
    if last_two % 10 == 0:
        return _join(n - last_two, _ending(_TEN_STEMS[last_two // 10], form))
    return _join(n - last_two % 10, _ending(_UNIT_STEMS[last_two % 10], form))


def _join(head: int, tail: str) -> str:
    return f"{cardinal(head)} {tail}" if head else tail


# --- decimals -----------------------------------------------------------------------------------

_FRACTION_STEMS = ("десят", "сот", "тысячн", "десятитысячн", "стотысячн", "миллионн")


def decimal(
    whole: int, fraction: str, case: Case = "nom", *, noun_follows: bool = False, gender: Gender = "m"
) -> str:
    """«3,5» → «три целых пять десятых»; genitive «трёх целых пяти десятых» (after «более»...).

    Both parts are feminine (целая, десятая). More than six fraction digits are read one by one.
    With a noun after it (``noun_follows``), 1,5 is «полтора» / «полторы» (``gender`` of the noun).
    """
    if whole == 1 and fraction == "5" and noun_follows:
        # «1,5 часа» is said «полтора часа», «1,5 минуты» «полторы минуты».
        if case in ("gen", "dat"):
            return "полутора"
        return "полторы" if gender == "f" else "полтора"
    whole_word = "целой" if case in ("gen", "dat") else "целая"
    if plural_index(whole) != 0:
        whole_word = "целым" if case == "dat" else "целых"
    head = f"{cardinal(whole, 'f', case)} {whole_word}"
    if len(fraction) > len(_FRACTION_STEMS):
        return f"{head} и {digits_one_by_one(fraction)}"
    count = int(fraction)
    stem = _FRACTION_STEMS[len(fraction) - 1]
    singular_ending = "ой" if case in ("gen", "dat") else "ая"
    tail = stem + (singular_ending if plural_index(count) == 0 else "ым" if case == "dat" else "ых")
    return f"{head} {cardinal(count, 'f', case)} {tail}"
