"""RHVoice voice table: every alias lands on a permissively licensed voice; non-commercial never."""

from __future__ import annotations

import ctypes
import struct

import pytest

from voxshift.core.voices import OPENAI_VOICES, VOICE_STYLES
from voxshift.engines.rhvoice.binding import Callbacks, InitParams, SynthParams, VoiceInfo
from voxshift.engines.rhvoice.voices import (
    ALIASES,
    CC_BY_NC_ND,
    DEFAULT_VOICE,
    LICENCES,
    describe,
    is_permissive,
    licence_of,
    resolve_voice,
)

# As RHVoice 1.8 reports them (RHVoice_get_voices), every Russian voice Debian ships.
INSTALLED = (
    "Aleksandr", "Aleksandr-hq", "Anna", "Arina", "Artemiy", "Elena", "Evgeniy-Rus", "Irina",
    "Mikhail", "Pavel", "Tatiana", "Victoria", "Vitaliy", "Yuriy",
)  # fmt: skip
NON_COMMERCIAL = {
    "Arina",
    "Artemiy",
    "Evgeniy-Rus",
    "Mikhail",
    "Pavel",
    "Tatiana",
    "Victoria",
    "Vitaliy",
    "Yuriy",
}
LEGACY_VOICES = ("oksana", "jane", "omazh", "zahar", "ermil", "alena", "filipp")


@pytest.mark.parametrize("name", [*OPENAI_VOICES, *LEGACY_VOICES, *VOICE_STYLES])
def test_every_alias_maps_to_a_permissive_voice(name: str) -> None:
    voice = resolve_voice(name, INSTALLED)
    assert voice is not None and is_permissive(voice) and voice not in NON_COMMERCIAL


def test_genders_follow_the_requested_voice() -> None:
    assert resolve_voice("onyx", INSTALLED) == "Aleksandr-hq"
    assert resolve_voice("echo", INSTALLED) == "Aleksandr"
    assert resolve_voice("nova", INSTALLED) == "Anna"
    assert resolve_voice("oksana", INSTALLED) == "Irina"
    assert resolve_voice("ermil", INSTALLED) == "Aleksandr-hq"
    assert resolve_voice("ELENA", INSTALLED) == "Elena"  # RHVoice's own names, any case


@pytest.mark.parametrize("name", [None, "", "bogus", *(n.lower() for n in NON_COMMERCIAL)])
def test_unknown_and_non_commercial_names_get_the_default(name: str | None) -> None:
    assert resolve_voice(name, INSTALLED) == "Aleksandr-hq"


def test_default_missing_falls_back_to_another_permissive_voice() -> None:
    assert resolve_voice("onyx", ("Anna", "Arina")) == "Anna"
    assert resolve_voice(None, ("Arina", "Pavel")) is None  # only non-commercial voices: none served


def test_licences_match_debian_copyright() -> None:
    assert {name for name in INSTALLED if licence_of(name) == CC_BY_NC_ND} == NON_COMMERCIAL
    assert licence_of("Aleksandr-hq") == "CC-BY-SA-4.0"
    assert {licence_of(n) for n in ("Aleksandr", "Anna", "Elena", "Irina")} == {"LGPL-2.1+"}
    assert licence_of("Someone-new") == "unknown" and not is_permissive("Someone-new")
    assert set(ALIASES.values()) <= {k for k, v in LICENCES.items() if is_permissive(k)}
    assert DEFAULT_VOICE == "aleksandr-hq"


def test_describe_lists_every_voice_and_names_the_non_commercial() -> None:
    listed, barred = describe(INSTALLED)
    for name in INSTALLED:
        assert f"{name} {licence_of(name)}" in listed
    assert all(name in barred for name in NON_COMMERCIAL) and "never used" in barred
    assert "Anna" not in barred


@pytest.mark.skipif(struct.calcsize("P") != 8, reason="sizes for 64-bit ABIs")
def test_struct_layouts_match_rhvoice_h() -> None:
    # x86-64 sizes of the C structs in RHVoice 1.8's RHVoice.h: a wrong layout corrupts memory.
    assert ctypes.sizeof(Callbacks) == 9 * 8
    assert ctypes.sizeof(InitParams) == 3 * 8 + 72 + 8  # options padded to 8
    assert ctypes.sizeof(SynthParams) == 8 + 6 * 8 + 4 + 4 + 8 + 4 + 4  # 80
    assert ctypes.sizeof(VoiceInfo) == 32
    assert SynthParams.flags.offset == 76 and InitParams.options.offset == 96
