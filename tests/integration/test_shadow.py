"""Shadow runs: legacy answers the user; v2 transcribes the same audio in the background, compared.

The shadow must never change a response; its comparisons land in the migration metrics.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import speech_to_wav
from voxshift.config import Settings
from voxshift.engines.base import TTSRequest
from voxshift.services.wiring.runtime import open_runtime

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

SENTENCES = ("The weather is nice today.", "Please call me back tomorrow morning.")


@pytest.fixture(scope="module")
def clips(piper: Any) -> list[bytes]:
    return [speech_to_wav(asyncio.run(piper.synthesize(TTSRequest(s, "en")))) for s in SENTENCES]


def make_settings(tmp_path: Path, base: Settings, **fields: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        whisper_model_dir=base.whisper_model_dir,
        workers=2,
        voice_v2_enabled=True,
        voice_v2_rollout_percentage=0,  # every user on legacy: the shadow's case
        voice_v2_features={"stt_enabled": True, "tts_enabled": True},
        **fields,
    )


async def test_shadow_compares_without_changing_the_answer(
    tmp_path: Path, settings: Settings, clips: list[bytes], whisper: Any
) -> None:
    # The same requests with and without shadowing: identical answers (tiny.en is deterministic).
    plain = await open_runtime(make_settings(tmp_path / "plain", settings))
    await plain.start(watch_flags=False)
    try:
        baseline = [
            (await plain.router.transcribe_audio(c, language="en", user_id=f"u{i}")).result.text
            for i, c in enumerate(clips)
        ]
    finally:
        await plain.aclose()

    runtime = await open_runtime(make_settings(tmp_path / "shadow", settings, shadow_sample_rate=1.0))
    await runtime.start(watch_flags=False)
    try:
        answers = []
        for i, clip in enumerate(clips):
            routed = await runtime.router.transcribe_audio(clip, language="en", user_id=f"u{i}")
            assert routed.system_used == "legacy" and not routed.fallback
            answers.append(routed.result.text)
        assert answers == baseline
        await asyncio.wait_for(runtime.shadow.drain(), 60)
        assert runtime.shadow.stats.completed == len(clips) and runtime.shadow.stats.dropped == 0
        await runtime.metrics.flush()
        data = await runtime.metrics.get_migration_dashboard_data(hours=1)
        shadow = data["shadow"]["stt"]
        assert shadow["comparisons"] == len(clips)
        assert shadow["v2_success_rate"] == 1.0
        # Whisper base and tiny.en agree closely on clear Piper speech.
        assert shadow["mean_wer"] is not None and shadow["mean_wer"] <= 0.3, shadow
        # Only legacy served users: no v2 operation was recorded as a user request.
        assert data["latency_metrics"]["stt"]["voice_v2"]["count"] == 0
        assert data["latency_metrics"]["stt"]["legacy"]["count"] == len(clips)
    finally:
        await runtime.aclose()


async def test_a_full_shadow_queue_drops_and_counts_never_waits(
    tmp_path: Path, settings: Settings, clips: list[bytes], whisper: Any
) -> None:
    runtime = await open_runtime(
        make_settings(tmp_path, settings, shadow_sample_rate=1.0, shadow_queue_size=1)
    )
    # Not started: nothing consumes the queue, so the second submission finds it full.
    try:
        shadow = runtime.shadow
        assert shadow.maybe_submit(clips[0], language="en", legacy_text="x", legacy_ms=1.0, filename=None)
        assert not shadow.maybe_submit(clips[1], language="en", legacy_text="y", legacy_ms=1.0, filename=None)
        assert shadow.stats.submitted == 1 and shadow.stats.dropped == 1
        await runtime.metrics.flush()
        text, _ = runtime.metrics.render_prometheus()
        assert b"shadow" in text and b"dropped" in text
    finally:
        await runtime.aclose()
