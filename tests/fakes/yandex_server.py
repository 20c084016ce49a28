"""A fake Yandex SpeechKit v1: ``/speech/v1/stt:recognize`` and ``/speech/v1/tts:synthesize``.

Speaks the documented wire format: ``Authorization: Api-Key <key>`` (or ``Bearer <IAM token>``,
which needs ``folderId``); recognition takes the raw audio as the body and its settings as query
parameters and answers ``{"result": "..."}``; synthesis takes a URL-encoded form and answers raw
audio; errors are ``{"error_code": "...", "error_message": "..."}``. The documented limits are
enforced: 1 MB and 30 s of audio, 5000 characters of text and a 15 KB synthesis body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes import FakeServer, Recorded, speech_like_pcm, text_response

STT_LANGS = {
    "ru-RU", "en-US", "de-DE", "es-ES", "fi-FI", "fr-FR", "he-IL", "it-IT", "kk-KZ", "nl-NL",
    "pl-PL", "pt-PT", "pt-BR", "sv-SE", "tr-TR", "uz-UZ",
}  # fmt: skip
TTS_VOICES = {
    "ru-RU": {"alena", "filipp", "ermil", "jane", "madirus", "omazh", "zahar"},
    "en-US": {"john"}, "de-DE": {"lea"}, "kk-KZ": {"madi", "amira"}, "uz-UZ": {"nigora"}, "he-IL": {"naomi"},
}  # fmt: skip
RATES = {"48000", "16000", "8000"}
FORMATS = {"lpcm", "oggopus", "mp3"}


class FakeYandex(FakeServer):
    def __init__(
        self, api_key: str = "AQVN-test-api-key", iam_token: str = "t1.test-iam-token",
        folder_id: str = "b1g-test-folder",
    ) -> None:  # fmt: skip
        super().__init__()
        self.api_key = api_key
        self.iam_token = iam_token
        self.folder_id = folder_id
        self.reset_state()

    def reset_state(self) -> None:
        self.transcript = "привет мир"

    @property
    def stt_url(self) -> str:
        return self.origin + "/speech/v1/stt:recognize"

    @property
    def tts_url(self) -> str:
        return self.origin + "/speech/v1/tts:synthesize"

    def routes(self) -> list[Route]:
        return [
            Route("/speech/v1/stt:recognize", self._recognize, methods=["POST"]),
            Route("/speech/v1/tts:synthesize", self._synthesize, methods=["POST"]),
        ]

    @staticmethod
    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error_code": code, "error_message": message}, status_code=status)

    def bad_request(self, message: str) -> JSONResponse:
        return self.error(400, "BAD_REQUEST", message)

    async def _gate(
        self, request: Request, kind: str, folder_id: str | None
    ) -> tuple[Recorded, Response | None]:
        entry = await self.record(request)
        fault = await self.take_fault()
        if fault is not None and fault.kind == "status":
            code = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(fault.status, "INTERNAL")
            return entry, self.error(fault.status, code, fault.message or f"{code.lower()}: try again later")
        if fault is not None and fault.kind == "malformed":
            if kind == "tts":
                return entry, Response(b"\x00\x01\x02", media_type="audio/x-pcm")
            return entry, text_response("<html>502 Bad Gateway</html>")
        auth = entry.headers.get("authorization", "")
        if auth.startswith("Api-Key "):
            if auth.removeprefix("Api-Key ") != self.api_key:
                return entry, self.error(401, "UNAUTHORIZED", "Unknown api key")
        elif auth.startswith("Bearer "):
            if auth.removeprefix("Bearer ") != self.iam_token:
                return entry, self.error(401, "UNAUTHORIZED", "The token is invalid")
            if kind == "stt" and folder_id != self.folder_id:  # synthesis sends it in the form
                return entry, self.error(403, "PERMISSION_DENIED", "folderId is missing or not accessible")
        else:
            return entry, self.error(401, "UNAUTHORIZED", "Authorization header is missing or malformed")
        return entry, None

    async def _recognize(self, request: Request) -> Response:
        entry, refusal = await self._gate(request, "stt", request.query_params.get("folderId"))
        if refusal is not None:
            return refusal
        query = entry.query
        lang = query.get("lang", "ru-RU")
        if lang not in STT_LANGS:
            return self.bad_request(f"Unsupported lang: {lang}")
        if query.get("topic", "general") not in {"general", "general:rc", "general:deprecated"}:
            return self.bad_request(f"Unsupported topic: {query['topic']}")
        audio_format = query.get("format", "oggopus")
        if audio_format not in FORMATS:
            return self.bad_request(f"Unsupported format: {audio_format}")
        rate = query.get("sampleRateHertz", "48000")
        if audio_format == "lpcm" and rate not in RATES:
            return self.bad_request(f"Unsupported sampleRateHertz: {rate}")
        audio = entry.body
        if not audio:
            return self.bad_request("audio is empty")
        if len(audio) > 1024 * 1024:
            return self.bad_request("audio size should be less than 1MB")
        if audio_format == "lpcm":
            if len(audio) % 2:
                return self.bad_request("lpcm audio must consist of 16-bit samples")
            if len(audio) / 2 / int(rate) > 30:
                return self.bad_request("audio duration should be less than 30s")
        return JSONResponse({"result": self.transcript})

    async def _synthesize(self, request: Request) -> Response:
        entry, refusal = await self._gate(request, "tts", None)
        if refusal is not None:
            return refusal
        field = {k: v[-1] for k, v in entry.form.items()}
        if (
            entry.headers.get("authorization", "").startswith("Bearer ")
            and field.get("folderId") != self.folder_id
        ):
            return self.error(403, "PERMISSION_DENIED", "folderId is missing or not accessible")
        if len(entry.body) > 15 * 1024:
            return self.bad_request("request body should be less than 15KB")
        if ("text" in field) == ("ssml" in field):
            return self.bad_request("exactly one of text or ssml is required")
        text = field.get("text", field.get("ssml", ""))
        if not text.strip():
            return self.bad_request("text is empty")
        if len(text) > 5000:
            return self.bad_request("text should be less than 5000 characters")
        lang = field.get("lang", "ru-RU")
        if lang not in TTS_VOICES:
            return self.bad_request(f"Unsupported lang: {lang}")
        voice = field.get("voice", "alena" if lang == "ru-RU" else next(iter(TTS_VOICES[lang])))
        if voice not in TTS_VOICES[lang]:
            return self.bad_request(f"Unsupported voice {voice} for lang {lang}")
        try:
            speed = float(field.get("speed", "1.0"))
        except ValueError:
            speed = -1.0
        if not 0.1 <= speed <= 3.0:
            return self.bad_request("speed should be between 0.1 and 3.0")
        audio_format = field.get("format", "oggopus")
        if audio_format not in FORMATS:
            return self.bad_request(f"Unsupported format: {audio_format}")
        rate = field.get("sampleRateHertz", "48000")
        if rate not in RATES:
            return self.bad_request(f"Unsupported sampleRateHertz: {rate}")
        if audio_format != "lpcm":
            return self.error(501, "UNIMPLEMENTED", f"the fake server only produces lpcm, not {audio_format}")
        return Response(speech_like_pcm(text, int(rate), speed), media_type="audio/x-pcm")
