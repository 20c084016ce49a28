"""Language codes: what callers send (``auto``, ``ru``, ``ru-RU``, ``english``) to one ISO 639-1 code."""

from __future__ import annotations

import re
from collections.abc import Callable

from voxshift.errors import InvalidRequest

# Whisper's own table (``whisper/tokenizer.py``): the languages speech recognition knows, named as
# Whisper's verbose_json (and OpenAI's) names them; callers and vendors use the codes.
WHISPER_LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip
LANGUAGE_NAMES = WHISPER_LANGUAGES

# ISO 639-1, every assigned two-letter code: what a TTS request may name (a provider may still not
# speak it). Whisper's three-letter and legacy codes are added so both tables agree.
_ISO_639_1_CODES = """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
    hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
    lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
    or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
    ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
ISO_639_1: frozenset[str] = frozenset(_ISO_639_1_CODES.split())
KNOWN_LANGUAGES: frozenset[str] = ISO_639_1 | frozenset(WHISPER_LANGUAGES)
CODE_BY_NAME: dict[str, str] = {name: code for code, name in LANGUAGE_NAMES.items()}
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
    if text.lower() in CODE_BY_NAME:
        return CODE_BY_NAME[text.lower()]
    match = _CODE_RE.fullmatch(text)
    if not match:
        raise LanguageError(f"{value!r} is not a language code (use ISO 639-1 like 'ru' or 'en', or 'auto')")
    return match.group(1).lower()


def base_code(language: str) -> str:
    """The primary subtag, unchecked: ``ru-RU``, ``ru_RU``, `` RU `` -> ``ru``; ``""`` stays ``""``.

    For engines that match a code against their own table and answer "not supported" themselves.
    """
    return language.strip().lower().replace("_", "-").split("-", 1)[0]


def stt_language(value: str | None) -> str | None:
    """A transcription language: ``auto``/None (detect) or one Whisper knows; LanguageError else."""
    code = normalize_language(value)
    if code is not None and code not in WHISPER_LANGUAGES:
        raise LanguageError(
            f"language {value!r} is not one speech recognition knows; use an ISO 639-1 code such as "
            "'ru' or 'en', or 'auto'"
        )
    return code


def tts_language(value: str | None) -> str | None:
    """A synthesis language: None (guess from the text) or an assigned ISO 639-1 code."""
    code = normalize_language(value)
    if code is not None and code not in KNOWN_LANGUAGES:
        raise LanguageError(f"language {value!r} is not a language code (use ISO 639-1 like 'ru' or 'en')")
    return code


def checked_language(check: Callable[[str | None], str | None], value: str | None) -> str | None:
    """``check(value)``, a LanguageError becoming the request's mistake: InvalidRequest on ``language``."""
    try:
        return check(value)
    except LanguageError as exc:
        raise InvalidRequest(str(exc), param="language") from None


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def guess_text_language(text: str, default: str = "ru") -> str:
    """Cheap script-based guess for TTS requests that do not name a language (the OpenAI API has none)."""
    cyrillic = len(_CYRILLIC.findall(text))
    latin = len(_LATIN.findall(text))
    if cyrillic == 0 and latin == 0:
        return default
    return "ru" if cyrillic >= latin else "en"
