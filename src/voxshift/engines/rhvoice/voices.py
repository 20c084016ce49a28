"""Which RHVoice voices voxshift serves, under which licence, and what each requested name means.

Licences are Debian's copyright file for rhvoice-russian 1.8.0. Only permissively licensed voices
(LGPL-2.1+, CC-BY-SA-4.0) are ever a default or an alias target: the non-commercial ones
(CC-BY-NC-ND-4.0) must not speak for a commercial platform, so they are listed with their licence
and never used, even when asked for by name.
"""

from __future__ import annotations

from collections.abc import Iterable

LGPL = "LGPL-2.1+"
CC_BY_SA = "CC-BY-SA-4.0"
CC_BY_NC_ND = "CC-BY-NC-ND-4.0"
UNKNOWN = "unknown"

LICENCES: dict[str, str] = {
    "aleksandr": LGPL, "anna": LGPL, "elena": LGPL, "irina": LGPL, "aleksandr-hq": CC_BY_SA,
    **dict.fromkeys(
        ("arina", "artemiy", "evgeniy-rus", "mikhail", "pavel", "tatiana", "victoria", "vitaliy", "yuriy"),
        CC_BY_NC_ND,
    ),
}  # fmt: skip
PERMISSIVE_LICENCES = frozenset({LGPL, CC_BY_SA})

# The clearest voice by measured round-trip WER (issue 14: Aleksandr-hq 0.03, Aleksandr 0.07,
# Anna 0.10, Elena and Irina 0.13), used for unknown names and no name.
DEFAULT_VOICE = "aleksandr-hq"
# OpenAI's voices by the gender they sound, the seed's styles, and the legacy's Yandex voices
# (TTSConfig.voice): each to a permissive voice of the same gender, the clearer ones first.
ALIASES: dict[str, str] = {
    "onyx": "aleksandr-hq", "ballad": "aleksandr-hq", "fable": "aleksandr", "echo": "aleksandr",
    "ash": "aleksandr", "verse": "aleksandr",
    "nova": "anna", "alloy": "anna", "shimmer": "elena", "coral": "irina", "sage": "irina",
    "male": "aleksandr-hq", "female": "anna", "neutral": "anna",
    "ermil": "aleksandr-hq", "filipp": "aleksandr", "zahar": "aleksandr", "madirus": "aleksandr",
    "alena": "anna", "jane": "elena", "oksana": "irina", "omazh": "elena",
}  # fmt: skip


def licence_of(voice: str) -> str:
    return LICENCES.get(voice.lower(), UNKNOWN)


def is_permissive(voice: str) -> bool:
    return licence_of(voice) in PERMISSIVE_LICENCES


def resolve_voice(requested: str | None, installed: Iterable[str]) -> str | None:
    """The installed voice (RHVoice's spelling) that speaks for ``requested``; None when no
    permissively licensed voice is installed at all."""
    by_key = {name.lower(): name for name in installed if is_permissive(name)}
    wanted = (requested or "").strip().lower()
    for key in (wanted, ALIASES.get(wanted, ""), DEFAULT_VOICE):
        if key in by_key:
            return by_key[key]
    return by_key[min(by_key)] if by_key else None


def describe(installed: Iterable[str]) -> tuple[str, str]:
    """(every installed voice with its licence, the non-commercial ones) for `voxshift engines`."""
    names = sorted(installed, key=str.lower)
    listed = "; ".join(f"{name} {licence_of(name)}" for name in names)
    barred = [name for name in names if not is_permissive(name)]
    note = ", ".join(barred) + " (non-commercial or unknown licence: never used)" if barred else "none"
    return listed, note
