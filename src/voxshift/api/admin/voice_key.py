"""VOXSHIFT_VOICE_API_KEY: when set, the voice API (/v1/*, /v2/*) requires ``Authorization: Bearer
<key>`` - what OpenAI's clients send as their api_key. Admin tokens are not voice keys and the key
opens nothing under /admin (each credential has its own table or setting).

Signed object URLs (/v2/objects/..., /v2/legacy/objects/...) stay open: their signature is the
credential, and a chat client fetches them without headers. Plain ASGI, like BodyLimit: a refused
request is answered before any body is read.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

PROTECTED = ("/v1/", "/v2/")
OPEN = ("/v2/objects/", "/v2/legacy/objects/")


class VoiceKey:
    def __init__(self, app: ASGIApp, *, key: str) -> None:
        self.app = app
        self.key = key.encode()

    def _needs_key(self, path: str) -> bool:
        return path.startswith(PROTECTED) and not path.startswith(OPEN)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, credential = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.key)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_key(scope["path"]) or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": {
                    "message": "missing or wrong API key: send Authorization: Bearer <the voice API key>",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
