"""Text-to-speech with the espeak-ng binary: robotic, but ~100 languages (Russian included) and no model.

The text goes to the process on stdin (``--stdin``), never on the command line: no shell, no
argument injection (text starting with "-"), no ARG_MAX limit. The process is started with
``posix_spawn`` (never fork: see ``engines.spawn``) from an inference-pool worker, so the pool bounds
how many run at once and each has a deadline after which it is killed.

Voice names: OpenAI's names pick an espeak-ng variant by the gender OpenAI's voices sound
(onyx/echo/fable/ash -> male ``m3``; nova/shimmer/alloy/coral/sage/ballad/verse -> female ``f3``),
and espeak-ng's own variant names (``m1``..``m7``, ``f1``..``f5``, ``klatt``...) are accepted too.
No voice means espeak-ng's default for the language.
"""

from __future__ import annotations

import re
import shutil
import struct
import threading

from voxshift.config import Settings
from voxshift.engines.base import Availability, EngineInfo, Speech, TTSRequest
from voxshift.engines.pool import InferencePool
from voxshift.engines.spawn import SpawnTimeout, run_process
from voxshift.errors import EmptyInput, ProviderError, ProviderTimeout, ProviderUnavailable

OPENAI_VOICE_VARIANTS: dict[str, str] = {
    **dict.fromkeys(("onyx", "echo", "fable", "ash"), "m3"),
    **dict.fromkeys(("nova", "shimmer", "alloy", "coral", "sage", "ballad", "verse"), "f3"),
}
DEFAULT_WPM = 175  # espeak-ng's own default rate = speed 1.0
MIN_WPM, MAX_WPM = 80, 450  # below/above this espeak-ng is unintelligible
_LIST_TIMEOUT_S = 10.0
_OTHER_LANGUAGE = re.compile(r"\(([A-Za-z0-9-]+) \d+\)")

# Parsed `--voices` output per binary path: (languages, variants). Listing runs a process, so it
# happens once per process, not on every info() the chain makes.
_Catalogue = tuple[frozenset[str], dict[str, str]]  # (language codes, lower-case variant -> file name)
_CATALOGUES: dict[str, _Catalogue] = {}
_CATALOGUE_LOCK = threading.Lock()


def _run_list(binary: str, *args: str) -> str:
    result = run_process([binary, *args], timeout_s=_LIST_TIMEOUT_S)
    if result.returncode != 0:
        raise OSError(f"{binary} {' '.join(args)} exited with {result.returncode}")
    return result.stdout.decode("utf-8", "replace")


def parse_voice_list(text: str) -> frozenset[str]:
    """Language codes from ``espeak-ng --voices``: each voice's own and its "Other Languages"."""
    codes: set[str] = set()
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 2:
            continue
        codes.add(parts[1].lower())
        codes.update(code.lower() for code in _OTHER_LANGUAGE.findall(line))
    return frozenset(codes)


def parse_variant_list(text: str) -> dict[str, str]:
    """Variant ids (the file name after ``!v/``, which is case-sensitive on disk) from
    ``espeak-ng --voices=variant``, keyed by their lower-case spelling for lookup."""
    return {name.lower(): name for name in re.findall(r"!v/(\S+)", text)}


def _catalogue(binary: str) -> _Catalogue:
    with _CATALOGUE_LOCK:
        cached = _CATALOGUES.get(binary)
        if cached is None:
            languages = parse_voice_list(_run_list(binary, "--voices"))
            variants = parse_variant_list(_run_list(binary, "--voices=variant"))
            cached = _CATALOGUES[binary] = (languages, variants)
        return cached


def parse_wav(data: bytes) -> Speech:
    """espeak-ng's WAV on stdout: it cannot seek back, so the RIFF/data sizes are placeholders
    (0x7ffff000); walk the chunks and take everything after ``data`` as the PCM."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if (fmt, channels, bits) != (1, 1, 16):
                raise ValueError(f"unexpected WAV format {fmt}/{channels} ch/{bits} bit")
        elif chunk_id == b"data":
            if rate is None:
                raise ValueError("WAV data before its fmt chunk")
            pcm = data[body:]
            return Speech(pcm=pcm[: len(pcm) // 2 * 2], sample_rate=rate)
        pos = body + size + (size & 1)
    raise ValueError("no data chunk in the WAV stream")


def _normalise(code: str) -> str:
    return code.strip().lower().replace("_", "-")


class EspeakTTS:
    name = "espeak"

    def __init__(self, settings: Settings, pool: InferencePool) -> None:
        self._settings = settings
        self._pool = pool

    @property
    def binary(self) -> str | None:
        return shutil.which(self._settings.espeak_binary)

    def _voices(self) -> _Catalogue:
        binary = self.binary
        if binary is None:
            raise ProviderUnavailable(self.name, self._missing())
        try:
            return _catalogue(binary)
        except (OSError, SpawnTimeout) as exc:
            raise ProviderUnavailable(self.name, f"cannot list voices of {binary}: {exc}") from exc

    def _missing(self) -> str:
        return f"{self._settings.espeak_binary} not installed: apt-get install espeak-ng"

    def info(self) -> EngineInfo:
        try:
            languages, variants = self._voices()
        except ProviderUnavailable as exc:
            return EngineInfo(self.name, "tts", Availability(False, exc.message.removeprefix("espeak: ")))
        return EngineInfo(
            name=self.name,
            kind="tts",
            availability=Availability(True),
            languages=tuple(sorted(languages)),
            voices=(*OPENAI_VOICE_VARIANTS, *sorted(variants)),
            details={"binary": str(self.binary), "sample_rate": "22050"},
        )

    def resolve_voice(self, language: str, voice: str | None) -> str:
        """The ``-v`` argument, e.g. ``ru+f3``; ProviderUnavailable for what espeak-ng lacks."""
        languages, variants = self._voices()
        code = _normalise(language)
        if code not in languages:
            code = code.split("-", 1)[0]
            if code not in languages:
                # Unavailable rather than a plain error: nothing is broken, espeak-ng just lacks
                # this language, so the chain moves on without counting a failure.
                raise ProviderUnavailable(self.name, f"language {language} not supported")
        if voice is None:
            return code
        name = voice.strip().lower()
        variant = OPENAI_VOICE_VARIANTS.get(name) or variants.get(name)
        if variant is None:
            raise ProviderUnavailable(
                self.name, f"voice {voice!r} not available (use an OpenAI voice name or an espeak-ng variant)"
            )
        return f"{code}+{variant}"

    async def synthesize(self, request: TTSRequest) -> Speech:
        if not request.text.strip():
            raise EmptyInput("the text is empty", param="input")
        voice = self.resolve_voice(request.language, request.voice)
        binary = self.binary
        if binary is None:
            raise ProviderUnavailable(self.name, self._missing())
        wpm = max(MIN_WPM, min(MAX_WPM, round(DEFAULT_WPM * request.speed)))
        argv = [binary, "--stdin", "--stdout", "-b", "1", "-v", voice, "-s", str(wpm)]
        return await self._pool.run(self._synthesize_sync, argv, request.text)

    def _synthesize_sync(self, argv: list[str], text: str) -> Speech:
        timeout_s = self._settings.timeout_for(self.name)
        try:
            result = run_process(argv, text.encode("utf-8"), timeout_s=timeout_s)
        except SpawnTimeout as exc:
            raise ProviderTimeout(self.name, f"espeak-ng killed: {exc}") from exc
        except OSError as exc:
            raise ProviderUnavailable(self.name, f"cannot run {argv[0]}: {exc}") from exc
        if result.returncode != 0:
            lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = lines[0] if lines else "no message"
            raise ProviderError(self.name, f"espeak-ng exited with {result.returncode}: {detail}")
        try:
            speech = parse_wav(result.stdout)
        except (ValueError, struct.error) as exc:
            raise ProviderError(self.name, f"unreadable output: {exc}") from exc
        if not speech.pcm:
            # Nothing speakable in the text: the caller's problem, not a failure of espeak-ng.
            raise EmptyInput("the text contains nothing to speak", param="input")
        return speech
