"""English rewrites for Piper: currency order and numeric dates; everything else untouched."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxshift.core.text_norm_en import normalize_en

CASES = [
    ("It costs $5.", "It costs 5 dollars."),
    ("$1", "1 dollar"),
    ("$25,000", "25,000 dollars"),
    ("$2.50", "2 dollars 50 cents"),
    ("$2.5", "2 dollars 50 cents"),
    ("$0.01", "1 cent"),
    ("$1.00", "1 dollar"),
    ("$3M", "3 million dollars"),
    ("$3.5 billion", "3.5 billion dollars"),
    ("€10", "10 euros"),
    ("£3.20", "3 pounds 20 pence"),
    ("on 2026-03-15", "on March 15th, 2026"),
    ("3/15/2026", "March 15th, 2026"),
    ("15/3/2026", "March 15th, 2026"),
    ("1/2/2025", "January 2nd, 2025"),
    ("2026-13-40", "2026-13-40"),
    ("24/7 support at 15:30, 12.5% more", "24/7 support at 15:30, 12.5% more"),
    ("Hello, world!", "Hello, world!"),
]


@pytest.mark.parametrize(("written", "spoken"), CASES)
def test_spoken_form(written: str, spoken: str) -> None:
    assert normalize_en(written) == spoken


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_idempotent(text: str) -> None:
    once = normalize_en(text)
    assert normalize_en(once) == once
