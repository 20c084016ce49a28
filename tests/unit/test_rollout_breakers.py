"""v2's breakers as the controller sees them: an operation is down when every provider of its
chain has an open breaker, and the watch measures how long that has lasted without a break."""

from __future__ import annotations

from collections.abc import Mapping

from voxshift.services.rollout.evaluate import BreakerWatch
from voxshift.services.wiring.rollout import chain_breakers

CHAINS = {"stt": ["whisper", "openai"], "tts": ["piper", "espeak"]}


def test_an_operation_is_down_only_when_every_provider_is_open() -> None:
    assert chain_breakers(CHAINS, {"whisper": "open", "openai": "closed"}) == {"stt": False, "tts": False}
    assert chain_breakers(CHAINS, {"whisper": "open", "openai": "open"}) == {"stt": True, "tts": False}
    assert chain_breakers(CHAINS, {"whisper": "open", "openai": "half_open"})["stt"] is False
    assert chain_breakers({"stt": []}, {}) == {"stt": False}  # no providers: nothing to be open


def test_the_watch_measures_an_unbroken_outage_on_the_operations_in_use() -> None:
    states: dict[str, bool] = {"stt": False, "tts": True}

    def source() -> Mapping[str, bool]:
        return states

    watch = BreakerWatch(source)
    stt = frozenset({"stt"})
    assert watch.open_for(100.0, stt) == 0.0  # tts is down, but this step sends only STT to v2
    states["stt"] = True
    assert watch.open_for(110.0, stt) == 0.0  # first seen open: the clock starts
    assert watch.open_for(140.0, stt) == 30.0
    states["stt"] = False
    assert watch.open_for(150.0, stt) == 0.0  # closed once: the outage is over
    states["stt"] = True
    assert watch.open_for(160.0, stt) == 0.0
    assert watch.open_for(165.0, stt) == 5.0


def test_no_source_or_a_failing_source_is_not_an_outage() -> None:
    assert BreakerWatch(None).open_for(1.0, frozenset({"stt"})) == 0.0

    def broken() -> Mapping[str, bool]:
        raise RuntimeError("registry gone")

    assert BreakerWatch(broken).open_for(1.0, frozenset({"stt"})) == 0.0
