"""Pure input checks: language codes per operation, TTS text, long text split for synthesis."""

from __future__ import annotations

import pytest

from voxshift.core.language import ISO_639_1, LanguageError, stt_language, tts_language
from voxshift.core.speech_text import SpeechTextError, clean_speech_text
from voxshift.core.text_chunks import split_for_synthesis


@pytest.mark.parametrize(
    ("value", "code"),
    [(None, None), ("auto", None), ("", None), ("ru", "ru"), ("ru-RU", "ru"), ("en_US", "en"),
     ("Russian", "ru"), ("haw", "haw"), ("yue", "yue")],
)  # fmt: skip
def test_stt_languages_whisper_knows(value: str | None, code: str | None) -> None:
    assert stt_language(value) == code


@pytest.mark.parametrize("value", ["xx", "zz-ZZ", "klingon", "12", "ab", "eo"])
def test_stt_languages_whisper_does_not_know_are_refused_by_name(value: str) -> None:
    # "ab" (Abkhaz) and "eo" (Esperanto) are real ISO codes, but no recogniser here knows them.
    with pytest.raises(LanguageError, match=repr(value)):
        stt_language(value)


def test_tts_takes_any_assigned_iso_639_1_code_and_nothing_else() -> None:
    assert len(ISO_639_1) == 184
    assert tts_language("eo") == "eo" and tts_language("uk-UA") == "uk" and tts_language(None) is None
    for bad in ("xx", "zz-ZZ", "qq", "1a"):
        with pytest.raises(LanguageError):
            tts_language(bad)


def test_control_characters_become_spaces_and_whitespace_stays() -> None:
    assert clean_speech_text("hello\x00world\x1b[0m\x7f\x85!") == "hello world [0m  !"
    assert clean_speech_text("line one\nline two\tend\r\n") == "line one\nline two\tend\r\n"
    assert clean_speech_text("Привет, мир 👋") == "Привет, мир 👋"


def test_a_lone_surrogate_is_refused_with_its_position() -> None:
    with pytest.raises(SpeechTextError, match=r"position 3: .*U\+DCFF"):
        clean_speech_text("abc\udcffdef")
    with pytest.raises(SpeechTextError, match=r"U\+D800"):
        clean_speech_text("\ud800")


def test_pieces_end_at_the_strongest_boundary_under_the_limit() -> None:
    text = "Hello there. How are you? Fine, thanks; and you — well."
    assert split_for_synthesis(text, 20) == [
        "Hello there.",
        "How are you?",
        "Fine, thanks;",
        "and you — well.",
    ]
    assert split_for_synthesis(text, 30) == ["Hello there. How are you?", "Fine, thanks; and you — well."]
    assert split_for_synthesis(text, 1000) == [text]
    assert split_for_synthesis("Привет, мир! Как дела? Всё хорошо.", 15) == [
        "Привет, мир!",
        "Как дела?",
        "Всё хорошо.",
    ]


@pytest.mark.parametrize("text", ["a " * 2048, "x" * 600, "word, " * 300, "Ends. " * 400, "  \n "])
def test_pieces_are_bounded_non_empty_and_lose_nothing(text: str) -> None:
    pieces = split_for_synthesis(text, 250)
    assert all(0 < len(p) <= 250 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "").strip()
