"""Hiding secrets in what is shown: kept apart from the settings so that an adapter which only
prints a URL in an error does not load pydantic and the whole settings model to do it."""

from __future__ import annotations

import re

_PASSWORD_RE = re.compile(r"(//[^/:@]*:)[^@/]*@")


def mask_url(url: str) -> str:
    """Hide the password of a URL like redis://user:pass@host."""
    return _PASSWORD_RE.sub(r"\1****@", url)
