"""Language codes: what callers send (``auto``, ``ru``, ``ru-RU``, ``english``) to one ISO 639-1 code."""

from __future__ import annotations

import re

# Whisper's verbose_json (and OpenAI's) names languages in full; callers and vendors use codes.
LANGUAGE_NAMES: dict[str, str] = {
    "en": "english", "ru": "russian", "de": "german", "fr": "french", "es": "spanish",
    "it": "italian", "pt": "portuguese", "nl": "dutch", "pl": "polish", "uk": "ukrainian",
    "tr": "turkish", "zh": "chinese", "ja": "japanese", "ko": "korean", "ar": "arabic",
    "hi": "hindi", "sv": "swedish", "fi": "finnish", "cs": "czech", "kk": "kazakh",
    "uz": "uzbek", "he": "hebrew", "el": "greek", "da": "danish", "no": "norwegian",
    "hu": "hungarian", "ro": "romanian", "bg": "bulgarian", "be": "belarusian", "sr": "serbian",
    "hr": "croatian", "sk": "slovak", "sl": "slovenian", "lt": "lithuanian", "lv": "latvian",
    "et": "estonian", "vi": "vietnamese", "th": "thai", "id": "indonesian", "ms": "malay",
    "fa": "persian", "ca": "catalan", "ka": "georgian", "hy": "armenian", "az": "azerbaijani",
}  # fmt: skip
_BY_NAME = {name: code for code, name in LANGUAGE_NAMES.items()}
_CODE_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{2,8})*$")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")


class LanguageError(ValueError):
    pass


def normalize_language(value: str | None, *, allow_auto: bool = True) -> str | None:
    """``None``/``auto`` -> None (detect); ``ru-RU`` -> ``ru``; ``Russian`` -> ``ru``."""
    if value is None:
        return None
    text = value.strip()
    if text == "" or text.lower() == "auto":
        if allow_auto:
            return None
        raise LanguageError("a language is required here (e.g. ru, en)")
    if text.lower() in _BY_NAME:
        return _BY_NAME[text.lower()]
    match = _CODE_RE.fullmatch(text)
    if not match:
        raise LanguageError(f"{value!r} is not a language code (use ISO 639-1 like 'ru' or 'en', or 'auto')")
    return match.group(1).lower()


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def guess_text_language(text: str, default: str = "ru") -> str:
    """Cheap script-based guess for TTS requests that do not name a language (the OpenAI API has none)."""
    cyrillic = len(_CYRILLIC.findall(text))
    latin = len(_LATIN.findall(text))
    if cyrillic == 0 and latin == 0:
        return default
    return "ru" if cyrillic >= latin else "en"
