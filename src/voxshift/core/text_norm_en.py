"""English text rewrites for Piper: the few shapes its espeak-ng phonemizer reads wrong.

espeak-ng already reads English cardinals, decimals, percent, clock times and «1st» well, so this
does not spell numbers out. It fixes what it gets wrong (checked with ``espeak-ng -v en-us -x``):
a currency sign before the number («$25,000» is read «dollar twenty five thousand») and slashed
or ISO dates («3/15/2026» is read «three slash fifteen slash...»). Pure and idempotent.
"""

from __future__ import annotations

import re

_CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    # sign: singular, plural, hundredth singular, hundredth plural
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
}
_SCALES = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion"}
_SCALES.update({word: word for word in ("thousand", "million", "billion", "trillion")})
_MONEY = re.compile(
    r"(?<![\w$€£])(?P<sign>[$€£])\s?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<cents>\d{1,2}))?(?!\d)"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|bn|mn|[kKmMbB])(?![\w]))?"
)


def _speak_money(m: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCIES[m["sign"]]
    amount = m["int"]
    if m["scale"]:
        scale = _SCALES[m["scale"].lower()]
        number = amount + (f".{m['cents']}" if m["cents"] else "")
        return f"{number} {scale} {many}"  # «$3.5 million» → «3.5 million dollars»
    hundredths = int(m["cents"].ljust(2, "0")) if m["cents"] else 0
    cents_spoken = f"{hundredths} {cent if hundredths == 1 else cents}"
    if amount == "0" and hundredths:
        return cents_spoken  # «$0.01» is «1 cent»
    spoken = f"{amount} {one if amount == '1' else many}"
    return f"{spoken} {cents_spoken}" if hundredths else spoken


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip
# ISO dates (2026-03-15) and slashed US dates (3/15/2026); a first number above 12 means day/month.
_ISO_DATE = re.compile(r"(?<![\w/-])(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?![\w/-])")
_SLASH_DATE = re.compile(r"(?<![\w/])(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4}|\d{2})(?![\w/])")


def _ordinal_suffix(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _date(year: str, month: int, day: int, original: str) -> str:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return original
    return f"{_MONTHS[month - 1]} {day}{_ordinal_suffix(day)}, {year}"


def _speak_iso(m: re.Match[str]) -> str:
    return _date(m["y"], int(m["m"]), int(m["d"]), m.group())


def _speak_slashed(m: re.Match[str]) -> str:
    a, b = int(m["a"]), int(m["b"])
    month, day = (b, a) if a > 12 else (a, b)
    return _date(m["y"], month, day, m.group())


def normalize_en(text: str) -> str:
    """English ``text`` with currency amounts and numeric dates in the order they are spoken."""
    if not any("0" <= ch <= "9" for ch in text):
        return text
    if "$" in text or "€" in text or "£" in text:
        text = _MONEY.sub(_speak_money, text)
    if "-" in text:
        text = _ISO_DATE.sub(_speak_iso, text)
    if "/" in text:
        text = _SLASH_DATE.sub(_speak_slashed, text)
    return text
