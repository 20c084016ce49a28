"""BodyLimit against small ASGI apps: what it reads, what it answers, and when it must stay silent."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message, Receive, Scope, Send

from voxshift.api.body_limit import MAX_BODY_BYTES, BodyLimit, json_body_limit

CHUNK = 64 * 1024
UPLOAD_LIMIT = 4 * MAX_BODY_BYTES
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Client:
    """The server side of one request: a body handed over chunk by chunk, counted as it is pulled."""

    def __init__(self, size: int, *, chunk: int = CHUNK) -> None:
        self.remaining = size
        self.chunk = chunk
        self.pulled = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.remaining <= 0:
            return {"type": "http.disconnect"}
        piece = min(self.chunk, self.remaining)
        self.remaining -= piece
        self.pulled += piece
        return {"type": "http.request", "body": b"x" * piece, "more_body": self.remaining > 0}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return int(starts[0]["status"])

    def json(self) -> dict[str, object]:
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        data = json.loads(body)
        assert isinstance(data, dict)
        return data


def scope(content_type: str = "application/json", length: int | None = None) -> Scope:
    headers = [(b"content-type", content_type.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": "POST", "path": "/v1/audio/speech", "headers": headers}


def limited(app: App) -> BodyLimit:
    return BodyLimit(app, upload_limit=UPLOAD_LIMIT, upload_limit_text="4 MB")


async def read_all_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
    """What FastAPI does with a JSON body: read it whole, then answer."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def receive_everything(receive: Receive) -> None:
    while (await receive()).get("more_body"):
        pass


async def test_a_chunked_body_past_the_limit_is_refused_as_soon_as_it_passes() -> None:
    client = Client(40 * 1024 * 1024)
    await limited(read_all_then_answer)(scope(), client.receive, client.send)
    assert client.status == 413
    error = client.json()["error"]
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error" and error["code"] == "file_too_large"
    assert error["param"] is None
    assert "the limit is 1 MB" in str(error["message"])
    assert client.pulled <= MAX_BODY_BYTES + CHUNK


async def test_a_declared_length_past_the_limit_is_refused_without_calling_the_app() -> None:
    called = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    client = Client(30 * 1024 * 1024)
    await limited(app)(
        scope("multipart/form-data; boundary=x", 30 * 1024 * 1024), client.receive, client.send
    )
    assert client.status == 413 and not called and client.pulled == 0
    error = client.json()["error"]
    assert isinstance(error, dict)
    assert error["param"] == "file" and error["message"] == "request body is 30.0 MB; the limit is 4 MB"


async def test_the_apps_own_answer_to_the_failed_read_is_replaced() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await read_all_then_answer(scope, receive, send)
        except Exception:  # as FastAPI does: "There was an error parsing the body"
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

    client = Client(3 * MAX_BODY_BYTES)
    await limited(app)(scope(), client.receive, client.send)
    assert client.status == 413
    assert client.pulled <= MAX_BODY_BYTES + CHUNK


async def test_an_error_raised_because_of_the_refusal_is_answered_too() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await read_all_then_answer(scope, receive, send)
        except Exception as exc:
            raise RuntimeError("could not read the body") from exc

    client = Client(3 * MAX_BODY_BYTES)
    await limited(app)(scope(), client.receive, client.send)
    assert client.status == 413


async def test_once_the_response_has_started_nothing_more_is_sent() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await receive_everything(receive)
        await send({"type": "http.response.body", "body": b"late"})

    client = Client(3 * MAX_BODY_BYTES)
    await limited(app)(scope(), client.receive, client.send)  # returns quietly: the server closes
    assert client.sent == [{"type": "http.response.start", "status": 200, "headers": []}]
    assert client.pulled <= MAX_BODY_BYTES + CHUNK


async def test_the_app_cannot_read_on_after_the_refusal() -> None:
    attempts = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal attempts
        for _ in range(5):
            try:
                await receive_everything(receive)
            except Exception:
                attempts += 1

    client = Client(3 * MAX_BODY_BYTES)
    await limited(app)(scope(), client.receive, client.send)
    assert attempts == 5 and client.status == 413
    assert client.pulled <= MAX_BODY_BYTES + CHUNK


@pytest.mark.parametrize(
    ("content_type", "status"), [("multipart/form-data; boundary=b", 200), ("text/plain", 413)]
)
async def test_multipart_uploads_get_the_upload_limit_other_bodies_the_small_one(
    content_type: str, status: int
) -> None:
    client = Client(2 * MAX_BODY_BYTES)
    await limited(read_all_then_answer)(scope(content_type), client.receive, client.send)
    assert client.status == status


async def test_a_body_under_the_limit_is_untouched() -> None:
    client = Client(MAX_BODY_BYTES, chunk=1000)  # exactly the limit, without Content-Length
    await limited(read_all_then_answer)(scope(), client.receive, client.send)
    assert client.status == 200
    assert client.sent[1]["body"] == str(MAX_BODY_BYTES).encode()


async def test_unrelated_errors_propagate() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("a bug")

    client = Client(10)
    with pytest.raises(ValueError, match="a bug"):
        await limited(app)(scope(), client.receive, client.send)


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    client = Client(0)
    await limited(app)({"type": "lifespan"}, client.receive, client.send)
    assert seen == ["lifespan"]


def test_a_raised_text_limit_raises_the_json_limit() -> None:
    assert json_body_limit(4096) == MAX_BODY_BYTES
    assert json_body_limit(200_000) > 12 * 200_000
