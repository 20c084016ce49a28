"""Word error rate between two transcripts, for shadow runs (v2 vs legacy on the same audio).

Pure and dependency-free (jiwer is a test-only dependency). Normalisation is deliberately simple and
language-neutral: case-folded, punctuation dropped, whitespace collapsed, so "Hello, world!" and
"hello world" agree. Digits are kept as written: "5" vs "five" counts as a difference.
"""

from __future__ import annotations

import unicodedata


def normalize_words(text: str) -> list[str]:
    kept = []
    for ch in text.casefold():
        category = unicodedata.category(ch)
        if category.startswith(("L", "N", "M")) or ch == "'":
            kept.append(ch)
        else:
            kept.append(" ")
    return "".join(kept).replace("'", "").split()


def word_edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions cost 1)."""
    if not reference:
        return len(hypothesis)
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of ``hypothesis`` against ``reference``; 0.0 when both are empty, 1.0 when only the
    reference is (so an empty legacy transcript vs a non-empty v2 one is full disagreement)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return word_edit_distance(ref, hyp) / len(ref)
