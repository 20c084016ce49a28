from __future__ import annotations

import jiwer
import pytest

from voxshift.core.text_metrics import normalize_words, word_error_rate


def test_normalisation_drops_case_and_punctuation() -> None:
    assert normalize_words("Hello, World! It's  fine.") == ["hello", "world", "its", "fine"]
    assert normalize_words("Привет, мир!") == ["привет", "мир"]


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("the cat sat on the mat", "the cat sat on the mat"),
        ("the cat sat on the mat", "the cat sit on mat"),
        ("one two three", "one two three four five"),
        ("a b c d e f", "f e d c b a"),
        ("привет как дела", "привет как дела сегодня"),
    ],
)
def test_matches_jiwer_on_normalised_text(reference: str, hypothesis: str) -> None:
    expected = jiwer.wer(" ".join(normalize_words(reference)), " ".join(normalize_words(hypothesis)))
    assert word_error_rate(reference, hypothesis) == pytest.approx(expected)


def test_empty_cases() -> None:
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "something") == 1.0
    assert word_error_rate("two words", "") == 1.0
